/**
 * The data pass the seekable container writers share (qcow2, dynamic VHD and VHDX, sparse VMDK):
 * every non-zero block in order, back to back (after a prefix when given), all-zero blocks left
 * out, each stored block reported with its place. Checked against a model on random disks: block
 * sizes below, at and above the 1 MiB read chunk, data that straddles blocks, zero runs inside
 * data, and a disk whose end cuts the last block short.
 */
import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { writeNonZeroBlocks } from '../../src/containers/data-first.js';
import { fileSink } from '../../src/io/sink.js';
import { VirtualDisk } from '../../src/model/extents.js';
import { tempDir } from '../helpers/golden.js';

const KiB = 1024;

const pieceArb = fc.record({
  at: fc.nat(5000 * KiB),
  length: fc.integer({ min: 1, max: 300 * KiB }),
  seed: fc.integer({ min: 0, max: 255 }),
  zeros: fc.boolean(), // an explicitly placed run of zeros: allocated, yet not stored
});

describe('writeNonZeroBlocks', () => {
  it('stores exactly the non-zero blocks, in order, where it says (property)', async () => {
    const dir = tempDir('diskmint-data-first-');
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(512, 4 * KiB, 64 * KiB, 2048 * KiB),
        fc.integer({ min: 1, max: 6000 * KiB }),
        fc.array(pieceArb, { maxLength: 8 }),
        fc.option(fc.integer({ min: 1, max: 600 }), { nil: undefined }),
        async (blockSize, size, pieces, prefixLength) => {
          const disk = new VirtualDisk(size);
          const model = new Uint8Array(size);
          let end = 0; // pieces may not overlap: each starts past the last one's end
          for (const p of pieces.sort((a, b) => a.at - b.at)) {
            const at = Math.max(p.at, end);
            const length = Math.min(p.length, size - at);
            if (length <= 0) continue;
            const data = new Uint8Array(length);
            if (!p.zeros) for (let i = 0; i < length; i++) data[i] = (i * 31 + p.seed) % 251 || 7;
            disk.placeBytes(at, data);
            model.set(data, at);
            end = at + length;
          }
          const prefix = prefixLength === undefined ? undefined : new Uint8Array(prefixLength).fill(0xa5);
          const path = join(dir, `out${n++}.bin`);
          const handle = await open(path, 'wx');
          const sink = fileSink(handle);
          const reported: [number, number][] = [];
          const progress: number[] = [];
          let count: number;
          try {
            count = await writeNonZeroBlocks(disk, sink, blockSize, { prefix, onStored: (index, k) => reported.push([index, k]), onProgress: (done) => progress.push(done) });
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
        },
      ),
      { numRuns: 60 },
    );
  });
});
