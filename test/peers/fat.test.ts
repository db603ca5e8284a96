/**
 * Peers judge our FAT volumes: dosfstools (fsck.fat -n must be clean) and mtools (mdir, mtype,
 * mcopy read every file back). And the other way round: volumes made by mkfs.fat + mcopy read
 * back in our reader identical to their sources, with no check() problems.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chooseFatGeometry, decodeBootSector } from '../../formats/fs/fat-boot.js';
import { openRawFile } from '../../src/model/disk-reader.js';
import { writeRawImage } from '../../src/containers/raw/writer.js';
import { buildFatVolume, openFat, treeFromFolder, type FatBuildOptions } from '../../src/fs/fat/index.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer, runPeer } from '../helpers/peer.js';

const scratch = tempDir('diskmint-fat-peers-');
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** mtools with FAT32 cluster-count checks off and a UTF-8 locale for long names. */
function mtools(tool: string, args: string[]): { status: number; out: string; stdout: Buffer } {
  const r = spawnSync(tool, args, { env: { ...process.env, MTOOLS_SKIP_CHECK: '1', LC_ALL: 'C.UTF-8' }, maxBuffer: 256 << 20 });
  return { status: r.status ?? -1, out: `${r.stdout?.toString('utf8') ?? ''}${r.stderr?.toString('utf8') ?? ''}`, stdout: r.stdout ?? Buffer.alloc(0) };
}

function expectFsckClean(img: string): void {
  const r = runPeer('fsck.fat', ['-n', img]);
  // Clean output is the version banner and the one-line summary; anything else is a finding.
  const lines = r.out.split('\n').filter((l) => l.trim() !== '' && !/^fsck\.fat \d/.test(l) && !/: \d+ files, \d+\/\d+ clusters$/.test(l));
  expect(lines, r.out).toEqual([]);
  expect(r.status, r.out).toBe(0);
}

/** Recursive compare of two folders: same names, same file bytes. */
function expectSameFolders(a: string, b: string): void {
  const na = readdirSync(a).sort();
  const nb = readdirSync(b).sort();
  expect(nb, `${a} vs ${b}`).toEqual(na);
  for (const n of na) {
    const pa = join(a, n);
    const pb = join(b, n);
    if (statSync(pa).isDirectory()) {
      expect(statSync(pb).isDirectory(), pb).toBe(true);
      expectSameFolders(pa, pb);
    } else expect(readFileSync(pb).equals(readFileSync(pa)), pb).toBe(true);
  }
}

/** Deterministic pseudo-random bytes. */
function noise(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** The source folder: deep, long and non-ASCII (BMP) names, 8.3 collisions, empty files, mixed case. */
function makeSource(root: string): void {
  mkdirSync(root, { recursive: true });
  let deep = root;
  for (let i = 1; i <= 10; i++) {
    deep = join(deep, `level ${i} folder`);
    mkdirSync(deep);
    writeFileSync(join(deep, `file-at-${i}.dat`), noise(100 * i, i));
  }
  for (let i = 1; i <= 12; i++) writeFileSync(join(root, `longname${i}.txt`), `collision ${i}\n`);
  writeFileSync(join(root, 'café.txt'), 'é\n');
  writeFileSync(join(root, '日本語のファイル名.txt'), '日本語\n');
  writeFileSync(join(root, 'README.TXT'), 'upper 8.3\n');
  writeFileSync(join(root, 'lower.txt'), 'lower 8.3 (NT case bits)\n');
  writeFileSync(join(root, 'MixedCase.Md'), 'mixed\n');
  writeFileSync(join(root, 'empty.bin'), '');
  mkdirSync(join(root, 'Empty Folder'));
  mkdirSync(join(root, 'data'));
  writeFileSync(join(root, 'data', 'empty too'), '');
  writeFileSync(join(root, 'data', 'random.bin'), noise(200_000, 42));
  writeFileSync(join(root, 'data', 'a name that is very long '.repeat(8).trim() + '.bin'), noise(777, 7));
  writeFileSync(join(root, 'data', 'spaces and.dots.in.name.tar.gz'), noise(1234, 9));
  writeFileSync(join(root, 'data', `${'n'.repeat(251)}.txt`), 'the longest name FAT holds: 255 UTF-16 units\n');
}

const haveDosfstools = () => requirePeer('fsck.fat', 'dosfstools') && requirePeer('mkfs.fat', 'dosfstools');
const haveMtools = () => requirePeer('mdir', 'mtools') && requirePeer('mtype', 'mtools') && requirePeer('mcopy', 'mtools');

const source = join(scratch, 'source');
beforeAll(() => makeSource(source));

const configs: [FatBuildOptions['type'], 512 | 4096][] = [
  [12, 512],
  [16, 512],
  [32, 512],
  [12, 4096],
  [16, 4096],
  [32, 4096],
];

describe('our FAT volumes, judged by fsck.fat and mtools', () => {
  for (const [type, sectorSize] of configs) {
    it(`FAT${type} with ${sectorSize}-byte sectors: fsck.fat clean, mtools reads everything back`, async (ctx) => {
      if (!haveDosfstools() || !haveMtools()) return ctx.skip();
      const tree = await treeFromFolder(source);
      const opts: FatBuildOptions = { type, sectorSize, label: 'DISKMINT', seed: 'peers', hiddenSectors: 63 };
      // FAT12 with 512-byte clusters would overflow: give FAT12 bigger clusters on 512-byte sectors.
      if (type === 12 && sectorSize === 512) opts.clusterSize = 4096;
      const v = await buildFatVolume(tree, opts);
      expect(v.type).toBe(type);
      const img = join(scratch, `ours-${type}-${sectorSize}.img`);
      await writeRawImage(v.disk, img);
      expectFsckClean(img);

      const dir = mtools('mdir', ['-i', img, '::/']);
      expect(dir.status, dir.out).toBe(0);
      expect(dir.out).toContain('Volume in drive : is DISKMINT');
      for (const n of ['longname1.txt', 'longname12.txt', 'café.txt', '日本語のファイル名.txt', 'MixedCase.Md']) expect(dir.out).toContain(n);
      expect(dir.out).toMatch(/LONGNA~9 TXT/);
      expect(dir.out).toMatch(/LONGN~10 TXT/);
      const deepPath = '::/' + Array.from({ length: 10 }, (_, i) => `level ${i + 1} folder`).join('/');
      expect(mtools('mdir', ['-i', img, deepPath]).out).toContain('file-at-10.dat');
      const typed = mtools('mtype', ['-i', img, '::/data/random.bin']);
      expect(typed.status, typed.out).toBe(0);
      expect(typed.stdout.equals(readFileSync(join(source, 'data', 'random.bin')))).toBe(true);

      const out = join(scratch, `mcopy-${type}-${sectorSize}`);
      mkdirSync(out);
      const copy = mtools('mcopy', ['-i', img, '-s', '-n', '::/', out + '/']);
      expect(copy.status, copy.out).toBe(0);
      expectSameFolders(source, out);

      // Our own reader agrees, and our check() finds nothing.
      const disk = await openRawFile(img);
      try {
        const r = await openFat(disk);
        expect(await r.check()).toEqual([]);
        const back = join(scratch, `ours-extract-${type}-${sectorSize}`);
        await r.extract(back);
        expectSameFolders(source, back);
      } finally {
        await disk.close();
      }
    });
  }

  it('non-BMP names (emoji) pass fsck.fat and read back in our reader', async (ctx) => {
    if (!haveDosfstools()) return ctx.skip();
    const src = join(scratch, 'emoji');
    mkdirSync(join(src, '📁 folder'), { recursive: true });
    writeFileSync(join(src, '🎉 party.txt'), 'party');
    writeFileSync(join(src, '📁 folder', 'naïve 日本 😀.bin'), noise(3000, 3));
    const v = await buildFatVolume(await treeFromFolder(src), { type: 16 });
    const img = join(scratch, 'emoji.img');
    await writeRawImage(v.disk, img);
    expectFsckClean(img);
    const disk = await openRawFile(img);
    try {
      const r = await openFat(disk);
      const back = join(scratch, 'emoji-back');
      await r.extract(back);
      expectSameFolders(src, back);
    } finally {
      await disk.close();
    }
  });

  it("'auto' with 700 names in the root picks a small FAT32 volume that fsck.fat and mdir accept", async (ctx) => {
    if (!haveDosfstools() || !haveMtools()) return ctx.skip();
    const src = join(scratch, 'wide-root');
    mkdirSync(src);
    for (let i = 0; i < 700; i++) writeFileSync(join(src, `file number ${i}.txt`), `${i}\n`);
    const v = await buildFatVolume(await treeFromFolder(src));
    expect(v.type).toBe(32);
    expect(v.sizeBytes).toBeLessThan(64 << 20); // not mkfs.fat's 512 MiB FAT32 threshold
    const img = join(scratch, 'wide-root.img');
    await writeRawImage(v.disk, img);
    expectFsckClean(img);
    const listing = mtools('mdir', ['-b', '-i', img, '::/']);
    expect(listing.status, listing.out).toBe(0);
    expect(listing.out.split('\n').filter((l) => l.trim() !== '').length).toBe(700);
  });

  for (const type of [12, 16, 32] as const) {
    it(`FAT${type}: a file that fills the volume exactly`, async (ctx) => {
      if (!haveDosfstools() || !haveMtools()) return ctx.skip();
      const dir = join(scratch, `fill-${type}`);
      mkdirSync(join(dir, 'sub'), { recursive: true });
      writeFileSync(join(dir, 'sub', 'small.txt'), 'small');
      writeFileSync(join(dir, 'fill.bin'), '');
      const size = type === 32 ? 40 << 20 : type === 16 ? 6 << 20 : 1 << 20;
      const probe = await buildFatVolume(await treeFromFolder(dir), { type, size });
      writeFileSync(join(dir, 'fill.bin'), noise(probe.freeClusters * probe.clusterSize, type));
      const v = await buildFatVolume(await treeFromFolder(dir), { type, size });
      expect(v.freeClusters).toBe(0);
      const img = join(scratch, `fill-${type}.img`);
      await writeRawImage(v.disk, img);
      expectFsckClean(img);
      const typed = mtools('mtype', ['-i', img, '::/fill.bin']);
      expect(typed.stdout.equals(readFileSync(join(dir, 'fill.bin')))).toBe(true);
    });
  }
});

describe('mkfs.fat + mcopy volumes, read by our reader', () => {
  const cases: [12 | 16 | 32, number, number][] = [
    [12, 512, 4096],
    [16, 512, 32 * 1024],
    [32, 512, 80 * 1024],
    [16, 4096, 64 * 1024],
  ];
  for (const [type, sectorSize, kib] of cases) {
    it(`FAT${type} (${sectorSize}-byte sectors, ${kib} KiB) reads back identical; check() finds nothing`, async (ctx) => {
      if (!haveDosfstools() || !haveMtools()) return ctx.skip();
      const img = join(scratch, `mkfs-${type}-${sectorSize}.img`);
      const made = runPeer('mkfs.fat', ['-C', '-F', String(type), '-S', String(sectorSize), '-n', 'PEERVOL', img, String(kib)]);
      expect(made.status, made.out).toBe(0);
      const entries = readdirSync(source).map((n) => join(source, n));
      const copy = mtools('mcopy', ['-i', img, '-s', ...entries, '::/']);
      expect(copy.status, copy.out).toBe(0);
      expectFsckClean(img);
      const disk = await openRawFile(img);
      try {
        const r = await openFat(disk);
        expect(r.type).toBe(type);
        expect(r.label).toBe('PEERVOL');
        expect(await r.check()).toEqual([]);
        const back = join(scratch, `mkfs-back-${type}-${sectorSize}`);
        await r.extract(back);
        expectSameFolders(source, back);
        const chunks: Uint8Array[] = [];
        for await (const c of r.readFile('/DATA/RANDOM.BIN')) chunks.push(c);
        expect(Buffer.concat(chunks).equals(await readFile(join(source, 'data', 'random.bin')))).toBe(true);
      } finally {
        await disk.close();
      }
    });
  }

  it('a fragmented file (mtools reuses freed clusters) reads back identical', async (ctx) => {
    if (!haveDosfstools() || !haveMtools() || !requirePeer('mdel', 'mtools')) return ctx.skip();
    const img = join(scratch, 'fragmented.img');
    expect(runPeer('mkfs.fat', ['-C', '-F', '16', img, String(16 * 1024)]).status).toBe(0);
    const files = join(scratch, 'fragments');
    mkdirSync(files);
    const put = (name: string, bytes: Buffer) => {
      writeFileSync(join(files, name), bytes);
      const r = mtools('mcopy', ['-i', img, join(files, name), `::/${name}`]);
      expect(r.status, r.out).toBe(0);
    };
    put('gap1.bin', noise(5000, 1));
    put('keep.bin', noise(5000, 2));
    put('gap2.bin', noise(5000, 3));
    put('keep2.bin', noise(3000, 4));
    expect(mtools('mdel', ['-i', img, '::/gap1.bin', '::/gap2.bin']).status).toBe(0);
    put('fragmented.bin', noise(40_000, 5));
    expectFsckClean(img);
    const disk = await openRawFile(img);
    try {
      const r = await openFat(disk);
      expect(await r.check()).toEqual([]);
      const chunks: Uint8Array[] = [];
      for await (const c of r.readFile('/fragmented.bin')) chunks.push(c);
      expect(chunks.length).toBeGreaterThan(1);
      expect(Buffer.concat(chunks).equals(readFileSync(join(files, 'fragmented.bin')))).toBe(true);
    } finally {
      await disk.close();
    }
  });

  it('our geometry choice matches mkfs.fat for the same sizes', (ctx) => {
    if (!haveDosfstools()) return ctx.skip();
    const sizes: [number, 512 | 4096][] = [
      [360, 512],
      [1440, 512],
      [2048, 512],
      [6000, 512],
      [8192, 512],
      [20_000, 512],
      [100_000, 512],
      [300_000, 512],
      [600 * 1024, 512],
      [9 * 1024 * 1024, 512],
      [64 * 1024, 4096],
      [1024 * 1024, 4096],
    ];
    for (const [kib, sectorSize] of sizes) {
      const img = join(scratch, `geom-${kib}-${sectorSize}.img`);
      const made = runPeer('mkfs.fat', ['-C', '-S', String(sectorSize), img, String(kib)]);
      expect(made.status, made.out).toBe(0);
      const head = Buffer.alloc(512);
      const fd = openSync(img, 'r');
      readSync(fd, head, 0, 512, 0);
      closeSync(fd);
      const theirs = decodeBootSector(head).geometry;
      rmSync(img);
      // mkfs.fat 4.2 trims the volume to whole tracks of its dummy CHS geometry; we use every
      // sector we are given, so compare at mkfs.fat's sector count.
      expect((kib * 1024) / sectorSize - theirs.totalSectors).toBeLessThan(theirs.sectorsPerTrack);
      const ours = chooseFatGeometry({ totalSectors: theirs.totalSectors, sectorSize, bits: 'auto' });
      const pick = (g: typeof ours) => [
        g.bits,
        g.sectorsPerCluster,
        g.reservedSectors,
        g.fatSectors,
        g.rootEntries,
        g.clusters,
        g.media,
        g.sectorsPerTrack,
        g.heads,
      ];
      expect(pick(ours), `${kib} KiB, ${sectorSize}-byte sectors`).toEqual(pick(theirs));
    }
  });
});
