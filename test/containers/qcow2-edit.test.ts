/**
 * qcow2 in-place edits (src/containers/qcow2/edit.ts), judged by qemu-img: random writes through
 * a session against a raw model (qemu-img compare, our reader, qemu-img check), power cuts after
 * every barrier group with subsets of the next group landed (qemu-img check never reports
 * corruption, every cluster reads its old or its new bytes), and the refusals.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fc from 'fast-check';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDisk } from '../../src/io/open-disk.js';
import { openEditableFile } from '../../src/io/editable-file.js';
import { openRawFile } from '../../src/model/disk-reader.js';
import { qcow2Handler } from '../../src/containers/qcow2/handler.js';
import type { ContainerEditSession, ContainerReader, EditableFile, InPlaceRefusal } from '../../src/containers/types.js';
import { diskOfPieces, diskPieceArb, readAll, writeWithHandler } from '../helpers/containers.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer, runPeer, runPeerOk } from '../helpers/peer.js';

let dir: string;
beforeAll(() => {
  dir = tempDir('diskmint-qcow2-edit-');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KiB = 1024;
const MiB = 1024 * KiB;
const editing = qcow2Handler.editing!;
const haveQemu = () => requirePeer('qemu-img', 'qemu-utils');

/** How a test image is made: by our writer, or by qemu-img (tables first), from the model's bytes. */
type Maker =
  | { by: 'ours'; options?: Record<string, string>; compress?: { algorithm?: 'deflate' | 'zstd' } }
  | { by: 'qemu-convert'; args: string[] }
  | { by: 'qemu-create'; args: string[] }
  | { by: 'qemu-backing' }
  | { by: 'qemu-zero-alloc' };

const MAKERS: Maker[] = [
  { by: 'ours' },
  { by: 'ours', options: { cluster_size: '512' } },
  { by: 'ours', options: { cluster_size: '4096', compat: '0.10' } },
  { by: 'ours', compress: {} },
  { by: 'ours', options: { cluster_size: '4096' }, compress: { algorithm: 'zstd' } },
  { by: 'qemu-convert', args: [] },
  { by: 'qemu-convert', args: ['-c', '-o', 'cluster_size=4096'] },
  { by: 'qemu-convert', args: ['-o', 'cluster_size=1024,refcount_bits=8'] },
  { by: 'qemu-convert', args: ['-o', 'cluster_size=4096,refcount_bits=64'] },
  { by: 'qemu-convert', args: ['-o', 'cluster_size=2048,refcount_bits=1'] },
  { by: 'qemu-convert', args: ['-o', 'cluster_size=2048,compat=0.10'] },
  { by: 'qemu-create', args: ['-o', 'cluster_size=512,lazy_refcounts=on'] },
  { by: 'qemu-create', args: ['-o', 'cluster_size=4096,refcount_bits=2'] },
  { by: 'qemu-backing' },
  { by: 'qemu-zero-alloc' },
];

let serial = 0;
/** Make an image of `model` (qemu-create and zero-alloc images start all zero: the model is cleared). */
async function makeImage(maker: Maker, model: Uint8Array, disk: Parameters<typeof writeWithHandler>[1]): Promise<string> {
  const path = join(dir, `img-${++serial}.qcow2`);
  const raw = `${path}.src.raw`;
  if (maker.by === 'ours') {
    await writeWithHandler(qcow2Handler, disk, path, { options: maker.options, compress: maker.compress });
    return path;
  }
  writeFileSync(raw, model);
  if (maker.by === 'qemu-convert') runPeerOk('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', ...maker.args, raw, path]);
  else if (maker.by === 'qemu-create') {
    runPeerOk('qemu-img', ['create', '-q', '-f', 'qcow2', ...maker.args, path, String(model.length)]);
    model.fill(0);
  } else if (maker.by === 'qemu-backing') {
    runPeerOk('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', '-o', 'cluster_size=4096', raw, `${path}.base`]);
    runPeerOk('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', `${path}.base`, '-F', 'qcow2', '-o', 'cluster_size=8192', path]);
  } else {
    // Written data, then zeroed without unmapping: zero clusters that keep their host cluster (v3 bit 0 with an offset).
    runPeerOk('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', '-o', 'cluster_size=4096', raw, path]);
    runPeerOk('qemu-io', ['-f', 'qcow2', '-c', `write -z 0 ${Math.floor(model.length / 2)}`, path]);
    model.fill(0, 0, Math.floor(model.length / 2));
  }
  rmSync(raw, { force: true });
  return path;
}

/** Open `path` for an edit through `file` (or the real file); throws when refused. */
async function session(path: string, wrap?: (f: EditableFile) => EditableFile): Promise<{ s: ContainerEditSession; done(): Promise<void> }> {
  const { reader } = await openDisk(path, { allowBacking: true });
  const { file, close } = await openEditableFile(path);
  const s = await editing.openForEdit(wrap ? wrap(file) : file, reader);
  if ('refused' in s) throw new Error(`refused: ${s.refused}`);
  return {
    s,
    async done() {
      await close();
      await reader.close();
    },
  };
}

/** qemu-img check's exit status (0 clean, 2 corruption, 3 leaks only) and its text. */
const check = (path: string) => runPeer('qemu-img', ['check', '-f', 'qcow2', path]);

async function readImage(path: string): Promise<Buffer> {
  const { reader } = await openDisk(path, { allowBacking: true });
  try {
    return await readAll(reader);
  } finally {
    await reader.close();
  }
}

/** qemu-img reads `path` as exactly `expected`. */
function expectQemuReads(path: string, expected: Uint8Array): void {
  const raw = `${path}.expect.raw`;
  writeFileSync(raw, expected);
  const r = runPeer('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', raw, path]);
  rmSync(raw);
  expect(r.status, r.out).toBe(0);
}

interface Edit {
  at: number;
  length: number;
  seed: number;
  flush: boolean;
}
const editArb = fc.record({ at: fc.nat(), length: fc.integer({ min: 1, max: 150 * KiB }), seed: fc.nat(255), flush: fc.boolean() });

function editBytes(e: Edit, size: number): { at: number; data: Uint8Array } {
  const at = e.at % size;
  const data = new Uint8Array(Math.min(e.length, size - at));
  for (let i = 0, x = e.seed + 1; i < data.length; i++) data[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24 || 1;
  return { at, data };
}

/** Every write (offset, bytes) and each barrier's position (writes issued before it). */
interface Recorded {
  writes: Array<{ offset: number; data: Uint8Array }>;
  barriers: number[];
}

function recording(file: EditableFile, log: Recorded): EditableFile {
  return {
    get size() {
      return file.size;
    },
    read: (offset, length, into) => file.read(offset, length, into),
    async write(offset, data) {
      log.writes.push({ offset, data: data.slice() });
      await file.write(offset, data);
    },
    async barrier() {
      log.barriers.push(log.writes.length);
      await file.barrier();
    },
    close: () => file.close(),
  };
}

function applyWrites(base: Buffer, writes: ReadonlyArray<{ offset: number; data: Uint8Array }>): Buffer {
  let out = Buffer.from(base);
  for (const w of writes) {
    if (w.offset + w.data.length > out.length) {
      const grown = Buffer.alloc(w.offset + w.data.length);
      out.copy(grown);
      out = grown;
    }
    out.set(w.data, w.offset);
  }
  return out;
}

/** Subsets of `n` writes: all of them up to 10 writes, else 50 drawn by a fixed-seed generator. */
function subsets(n: number): boolean[][] {
  if (n <= 10) return Array.from({ length: 2 ** n }, (_, m) => Array.from({ length: n }, (_, i) => ((m >> i) & 1) === 1));
  let x = 12345;
  return Array.from({ length: 50 }, () => Array.from({ length: n }, () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 16) % 2 === 1));
}

type Op = { at: number; length: number; seed: number } | 'flush';

interface CrashScenario {
  name: string;
  maker: Maker;
  size: number;
  pieces: Array<{ at: number; length: number }>;
  /** Grow the file (unreferenced zeros) to this length before the edit. */
  growFileTo?: number;
  ops: Op[];
  /** What the scenario must exercise, checked on the recorded log. */
  expectLog?: (log: Recorded, fileBefore: number) => void;
}

const CRASH_SCENARIOS: CrashScenario[] = [
  {
    name: 'a write into a hole, partial and whole clusters',
    maker: { by: 'ours' },
    size: MiB,
    pieces: [{ at: 0, length: 100 * KiB }],
    ops: [{ at: 500_001, length: 3000, seed: 1 }, { at: 655_360, length: 65_536, seed: 2 }, 'flush'],
  },
  {
    name: 'a partial cluster over a compressed one (its host cluster is released last)',
    maker: { by: 'ours', compress: {} },
    size: MiB,
    pieces: [{ at: 0, length: 300 * KiB }],
    ops: [{ at: 70_001, length: 100, seed: 3 }, 'flush'],
    expectLog: (log) => expect(log.barriers.length).toBe(3),
  },
  {
    name: 'into allocated data across a cluster boundary, then a hole after a flush',
    maker: { by: 'ours' },
    size: MiB,
    pieces: [{ at: 0, length: 200 * KiB }],
    ops: [{ at: 65_536 - 2000, length: 5000, seed: 4 }, 'flush', { at: 900_000, length: 10, seed: 5 }, 'flush'],
  },
  {
    name: 'new L2 tables and new refcount blocks (512-byte clusters)',
    maker: { by: 'ours', options: { cluster_size: '512' } },
    size: MiB,
    pieces: [{ at: 0, length: 20 * KiB }],
    ops: [{ at: 600_000, length: 150 * KiB, seed: 6 }, 'flush'],
    expectLog: (log) => expect(log.barriers.length).toBe(3),
  },
  {
    name: "a new refcount block counted by the next new block (entries in two waves)",
    maker: { by: 'ours', options: { cluster_size: '512' } },
    size: MiB,
    pieces: [{ at: 0, length: 20 * KiB }],
    growFileTo: (2 * 256 - 1) * 512, // ends at the last cluster of refcount block 1's range, which has no block
    ops: [{ at: 30_000, length: 1000, seed: 7 }, 'flush'],
    expectLog: (log) => expect(log.barriers.length).toBe(4),
  },
  {
    name: 'a qemu-img image (tables first): into data, into a hole',
    maker: { by: 'qemu-convert', args: ['-o', 'cluster_size=4096'] },
    size: MiB,
    pieces: [{ at: 0, length: 100 * KiB }],
    ops: [{ at: 4000, length: 200, seed: 8 }, { at: 700_000, length: 5000, seed: 9 }, 'flush'],
  },
  {
    name: 'a qemu-img zero cluster that keeps its host cluster',
    maker: { by: 'qemu-zero-alloc' },
    size: 256 * KiB,
    pieces: [{ at: 0, length: 256 * KiB }],
    ops: [{ at: 10_000, length: 100, seed: 10 }, 'flush'],
  },
];

async function crashScenario(sc: CrashScenario): Promise<number> {
  const { disk, model } = diskOfPieces(
    sc.size,
    sc.pieces.map((p, i) => ({ ...p, seed: i + 1, zeros: false })),
  );
  const path = await makeImage(sc.maker, model, disk);
  if (sc.growFileTo) writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.alloc(sc.growFileTo - readFileSync(path).length)]));
  const before = readFileSync(path);
  const oldModel = Buffer.from(model);
  const log: Recorded = { writes: [], barriers: [] };
  const { s, done } = await session(path, (f) => recording(f, log));
  for (const op of sc.ops) {
    if (op === 'flush') await s.flush();
    else {
      const { data } = editBytes({ ...op, flush: false }, sc.size);
      await s.write(op.at, data);
      model.set(data, op.at);
    }
  }
  await done();
  sc.expectLog?.(log, before.length);
  expect(log.barriers[log.barriers.length - 1]).toBe(log.writes.length); // nothing after the last barrier
  const cs = (await readHeaderClusterSize(path)) ?? 512;
  const state = join(dir, 'cut.qcow2');
  let states = 0;
  const bounds = [0, ...log.barriers];
  for (let g = 0; g + 1 < bounds.length; g++) {
    const landed = applyWrites(before, log.writes.slice(0, bounds[g]));
    const group = log.writes.slice(bounds[g], bounds[g + 1]);
    for (const mask of subsets(group.length)) {
      writeFileSync(state, applyWrites(landed, group.filter((_, i) => mask[i])));
      states++;
      const c = check(state);
      expect([0, 3], `${sc.name}: group ${g}, subset ${mask.map(Number).join('')}: ${c.out}`).toContain(c.status);
      const got = await readImage(state);
      for (let at = 0; at < sc.size; at += cs) {
        const unit = got.subarray(at, at + cs);
        const ok = unit.equals(oldModel.subarray(at, at + cs)) || unit.equals(Buffer.from(model.subarray(at, at + cs)));
        expect(ok, `${sc.name}: group ${g}, subset ${mask.map(Number).join('')}: cluster at ${at} is neither old nor new`).toBe(true);
      }
      expectQemuReads(state, got);
    }
  }
  expect(Buffer.compare(await readImage(path), Buffer.from(model))).toBe(0);
  expect(check(path).status).toBe(0);
  return states;
}

async function readHeaderClusterSize(path: string): Promise<number | undefined> {
  const f = await openRawFile(path);
  try {
    return 2 ** new DataView((await f.read(20, 4)).buffer).getUint32(0);
  } finally {
    await f.close();
  }
}

describe('qcow2 in-place edits', () => {
  it('random writes read back as on a raw copy, by qemu-img and by us, and qemu-img check is clean', async (ctx) => {
    if (!haveQemu()) return ctx.skip();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...MAKERS),
        fc.integer({ min: 64 * KiB, max: 3 * MiB }),
        fc.array(diskPieceArb(3 * MiB, 400 * KiB), { maxLength: 5 }),
        fc.array(editArb, { minLength: 1, maxLength: 8 }),
        async (maker, sizeIn, pieces, edits) => {
          const size = Math.ceil(sizeIn / 512) * 512; // qemu-img create rounds the size to sectors
          const { disk, model } = diskOfPieces(size, pieces);
          const path = await makeImage(maker, model, disk);
          const { s, done } = await session(path);
          try {
            for (const e of edits) {
              const { at, data } = editBytes(e, size);
              await s.write(at, data);
              model.set(data, at);
              if (e.flush) await s.flush();
            }
            await s.flush();
          } finally {
            await done();
          }
          expectQemuReads(path, model);
          expect(Buffer.compare(await readImage(path), Buffer.from(model))).toBe(0);
          const c = check(path);
          expect(c.status, c.out).toBe(0);
          rmSync(path);
        },
      ),
      { numRuns: Number(process.env.DISKMINT_EDIT_RUNS ?? 25) },
    );
  });

  it('writes into an allocated cluster land in place: the file does not grow and no table changes', async (ctx) => {
    if (!haveQemu()) return ctx.skip();
    const { disk, model } = diskOfPieces(MiB, [{ at: 0, length: 300 * KiB, seed: 5, zeros: false }]);
    const path = await makeImage({ by: 'ours' }, model, disk);
    const before = readFileSync(path);
    const { s, done } = await session(path);
    const data = new Uint8Array(70 * KiB).fill(9);
    await s.write(100_000, data);
    await s.flush();
    await done();
    const after = readFileSync(path);
    expect(after.length).toBe(before.length);
    // Only the data bytes changed.
    let changed = 0;
    for (let i = 0; i < after.length; i++) if (after[i] !== before[i]) changed++;
    expect(changed).toBeGreaterThan(0);
    expect(changed).toBeLessThanOrEqual(data.length);
    model.set(data, 100_000);
    expectQemuReads(path, model);
  });

  it('the same edits give the same bytes', async (ctx) => {
    if (!haveQemu()) return ctx.skip();
    const { disk, model } = diskOfPieces(2 * MiB, [{ at: 70_000, length: 200 * KiB, seed: 3, zeros: false }]);
    const outs: Buffer[] = [];
    for (let run = 0; run < 2; run++) {
      const path = await makeImage({ by: 'ours', compress: {} }, new Uint8Array(model), disk);
      const { s, done } = await session(path);
      await s.write(1_500_000, new Uint8Array(100_001).fill(4));
      await s.write(65_000, new Uint8Array(3000).fill(5));
      await s.flush();
      await done();
      outs.push(readFileSync(path));
    }
    expect(Buffer.compare(outs[0], outs[1])).toBe(0);
  });

  describe('a power cut after any barrier, with any subset of the next group landed: no corruption, each cluster old or new', () => {
    for (const sc of CRASH_SCENARIOS) {
      it(sc.name, async (ctx) => {
        if (!haveQemu()) return ctx.skip();
        expect(await crashScenario(sc)).toBeGreaterThan(1);
      });
    }
  });

  describe('refusals: each names what and why, and changes nothing', () => {
    const stubReader: ContainerReader = {
      format: 'qcow2',
      size: 0,
      read: async () => new Uint8Array(0),
      close: async () => {},
      allocatedRanges: async function* () {},
      details: () => ({}),
    };
    /** A small image with data, made by `make` (qemu-img commands, or bytes patched). */
    async function refusalOf(make: (path: string) => void): Promise<InPlaceRefusal> {
      const path = join(dir, `refuse-${++serial}.qcow2`);
      const { disk, model } = diskOfPieces(MiB, [{ at: 0, length: 100 * KiB, seed: 1, zeros: false }]);
      void model;
      await writeWithHandler(qcow2Handler, disk, path);
      make(path);
      const before = readFileSync(path);
      const { file, close } = await openEditableFile(path);
      try {
        const r = await editing.openForEdit(file, stubReader);
        expect('refused' in r, 'expected a refusal').toBe(true);
        return r as InPlaceRefusal;
      } finally {
        await close();
        expect(readFileSync(path).equals(before)).toBe(true);
      }
    }
    const patch = (at: number, orBits: number) => (path: string) => {
      const b = readFileSync(path);
      b[at] |= orBits;
      writeFileSync(path, b);
    };
    const qemu =
      (...args: string[][]) =>
      (path: string) => {
        for (const a of args) runPeerOk('qemu-img', a.map((x) => x.replace('%', path)));
      };
    const cases: Array<[string, (path: string) => void, RegExp, boolean]> = [
      ['internal snapshots', qemu(['snapshot', '-c', 's1', '%']), /1 internal snapshot.*shared.*copy-on-write.*drop/, false],
      ['the dirty bit', patch(79, 1), /dirty.*qemu-img check -r all/, false],
      ['the corrupt bit', patch(79, 2), /corrupt.*qemu-img check -r all/, false],
      ['an unknown incompatible feature', patch(79, 0x20), /unknown incompatible features \(bits 5\)/, false],
      ['persistent bitmaps', qemu(['bitmap', '--add', '%', 'b0']), /persistent dirty bitmaps/, false],
      ['an L1 entry without the COPIED flag', (path) => {
        const b = readFileSync(path);
        const l1 = Number(b.readBigUInt64BE(40));
        b[l1] &= 0x7f;
        writeFileSync(path, b);
      }, /L1 entry 0 lacks the COPIED flag.*qemu-img check -r all/, false],
    ];
    for (const [what, make, reason, keeps] of cases) {
      it(what, async (ctx) => {
        if (!haveQemu()) return ctx.skip();
        const r = await refusalOf(make);
        expect(r.refused).toMatch(reason);
        expect(r.rewriteKeepsEverything).toBe(keeps);
      });
    }

    /** Images qemu-img makes whole (features our writer has no option for). */
    const created: Array<[string, string[], RegExp, boolean]> = [
      ['extended L2 entries', ['-o', 'extended_l2=on'], /extended L2 entries/, true],
      ['an external data file', ['-o', 'data_file=%.data'], /external data file/, false],
      ['a refcount table that would have to grow', ['-o', 'cluster_size=512'], /refcount table .* grow/, true],
    ];
    for (const [what, args, reason, keeps] of created) {
      it(what, async (ctx) => {
        if (!haveQemu()) return ctx.skip();
        const path = join(dir, `refuse-${++serial}.qcow2`);
        runPeerOk('qemu-img', ['create', '-q', '-f', 'qcow2', ...args.map((a) => a.replace('%', path)), path, '64M']);
        const before = readFileSync(path);
        const { file, close } = await openEditableFile(path);
        const r = await editing.openForEdit(file, stubReader).finally(close);
        expect(r).toMatchObject({ rewriteKeepsEverything: keeps });
        expect((r as InPlaceRefusal).refused).toMatch(reason);
        expect(readFileSync(path).equals(before)).toBe(true);
      });
    }

    it('a write outside the virtual disk is a BAD_ARGUMENT and writes nothing', async (ctx) => {
      if (!haveQemu()) return ctx.skip();
      const { disk, model } = diskOfPieces(MiB, [{ at: 0, length: 10 * KiB, seed: 1, zeros: false }]);
      const path = await makeImage({ by: 'ours' }, model, disk);
      const before = readFileSync(path);
      const { s, done } = await session(path);
      for (const [at, n] of [
        [MiB - 10, 11],
        [-1, 1],
        [0.5, 1],
      ]) {
        await expect(s.write(at, new Uint8Array(n))).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
      }
      await s.flush();
      await done();
      expect(readFileSync(path).equals(before)).toBe(true);
    });
  });

  // Measurement for the report (DISKMINT_MEASURE=1): 256 MiB written into a 1 GiB container, in place, vs a whole rewrite.
  describe.runIf(process.env.DISKMINT_MEASURE === '1')('measure', () => {
    it('256 MiB into a 1 GiB container: session vs qemu-img convert', async () => {
      const raw = join(dir, 'big.raw');
      const path = join(dir, 'big.qcow2');
      const h = await import('node:fs/promises').then((fs) => fs.open(raw, 'w'));
      const chunk = new Uint8Array(MiB);
      for (let m = 0; m < 768; m++) {
        for (let i = 0, x = m + 1; i < MiB; i += 4) chunk[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
        await h.write(chunk, 0, MiB, m * MiB);
      }
      await h.truncate(1024 * MiB);
      await h.close();
      let t = performance.now();
      runPeerOk('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, path]);
      const convertMs = performance.now() - t;
      const log = { bytes: 0, writes: 0, barriers: 0 };
      const { reader } = await openDisk(path);
      const { file, close } = await openEditableFile(path);
      const counting: EditableFile = {
        get size() {
          return file.size;
        },
        read: (o, l, into) => file.read(o, l, into),
        write: async (o, d) => {
          log.bytes += d.length;
          log.writes++;
          await file.write(o, d);
        },
        barrier: async () => {
          log.barriers++;
          await file.barrier();
        },
        close: () => file.close(),
      };
      t = performance.now();
      const s = (await editing.openForEdit(counting, reader)) as ContainerEditSession;
      const data = new Uint8Array(MiB).fill(0x5a);
      for (let m = 0; m < 256; m++) await s.write(640 * MiB + m * MiB, data); // 128 MiB over data, 128 MiB into holes
      await s.flush();
      const sessionMs = performance.now() - t;
      await close();
      await reader.close();
      const c = check(path);
      expect(c.status, c.out).toBe(0);
      console.log(
        `qcow2 edit: 256 MiB into a 1 GiB container: session ${sessionMs.toFixed(0)} ms, ${(log.bytes / MiB).toFixed(2)} MiB in ${log.writes} writes, ${log.barriers} barriers; ` +
          `qemu-img convert of the whole container ${convertMs.toFixed(0)} ms, ${(statSync(path).size / MiB).toFixed(0)} MiB file`,
      );
    });
  });
});
