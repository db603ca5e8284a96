/**
 * The compressed-block pipeline qcow2 (-c) and VMDK streamOptimized share: exactly the non-zero
 * blocks, ascending, each with what the handler's pack made of it, the same for any thread count.
 * A stand-in compressor finishes blocks out of order (its delay depends on the bytes), so a
 * pipeline that handed results out as they complete, or reused a read buffer too early, fails.
 */
import { inflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compressedBlocks, type CompressedBlocksOptions } from '../../src/containers/compressed-blocks.js';
import { createCompressor, type Compressor } from '../../src/containers/compress.js';
import { VirtualDisk } from '../../src/model/extents.js';
import { diskOfPieces, diskPieceArb } from '../helpers/containers.js';

const KiB = 1024;

/** A stand-in for compression: the bytes reversed, finished after a number of event-loop turns that depends on them. */
function scramble(data: Uint8Array): Uint8Array {
  return Buffer.from(data).reverse();
}
function slowCompressor(concurrency: number): Compressor {
  return {
    concurrency,
    async compress(data) {
      for (let turns = (data[0] + data[data.length - 1]) % 5; turns > 0; turns--) await new Promise((resolve) => setImmediate(resolve));
      return scramble(data); // read late, as deflate on the thread pool does: the buffer must still hold the block
    },
    async close() {},
  };
}
/** The policy under test: keep the packed form unless its first byte is a multiple of 3 (then store whole). */
const pack: CompressedBlocksOptions<Uint8Array | undefined>['pack'] = async (data, compressor) => {
  const packed = await compressor.compress(data, 'zlib');
  return packed[0] % 3 === 0 ? undefined : packed;
};

const pieceArb = diskPieceArb(2500 * KiB, 300 * KiB);

/** The non-zero blocks of `model`, each whole (zero tail past the end). */
function nonZeroBlocks(model: Uint8Array, blockSize: number): Array<{ index: number; data: Uint8Array }> {
  const out: Array<{ index: number; data: Uint8Array }> = [];
  for (let b = 0; b * blockSize < model.length; b++) {
    const data = new Uint8Array(blockSize);
    data.set(model.subarray(b * blockSize, (b + 1) * blockSize));
    if (data.some((x) => x !== 0)) out.push({ index: b, data });
  }
  return out;
}

/** What a writer would store: each block's index, whether it was packed, and the bytes (packed or whole) back to back, copied as they come. */
async function run(disk: VirtualDisk, blockSize: number, opts: CompressedBlocksOptions<Uint8Array | undefined>) {
  const indexes: number[] = [];
  const packed: boolean[] = [];
  const bytes: Buffer[] = [];
  for await (const b of compressedBlocks(disk, blockSize, opts)) {
    indexes.push(b.index);
    packed.push(b.packed !== undefined);
    bytes.push(Buffer.from(b.packed ?? b.data));
  }
  return { indexes, packed, bytes: Buffer.concat(bytes), pieces: bytes };
}

describe('compressedBlocks', () => {
  it('hands out exactly the non-zero blocks, in order, packed as the policy says, for any thread count (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(512, 4 * KiB, 64 * KiB, 2048 * KiB),
        fc.integer({ min: 1, max: 3000 * KiB }),
        fc.array(pieceArb, { maxLength: 8 }),
        fc.integer({ min: 1, max: 6 }),
        async (blockSize, size, pieces, threads) => {
          const { disk, model } = diskOfPieces(size, pieces);
          const progress: number[] = [];
          const got = await run(disk, blockSize, { compressor: slowCompressor(threads), pack, onProgress: (done) => progress.push(done) });
          const want = nonZeroBlocks(model, blockSize);
          const packedForm = want.map(({ data }) => scramble(data));
          const keep = packedForm.map((p) => p[0] % 3 !== 0);
          expect(got.indexes).toEqual(want.map((b) => b.index));
          expect(got.packed).toEqual(keep);
          expect(got.bytes.equals(Buffer.concat(want.map((b, k) => (keep[k] ? packedForm[k] : b.data))))).toBe(true);
          expect(progress).toEqual([...progress].sort((a, b) => a - b));
          expect(progress.every((done) => done <= size)).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('with real deflate on 1 and 3 threads: the same bytes, each inflating to its block', async () => {
    const { disk, model } = diskOfPieces(3000 * KiB, [
      { at: 0, length: 200 * KiB, seed: 1, zeros: false },
      { at: 700 * KiB, length: 64 * KiB, seed: 0, zeros: true },
      { at: 900 * KiB, length: 1500 * KiB, seed: 9, zeros: false },
    ]);
    const results = [];
    for (const threads of [1, 3]) {
      const compressor = createCompressor({ threads });
      try {
        results.push(await run(disk, 64 * KiB, { compressor, pack: (data, c) => c.compress(data, 'deflate-raw', 6) }));
      } finally {
        await compressor.close();
      }
    }
    expect(results[1].indexes).toEqual(results[0].indexes);
    expect(results[1].bytes.equals(results[0].bytes)).toBe(true);
    const want = nonZeroBlocks(model, 64 * KiB);
    expect(results[0].indexes).toEqual(want.map((b) => b.index));
    for (const [k, piece] of results[0].pieces.entries()) expect(inflateRawSync(piece).equals(want[k].data)).toBe(true);
  });
});
