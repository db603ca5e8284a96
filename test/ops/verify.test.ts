/** verify: each kind of damage gives the right finding; --expect lists every difference. */
import { openSync, writeSync, closeSync, truncateSync, statSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildImage, createFatImage, inspectImage, verifyImage, type Layout } from '../../src/index.js';
import { mkdirSync } from 'node:fs';
import { crc32 } from '../../formats/common/crc32.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer, runPeer } from '../helpers/peer.js';

const LAYOUT: Layout = {
  scheme: 'gpt',
  size: '16M',
  seed: 'verify',
  partitions: [
    { type: 'freebsd-boot', label: 'boot', size: '4M' },
    { type: 'freebsd-ufs', label: 'os1', size: '4M', attributes: ['bootme'] },
    { type: 'freebsd-ufs', label: 'os2', size: 'rest' },
  ],
};

async function built(layout: Layout = LAYOUT): Promise<string> {
  const path = join(tempDir(), 'disk.img');
  await buildImage(layout, { output: path });
  return path;
}

function patch(path: string, offset: number, bytes: Uint8Array): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, bytes, 0, bytes.length, offset);
  closeSync(fd);
}

function codes(report: { findings: Array<{ code: string; severity: string }> }, severity = 'error'): string[] {
  return report.findings.filter((f) => f.severity === severity).map((f) => f.code);
}

describe('verify finds damage', () => {
  it('a sound image: ok, no errors or warnings', async () => {
    const r = await verifyImage(await built());
    expect(r.findings).toEqual([]);
    expect(r.ok).toBe(true);
  });

  it('a corrupted primary GPT header: error, table still read from the backup', async () => {
    const path = await built();
    patch(path, 512 + 24, new Uint8Array([0x7f])); // my_lba byte inside the CRC'd header
    const r = await verifyImage(path);
    expect(r.ok).toBe(false);
    expect(codes(r)).toContain('gpt.primary-header-crc');
    expect(r.table?.partitions.map((p) => p.label)).toEqual(['boot', 'os1', 'os2']);
  });

  it('a bad entry-array CRC', async () => {
    const path = await built();
    patch(path, 1024 + 56, new Uint8Array([0x41])); // first entry's name
    const r = await verifyImage(path);
    expect(codes(r)).toContain('gpt.primary-entries-crc');
  });

  it('overlapping entries (with valid CRCs) are reported as overlap', async () => {
    const path = await built();
    const img = readFileSync(path);
    // Move entry 2's first LBA into entry 1 and fix both CRCs in the primary copy.
    img.writeBigUInt64LE(4096n, 1024 + 128 + 32);
    const entries = img.subarray(1024, 1024 + 128 * 128);
    img.writeUInt32LE(crc32(entries), 512 + 88);
    img.writeUInt32LE(0, 512 + 16);
    img.writeUInt32LE(crc32(img.subarray(512, 512 + 92)), 512 + 16);
    writeFileSync(path, img);
    const r = await verifyImage(path);
    expect(codes(r)).toContain('gpt.partition-overlap');
    expect(codes(r)).toContain('gpt.entries-mismatch');
  });

  it('a truncated file', async () => {
    const path = await built();
    truncateSync(path, statSync(path).size - 4096);
    const r = await verifyImage(path);
    expect(r.ok).toBe(false);
    expect(codes(r).some((c) => c === 'gpt.truncated' || c.startsWith('gpt.backup'))).toBe(true);
  });

  it('an EBR loop', async () => {
    const path = await built({
      scheme: 'mbr',
      size: '32M',
      partitions: [
        { type: 'linux', size: '4M' },
        { type: 'linux', size: '4M', logical: true },
        { type: 'linux', size: '4M', logical: true },
      ],
    });
    const img = readFileSync(path);
    const extStart = img.readUInt32LE(446 + 16 + 8);
    // The second EBR's link (entry 2) points back at the first EBR: offset 0 from the extended start.
    const firstEbr = extStart * 512;
    const secondEbrRel = img.readUInt32LE(firstEbr + 446 + 16 + 8);
    img.writeUInt32LE(0, (extStart + secondEbrRel) * 512 + 446 + 16 + 8);
    img[(extStart + secondEbrRel) * 512 + 446 + 16 + 4] = 0x05;
    img.writeUInt32LE(1, (extStart + secondEbrRel) * 512 + 446 + 16 + 12);
    writeFileSync(path, img);
    const r = await verifyImage(path);
    expect(codes(r)).toContain('mbr.ebr-loop');
  });

  it('warns on partitions not aligned to 4 KiB or 1 MiB', async () => {
    const r = await verifyImage(
      await built({
        scheme: 'gpt',
        align: '1s',
        partitions: [
          { type: 'linux-data', size: '1M' },
          { type: 'linux-data', size: '1M', offset: '4100K' },
        ],
      }),
    );
    expect(codes(r, 'warning')).toEqual(['align.4k', 'align.1m']);
    expect(r.findings.find((f) => f.code === 'align.4k')?.message).toMatch(/starts at byte 17408, not on a 4 KiB boundary/);
    expect(r.ok).toBe(true);
    expect((await verifyImage(await built({ scheme: 'gpt', align: '1s', partitions: [{ type: 'linux-data', size: '1M' }] }), { strict: true })).ok).toBe(false);
  });

  it('sgdisk agrees that the corruption we report is there', async (ctx) => {
    if (!requirePeer('sgdisk', 'gdisk')) return ctx.skip();
    const path = await built();
    expect(runPeer('sgdisk', ['-v', path]).out).toContain('No problems found');
    patch(path, 1024 + 56, new Uint8Array([0x41]));
    expect(runPeer('sgdisk', ['-v', path]).out).toMatch(/CRC|problem/i);
  });
});

describe('verify --expect', () => {
  it('passes for the layout the image was built from', async () => {
    const dir = tempDir();
    const layoutPath = join(dir, 'layout.json');
    writeFileSync(
      layoutPath,
      JSON.stringify({ ...LAYOUT, partitions: LAYOUT.partitions.map((p, i) => (i === 1 ? { ...p, uuid: '0bad0bad-0bad-4bad-8bad-0bad0bad0bad' } : p)) }),
    );
    const img = join(dir, 'disk.img');
    await buildImage(layoutPath, { output: img });
    const r = await verifyImage(img, { expect: layoutPath });
    expect(r.findings).toEqual([]);
  });

  it('lists every difference: type, size, start, label, attributes, GUID, missing and extra partitions', async () => {
    const path = await built();
    const other: Layout = {
      scheme: 'gpt',
      size: '16M',
      partitions: [
        { type: 'linux-data', label: 'boot', size: '4M' },
        { type: 'freebsd-ufs', label: 'os-one', size: '2M', attributes: ['bootonce', 'bootme'], uuid: '11111111-1111-4111-8111-111111111111' },
      ],
    };
    const r = await verifyImage(path, { expect: other });
    expect(r.ok).toBe(false);
    expect(codes(r).sort()).toEqual(['expect.attributes', 'expect.guid', 'expect.label', 'expect.partition-extra', 'expect.size', 'expect.type']);
    const msg = r.findings.map((f) => f.message).join('\n');
    expect(msg).toContain('partition 1 (partitions[0]): type freebsd-boot (83bd6b9d-7f41-11dc-be0b-001560b84f0f), expected linux-data');
    expect(msg).toContain('partition 2 (partitions[1]): has 8192 sectors, expected 4096');
    expect(msg).toContain('partition 3 (freebsd-ufs, sectors');
    const wrongScheme = await verifyImage(path, { expect: { scheme: 'mbr', partitions: [] } });
    expect(codes(wrongScheme)).toEqual(['expect.scheme']);
  });
});

describe('an image that is a file system itself (no partition table)', () => {
  const makeVolume = async (tree: Record<string, string>) => {
    const dir = tempDir();
    const src = join(dir, 'src');
    for (const [path, text] of Object.entries(tree)) {
      mkdirSync(join(src, path, '..'), { recursive: true });
      writeFileSync(join(src, path), text);
    }
    mkdirSync(src, { recursive: true });
    const img = join(dir, 'volume.img');
    await createFatImage(img, { from: src, label: 'VOL', type: 16 });
    return img;
  };

  it('a FAT volume is sound, named by info, and checked as FAT (not "no partition table")', async () => {
    const img = await makeVolume({ 'a.txt': 'hello' });
    const info = await inspectImage(img);
    expect(info.table).toBeNull();
    expect(info.filesystem).toEqual({ kind: 'fat16', label: 'VOL' });
    const ok = await verifyImage(img);
    expect(ok.ok).toBe(true);
    expect(ok.findings.map((f) => f.code)).toEqual(['disk.whole-disk-filesystem']);
    // Make the two FATs disagree: verify must now look inside and say so.
    const bytes = readFileSync(img);
    const reserved = bytes.readUInt16LE(14);
    const fatSectors = bytes.readUInt16LE(22);
    bytes[(reserved + fatSectors) * 512 + 8] ^= 0xff; // an entry of the second FAT
    writeFileSync(img, bytes);
    const bad = await verifyImage(img);
    expect(bad.ok).toBe(false);
    expect(bad.findings.find((f) => f.code === 'fat.FAT_MISMATCH')).toMatchObject({ severity: 'error', where: 'disk' });
  });

  it('a FAT volume with \\EFI is checked by the ESP rules too', async () => {
    const img = await makeVolume({ 'EFI/BOOT/BOOTX64.EFI': 'not really a loader' });
    const r = await verifyImage(img);
    const codes = r.findings.map((f) => f.code);
    expect(codes).toContain('esp.loader');
    expect(codes).toContain('esp.fat-type'); // FAT16: firmware may refuse it
  });

  it('bytes that are neither a table nor a file system are still an error', async () => {
    const dir = tempDir();
    const img = join(dir, 'junk.img');
    writeFileSync(img, Buffer.alloc(1 << 20, 0x5a));
    const r = await verifyImage(img);
    expect(r.ok).toBe(false);
    expect(r.findings.map((f) => f.code)).toEqual(['disk.no-partition-table']);
  });
});

describe('verify --expect --contents: the image is, byte for byte, what the layout builds', () => {
  const demo = join(process.cwd(), 'fixtures/demo/layout.json');
  const contents = (r: { findings: Array<{ code: string; severity: string; message: string }> }) => r.findings.filter((f) => f.code === 'expect.contents');

  it('holds for a build (GPT, boot stages, files, a FAT ESP) and its qcow2; names the partition and offset of a changed byte', async () => {
    const dir = tempDir();
    const img = join(dir, 'fw.img');
    await buildImage(demo, { output: img });
    const ok = await verifyImage(img, { expect: demo, contents: true });
    expect(contents(ok)).toMatchObject([{ severity: 'info' }]);
    expect(ok.ok).toBe(true);
    const qcow2 = join(dir, 'fw.qcow2');
    await buildImage(demo, { output: qcow2 });
    expect(contents(await verifyImage(qcow2, { expect: demo, contents: true }))).toMatchObject([{ severity: 'info' }]);

    const { partitions } = await inspectImage(img).then((r) => r.table!);
    const os1 = partitions.find((p) => p.label === 'os1')!;
    patch(img, os1.firstLba * 512 + 70000, new Uint8Array([0x5a]));
    const bad = await verifyImage(img, { expect: demo, contents: true });
    expect(bad.ok).toBe(false);
    expect(contents(bad)).toMatchObject([{ severity: 'error' }]);
    expect(contents(bad)[0].message).toBe(
      `the image differs from what the layout builds from byte ${os1.firstLba * 512 + 70000}: partition ${os1.index} (partitions[3]), 70000 bytes in`,
    );
    // Without --contents the tables alone still match (an OS slot's bytes are not checked).
    expect((await verifyImage(img, { expect: demo })).ok).toBe(true);
  });

  it('catches an input file that changed since the build, and a size that differs', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'os.bin'), Buffer.alloc(100_000, 7));
    const layout: Layout = { scheme: 'gpt', size: '8M', seed: 's', partitions: [{ type: 'freebsd-ufs', size: '1M', contents: { file: 'os.bin' } }] };
    const img = join(dir, 'disk.img');
    await buildImage(layout, { output: img, baseDir: dir });
    expect(contents(await verifyImage(img, { expect: layout, baseDir: dir, contents: true }))).toMatchObject([{ severity: 'info' }]);
    writeFileSync(join(dir, 'os.bin'), Buffer.concat([Buffer.alloc(99_999, 7), Buffer.from([8])]));
    const changed = contents(await verifyImage(img, { expect: layout, baseDir: dir, contents: true }));
    expect(changed[0].message).toMatch(/from byte \d+: partition 1 \(partitions\[0\]\), 99999 bytes in$/);
    truncateSync(img, 4 << 20);
    expect(contents(await verifyImage(img, { expect: layout, baseDir: dir, contents: true }))[0].message).toBe(
      `the image is ${4 << 20} bytes; the layout builds ${8 << 20}`,
    );
  });
});
