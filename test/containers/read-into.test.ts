/**
 * Every container reader, asked to read into a caller's buffer that still holds old bytes,
 * returns exactly the disk's bytes: holes, zero clusters and unallocated blocks come back as
 * zeros, not as what the buffer held. Random sparse disks, written by diskmint in each format,
 * read at random offsets and lengths, fresh and into a dirty buffer.
 */
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { openDisk, VirtualDisk, writeImage } from '../../src/index.js';
import { readInto } from '../../src/model/disk-reader.js';
import { tempDir } from '../helpers/golden.js';

const KiB = 1024;
const SIZE = 6 * 1024 * KiB;
const OUTPUTS = [
  { format: 'raw' },
  { format: 'qcow2' },
  { format: 'qcow2', compress: true },
  { format: 'vhd', options: 'subformat=dynamic' },
  { format: 'vhd', options: 'subformat=fixed' },
  { format: 'vhdx' },
  { format: 'vmdk', options: 'subformat=monolithicSparse' },
  { format: 'vmdk', options: 'subformat=streamOptimized' },
  { format: 'vmdk', options: 'subformat=monolithicFlat' },
] as const;

describe('reading into a reused buffer', () => {
  it('gives the disk bytes in every format, whatever the buffer held (property)', async () => {
    const dir = tempDir();
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ at: fc.nat(SIZE - 1), length: fc.integer({ min: 1, max: 300 * KiB }) }), { minLength: 1, maxLength: 6 }),
        fc.constantFrom(...OUTPUTS),
        fc.array(fc.record({ at: fc.nat(SIZE - 1), length: fc.integer({ min: 1, max: 2048 * KiB }) }), { minLength: 1, maxLength: 5 }),
        async (pieces, output, reads) => {
          const model = new Uint8Array(SIZE);
          const disk = new VirtualDisk(SIZE);
          let end = 0;
          for (const p of [...pieces].sort((x, y) => x.at - y.at)) {
            const at = Math.max(p.at, end);
            const length = Math.min(p.length, SIZE - at);
            if (length <= 0) continue;
            const bytes = new Uint8Array(length).map((_, i) => ((at + i) * 13) % 253 || 5);
            disk.placeBytes(at, bytes);
            model.set(bytes, at);
            end = at + length;
          }
          const path = join(dir, `img${n++}.${output.format}`);
          await writeImage(disk, path, { ...output, progress: false });
          const { reader } = await openDisk(path);
          try {
            // VHD rounds its size up to a CHS geometry: the disk reads on as zeros.
            const whole = new Uint8Array(reader.size);
            whole.set(model);
            const dirty = new Uint8Array(2048 * KiB);
            for (const r of reads) {
              const want = whole.subarray(r.at, Math.min(whole.length, r.at + r.length));
              dirty.fill(0xee);
              const into = dirty.subarray(0, r.length);
              const got = await readInto(reader, r.at, into);
              expect(got).toBe(want.length);
              expect(Buffer.compare(into.subarray(0, got), want)).toBe(0);
              expect(Buffer.compare(await reader.read(r.at, r.length), want)).toBe(0);
            }
          } finally {
            await reader.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
