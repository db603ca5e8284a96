/** Test plumbing for in-place VHD edits: images of our writer and of qemu-img, a recording EditableFile, judges. */
import { writeFileSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { vhdHandler } from '../../src/containers/vhd/handler.js';
import { vhdEditing } from '../../src/containers/vhd/edit.js';
import { openEditableFile } from '../../src/io/editable-file.js';
import { memoryDiskReader } from '../../src/model/disk-reader.js';
import type { ContainerEditSession, ContainerReader, EditableFile, InPlaceRefusal } from '../../src/containers/types.js';
import { diskOfPieces, openWithHandler, readAll, writeWithHandler, type DiskPiece } from './containers.js';
import { tempDir } from './golden.js';
import { runPeer, runPeerOk } from './peer.js';

export const MIB = 1 << 20;
export const KIB = 1024;
export const dir = tempDir('diskmint-vhd-edit-');
let n = 0;
export const fresh = (ext: string) => join(dir, `f${n++}.${ext}`);

export const KINDS = ['ours', 'ours-fixed', 'ours-force', 'ours-fixed-force', 'ours-bitmap', 'qemu-create', 'qemu', 'qemu-fixed', 'qemu-force'] as const;
export type Kind = (typeof KINDS)[number];
export const OPTIONS: Record<string, Record<string, string>> = {
  fixed: { subformat: 'fixed' },
  force: { force_size: 'on' },
  'fixed-force': { subformat: 'fixed', force_size: 'on' },
};

/** Patch a dynamic VHD's buffer: in every allocated block clear bits 1, 3, 5 of each bitmap byte and fill those sectors with 0xAA. */
export function clearSomeBits(buf: Buffer): void {
  const tableOffset = Number(buf.readBigUInt64BE(512 + 16));
  const entries = buf.readUInt32BE(512 + 28);
  for (let i = 0; i < entries; i++) {
    const e = buf.readUInt32BE(tableOffset + i * 4);
    if (e === 0xffffffff) continue;
    for (let s = 0; s < 4096; s++) {
      if (s % 8 === 1 || s % 8 === 3 || s % 8 === 5) {
        buf[e * 512 + (s >> 3)] &= ~(0x80 >> (s & 7));
        buf.fill(0xaa, e * 512 + 512 + s * 512, e * 512 + 512 + (s + 1) * 512);
      }
    }
  }
}

/** A VHD of `kind` holding `pieces` (qemu-create: empty). */
export async function makeImage(kind: Kind, size: number, pieces: readonly DiskPiece[]): Promise<string> {
  const path = fresh('vhd');
  const { disk, model } = diskOfPieces(size, pieces);
  const variant = kind.replace(/^(ours|qemu)-?/, '');
  if (kind.startsWith('ours')) {
    await writeWithHandler(vhdHandler, disk, path, { options: OPTIONS[variant] ?? {} });
    if (variant === 'bitmap') {
      const buf = await readFile(path);
      clearSomeBits(buf);
      writeFileSync(path, buf);
    }
  } else if (kind === 'qemu-create') {
    runPeerOk('qemu-img', ['create', '-q', '-f', 'vpc', path, String(size)]);
  } else {
    const raw = fresh('raw');
    writeFileSync(raw, model);
    const o = Object.entries(OPTIONS[variant] ?? {}).map(([k, v]) => `${k}=${v}`);
    runPeerOk('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'vpc', ...(o.length ? ['-o', o.join(',')] : []), raw, path]);
  }
  return path;
}

export async function readPath(path: string): Promise<Buffer> {
  const r = await openWithHandler(vhdHandler, path);
  try {
    return await readAll(r);
  } finally {
    await r.close();
  }
}

export function openBuf(buf: Uint8Array): Promise<ContainerReader> {
  return vhdHandler.open(memoryDiskReader(buf), { path: 'mem.vhd', openSibling: () => Promise.reject(new Error('no siblings')) });
}

/** A sparse raw file of what `reader` reads (only its allocated ranges are copied). */
export async function rawOf(reader: ContainerReader): Promise<string> {
  const path = fresh('raw');
  const h = await open(path, 'w');
  try {
    await h.truncate(reader.size);
    for await (const r of reader.allocatedRanges()) {
      for (let at = r.offset; at < r.offset + r.length; at += 4 * MIB) {
        await h.write(await reader.read(at, Math.min(4 * MIB, r.offset + r.length - at)), 0, undefined, at);
      }
    }
  } finally {
    await h.close();
  }
  return path;
}

/** qemu-img opens `path` as vpc; with `raw`, it also reads the same bytes as that raw file. */
export function qemuAgrees(path: string, raw?: string): void {
  const info = runPeer('qemu-img', ['info', '-f', 'vpc', path]);
  expect(info.status, info.out).toBe(0);
  if (!raw) return;
  const cmp = runPeer('qemu-img', ['compare', '-f', 'raw', '-F', 'vpc', raw, path]);
  expect(cmp.status, cmp.out).toBe(0);
}

export function isSession(s: ContainerEditSession | InPlaceRefusal): s is ContainerEditSession {
  return !('refused' in s);
}

export async function sessionOn(path: string) {
  const reader = await openWithHandler(vhdHandler, path);
  const { file, close } = await openEditableFile(path);
  const s = await vhdEditing.openForEdit(file, reader);
  if (!isSession(s)) throw new Error(`refused: ${s.refused}`);
  return { s, done: async () => (await close(), await reader.close()) };
}

export interface Write {
  offset: number;
  bytes: Uint8Array;
}

/** An EditableFile over a copy of `image` in memory, recording every write and the barriers between them. */
export function recordingFile(image: Uint8Array): { file: EditableFile; groups: Write[][] } {
  let buf = new Uint8Array(image);
  let size = image.length;
  const groups: Write[][] = [[]];
  const file: EditableFile = {
    get size() {
      return size;
    },
    read: async (offset, length) => buf.slice(offset, Math.min(size, offset + length)),
    async write(offset, data) {
      groups[groups.length - 1].push({ offset, bytes: new Uint8Array(data) });
      if (offset + data.length > buf.length) {
        const bigger = new Uint8Array(offset + data.length);
        bigger.set(buf);
        buf = bigger;
      }
      buf.set(data, offset);
      size = Math.max(size, offset + data.length);
    },
    async barrier() {
      if (groups[groups.length - 1].length) groups.push([]);
    },
    close: async () => {},
  };
  return { file, groups };
}

export function apply(image: Uint8Array, writes: Write[]): Uint8Array {
  const out = new Uint8Array(Math.max(image.length, ...writes.map((w) => w.offset + w.bytes.length)));
  out.set(image);
  for (const w of writes) out.set(w.bytes, w.offset);
  return out;
}
