/** Test plumbing shared by the container suites: write a VirtualDisk with a handler, open a file with one. */
import { open } from 'node:fs/promises';
import { dirname, join, basename, isAbsolute, normalize, sep } from 'node:path';
import { openRawFile, type DiskReader } from '../../src/model/disk-reader.js';
import { VirtualDisk } from '../../src/model/extents.js';
import { expect } from 'vitest';
import { fileSink, streamSink, type ByteSink } from '../../src/io/sink.js';
import type { ContainerHandler, ContainerReader, WriteContext } from '../../src/containers/types.js';
import { FormatError } from '../../formats/common/errors.js';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';

export async function writeWithHandler(
  handler: ContainerHandler,
  disk: VirtualDisk,
  path: string,
  opts: { options?: Record<string, string>; compress?: WriteContext['compress']; threads?: number; pipe?: boolean } = {},
): Promise<Buffer | undefined> {
  const siblings: Array<{ close(): Promise<void> }> = [];
  const ctx: WriteContext = {
    options: opts.options ?? {},
    compress: opts.compress,
    threads: opts.threads ?? 2,
    outputPath: opts.pipe ? '-' : path,
    async createSiblingOutput(name: string): Promise<ByteSink> {
      const h = await open(join(dirname(path), name), 'w');
      siblings.push(h);
      return fileSink(h);
    },
  };
  try {
    if (opts.pipe) {
      const stream = new PassThrough();
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      const sink = streamSink(stream);
      await handler.write(disk, sink, ctx);
      await sink.finish();
      return Buffer.concat(chunks);
    }
    const h = await open(path, 'w');
    try {
      const sink = fileSink(h);
      await handler.write(disk, sink, ctx);
      await sink.finish();
    } finally {
      await h.close();
    }
    return undefined;
  } finally {
    for (const s of siblings) await s.close();
  }
}

/**
 * Open `path` with `handler`; siblings resolve inside the file's folder (absolute and .. refused).
 * When the handler refuses the file, it is closed here (as io/open-disk.ts does): Node 26 fails
 * the test run for a FileHandle left to the garbage collector.
 */
export async function openWithHandler(handler: ContainerHandler, path: string): Promise<ContainerReader> {
  const file = await openRawFile(path);
  return handler
    .open(file, {
      path,
      async openSibling(name: string): Promise<DiskReader> {
        if (isAbsolute(name) || normalize(name).split(sep).includes('..')) {
          throw new FormatError('BAD_VALUE', `extent file "${name}" is outside the image's folder`, handler.format);
        }
        return openRawFile(join(dirname(path), basename(normalize(name)) === normalize(name) ? name : normalize(name)));
      },
    })
    .catch(async (err: unknown) => {
      await file.close();
      throw err;
    });
}

/** Read a whole (small) disk into memory. */
export async function readAll(reader: DiskReader): Promise<Buffer> {
  const out = Buffer.alloc(reader.size);
  for (let at = 0; at < reader.size; at += 1 << 20) {
    const chunk = await reader.read(at, Math.min(1 << 20, reader.size - at));
    out.set(chunk, at);
  }
  return out;
}

/** Deterministic non-zero bytes. */
export function fill(len: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: len }, (_, i) => (i * 131 + seed * 17 + 3) & 0xff || 7);
}

/** A disk with data near the start, across a 2 MiB boundary, and at the very end. */
export function sampleDisk(size = 5_000_000): { disk: VirtualDisk; expected: Uint8Array } {
  const MIB = 1 << 20;
  const expected = new Uint8Array(size);
  const disk = new VirtualDisk(size);
  for (const [at, len, seed] of [
    [0, 1000, 1],
    [size > 3 * MIB ? 2 * MIB - 300 : size >> 1, 700, 2],
    [size - 513, 513, 3],
  ] as const) {
    const d = fill(len, seed);
    disk.placeBytes(at, d);
    expected.set(d, at);
  }
  return { disk, expected };
}

/** `got` starts with `expected` and is zero after it (containers may round the size up). */
export function expectPrefixThenZeros(got: Uint8Array, expected: Uint8Array): void {
  expect(got.length).toBeGreaterThanOrEqual(expected.length);
  expect(Buffer.compare(Buffer.from(got.subarray(0, expected.length)), Buffer.from(expected))).toBe(0);
  expect(got.subarray(expected.length).every((b) => b === 0)).toBe(true);
}

/** A random-disk recipe for property tests: a size and up to five data pieces. */
export interface DiskRecipe {
  size: number;
  pieces: Array<{ at: number; len: number; seed: number }>;
}

/** Lay the recipe's pieces out in order (each within 3 MiB of the previous end). */
export function diskFromRecipe({ size, pieces }: DiskRecipe): { disk: VirtualDisk; expected: Uint8Array } {
  const MIB = 1 << 20;
  const disk = new VirtualDisk(size);
  const expected = new Uint8Array(size);
  let cursor = 0;
  for (const p of pieces) {
    const at = cursor + (p.at % (3 * MIB));
    const len = Math.min(p.len, size - at);
    if (len <= 0) break;
    const d = fill(len, p.seed);
    disk.placeBytes(at, d);
    expected.set(d, at);
    cursor = at + len;
  }
  return { disk, expected };
}

/** A piece of a random disk: data (or, with `zeros`, an explicitly placed run of zeros: allocated, yet all zero). */
export interface DiskPiece {
  at: number;
  length: number;
  seed: number;
  zeros: boolean;
}

export const diskPieceArb = (maxAt: number, maxLength: number): fc.Arbitrary<DiskPiece> =>
  fc.record({ at: fc.nat(maxAt), length: fc.integer({ min: 1, max: maxLength }), seed: fc.integer({ min: 0, max: 255 }), zeros: fc.boolean() });

/** A disk of non-overlapping pieces (each moved past the previous one's end) and its bytes. */
export function diskOfPieces(size: number, pieces: readonly DiskPiece[]): { disk: VirtualDisk; model: Uint8Array } {
  const disk = new VirtualDisk(size);
  const model = new Uint8Array(size);
  let end = 0;
  for (const p of [...pieces].sort((a, b) => a.at - b.at)) {
    const at = Math.max(p.at, end);
    const length = Math.min(p.length, size - at);
    if (length <= 0) continue;
    const data = new Uint8Array(length);
    if (!p.zeros) for (let i = 0; i < length; i++) data[i] = (i * 31 + p.seed) % 251 || 7;
    disk.placeBytes(at, data);
    model.set(data, at);
    end = at + length;
  }
  return { disk, model };
}
