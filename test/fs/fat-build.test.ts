import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError } from '../../formats/common/errors.js';
import { decodeBootSector } from '../../formats/fs/fat-boot.js';
import { validateLongName, caseFoldName } from '../../formats/fs/fat-names.js';
import { memoryDiskReader } from '../../src/model/disk-reader.js';
import { readVirtualRange } from '../../src/io/run-reader.js';
import { deriveU32 } from '../../src/model/seed.js';
import {
  buildFatVolume,
  minimumFatSize,
  openFat,
  treeFromFolder,
  treeFromObject,
  type FatReader,
  type FatTreeNode,
  type FatVolume,
} from '../../src/fs/fat/index.js';
import { tempDir } from '../helpers/golden.js';
import { budgetedReader } from '../helpers/budget.js';

const scratch = tempDir('diskmint-fat-build-');
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function volumeBytes(v: FatVolume): Promise<Uint8Array> {
  return readVirtualRange(v.disk, 0, v.disk.size);
}

async function reader(v: FatVolume): Promise<FatReader> {
  return openFat(memoryDiskReader(await volumeBytes(v)));
}

async function readAll(r: FatReader, path: string): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of r.readFile(path)) parts.push(chunk);
  return Buffer.concat(parts);
}

/** Every folder lists the tree's names in order and every file reads back byte for byte. */
async function expectSameTree(r: FatReader, dir: FatTreeNode, path = '/'): Promise<void> {
  if (dir.kind !== 'dir') throw new Error('not a dir');
  const listed = await r.list(path);
  expect(listed.map((e) => e.name)).toEqual(dir.children.map((c) => c.name));
  for (const child of dir.children) {
    const childPath = `${path === '/' ? '' : path}/${child.name}`;
    if (child.kind === 'dir') await expectSameTree(r, child, childPath);
    else {
      const want = 'bytes' in child.source ? Buffer.from(child.source.bytes) : Buffer.from(execFileSync('cat', [child.source.path]));
      expect((await readAll(r, childPath)).equals(want), childPath).toBe(true);
      expect((await r.stat(childPath))?.size).toBe(child.size);
    }
  }
}

const nameArb = fc
  .array(fc.constantFrom(...'abcdeXYZ0129 .-_+~éü日本😀'.split('')), { minLength: 1, maxLength: 20 })
  .map((a) => a.join(''))
  .filter((n) => {
    try {
      validateLongName(n);
      return true;
    } catch {
      return false;
    }
  });

const treeArb: fc.Arbitrary<FatTreeNode> = fc.letrec<{ dir: FatTreeNode }>((tie) => ({
  dir: fc
    .uniqueArray(
      fc.tuple(nameArb, fc.oneof({ weight: 3, arbitrary: fc.uint8Array({ maxLength: 6000 }) }, { weight: 1, depthSize: 'small', arbitrary: tie('dir') })),
      { maxLength: 8, selector: ([n]) => caseFoldName(n) },
    )
    .map((kids) => ({
      kind: 'dir' as const,
      name: '',
      children: kids
        .map(([name, v]): FatTreeNode =>
          v instanceof Uint8Array ? { kind: 'file', name, size: v.length, source: { bytes: v } } : { ...(v as FatTreeNode), name },
        )
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    })),
})).dir;

describe('FAT volume builder + reader', () => {
  it('random trees read back identical, with no check() problems', async () => {
    await fc.assert(
      fc.asyncProperty(treeArb, fc.constantFrom<'auto' | 12 | 16>('auto', 12, 16), fc.constantFrom<512 | 4096>(512, 4096), async (tree, type, sectorSize) => {
        const v = await buildFatVolume(tree, { type, sectorSize, seed: 'prop' });
        const r = await reader(v);
        await expectSameTree(r, tree);
        expect(await r.check()).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });

  it('FAT32 trees read back identical (512 and 4096-byte sectors)', async () => {
    const tree = treeFromObject({
      'a.txt': 'alpha',
      'Long Name With Spaces.text': 'x'.repeat(3000),
      deep: { deeper: { 'z.bin': new Uint8Array(9000).fill(3) } },
      empty: '',
    });
    for (const sectorSize of [512, 4096] as const) {
      const v = await buildFatVolume(tree, { type: 32, sectorSize, label: 'fat32vol' });
      expect(v.type).toBe(32);
      expect(v.clusters).toBeGreaterThanOrEqual(65525);
      const r = await reader(v);
      expect(r.type).toBe(32);
      expect(r.label).toBe('FAT32VOL');
      await expectSameTree(r, tree);
      expect(await r.check()).toEqual([]);
    }
  });

  it('lays each folder file out as one file-range extent (cost follows the metadata)', async () => {
    const dir = join(scratch, 'extents');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'one.bin'), Buffer.alloc(100_000, 1));
    writeFileSync(join(dir, 'sub', 'two.bin'), Buffer.alloc(5, 2));
    // A 3 GiB sparse file: building never reads it.
    truncateSync((writeFileSync(join(dir, 'sparse.img'), ''), join(dir, 'sparse.img')), 3 * 1024 ** 3);
    const tree = await treeFromFolder(dir);
    const v = await buildFatVolume(tree);
    expect(v.type).toBe(32);
    const files = v.disk.list().filter((e) => e.source.kind === 'file');
    expect(files.map((e) => [e.length, e.source.kind === 'file' && e.source.offset])).toEqual([
      [100_000, 0],
      [3 * 1024 ** 3, 0],
      [5, 0],
    ]);
    const metadata = v.disk
      .list()
      .filter((e) => e.source.kind === 'bytes')
      .reduce((n, e) => n + e.length, 0);
    expect(metadata).toBeLessThan(8 << 20);
  });

  it('reads a folder sorted by name, keeps mtimes on request, refuses loops and special files', async () => {
    const dir = join(scratch, 'folder');
    mkdirSync(join(dir, 'b'), { recursive: true });
    writeFileSync(join(dir, 'c.txt'), 'c');
    writeFileSync(join(dir, 'B.md'), 'B');
    writeFileSync(join(dir, 'b', 'inner'), 'inner');
    utimesSync(join(dir, 'c.txt'), new Date('2020-05-06T07:08:10Z'), new Date('2020-05-06T07:08:10Z'));
    const tree = await treeFromFolder(dir, { keepTimes: true });
    expect(tree.kind === 'dir' && tree.children.map((c) => c.name)).toEqual(['B.md', 'b', 'c.txt']);
    // 'B.md' and 'b' differ, so this builds; reading back gives the files and the time.
    const r = await reader(await buildFatVolume(tree));
    await expectSameTree(r, tree);
    expect((await r.stat('/c.txt'))?.mtime.toISOString()).toBe('2020-05-06T07:08:10.000Z');
    const plain = await reader(await buildFatVolume(await treeFromFolder(dir)));
    expect((await plain.stat('/c.txt'))?.mtime.toISOString()).toBe('1980-01-01T00:00:00.000Z');

    const loop = join(scratch, 'loop');
    mkdirSync(join(loop, 'x'), { recursive: true });
    symlinkSync('..', join(loop, 'x', 'up'));
    await expect(treeFromFolder(loop)).rejects.toThrow(/symbolic link loop/);
    const special = join(scratch, 'special');
    mkdirSync(special);
    execFileSync('mkfifo', [join(special, 'pipe')]);
    await expect(treeFromFolder(special)).rejects.toThrow(/not a regular file or folder/);
  });

  it('is deterministic; the serial comes from the seed; label, OEM name and hidden sectors land in the BPB', async () => {
    const tree = treeFromObject({ 'x.txt': 'x', y: { 'z.txt': 'z' } });
    const a = await volumeBytes(await buildFatVolume(tree, { seed: 's1', label: 'Boot', hiddenSectors: 2048 }));
    const b = await volumeBytes(await buildFatVolume(tree, { seed: 's1', label: 'Boot', hiddenSectors: 2048 }));
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    const boot = decodeBootSector(a);
    expect(boot.serial).toBe(deriveU32('s1', 'fat-serial'));
    expect(boot.label).toBe('BOOT       ');
    expect(boot.oemName).toBe('DISKMINT');
    expect(boot.geometry.hiddenSectors).toBe(2048);
    expect(boot.geometry.media).toBe(0xf8);
    const c = await volumeBytes(await buildFatVolume(tree, { seed: 's2', oemName: 'mkfs.fat' }));
    expect(decodeBootSector(c).serial).toBe(deriveU32('s2', 'fat-serial'));
    expect(decodeBootSector(c).oemName).toBe('mkfs.fat');
  });

  it('honours a cluster size override', async () => {
    const tree = treeFromObject({ 'a.bin': new Uint8Array(20_000).fill(9), d: { 'b.txt': 'b' } });
    const v = await buildFatVolume(tree, { type: 16, clusterSize: 8192 });
    expect(v.clusterSize).toBe(8192);
    const r = await reader(v);
    expect(r.clusterSize).toBe(8192);
    expect(r.type).toBe(16);
    await expectSameTree(r, tree);
    expect(await r.check()).toEqual([]);
  });

  it('stamps SOURCE_DATE_EPOCH when set (refused when not a number), else the FAT epoch, and the explicit timestamp over both', async () => {
    const tree = treeFromObject({ 'f.txt': 'f' });
    const old = process.env.SOURCE_DATE_EPOCH;
    try {
      process.env.SOURCE_DATE_EPOCH = '1700000000';
      expect((await (await reader(await buildFatVolume(tree))).stat('/f.txt'))?.mtime.toISOString()).toBe('2023-11-14T22:13:20.000Z');
      const t = new Date('2001-02-03T04:05:06Z');
      expect((await (await reader(await buildFatVolume(tree, { timestamp: t }))).stat('/f.txt'))?.mtime.toISOString()).toBe(t.toISOString());
      process.env.SOURCE_DATE_EPOCH = 'soon';
      await expect(buildFatVolume(tree)).rejects.toThrow('SOURCE_DATE_EPOCH=soon is not a whole number of seconds');
      delete process.env.SOURCE_DATE_EPOCH;
      expect((await (await reader(await buildFatVolume(tree))).stat('/f.txt'))?.mtime.toISOString()).toBe('1980-01-01T00:00:00.000Z');
    } finally {
      if (old === undefined) delete process.env.SOURCE_DATE_EPOCH;
      else process.env.SOURCE_DATE_EPOCH = old;
    }
  });

  it('omitted size = minimumFatSize; a file can fill the volume exactly', async () => {
    const tree = treeFromObject({ 'a.txt': 'a'.repeat(10_000), sub: { 'b.txt': 'b' } });
    for (const type of ['auto', 12, 16, 32] as const) {
      const v = await buildFatVolume(tree, { type });
      expect(v.sizeBytes).toBe(minimumFatSize(tree, { type }));
      await expectSameTree(await reader(v), tree);
    }
    const size = 4 * 1024 * 1024;
    const probe = await buildFatVolume(treeFromObject({ 'fill.bin': '', sub: { 'b.txt': 'b' } }), { size, type: 16 });
    const fill = new Uint8Array(probe.freeClusters * probe.clusterSize).fill(0x5a);
    const full = await buildFatVolume(treeFromObject({ 'fill.bin': fill, sub: { 'b.txt': 'b' } }), { size, type: 16 });
    expect(full.freeClusters).toBe(0);
    const r = await reader(full);
    expect((await readAll(r, '/fill.bin')).equals(Buffer.from(fill))).toBe(true);
    expect(await r.check()).toEqual([]);
    const over = new Uint8Array(fill.length + 1);
    await expect(buildFatVolume(treeFromObject({ 'fill.bin': over, sub: { 'b.txt': 'b' } }), { size, type: 16 })).rejects.toThrow(/too small/);
  });
});

describe('FAT builder errors (before anything is written)', () => {
  const expectInvalid = async (p: Promise<unknown>, pattern: RegExp) => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FormatError);
    expect((err as FormatError).code).toBe('INVALID_ARGUMENT');
    expect((err as FormatError).format).toBe('fat');
    expect((err as Error).message).toMatch(pattern);
  };
  it('volume too small says how much is needed', async () => {
    const tree = treeFromObject({ 'big.bin': new Uint8Array(3 << 20) });
    const need = minimumFatSize(tree);
    await expectInvalid(buildFatVolume(tree, { size: 1 << 20 }), new RegExp(`too small.*at least ${need} bytes`));
  });
  it('names FAT cannot hold', async () => {
    for (const name of ['a:b', 'what?', 'tab\tname', 'trailing.', 'trailing ', '..', 'x'.repeat(256), 'pipe|d', 'star*', 'q"uote', '<lt', 'gt>', 'back\\']) {
      await expectInvalid(buildFatVolume(treeFromObject({ [name]: 'x' })), /FAT cannot hold the name/);
    }
    await expectInvalid(
      buildFatVolume({ kind: 'dir', name: '', children: [{ kind: 'file', name: 'a/b', size: 0, source: { bytes: new Uint8Array() } }] }),
      /reserved character/,
    );
  });
  it('duplicate names differing only in case', async () => {
    await expectInvalid(buildFatVolume(treeFromObject({ 'Readme.txt': 'a', 'README.TXT': 'b' })), /differ only in case/);
    await expectInvalid(buildFatVolume(treeFromObject({ sub: { 'Ä.txt': 'a', 'ä.txt': 'b' } })), /differ only in case/);
  });
  it('a file larger than 4 GiB - 1 (a sparse file, cheap)', async () => {
    const dir = join(scratch, 'huge');
    mkdirSync(dir);
    writeFileSync(join(dir, 'huge.bin'), '');
    truncateSync(join(dir, 'huge.bin'), 4 * 1024 ** 3);
    const tree = await treeFromFolder(dir);
    await expectInvalid(buildFatVolume(tree), /at most 4 GiB - 1/);
    truncateSync(join(dir, 'huge.bin'), 4 * 1024 ** 3 - 1);
    expect(minimumFatSize(await treeFromFolder(dir))).toBeGreaterThan(4 * 1024 ** 3);
  });
  it('too many root entries on FAT12/16', async () => {
    const spec: Record<string, string> = {};
    for (let i = 0; i < 600; i++) spec[`f${i}.txt`] = '';
    await expectInvalid(buildFatVolume(treeFromObject(spec), { type: 16 }), /root folder needs 600/);
    await expectInvalid(buildFatVolume(treeFromObject(spec), { type: 12, size: 4 << 20 }), /root folder needs 600/);
    const v = await buildFatVolume(treeFromObject(spec), { type: 32 });
    expect((await (await reader(v)).list('/')).length).toBe(600);
    // 'auto' settles on FAT32 for such a root, at FAT32's smallest size rather than 512 MiB.
    const auto = await buildFatVolume(treeFromObject(spec));
    expect(auto.type).toBe(32);
    expect(auto.sizeBytes).toBe(minimumFatSize(treeFromObject(spec)));
    expect(auto.sizeBytes).toBeLessThan(40 << 20);
    expect((await (await reader(auto)).list('/')).length).toBe(600);
    expect((await buildFatVolume(treeFromObject(spec), { size: 48 << 20 })).type).toBe(32);
    expect((await buildFatVolume(treeFromObject({ a: '' }), { size: 48 << 20 })).type).toBe(16);
  });
  it('bad options', async () => {
    const tree = treeFromObject({ a: 'a' });
    await expectInvalid(buildFatVolume(tree, { label: 'much too long label' }), /11/);
    await expectInvalid(buildFatVolume(tree, { size: 1000 }), /multiple/);
    await expectInvalid(buildFatVolume(tree, { type: 32, size: 8 << 20 }), /FAT32 needs at least 65525 clusters/);
    await expectInvalid(buildFatVolume(tree, { clusterSize: 3000 }), /cluster size/);
    await expectInvalid(buildFatVolume(tree, { oemName: 'TOO LONG NAME' }), /OEM/);
  });
});

describe('FAT reader on hostile bytes', () => {
  /** List, read and check everything, bounded: only FormatError may escape. */
  async function exercise(bytes: Uint8Array, source = memoryDiskReader(bytes)): Promise<void> {
    let r: FatReader;
    try {
      r = await openFat(source);
    } catch (err) {
      if (err instanceof FormatError) return;
      throw err;
    }
    let visits = 0;
    const walk = async (path: string, depth: number): Promise<void> => {
      if (depth > 6 || visits > 300) return;
      for (const e of await r.list(path)) {
        visits++;
        if (e.isDirectory) await walk(e.path, depth + 1).catch(swallow);
        else for await (const _ of r.readFile(e.path)) void _;
      }
    };
    const swallow = (err: unknown) => {
      if (!(err instanceof FormatError)) throw err;
    };
    await walk('/', 0).catch(swallow);
    const problems = await r.check().catch((err: unknown) => (swallow(err), []));
    for (const p of problems) expect(['error', 'warning']).toContain(p.severity);
  }

  for (const type of [12, 16, 32] as const) {
    it(`mutated FAT${type} metadata gives only FormatError or problems, within a budget of reads`, async () => {
      const tree = treeFromObject({ 'a.txt': 'a'.repeat(3000), 'Some long name.txt': 'b', d1: { d2: { 'c.bin': new Uint8Array(5000).fill(1) } }, e: '' });
      const v = await buildFatVolume(tree, { type, label: 'fuzz' });
      const clean = await volumeBytes(v);
      const meta = v.disk.list().filter((e) => e.source.kind === 'bytes' && e.length < 1 << 20);
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.tuple(fc.nat(meta.length - 1), fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 12 }),
          async (edits) => {
            const bytes = clean.slice();
            for (const [which, at, value] of edits) {
              const ext = meta[which];
              bytes[ext.offset + (at % ext.length)] = value;
            }
            // Work, not time: 1350 runs of these read at most 280 times and 8.7 MB (a 2 MiB FAT16
            // volume); a chain that loops or a folder that nests back on itself reads past these
            // budgets, and WorkBudgetExceeded is not a FormatError.
            await exercise(bytes, budgetedReader(bytes, { reads: 5000, bytes: 64 << 20 }));
          },
        ),
        { numRuns: type === 32 ? 40 : 150 },
      );
    });
  }

  // A looping chain used to be caught only after as many clusters as the file's size claims
  // (~4 GiB read from a 2 MiB volume, 2 million reads); a size needing more clusters than the
  // volume has is now refused before any read.
  it('a file whose chain loops on itself and whose size claims ~4 GiB is refused within the budget', async () => {
    const v = await buildFatVolume(treeFromObject({ 'a.txt': 'a'.repeat(3000) }), { type: 16 });
    const bytes = await volumeBytes(v);
    const g = v.geometry;
    const root = (g.reservedSectors + g.fatCount * g.fatSectors) * g.sectorSize;
    let entry = root;
    while (String.fromCharCode(...bytes.subarray(entry, entry + 11)) !== 'A       TXT') entry += 32;
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const cluster = view.getUint16(entry + 26, true);
    view.setUint32(entry + 28, 0xffffff00, true);
    for (let f = 0; f < g.fatCount; f++) view.setUint16((g.reservedSectors + f * g.fatSectors) * g.sectorSize + 2 * cluster, cluster, true);
    const r = await openFat(budgetedReader(bytes, { reads: 5000, bytes: 64 << 20 }));
    await expect(
      (async () => {
        for await (const _ of r.readFile('/a.txt')) void _;
      })(),
    ).rejects.toThrow(FormatError);
  });

  it('duplicate names: check() reports them, extract() refuses', async () => {
    const v = await buildFatVolume(treeFromObject({ 'a.txt': 'a', 'b.txt': 'b' }), { type: 16 });
    const bytes = await volumeBytes(v);
    const root = (v.geometry.reservedSectors + 2 * v.geometry.fatSectors) * v.geometry.sectorSize;
    expect(String.fromCharCode(bytes[root + 32])).toBe('B');
    bytes[root + 32] = 'A'.charCodeAt(0);
    const r = await openFat(memoryDiskReader(bytes));
    expect((await r.check()).map((p) => p.code)).toEqual(['DUPLICATE_NAME']);
    await expect(r.extract(join(scratch, 'dup'))).rejects.toBeInstanceOf(FormatError);
  });

  it('truncated and random images give FormatError', async () => {
    const v = await buildFatVolume(treeFromObject({ 'a.txt': 'a'.repeat(5000) }), { type: 16 });
    const clean = await volumeBytes(v);
    for (const cut of [0, 100, 512, 4096, 20_000]) {
      await expect((async () => exercise(clean.slice(0, cut)))()).resolves.toBeUndefined();
    }
    await expect(openFat(memoryDiskReader(new Uint8Array(100)))).rejects.toBeInstanceOf(FormatError);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 512, maxLength: 4096 }), async (bytes) => {
        await exercise(bytes);
      }),
      { numRuns: 200 },
    );
  });
});
