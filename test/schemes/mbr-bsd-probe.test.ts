import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { memoryDiskReader } from '../../src/model/disk-reader.js';
import { probeMbr, makeMbrProbe } from '../../src/schemes/mbr/probe.js';
import { probeBsd } from '../../src/schemes/bsd/probe.js';
import { encodeMbrSector, encodeMbrTables, type MbrEntrySpec, type MbrTablesSpec } from '../../formats/schemes/mbr.js';
import { encodeBsdLabel } from '../../formats/schemes/bsd.js';
import type { TableReadResult } from '../../src/schemes/types.js';

const MiB = 2048; // sectors

function image(sectors: number, writes: Array<{ lba: number; bytes: Uint8Array }>, sectorSize = 512): Uint8Array {
  const img = new Uint8Array(sectors * sectorSize);
  for (const w of writes) img.set(w.bytes, w.lba * sectorSize);
  return img;
}

function codes(r: TableReadResult | null): string[] {
  return (r?.findings ?? []).map((f) => f.code);
}

const LAYOUT: MbrTablesSpec = {
  diskSignature: 0x12345678,
  primaries: [
    { type: 0x0c, startLba: 1 * MiB, sectors: 4 * MiB, active: true },
    { type: 0xa5, startLba: 5 * MiB, sectors: 4 * MiB },
    { type: 0x83, startLba: 9 * MiB, sectors: 2 * MiB },
  ],
  logicals: [
    { type: 0x83, startLba: 12 * MiB, sectors: 2 * MiB, ebrLba: 11 * MiB },
    { type: 0x82, startLba: 15 * MiB, sectors: 1 * MiB, ebrLba: 14 * MiB },
    { type: 0x07, startLba: 17 * MiB, sectors: 3 * MiB, ebrLba: 16 * MiB },
  ],
};
const LAYOUT_SECTORS = 21 * MiB;

describe('probeMbr', () => {
  it('reads primaries, the extended container and logicals in chain order', async () => {
    const r = await probeMbr(memoryDiskReader(image(LAYOUT_SECTORS, encodeMbrTables(LAYOUT))));
    expect(r!.findings).toEqual([]);
    expect(r!.table).toMatchObject({ scheme: 'mbr', sectorSize: 512, offset: 0, diskBytes: LAYOUT_SECTORS * 512, diskSignature: '0x12345678' });
    expect(r!.table.partitions.map((p) => [p.index, p.typeName, p.rawType, p.firstLba, p.lastLba, !!p.active, !!p.logical])).toEqual([
      [1, 'fat32-lba', '0x0c', 2048, 10239, true, false],
      [2, 'freebsd', '0xa5', 10240, 18431, false, false],
      [3, 'linux', '0x83', 18432, 22527, false, false],
      [4, 'extended', '0x05', 22528, 40959, false, false],
      [5, 'linux', '0x83', 24576, 28671, false, true],
      [6, 'linux-swap', '0x82', 30720, 32767, false, true],
      [7, 'ntfs', '0x07', 34816, 40959, false, true],
    ]);
    expect(r!.table.partitions[4].sizeBytes).toBe(2 * MiB * 512);
  });

  it('4096-byte sectors via makeMbrProbe', async () => {
    const sector = encodeMbrSector({ entries: [{ type: 0x83, startLba: 256, sectors: 1000 }] });
    const r = await makeMbrProbe(4096)(memoryDiskReader(image(2000, [{ lba: 0, bytes: sector }], 4096)));
    expect(r!.findings).toEqual([]);
    expect(r!.table.sectorSize).toBe(4096);
    expect(r!.table.partitions[0]).toMatchObject({ firstLba: 256, lastLba: 1255, sizeBytes: 1000 * 4096 });
  });

  it('is null for no MBR, a GPT protective MBR and a partitionless FAT boot sector', async () => {
    expect(await probeMbr(memoryDiskReader(new Uint8Array(4096)))).toBeNull();
    expect(await probeMbr(memoryDiskReader(new Uint8Array(100)))).toBeNull();
    const pmbr = encodeMbrSector({ entries: [{ type: 0xee, startLba: 1, sectors: 4095 }] });
    expect(await probeMbr(memoryDiskReader(image(4096, [{ lba: 0, bytes: pmbr }])))).toBeNull();
    const fat = encodeMbrSector({ entries: [] });
    fat.set([0xeb, 0x3c, 0x90], 0);
    fat.set([0x00, 0x02, 0x08], 0x0b); // 512 bytes/sector, 8 sectors/cluster
    expect(await probeMbr(memoryDiskReader(image(4096, [{ lba: 0, bytes: fat }])))).toBeNull();
    const weirdStatus = encodeMbrSector({ entries: [{ type: 0x83, startLba: 1, sectors: 10 }] });
    weirdStatus[446] = 0x12;
    expect(await probeMbr(memoryDiskReader(image(4096, [{ lba: 0, bytes: weirdStatus }])))).toBeNull();
    // an empty but signed MBR is an MBR with no partitions
    const empty = await probeMbr(memoryDiskReader(image(4096, [{ lba: 0, bytes: encodeMbrSector({ entries: [] }) }])));
    expect(empty!.table.partitions).toEqual([]);
  });

  it('reports a missing signature, overlaps, partitions past the end and several active ones', async () => {
    const entries: MbrEntrySpec[] = [
      { type: 0x83, startLba: 100, sectors: 1000, active: true },
      { type: 0x83, startLba: 500, sectors: 1000, active: true },
      { type: 0x83, startLba: 3000, sectors: 2000 },
    ];
    const sector = encodeMbrSector({ entries });
    sector[510] = 0;
    const r = await probeMbr(memoryDiskReader(image(4096, [{ lba: 0, bytes: sector }])));
    expect(codes(r).sort()).toEqual(['mbr.beyond-disk', 'mbr.boot-signature', 'mbr.multiple-active', 'mbr.overlap']);
    expect(r!.findings.find((f) => f.code === 'mbr.multiple-active')!.severity).toBe('warning');
  });

  it('an EBR pointing at itself or at an earlier EBR -> mbr.ebr-loop, logicals so far kept', async () => {
    const sectors = encodeMbrTables(LAYOUT);
    const img = image(LAYOUT_SECTORS, sectors);
    // EBR 2 (at 14 MiB) links back to EBR 1 (offset 0 in the extended partition)
    const back = img.slice();
    back.set([0, 0, 0, 0], 14 * MiB * 512 + 446 + 16 + 8);
    const r1 = await probeMbr(memoryDiskReader(back));
    expect(codes(r1)).toEqual(['mbr.ebr-loop']);
    expect(r1!.table.partitions.filter((p) => p.logical)).toHaveLength(2);
    // EBR 2 links to itself
    const self = img.slice();
    self.set([0, 0x18, 0, 0], 14 * MiB * 512 + 446 + 16 + 8); // 3 MiB = 0x1800 sectors past 11 MiB
    expect(codes(await probeMbr(memoryDiskReader(self)))).toEqual(['mbr.ebr-loop']);
  });

  it('reports an EBR without 0x55AA, a link out of the extended partition, a logical outside it', async () => {
    const img = image(LAYOUT_SECTORS, encodeMbrTables(LAYOUT));
    const noSig = img.slice();
    noSig[16 * MiB * 512 + 510] = 0;
    const r = await probeMbr(memoryDiskReader(noSig));
    expect(codes(r)).toEqual(['mbr.ebr-signature']);
    expect(r!.table.partitions.filter((p) => p.logical)).toHaveLength(2);

    const outLink = img.slice();
    outLink.set([0, 0, 0x10, 0], 14 * MiB * 512 + 446 + 16 + 8); // far beyond the extended partition
    expect(codes(await probeMbr(memoryDiskReader(outLink)))).toEqual(['mbr.ebr-outside-extended']);

    const bigLogical = img.slice();
    bigLogical.set([0, 0, 0x10, 0], 16 * MiB * 512 + 446 + 12); // third logical 1 Mi sectors long
    expect(codes(await probeMbr(memoryDiskReader(bigLogical))).sort()).toEqual(['mbr.beyond-disk', 'mbr.logical-outside-extended']);
  });

  it('an empty extended partition is only an info', async () => {
    const sector = encodeMbrSector({ entries: [{ type: 0x0f, startLba: 2048, sectors: 2048 }] });
    const r = await probeMbr(memoryDiskReader(image(8192, [{ lba: 0, bytes: sector }])));
    expect(r!.findings.map((f) => [f.code, f.severity])).toEqual([['mbr.ebr-empty', 'info']]);
  });

  it('never throws on mutated images', async () => {
    const img = image(LAYOUT_SECTORS, encodeMbrTables(LAYOUT));
    const hot = [0, 11 * MiB, 14 * MiB, 16 * MiB].map((lba) => lba * 512 + 446);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(3), fc.nat(65), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 12 }), async (edits) => {
        const saved = hot.map((at) => img.slice(at, at + 66));
        for (const [s, off, v] of edits) img[hot[s] + off] = v;
        try {
          const r = await probeMbr(memoryDiskReader(img));
          if (r) expect(r.table.partitions.length).toBeLessThanOrEqual(4 + 128);
        } finally {
          hot.forEach((at, i) => img.set(saved[i], at));
        }
      }),
      { numRuns: 300 },
    );
  });
});

const SLICE = 10240;
function bsdImage(
  parts = [
    { letter: 'a', offset: 16, size: 8192, fstype: 7 },
    { letter: 'b', offset: 8208, size: 256, fstype: 1 },
  ],
  totalSectors = SLICE,
  sliceSectors = SLICE,
): Uint8Array {
  const img = new Uint8Array(sliceSectors * 512);
  img.set(encodeBsdLabel({ sectorSize: 512, totalSectors, partitions: parts }), 0);
  return img;
}

function setU32(b: Uint8Array, off: number, v: number): void {
  new DataView(b.buffer, b.byteOffset).setUint32(off, v, true);
}

function fixChecksum(img: Uint8Array, labelAt = 512, nparts = 8): void {
  img[labelAt + 136] = 0;
  img[labelAt + 137] = 0;
  let x = 0;
  for (let i = 0; i < 148 + nparts * 16; i += 2) x ^= img[labelAt + i] | (img[labelAt + i + 1] << 8);
  img[labelAt + 136] = x & 0xff;
  img[labelAt + 137] = x >> 8;
}

describe('probeBsd', () => {
  it('reads a label we wrote', async () => {
    const r = await probeBsd(memoryDiskReader(bsdImage()));
    expect(r!.findings).toEqual([]);
    expect(r!.table).toMatchObject({ scheme: 'bsd', sectorSize: 512, offset: 0, diskBytes: SLICE * 512 });
    expect(r!.table.partitions.map((p) => [p.index, p.label, p.typeName, p.rawType, p.firstLba, p.lastLba])).toEqual([
      [1, 'a', '4.2BSD', '7', 16, 8207],
      [2, 'b', 'swap', '1', 8208, 8463],
      [3, 'c', 'unused', '0', 0, SLICE - 1],
    ]);
  });

  it('finds a label at byte 4096 on 4Kn media', async () => {
    const img = new Uint8Array(1000 * 4096);
    img.set(encodeBsdLabel({ sectorSize: 4096, totalSectors: 1000, partitions: [{ letter: 'a', offset: 2, size: 998, fstype: 27 }] }));
    const r = await probeBsd(memoryDiskReader(img));
    expect(r!.findings).toEqual([]);
    expect(r!.table.sectorSize).toBe(4096);
    expect(r!.table.partitions[0]).toMatchObject({ label: 'a', typeName: 'ZFS', firstLba: 2, sizeBytes: 998 * 4096 });
  });

  it('is null without a label', async () => {
    expect(await probeBsd(memoryDiskReader(new Uint8Array(16384)))).toBeNull();
    expect(await probeBsd(memoryDiskReader(new Uint8Array(100)))).toBeNull();
  });

  it('reports bad checksum, one magic missing, partitions past the slice, overlaps, d_secperunit past the slice', async () => {
    const bad = bsdImage();
    bad[512 + 148 + 8] ^= 1; // a's p_fsize
    expect(codes(await probeBsd(memoryDiskReader(bad)))).toEqual(['bsd.checksum']);

    const oneMagic = bsdImage();
    oneMagic[512 + 132] = 0;
    expect(codes(await probeBsd(memoryDiskReader(oneMagic)))).toContain('bsd.magic');

    const overlapping = bsdImage([
      { letter: 'a', offset: 16, size: 8192, fstype: 7 },
      { letter: 'd', offset: 8000, size: 3000, fstype: 7 },
    ]);
    expect(codes(await probeBsd(memoryDiskReader(overlapping))).sort()).toEqual(['bsd.overlap', 'bsd.partition-outside-slice']);

    const shrunk = bsdImage(undefined, 20000, SLICE); // label says 20000 sectors, slice has 10240
    expect(codes(await probeBsd(memoryDiskReader(shrunk))).sort()).toEqual(['bsd.partition-outside-slice', 'bsd.secperunit-beyond-slice']);
  });

  it('converts old absolute offsets (c at the slice start) and says so', async () => {
    const img = bsdImage();
    const base = 63;
    for (const slot of [0, 1, 2]) {
      const off = 512 + 148 + slot * 16 + 4;
      setU32(img, off, new DataView(img.buffer).getUint32(off, true) + base);
    }
    fixChecksum(img);
    const r = await probeBsd(memoryDiskReader(img));
    expect(r!.findings.map((f) => [f.code, f.severity])).toEqual([['bsd.absolute-offsets', 'info']]);
    expect(r!.table.partitions.map((p) => p.firstLba)).toEqual([16, 8208, 0]);
  });

  it('never throws on mutated labels', async () => {
    const img = bsdImage();
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(511), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 16 }), fc.boolean(), async (edits, fix) => {
        const m = img.slice(0, 16384);
        for (const [off, v] of edits) m[512 + off] = v;
        if (fix) fixChecksum(m);
        const r = await probeBsd(memoryDiskReader(m));
        if (r) expect(r.table.partitions.length).toBeLessThanOrEqual(20);
      }),
      { numRuns: 300 },
    );
  });
});
