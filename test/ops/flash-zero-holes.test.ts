/**
 * zero-holes.ts' discard way, where the device does not read zeros after it: an erased SD card
 * reads 0xFF, and the ends of a range that do not fill an erase unit keep their old bytes. A
 * stand-in kernel whose BLKDISCARD forgets only some blocks (or none) on a regular file: every
 * block that does not read zeros afterwards is written with zeros, and only the rest is counted
 * as zeroed by the device.
 */
import { readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KernelIo } from '../../src/io/kernel/ffi.js';
import { openDeviceWriter } from '../../src/ops/flash/device-writer.js';
import { openReadBack } from '../../src/ops/flash/read-back.js';
import { holeZeroer, holeZeroing } from '../../src/ops/flash/zero-holes.js';
import { tempDir } from '../helpers/golden.js';

const KiB = 1024;
const CHUNK = 64 * KiB; // small chunks: ranges cross several

describe('holes zeroed by discarding', () => {
  it('blocks the discard left non-zero are written with zeros; only the others count as zeroed by the device (property)', async () => {
    const dir = tempDir('diskmint-zero-holes-');
    const size = 300 * KiB + 1536; // a last block short of 4 KiB
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: size - 1 }).chain((offset) => fc.tuple(fc.constant(offset), fc.integer({ min: 1, max: size - offset }))),
        fc.uint8Array({ minLength: 76, maxLength: 76 }), // per 4 KiB block: what the stand-in discard leaves there
        async ([offset, length], leaves) => {
          const path = join(dir, 'card.bin');
          writeFileSync(path, Buffer.alloc(size, 0xaa));
          // The stand-in: a block it "erases" reads as zeros, 0xFF, or keeps its old bytes.
          const kernel: KernelIo = {
            seek: () => -1,
            async discard(fd, at, n) {
              for (let b = Math.floor(at / 4096); b * 4096 < at + n; b++) {
                const from = Math.max(at, b * 4096);
                const to = Math.min(at + n, (b + 1) * 4096);
                const mode = leaves[b] % 3; // 0: zeros, 1: 0xFF, 2: old bytes
                if (mode < 2) writeSync(fd, Buffer.alloc(to - from, mode === 0 ? 0 : 0xff), 0, to - from, from);
              }
              return 0;
            },
          };
          const device = await openDeviceWriter(path, size, { block: false, chunk: CHUNK, count: 1 });
          const zeroer = holeZeroer('discard', kernel, device, () => openReadBack(path, size, CHUNK, 1));
          try {
            expect(await zeroer.zero(offset, length)).toBe(true);
          } finally {
            await zeroer.close();
            await device.close();
          }
          const got = readFileSync(path);
          expect(got.subarray(offset, offset + length).every((b) => b === 0)).toBe(true);
          expect(got.subarray(0, offset).every((b) => b === 0xaa) && got.subarray(offset + length).every((b) => b === 0xaa)).toBe(true);
          // Counted as zeroed by the device: the parts of blocks it left as zeros.
          let expected = 0;
          for (let b = Math.floor(offset / 4096); b * 4096 < offset + length; b++) {
            if (leaves[b] % 3 === 0) expected += Math.min(offset + length, (b + 1) * 4096) - Math.max(offset, b * 4096);
          }
          expect(zeroer.zeroedInKernelBytes).toBe(expected);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('a failed call leaves the range to be written; the way is chosen from what the device has', async () => {
    const dir = tempDir('diskmint-zero-holes-');
    const path = join(dir, 'dev.bin');
    writeFileSync(path, Buffer.alloc(64 * KiB, 0xaa));
    const refusing: KernelIo = { seek: () => -1, discard: async () => -95, zeroOut: async () => -95 }; // EOPNOTSUPP
    const device = await openDeviceWriter(path, 64 * KiB, { block: false, chunk: CHUNK, count: 1 });
    try {
      for (const mode of ['discard', 'write-zeroes'] as const) {
        const z = holeZeroer(mode, refusing, device, () => openReadBack(path, 64 * KiB, CHUNK, 1));
        expect(await z.zero(0, 8192)).toBe(false);
        expect(z.zeroedInKernelBytes).toBe(0);
        await z.close();
      }
    } finally {
      await device.close();
    }
    const block = { path: '/dev/x', kind: 'block' as const, size: 1, isPartition: false, inUse: [] };
    const both: KernelIo = { seek: () => -1, discard: async () => 0, zeroOut: async () => 0 };
    expect(holeZeroing({ ...block, zeroing: { writeZeroes: true, discard: true } }, both)).toBe('write-zeroes');
    expect(holeZeroing({ ...block, zeroing: { writeZeroes: false, discard: true } }, both)).toBe('discard');
    expect(holeZeroing({ ...block, zeroing: { writeZeroes: false, discard: false } }, both)).toBe('write');
    expect(holeZeroing({ ...block, zeroing: { writeZeroes: true, discard: true } }, undefined)).toBe('write');
    expect(holeZeroing({ ...block, kind: 'file' }, both)).toBe('write');
  });
});
