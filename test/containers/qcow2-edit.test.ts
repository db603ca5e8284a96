/**
 * qcow2 in-place edits (src/containers/qcow2/edit.ts), judged by qemu-img: random writes through
 * a session against a raw model (qemu-img compare, our reader, qemu-img check), power cuts after
 * every barrier group with subsets of the next group landed (qemu-img check never reports
 * corruption, every cluster reads its old or its new bytes), and the refusals.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fc from 'fast-check';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
      { numRuns: 25 },
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
});
