import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { crc32 } from '../../formats/common/crc32.js';
import { encodeGuid } from '../../formats/common/guid.js';
import { encodeGptTables, type GptTablesSpec } from '../../formats/schemes/gpt.js';
import { GPT_TYPES } from '../../formats/schemes/gpt-types.js';
import { memoryDiskReader } from '../../src/model/disk-reader.js';
import { probeGpt } from '../../src/schemes/gpt/probe.js';
import type { Finding } from '../../src/model/findings.js';

/** A whole disk image: protective MBR (one 0xEE entry from LBA 1 over the disk) plus both GPT copies. */
function buildImage(spec: GptTablesSpec): Uint8Array {
  const ss = spec.sectorSize;
  const img = new Uint8Array(spec.totalSectors * ss);
  const dv = new DataView(img.buffer);
  img[446 + 4] = 0xee;
  dv.setUint32(446 + 8, 1, true);
  dv.setUint32(446 + 12, Math.min(spec.totalSectors - 1, 0xffffffff), true);
  img[510] = 0x55;
  img[511] = 0xaa;
  const t = encodeGptTables(spec);
  img.set(t.primary.bytes, t.primary.lba * ss);
  img.set(t.backup.bytes, t.backup.lba * ss);
  return img;
}

/** Recompute the entry array CRC and then the header CRC of the copy whose header is at headerLba. */
function fixCrcs(img: Uint8Array, ss: number, headerLba: number): void {
  const dv = new DataView(img.buffer, img.byteOffset);
  const h = headerLba * ss;
  const entriesLba = Number(dv.getBigUint64(h + 72, true));
  const bytes = dv.getUint32(h + 80, true) * dv.getUint32(h + 84, true);
  dv.setUint32(h + 88, crc32(img.subarray(entriesLba * ss, entriesLba * ss + bytes)), true);
  const size = dv.getUint32(h + 12, true);
  const copy = img.slice(h, h + size);
  copy.fill(0, 16, 20);
  dv.setUint32(h + 16, crc32(copy), true);
}

/** Write entry fields in both copies' arrays (slot is 1-based) and fix every CRC. */
function editEntry(
  img: Uint8Array,
  spec: GptTablesSpec,
  slot: number,
  firstLba: number,
  lastLba: number,
  copies: Array<'primary' | 'backup'> = ['primary', 'backup'],
): void {
  const ss = spec.sectorSize;
  const dv = new DataView(img.buffer, img.byteOffset);
  const last = spec.totalSectors - 1;
  for (const which of copies) {
    const headerLba = which === 'primary' ? 1 : last;
    const entriesLba = Number(dv.getBigUint64(headerLba * ss + 72, true));
    const at = entriesLba * ss + (slot - 1) * 128;
    dv.setBigUint64(at + 32, BigInt(firstLba), true);
    dv.setBigUint64(at + 40, BigInt(lastLba), true);
    fixCrcs(img, ss, headerLba);
  }
}

const codes = (f: Finding[]) => f.map((x) => x.code);

function sampleSpec(sectorSize: number): GptTablesSpec {
  return {
    sectorSize,
    totalSectors: sectorSize === 512 ? 8192 : 2048,
    diskGuid: '5d2c0f3a-7b1e-4c9a-8f00-0123456789ab',
    partitions: [
      { typeGuid: GPT_TYPES.efi, guid: '11111111-2222-4333-8444-555555555501', firstLba: 64, lastLba: 191, attributes: 1n, name: 'efiboot0' },
      {
        typeGuid: GPT_TYPES['freebsd-ufs'],
        guid: '11111111-2222-4333-8444-555555555502',
        firstLba: 192,
        lastLba: 1023,
        attributes: (1n << 59n) | (1n << 58n) | (1n << 50n),
        name: 'rootfs1 é',
      },
      {
        index: 5,
        typeGuid: '0badc0de-0000-4000-8000-000000000005',
        guid: '11111111-2222-4333-8444-555555555505',
        firstLba: 1024,
        lastLba: 1100,
        attributes: 0n,
        name: '',
      },
    ],
  };
}

describe.each([512, 4096])('probeGpt on clean %i-byte-sector images', (ss) => {
  it('reports the table with no findings', async () => {
    const spec = sampleSpec(ss);
    const img = buildImage(spec);
    const r = await probeGpt(memoryDiskReader(img));
    expect(r).not.toBeNull();
    expect(r!.findings).toEqual([]);
    const t = r!.table;
    expect(t).toMatchObject({ scheme: 'gpt', sectorSize: ss, offset: 0, diskBytes: img.length, diskGuid: spec.diskGuid, entryCount: 128 });
    expect(t.firstUsableLba).toBe(ss === 512 ? 34 : 6);
    expect(t.lastUsableLba).toBe(spec.totalSectors - (ss === 512 ? 34 : 6));
    expect(t.partitions).toEqual([
      {
        index: 1,
        typeName: 'efi',
        rawType: GPT_TYPES.efi,
        label: 'efiboot0',
        firstLba: 64,
        lastLba: 191,
        sizeBytes: 128 * ss,
        attributes: ['required'],
        attributesRaw: '0x0000000000000001',
        guid: '11111111-2222-4333-8444-555555555501',
      },
      {
        index: 2,
        typeName: 'freebsd-ufs',
        rawType: GPT_TYPES['freebsd-ufs'],
        label: 'rootfs1 é',
        firstLba: 192,
        lastLba: 1023,
        sizeBytes: 832 * ss,
        attributes: ['bit50', 'bootonce', 'bootme'],
        attributesRaw: '0x0c04000000000000',
        guid: '11111111-2222-4333-8444-555555555502',
      },
      {
        index: 5,
        typeName: '0badc0de-0000-4000-8000-000000000005',
        rawType: '0badc0de-0000-4000-8000-000000000005',
        label: '',
        firstLba: 1024,
        lastLba: 1100,
        sizeBytes: 77 * ss,
        attributes: [],
        attributesRaw: '0x0000000000000000',
        guid: '11111111-2222-4333-8444-555555555505',
      },
    ]);
  });

  it('reads the table from the backup when the primary header is corrupt', async () => {
    const spec = sampleSpec(ss);
    const clean = (await probeGpt(memoryDiskReader(buildImage(spec))))!.table;
    const img = buildImage(spec);
    img[ss + 60] ^= 0xff; // inside the disk GUID: header CRC no longer matches
    const r = (await probeGpt(memoryDiskReader(img)))!;
    expect(codes(r.findings)).toContain('gpt.primary-header-crc');
    expect(codes(r.findings)).toContain('gpt.using-backup');
    expect(r.table).toEqual(clean);
  });

  it('finds the backup when the primary signature is gone', async () => {
    const spec = sampleSpec(ss);
    const clean = (await probeGpt(memoryDiskReader(buildImage(spec))))!.table;
    const img = buildImage(spec);
    img.fill(0, ss, 2 * ss);
    const r = (await probeGpt(memoryDiskReader(img)))!;
    expect(r).not.toBeNull();
    expect(codes(r.findings)).toContain('gpt.primary-header-missing');
    expect(r.table).toEqual(clean);
  });

  it('reports a bad primary entry array CRC and uses the backup', async () => {
    const spec = sampleSpec(ss);
    const img = buildImage(spec);
    img[2 * ss + 56] ^= 0x01; // first name character of entry 1
    const r = (await probeGpt(memoryDiskReader(img)))!;
    expect(codes(r.findings)).toContain('gpt.primary-entries-crc');
    expect(r.table.partitions[0].label).toBe('efiboot0');
  });

  it('reports a bad backup entry array CRC', async () => {
    const spec = sampleSpec(ss);
    const img = buildImage(spec);
    const t = encodeGptTables(spec);
    img[t.backup.lba * ss + 40] ^= 0x01;
    const r = (await probeGpt(memoryDiskReader(img)))!;
    expect(codes(r.findings)).toEqual(['gpt.backup-entries-crc', 'gpt.stale-copy']);
  });

  it('reports overlapping entries written by hand with good CRCs', async () => {
    const spec = sampleSpec(ss);
    const img = buildImage(spec);
    editEntry(img, spec, 2, 150, 1023); // entry 2 now starts inside entry 1 (64-191)
    const r = (await probeGpt(memoryDiskReader(img)))!;
    expect(codes(r.findings)).toEqual(['gpt.partition-overlap']);
    expect(r.findings[0].severity).toBe('error');
    expect(r.findings[0].message).toContain('partition 1');
    expect(r.findings[0].message).toContain('partition 2');
  });

  it('reports a partition outside the usable area and a reversed one', async () => {
    const spec = sampleSpec(ss);
    const img = buildImage(spec);
    editEntry(img, spec, 5, 1024, spec.totalSectors - 2);
    editEntry(img, spec, 1, 191, 64);
    const r = (await probeGpt(memoryDiskReader(img)))!;
    expect(codes(r.findings).sort()).toEqual(['gpt.partition-out-of-bounds', 'gpt.partition-reversed']);
  });

  it('reports a truncated file (backup beyond the end) and still reads the primary', async () => {
    const spec = sampleSpec(ss);
    const img = buildImage(spec).subarray(0, (spec.totalSectors - 40) * ss);
    const r = (await probeGpt(memoryDiskReader(img)))!;
    expect(codes(r.findings)).toContain('gpt.truncated');
    expect(r.findings.find((f) => f.code === 'gpt.truncated')!.severity).toBe('error');
    expect(r.table.partitions.map((p) => p.index)).toEqual([1, 2, 5]);
  });

  it('reports copies that disagree', async () => {
    const spec = sampleSpec(ss);
    const img = buildImage(spec);
    const last = spec.totalSectors - 1;
    encodeGuid('99999999-2222-4333-8444-555555555555', img, last * ss + 56); // backup disk GUID
    editEntry(img, spec, 5, 1024, 1050, ['backup']); // backup array differs, CRCs fixed
    const r = (await probeGpt(memoryDiskReader(img)))!;
    expect(codes(r.findings).sort()).toEqual(['gpt.entries-mismatch', 'gpt.header-mismatch', 'gpt.stale-copy']);
  });

  it('reports a backup that is not at the last sector after the image grew', async () => {
    const spec = sampleSpec(ss);
    const img = new Uint8Array((spec.totalSectors + 100) * ss);
    img.set(buildImage(spec));
    const r = (await probeGpt(memoryDiskReader(img)))!;
    expect(codes(r.findings).sort()).toEqual(['gpt.backup-not-at-end', 'gpt.pmbr-size']);
    expect(r.findings.every((f) => f.severity === 'warning')).toBe(true);
    expect(r.table.partitions).toHaveLength(3);
  });

  it('reports a missing backup header', async () => {
    const spec = sampleSpec(ss);
    const img = buildImage(spec);
    img.fill(0, (spec.totalSectors - 1) * ss);
    const r = (await probeGpt(memoryDiskReader(img)))!;
    expect(codes(r.findings)).toEqual(['gpt.backup-header-missing', 'gpt.stale-copy']);
    expect(r.table.partitions).toHaveLength(3);
  });

  it('reports a header whose my-LBA is wrong', async () => {
    const spec = sampleSpec(ss);
    const img = buildImage(spec);
    new DataView(img.buffer).setBigUint64(ss + 24, 7n, true);
    fixCrcs(img, ss, 1);
    const r = (await probeGpt(memoryDiskReader(img)))!;
    expect(codes(r.findings)).toEqual(['gpt.primary-my-lba', 'gpt.stale-copy', 'gpt.using-backup']);
  });

  it('reports a hostile entry count without allocating it', async () => {
    const spec = sampleSpec(ss);
    const img = buildImage(spec);
    new DataView(img.buffer).setUint32(ss + 80, 0xffffffff, true);
    fixCrcs(img, ss, 1);
    const r = (await probeGpt(memoryDiskReader(img)))!;
    expect(codes(r.findings)).toContain('gpt.primary-header-invalid');
    expect(r.table.partitions).toHaveLength(3);
  });
});

describe('probeGpt protective MBR and size checks', () => {
  it('is an error when the protective MBR is missing', async () => {
    const img = buildImage(sampleSpec(512));
    img.fill(0, 0, 512);
    const r = (await probeGpt(memoryDiskReader(img)))!;
    expect(r.findings).toEqual([expect.objectContaining({ code: 'gpt.pmbr-missing', severity: 'error', where: 'gpt' })]);
  });

  it('is an error when there is no 0xEE entry, a warning when it is short', async () => {
    const img = buildImage(sampleSpec(512));
    img[446 + 4] = 0x0c;
    expect(codes((await probeGpt(memoryDiskReader(img)))!.findings)).toEqual(['gpt.pmbr-missing']);
    img[446 + 4] = 0xee;
    new DataView(img.buffer).setUint32(446 + 12, 1000, true);
    const r = (await probeGpt(memoryDiskReader(img)))!;
    expect(r.findings).toEqual([expect.objectContaining({ code: 'gpt.pmbr-size', severity: 'warning' })]);
    new DataView(img.buffer).setUint32(446 + 8, 2, true);
    expect(codes((await probeGpt(memoryDiskReader(img)))!.findings)).toEqual(['gpt.pmbr-start']);
  });

  it('warns when the disk is not a whole number of sectors', async () => {
    const spec = sampleSpec(512);
    const img = new Uint8Array(spec.totalSectors * 512 + 100);
    img.set(buildImage(spec));
    const r = (await probeGpt(memoryDiskReader(img)))!;
    expect(codes(r.findings)).toEqual(['gpt.size-not-sector-multiple']);
  });

  it('returns null when there is no GPT at all', async () => {
    expect(await probeGpt(memoryDiskReader(new Uint8Array(1 << 20)))).toBeNull();
    expect(await probeGpt(memoryDiskReader(new Uint8Array(0)))).toBeNull();
    expect(await probeGpt(memoryDiskReader(new Uint8Array(700)))).toBeNull();
  });
});

describe('probeGpt on mutated images never throws', () => {
  const spec4k = sampleSpec(4096);
  const spec512 = { ...sampleSpec(512), totalSectors: 2048, entryCount: 16 };
  const images = [
    { spec: spec512, img: buildImage(spec512) },
    { spec: spec4k, img: buildImage(spec4k) },
  ];

  it('for random byte changes in the MBR, headers and arrays, with or without fixed CRCs, and truncation', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 1 }),
        fc.array(fc.record({ region: fc.integer({ min: 0, max: 3 }), offset: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), {
          minLength: 1,
          maxLength: 12,
        }),
        fc.boolean(),
        fc.option(fc.nat(), { nil: undefined }),
        async (which, flips, fixHeaders, cut) => {
          const { spec, img: base } = images[which];
          const ss = spec.sectorSize;
          const img = base.slice();
          const t = encodeGptTables(spec);
          const last = spec.totalSectors - 1;
          // Regions: MBR sector, primary header, primary array, backup array + header.
          const regions: Array<[number, number]> = [
            [0, ss],
            [ss, ss],
            [2 * ss, t.primary.bytes.length - ss],
            [t.backup.lba * ss, t.backup.bytes.length],
          ];
          for (const f of flips) {
            const [start, len] = regions[f.region];
            // Bias toward the header fields, where a change matters most.
            const off = f.region === 1 || f.region === 3 ? f.offset % Math.min(len, f.region === 1 ? 96 : len) : f.offset % len;
            img[start + off] = f.value;
          }
          if (fixHeaders) {
            for (const lba of [1, last]) {
              const dv = new DataView(img.buffer);
              const size = dv.getUint32(lba * ss + 12, true);
              const entriesLba = dv.getBigUint64(lba * ss + 72, true);
              const bytes = dv.getUint32(lba * ss + 80, true) * dv.getUint32(lba * ss + 84, true);
              if (size >= 92 && size <= ss && entriesLba < BigInt(spec.totalSectors) && bytes <= img.length) fixCrcs(img, ss, lba);
            }
          }
          const disk = cut === undefined ? img : img.subarray(0, cut % (img.length + 1));
          const r = await probeGpt(memoryDiskReader(disk));
          if (r) {
            expect(r.table.scheme).toBe('gpt');
            expect([512, 4096]).toContain(r.table.sectorSize);
            for (const f of r.findings) {
              // The GPT's own findings, and the protective MBR's (mbr.hybrid when a flip adds an entry beside 0xEE).
              expect(/^(gpt|mbr)\./.test(f.code), `${f.code}: ${f.message}`).toBe(true);
              expect(['error', 'warning', 'info']).toContain(f.severity);
              expect(f.message.length).toBeGreaterThan(10);
            }
            for (const p of r.table.partitions) expect(p.sizeBytes).toBeGreaterThanOrEqual(0);
          }
        },
      ),
      // The example: MBR entry 2 given type 0x01 and a size (found by a long run): an mbr.hybrid finding.
      {
        numRuns: 400,
        examples: [
          [
            0,
            [
              { region: 0, offset: 466, value: 1 },
              { region: 0, offset: 474, value: 1 },
            ],
            false,
            undefined,
          ],
        ],
      },
    );
  });
});
