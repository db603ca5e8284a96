/**
 * Shared by the qcow2 in-place edit suites (test/containers/qcow2-edit*.test.ts): images made by
 * our writer or by qemu-img from a model's bytes, an edit session on a file, and qemu-img's view.
 */
import { expect } from 'vitest';
import fc from 'fast-check';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDisk } from '../../src/io/open-disk.js';
import { openEditableFile } from '../../src/io/editable-file.js';
import { qcow2Handler } from '../../src/containers/qcow2/handler.js';
import type { ContainerEditSession, EditableFile } from '../../src/containers/types.js';
import { readAll, writeWithHandler } from './containers.js';
import { runPeer, runPeerOk } from './peer.js';

const KiB = 1024;
export const editing = qcow2Handler.editing!;

/** How a test image is made: by our writer, or by qemu-img (tables first), from the model's bytes. */
export type Maker =
  | { by: 'ours'; options?: Record<string, string>; compress?: { algorithm?: 'deflate' | 'zstd' } }
  | { by: 'qemu-convert'; args: string[] }
  | { by: 'qemu-create'; args: string[] }
  | { by: 'qemu-backing' }
  | { by: 'qemu-zero-alloc' };

export const MAKERS: Maker[] = [
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
  { by: 'qemu-create', args: ['-o', 'cluster_size=4096,preallocation=metadata'] },
  { by: 'qemu-create', args: ['-o', 'cluster_size=16384,preallocation=falloc,compat=0.10'] },
  { by: 'qemu-backing' },
  { by: 'qemu-zero-alloc' },
];

let serial = 0;
/** Make an image of `model` (qemu-create and zero-alloc images start all zero: the model is cleared). */
export async function makeImage(dir: string, maker: Maker, model: Uint8Array, disk: Parameters<typeof writeWithHandler>[1]): Promise<string> {
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
export async function editSession(path: string, wrap?: (f: EditableFile) => EditableFile): Promise<{ s: ContainerEditSession; done(): Promise<void> }> {
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
export const qemuCheck = (path: string) => runPeer('qemu-img', ['check', '-f', 'qcow2', path]);

export async function readImage(path: string): Promise<Buffer> {
  const { reader } = await openDisk(path, { allowBacking: true });
  try {
    return await readAll(reader);
  } finally {
    await reader.close();
  }
}

/** qemu-img reads `path` as exactly `expected`. */
export function expectQemuReads(path: string, expected: Uint8Array): void {
  const raw = `${path}.expect.raw`;
  writeFileSync(raw, expected);
  const r = runPeer('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', raw, path]);
  rmSync(raw);
  expect(r.status, r.out).toBe(0);
}

export interface Edit {
  at: number;
  length: number;
  seed: number;
  flush: boolean;
}
export const editArb = fc.record({ at: fc.nat(), length: fc.integer({ min: 1, max: 150 * KiB }), seed: fc.nat(255), flush: fc.boolean() });

export function editBytes(e: Edit, size: number): { at: number; data: Uint8Array } {
  const at = e.at % size;
  const data = new Uint8Array(Math.min(e.length, size - at));
  for (let i = 0, x = e.seed + 1; i < data.length; i++) data[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24 || 1;
  return { at, data };
}
