import fc from 'fast-check';
import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BMAP_BLOCK_SIZE, blockMapOf, hashReaderRange, mappedBlockRanges, rangeBytes } from '../../src/ops/bmap.js';
import { openDisk } from '../../src/io/open-disk.js';
import type { BmapRange } from '../../formats/bmap/bmap.js';
import type { ContainerReader } from '../../src/containers/types.js';
import { tempDir } from '../helpers/golden.js';

const MiB = 1 << 20;

/** The map read twice: allocated ranges first (the raw reader's scan), then each range hashed. */
async function twoPassRanges(reader: ContainerReader): Promise<BmapRange[]> {
  const out: BmapRange[] = [];
  for await (const r of mappedBlockRanges(reader)) {
    const { offset, length } = rangeBytes(r, BMAP_BLOCK_SIZE, reader.size);
    out.push({ ...r, checksum: await hashReaderRange(reader, offset, length, 'sha256', new Uint8Array(MiB)) });
  }
  return out;
}

describe('the block map of a raw image', () => {
  it('made in one pass over its data ranges equals the map read twice: holes, written zeros, a short tail (property)', async () => {
    const dir = tempDir('bmap-');
    let n = 0;
    const pieces = fc.array(fc.tuple(fc.integer({ min: 0, max: 12 * MiB }), fc.integer({ min: 1, max: 3 * MiB }), fc.integer({ min: 0, max: 255 })), {
      maxLength: 6,
    });
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 13 * MiB }), pieces, async (size, writes) => {
        const path = join(dir, `d${n++}.raw`);
        const fd = openSync(path, 'w');
        ftruncateSync(fd, size); // holes, found by SEEK_DATA where the kernel path runs
        for (const [at, len, v] of writes) if (at < size) writeSync(fd, new Uint8Array(Math.min(len, size - at)).fill(v), 0, Math.min(len, size - at), at); // v = 0: written zeros
        closeSync(fd);
        const { reader } = await openDisk(path);
        try {
          const map = await blockMapOf(reader);
          expect(map.ranges).toEqual(await twoPassRanges(reader));
          expect(map.mappedBlocksCount).toBe(map.ranges.reduce((k, r) => k + r.last - r.first + 1, 0));
          expect(map.imageSize).toBe(size);
        } finally {
          await reader.close();
        }
      }),
      { numRuns: 40 },
    );
  });
});
