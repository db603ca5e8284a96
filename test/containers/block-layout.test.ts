/**
 * The block layout every container writer shares (qcow2, dynamic VHD and VHDX, sparse VMDK):
 * every non-zero block in order, back to back (after a prefix when given), all-zero blocks left
 * out, each stored block reported with its place; to a pipe, the pre-scan finds the same blocks
 * and the tables-first layout gives the same bytes as data first to a file. Checked against a
 * model on random disks: block sizes below, at and above the 1 MiB read chunk, data that
 * straddles blocks, zero runs inside data, and a disk whose end cuts the last block short.
 */
import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import {
  scanNonZeroBlocks,
  writeInPlace,
  writeListedBlocks,
  writeNonZeroBlocks,
  writeTablesAndBlocks,
  type TablesThenBlocks,
} from '../../src/containers/block-layout.js';
import { fileSink, streamSink, type ByteSink } from '../../src/io/sink.js';
import { diskOfPieces, diskPieceArb } from '../helpers/containers.js';
import { tempDir } from '../helpers/golden.js';

const KiB = 1024;

const pieceArb = diskPieceArb(5000 * KiB, 300 * KiB);

/** Block sizes below, at and above the 1 MiB read chunk; a disk of random pieces; a prefix length or none. */
const layoutCaseArb = fc.tuple(
  fc.constantFrom(512, 4 * KiB, 64 * KiB, 2048 * KiB),
  fc.integer({ min: 1, max: 6000 * KiB }),
  fc.array(pieceArb, { maxLength: 8 }),
  fc.option(fc.integer({ min: 1, max: 600 }), { nil: undefined }),
);

/** Indexes of the blocks of `model` holding a non-zero byte. */
function modelNonZero(model: Uint8Array, blockSize: number): number[] {
  const out: number[] = [];
  for (let b = 0; b * blockSize < model.length; b++) if (model.subarray(b * blockSize, (b + 1) * blockSize).some((x) => x !== 0)) out.push(b);
  return out;
}

describe('writeNonZeroBlocks', () => {
  it('stores exactly the non-zero blocks, in order, where it says (property)', async () => {
    const dir = tempDir('diskmint-data-first-');
    let n = 0;
    await fc.assert(
      fc.asyncProperty(layoutCaseArb, async ([blockSize, size, pieces, prefixLength]) => {
        const { disk, model } = diskOfPieces(size, pieces);
        const prefix = prefixLength === undefined ? undefined : new Uint8Array(prefixLength).fill(0xa5);
        const path = join(dir, `out${n++}.bin`);
        const handle = await open(path, 'wx');
        const sink = fileSink(handle);
        const reported: [number, number][] = [];
        const progress: number[] = [];
        let count: number;
        try {
          count = await writeNonZeroBlocks(disk, sink, blockSize, {
            prefix,
            onStored: (index, k) => reported.push([index, k]),
            onProgress: (done) => progress.push(done),
          });
          await sink.finish();
        } finally {
          await handle.close();
        }

        const blocks = Math.ceil(size / blockSize);
        const expectedIndexes: number[] = [];
        const expectedBytes: Uint8Array[] = [];
        for (let b = 0; b < blocks; b++) {
          const block = new Uint8Array(blockSize);
          block.set(model.subarray(b * blockSize, Math.min(size, (b + 1) * blockSize)));
          if (!block.some((x) => x !== 0)) continue;
          expectedIndexes.push(b);
          if (prefix) expectedBytes.push(prefix);
          expectedBytes.push(block);
        }
        expect(count).toBe(expectedIndexes.length);
        expect(reported).toEqual(expectedIndexes.map((index, k) => [index, k]));
        expect(Buffer.compare(readFileSync(path), Buffer.concat(expectedBytes))).toBe(0);
        expect(progress).toEqual([...progress].sort((a, b) => a - b));
        expect(progress.every((done) => done <= size)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });
});

/** Run `write` into a file sink and into a stream sink; both outputs as bytes. */
async function fileAndPipe(path: string, write: (sink: ByteSink) => Promise<unknown>): Promise<[Buffer, Buffer]> {
  const handle = await open(path, 'wx');
  try {
    const sink = fileSink(handle);
    await write(sink);
    await sink.finish();
  } finally {
    await handle.close();
  }
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  const sink = streamSink(stream);
  await write(sink);
  await sink.finish();
  return [readFileSync(path), Buffer.concat(chunks)];
}

describe('tables first (pipes) and data first (files)', () => {
  it('the pre-scan finds exactly the non-zero blocks; a pipe holds the same bytes as a file (property)', async () => {
    const dir = tempDir('diskmint-block-layout-');
    let n = 0;
    await fc.assert(
      fc.asyncProperty(layoutCaseArb, async ([blockSize, size, pieces, prefixLength]) => {
        const { disk, model } = diskOfPieces(size, pieces);
        const want = modelNonZero(model, blockSize);
        expect(await scanNonZeroBlocks(disk, blockSize)).toEqual(want);
        // A stand-in container: a 700-byte header, a table of where each block went (u32 LE
        // each), a trailer word after it, then the blocks.
        const tableBytes = 4 * Math.ceil(size / blockSize) + 4;
        const dataStart = 700 + tableBytes;
        const prefix = prefixLength === undefined ? undefined : new Uint8Array(prefixLength).fill(0xa5);
        const layout: TablesThenBlocks = {
          blockSize,
          dataStart,
          prefix,
          async writeTables(stored, put) {
            const table = Buffer.alloc(tableBytes - 4);
            stored.forEach((b, k) => table.writeUInt32LE(k + 1, b * 4));
            await put(table, 700);
            await put(Buffer.from([1, 2, 3, 4]), dataStart - 4);
          },
        };
        const storedBy: Array<readonly number[]> = [];
        const [file, piped] = await fileAndPipe(join(dir, `out${n++}.bin`), async (sink) => {
          await sink.write(new Uint8Array(700).fill(0x11));
          storedBy.push(await writeTablesAndBlocks(disk, sink, layout));
        });
        expect(storedBy).toEqual([want, want]);
        expect(piped.equals(file)).toBe(true);
        expect(file.length).toBe(dataStart + want.length * ((prefixLength ?? 0) + blockSize));
      }),
      { numRuns: 40 },
    );
  });
});

describe('writeInPlace (fixed and flat containers)', () => {
  it('puts every byte of the disk at base + its offset, to a file and a pipe alike (property)', async () => {
    const dir = tempDir('diskmint-in-place-');
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 6000 * KiB }), fc.array(pieceArb, { maxLength: 8 }), fc.nat(3000), async (size, pieces, base) => {
        const { disk, model } = diskOfPieces(size, pieces);
        const progress: number[][] = []; // one list a run
        const [file, piped] = await fileAndPipe(join(dir, `in-place${n++}.bin`), async (sink) => {
          const run: number[] = [];
          progress.push(run);
          await sink.write(new Uint8Array(base).fill(0x11));
          await writeInPlace(disk, sink, base, (done) => run.push(done));
          await sink.skip(base + size - sink.position); // the container's end (fileAndPipe finishes the sink there)
        });
        expect(piped.equals(file)).toBe(true);
        expect(file.length).toBe(base + size);
        expect(file.subarray(0, base).every((b) => b === 0x11)).toBe(true);
        expect(file.subarray(base).equals(Buffer.from(model))).toBe(true);
        for (const run of progress) expect(run).toEqual([...run].sort((a, b) => a - b));
        expect(progress.flat().every((done) => done <= size)).toBe(true);
      }),
      { numRuns: 30 },
    );
  });
});

describe('writeListedBlocks', () => {
  it('refuses to end quietly when a listed block is no longer in the source (data changed between the passes)', async () => {
    // Block 40 lies in the third 1 MiB read chunk, where this disk has no data run at all.
    const disk = diskOfPieces(4096 * KiB, [{ at: 0, length: 100, seed: 1, zeros: false }]).disk;
    const stream = new PassThrough();
    stream.resume();
    await expect(writeListedBlocks(disk, streamSink(stream), 64 * KiB, [0, 40])).rejects.toMatchObject({
      name: 'DiskmintError',
      code: 'IO',
      message: expect.stringMatching(/changed/),
    });
  });
});
