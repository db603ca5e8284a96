/**
 * Test images for VMDK in-place edits (test/containers/vmdk-edit*.test.ts): monolithicSparse
 * extents from our writer, from qemu-img (convert, create, zeroed grains, a delta disk), and laid
 * out by hand with small, lazily allocated grain tables; opening one for editing; the judges.
 */
import { expect } from 'vitest';
import fc from 'fast-check';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { vmdkHandler } from '../../src/containers/vmdk/handler.js';
import { vmdkEditing } from '../../src/containers/vmdk/edit.js';
import type { ContainerEditSession, EditableFile } from '../../src/containers/types.js';
import { openEditableFile } from '../../src/io/editable-file.js';
import { openDisk } from '../../src/io/open-disk.js';
import {
  FLAG_REDUNDANT_GT,
  FLAG_VALID_NEWLINE_TEST,
  SECTOR,
  decodeSparseHeader,
  decodeU32Table,
  encodeSparseHeader,
  encodeU32Table,
  gdEntryCount,
  gdSectors,
  gtSectors,
} from '../../formats/containers/vmdk.js';
import { descriptorGeometry, encodeDescriptor } from '../../formats/containers/vmdk-descriptor.js';
import { diskOfPieces, readAll, writeWithHandler, type DiskPiece } from './containers.js';
import { tempDir } from './golden.js';
import { requirePeer, runPeer, runPeerOk } from './peer.js';

export const KIB = 1024;
export const MIB = 1024 * KIB;
export const GRAIN = 64 * KIB; // qemu-img's and our writer's grain (128 sectors)

let root: string | undefined;
let n = 0;
/** A fresh folder per image (under one removed after the test file), so a child's relative parent name resolves beside it. */
export async function freshDir(): Promise<string> {
  root ??= tempDir('diskmint-vmdk-edit-');
  const d = join(root, `c${n++}`);
  await mkdir(d);
  return d;
}

export const haveQemu = () => requirePeer('qemu-img', 'qemu-utils') && requirePeer('qemu-io', 'qemu-utils');

export type Source = 'ours' | 'ours-sparse-gd' | 'qemu-convert' | 'qemu-zeroed' | 'qemu-create' | 'qemu-child' | 'small-tables';
export const SOURCES: readonly Source[] = ['ours', 'ours-sparse-gd', 'qemu-convert', 'qemu-zeroed', 'qemu-create', 'qemu-child', 'small-tables'];

export interface Image {
  path: string;
  /** The virtual disk's bytes. */
  raw: Buffer;
  /** Bytes per grain (the unit of allocation). */
  grain: number;
}

/** 'small-tables' images: 8 KiB grains, 32-entry grain tables (256 KiB each, 128 bytes: part of a sector). */
const SMALL = { grainSectors: 16, gtes: 32 };

/**
 * A monolithicSparse extent laid out by hand, as VMware's hosted tools may: small grain tables,
 * a table (and its redundant copy) only where grains are, the GD and RGD entries of the others 0.
 */
async function writeSmallTables(path: string, raw: Buffer): Promise<void> {
  const { grainSectors, gtes } = SMALL;
  const grainBytes = grainSectors * SECTOR;
  const capacity = raw.length / SECTOR;
  const h = { capacity, grainSize: grainSectors, numGTEsPerGT: gtes };
  const tables = gdEntryCount(h);
  const gdSecs = gdSectors(h);
  const gtSecs = gtSectors(gtes);
  const stored = [...Array(Math.ceil(raw.length / grainBytes)).keys()].filter((g) => raw.subarray(g * grainBytes, (g + 1) * grainBytes).some((b) => b !== 0));
  const withTables = [...new Set(stored.map((g) => Math.floor(g / gtes)))];
  const rgdAt = 21;
  const gdAt = rgdAt + gdSecs;
  const firstGt = gdAt + gdSecs;
  const overHead = Math.ceil((firstGt + 2 * withTables.length * gtSecs) / grainSectors) * grainSectors;
  const file = Buffer.alloc((overHead + stored.length * grainSectors) * SECTOR);
  file.set(
    encodeSparseHeader({
      version: 1,
      flags: FLAG_VALID_NEWLINE_TEST | FLAG_REDUNDANT_GT,
      capacity,
      grainSize: grainSectors,
      descriptorOffset: 1,
      descriptorSize: 20,
      numGTEsPerGT: gtes,
      rgdOffset: rgdAt,
      gdOffset: gdAt,
      overHead,
      uncleanShutdown: false,
      compressAlgorithm: 0,
    }),
  );
  const desc = encodeDescriptor({
    cid: 0x1234abcd,
    createType: 'monolithicSparse',
    extents: [{ access: 'RW', sectors: capacity, type: 'SPARSE', file: 'disk.vmdk', offset: 0 }],
    hwVersion: '4',
    adapterType: 'ide',
    ...descriptorGeometry(raw.length, 'ide'),
  });
  file.write(desc, SECTOR, 'latin1');
  const gd = new Uint32Array(tables);
  const rgd = new Uint32Array(tables);
  withTables.forEach((t, i) => {
    rgd[t] = firstGt + 2 * i * gtSecs;
    gd[t] = rgd[t] + gtSecs;
  });
  file.set(encodeU32Table(rgd, gdSecs), rgdAt * SECTOR);
  file.set(encodeU32Table(gd, gdSecs), gdAt * SECTOR);
  stored.forEach((g, k) => {
    const sector = overHead + k * grainSectors;
    const t = Math.floor(g / gtes);
    for (const table of [gd[t], rgd[t]]) file.writeUInt32LE(sector, table * SECTOR + (g % gtes) * 4);
    file.set(raw.subarray(g * grainBytes, (g + 1) * grainBytes), sector * SECTOR);
  });
  await writeFile(path, file);
}

/** Zero the GD and RGD entries of grain tables that name no grain (VMware's lazily allocated tables). */
async function dropEmptyTables(path: string): Promise<number> {
  const bytes = await readFile(path);
  const h = decodeSparseHeader(bytes.subarray(0, SECTOR));
  const count = gdEntryCount(h);
  const gdAt = (h.gdOffset as number) * SECTOR;
  const gd = decodeU32Table(bytes.subarray(gdAt), count);
  let dropped = 0;
  for (let t = 0; t < count; t++) {
    const gt = decodeU32Table(bytes.subarray(gd[t] * SECTOR), h.numGTEsPerGT);
    if (gt.some((e) => e !== 0)) continue;
    bytes.writeUInt32LE(0, gdAt + t * 4);
    bytes.writeUInt32LE(0, h.rgdOffset * SECTOR + t * 4);
    dropped++;
  }
  await writeFile(path, bytes);
  return dropped;
}

/** An image of `source` kind holding `pieces` (qemu-img's images: its own writes added on top). */
export async function makeImage(source: Source, size: number, pieces: readonly DiskPiece[]): Promise<Image> {
  const d = await freshDir();
  const path = join(d, source === 'qemu-child' ? 'child.vmdk' : 'disk.vmdk');
  const { disk, model } = diskOfPieces(size, pieces);
  const raw = Buffer.from(model);
  const rawPath = join(d, 'disk.raw');
  if (source === 'ours' || source === 'ours-sparse-gd') {
    await writeWithHandler(vmdkHandler, disk, path);
    if (source === 'ours-sparse-gd') expect(await dropEmptyTables(path)).toBeGreaterThan(0);
    return { path, raw, grain: GRAIN };
  }
  if (source === 'small-tables') {
    await writeSmallTables(path, raw);
    return { path, raw, grain: SMALL.grainSectors * SECTOR };
  }
  if (source === 'qemu-create') {
    runPeerOk('qemu-img', ['create', '-q', '-f', 'vmdk', '-o', 'compat6=on', path, String(size)]);
    return { path, raw: Buffer.alloc(size), grain: GRAIN };
  }
  if (source === 'qemu-child') {
    await writeWithHandler(vmdkHandler, disk, join(d, 'parent.vmdk'));
    runPeerOk('qemu-img', ['create', '-q', '-f', 'vmdk', '-b', 'parent.vmdk', '-F', 'vmdk', path]);
    const at = Math.floor(size / 3 / SECTOR) * SECTOR;
    runPeerOk('qemu-io', ['-f', 'vmdk', '-c', `write -P 0x5a ${at} ${Math.min(70_000, size - at)}`, path]);
    raw.fill(0x5a, at, at + Math.min(70_000, size - at));
    return { path, raw, grain: GRAIN };
  }
  await writeFile(rawPath, raw);
  const options = source === 'qemu-zeroed' ? 'subformat=monolithicSparse,zeroed_grain=on' : 'subformat=monolithicSparse,adapter_type=lsilogic';
  runPeerOk('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'vmdk', '-o', options, rawPath, path]);
  if (source === 'qemu-zeroed') {
    // zeroed-grain GTEs (block/vmdk.c VMDK_GTE_ZEROED) over the first two grains, data or not
    runPeerOk('qemu-io', ['-f', 'vmdk', '-c', `write -z 0 ${Math.min(2 * GRAIN, size)}`, path]);
    raw.fill(0, 0, Math.min(2 * GRAIN, size));
  }
  return { path, raw, grain: GRAIN };
}

/** Open `path` for editing: the session, the reader it fills from, and a close for both. */
export async function openSession(path: string, wrap?: (f: EditableFile) => EditableFile): Promise<{ session: ContainerEditSession; close(): Promise<void> }> {
  const { reader } = await openDisk(path, { allowBacking: true });
  const { file, close } = await openEditableFile(path);
  const got = await vmdkEditing.openForEdit(wrap ? wrap(file) : file, reader);
  if ('refused' in got) throw new Error(`refused: ${got.refused}`);
  return {
    session: got,
    close: async () => {
      await close();
      await reader.close();
    },
  };
}

/** Deterministic bytes for a write. */
export function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

export interface Edit {
  offset: number;
  length: number;
  seed: number;
  flushAfter: boolean;
}

/** Offsets anywhere, and near grain boundaries (so writes start, end and span across them). */
export const editArb = (size: number): fc.Arbitrary<Edit> =>
  fc.record({
    offset: fc.oneof(
      fc.nat(size - 1),
      fc.tuple(fc.nat(Math.floor((size - 1) / GRAIN)), fc.integer({ min: -600, max: 600 })).map(([g, d]) => Math.min(size - 1, Math.max(0, g * GRAIN + d))),
    ),
    length: fc.oneof(fc.integer({ min: 1, max: 2000 }), fc.integer({ min: 1, max: 3 * GRAIN + 1000 })),
    seed: fc.nat(1000),
    flushAfter: fc.boolean(),
  });

/** The judges: qemu-img compare against the raw bytes, our reader, qemu-img check. */
export async function expectImage(path: string, raw: Buffer): Promise<void> {
  const rawPath = `${path}.want.raw`;
  await writeFile(rawPath, raw);
  const cmp = runPeer('qemu-img', ['compare', '-f', 'raw', '-F', 'vmdk', rawPath, path]);
  expect(cmp.out).toContain('Images are identical');
  expect(cmp.status).toBe(0);
  const { reader } = await openDisk(path, { allowBacking: true });
  try {
    expect(reader.size).toBe(raw.length);
    expect((await readAll(reader)).equals(raw)).toBe(true);
  } finally {
    await reader.close();
  }
  const check = runPeer('qemu-img', ['check', '-f', 'vmdk', path]);
  expect(check.status, check.out).toBe(0);
  await rm(rawPath);
}
