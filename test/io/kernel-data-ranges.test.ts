/**
 * Data ranges from the kernel (src/io/kernel/, lseek SEEK_DATA / SEEK_HOLE through koffi) against
 * the pure path (read everything, test for zeros): on sparse files made with truncate and pwrite
 * at random offsets, both give exactly the same allocated ranges, and those are the non-zero
 * 64 KiB blocks a plain loop over the file's bytes finds. Holes are not read on the kernel path.
 */
import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ENXIO, kernelIo, useKoffiLoader, type KernelIo } from '../../src/io/kernel/ffi.js';
import { seekDataIo, seekDataRanges, type Range } from '../../src/io/kernel/data-ranges.js';
import { rawContainer, type RawContainer } from '../../src/containers/raw/reader.js';
import { openDisk } from '../../src/io/open-disk.js';
import { openRawFile } from '../../src/model/disk-reader.js';
import { DiskmintError } from '../../src/model/errors.js';
import { tempDir } from '../helpers/golden.js';
import { eachTestChoosesItsPath } from '../helpers/kernel-path.js';

const BLOCK = 64 << 10;

eachTestChoosesItsPath();

interface Write {
  at: number;
  length: number;
  /** 0: the bytes are zeros (allocated, but no data); otherwise a fill pattern. */
  fill: number;
}

/** A sparse file of `size` bytes: ftruncate, then each write at its offset (clipped to the size). */
function sparseFile(dir: string, name: string, size: number, writes: Write[]): string {
  const path = join(dir, name);
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, size);
    for (const w of writes) {
      const length = Math.min(w.length, size - w.at);
      if (length <= 0) continue;
      const bytes = Buffer.alloc(length);
      if (w.fill) for (let i = 0; i < length; i++) bytes[i] = (w.fill + i) % 255 || 1;
      writeSync(fd, bytes, 0, length, w.at);
    }
  } finally {
    closeSync(fd);
  }
  return path;
}

/** The non-zero BLOCK-sized blocks of `bytes` (the last one may be short), neighbours joined: the reference. */
function nonZeroBlocksOf(bytes: Uint8Array): Range[] {
  const out: Range[] = [];
  for (let at = 0; at < bytes.length; at += BLOCK) {
    const end = Math.min(bytes.length, at + BLOCK);
    if (bytes.subarray(at, end).every((b) => b === 0)) continue;
    const last = out.at(-1);
    if (last && last.offset + last.length === at) last.length += end - at;
    else out.push({ offset: at, length: end - at });
  }
  return out;
}

async function collect(ranges: AsyncIterable<Range> | Iterable<Range>): Promise<Range[]> {
  const out: Range[] = [];
  for await (const r of ranges) out.push({ offset: r.offset, length: r.length });
  return out;
}

/** The raw container of `path` on one path: the kernel's (io given) or the pure one (undefined). */
async function openRaw(path: string, io: KernelIo | undefined): Promise<RawContainer> {
  return rawContainer(await openRawFile(path), path, { io });
}

const writeArb = (size: number) =>
  fc.record({
    at: fc.oneof(
      fc.integer({ min: 0, max: size - 1 }),
      fc.constant(Math.max(0, size - 1)),
      fc.integer({ min: 0, max: 40 }).map((k) => Math.min(size - 1, k * BLOCK)),
    ),
    length: fc.oneof(fc.integer({ min: 1, max: 3 * BLOCK }), fc.constantFrom(1, 4096, BLOCK)),
    fill: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 254 })),
  });

describe('kernel data ranges', () => {
  it('koffi loads on this Linux machine (else every test below would compare the pure path with itself)', () => {
    expect(process.platform).toBe('linux');
    expect(kernelIo()).toBeDefined();
    expect(kernelIo()!.copyFileRange).toBeDefined();
  });

  it('give the same allocated ranges as the pure scan, the non-zero 64 KiB blocks (property)', async () => {
    const dir = tempDir();
    const io = kernelIo()!;
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 << 20 }).chain((size) => fc.tuple(fc.constant(size), fc.array(writeArb(size), { maxLength: 6 }))),
        async ([size, writes]) => {
          const path = sparseFile(dir, `f${n++}.raw`, size, writes);
          const expected = nonZeroBlocksOf(readFileSync(path));
          const kernel = await openRaw(path, io);
          const pure = await openRaw(path, undefined);
          try {
            expect(kernel.dataMap).toBe('kernel-seek-data');
            expect(pure.dataMap).toBe('scan');
            expect(await collect(kernel.allocatedRanges())).toEqual(expected);
            expect(await collect(pure.allocatedRanges())).toEqual(expected);
            // The kernel's map, widened to whole blocks, holds every non-zero block.
            const mapped = await collect(kernel.dataRanges());
            for (const r of mapped) expect([r.offset % BLOCK, (r.offset + r.length) % BLOCK === 0 || r.offset + r.length === size]).toEqual([0, true]);
            for (const r of expected) expect(mapped.some((m) => m.offset <= r.offset && r.offset + r.length <= m.offset + m.length)).toBe(true);
            expect(await collect(pure.dataRanges())).toEqual([{ offset: 0, length: size }]);
          } finally {
            await kernel.close();
            await pure.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('cover every written byte, and nothing of a file that is only a hole (ENXIO: no data)', async () => {
    const dir = tempDir();
    const io = kernelIo()!;
    const size = 64 << 20;
    const path = sparseFile(dir, 'edges.raw', size, [
      { at: 5, length: 3, fill: 9 },
      { at: 20 << 20, length: 8192, fill: 0 }, // allocated zeros: data to the kernel, no data to the scan
      { at: size - 1, length: 1, fill: 7 }, // data at the very end
    ]);
    const handle = await open(path, 'r');
    try {
      const ranges = [...seekDataRanges(io, handle.fd, 0, size, path)];
      expect(ranges.length).toBe(3);
      expect(ranges[0].offset).toBe(0);
      expect(ranges.at(-1)!.offset + ranges.at(-1)!.length).toBe(size);
      expect(ranges.reduce((n, r) => n + r.length, 0)).toBeLessThan(1 << 20); // the holes are not data
      // Clipped to the window asked for: nothing between the first and the second range.
      expect([...seekDataRanges(io, handle.fd, 1 << 20, 20 << 20, path)]).toEqual([]);
    } finally {
      await handle.close();
    }
    const raw = await openRaw(path, io);
    try {
      expect(await collect(raw.allocatedRanges())).toEqual([
        { offset: 0, length: BLOCK },
        { offset: size - BLOCK, length: BLOCK },
      ]);
    } finally {
      await raw.close();
    }
    const empty = sparseFile(dir, 'hole.raw', 1 << 30, []);
    const hole = await openRaw(empty, io);
    try {
      expect(hole.dataMap).toBe('kernel-seek-data');
      expect(await collect(hole.dataRanges())).toEqual([]);
      expect(await collect(hole.allocatedRanges())).toEqual([]);
    } finally {
      await hole.close();
    }
  });

  it('fall back to the scan where lseek has no SEEK_HOLE (EINVAL), and report other failures naming the file', async () => {
    const dir = tempDir();
    const path = sparseFile(dir, 'x.raw', 1 << 20, [{ at: BLOCK, length: 10, fill: 3 }]);
    const noSeekData: KernelIo = { seek: () => -22 };
    const raw = await openRaw(path, noSeekData);
    try {
      expect(raw.dataMap).toBe('scan');
      expect(await collect(raw.allocatedRanges())).toEqual([{ offset: BLOCK, length: BLOCK }]);
    } finally {
      await raw.close();
    }
    const handle = await open(path, 'r');
    try {
      expect(seekDataIo(handle.fd, { seek: () => -ENXIO })).toBeDefined(); // an empty file answers ENXIO
      const failing: KernelIo = { seek: (_fd, _at, whence) => (whence === 4 ? 0 : -5) }; // EIO on SEEK_DATA
      const walk = () => [...seekDataRanges(failing, handle.fd, 0, 1 << 20, path)];
      expect(walk).toThrow(DiskmintError);
      expect(walk).toThrow(expect.objectContaining({ code: 'IO', message: `finding the data of ${path} failed: lseek SEEK_DATA at byte 0: EIO` }));
    } finally {
      await handle.close();
    }
  });

  it('fall back silently when koffi cannot be loaded, and with DISKMINT_PURE_IO=1', async () => {
    const dir = tempDir();
    const path = sparseFile(dir, 'y.raw', 4 << 20, [{ at: 3 << 20, length: 100, fill: 1 }]);
    const open = async () => {
      const { reader } = await openDisk(path);
      try {
        return { dataMap: (reader as RawContainer).dataMap, ranges: await collect(reader.allocatedRanges()) };
      } finally {
        await reader.close();
      }
    };
    const expected = [{ offset: 3 << 20, length: BLOCK }];
    expect(await open()).toEqual({ dataMap: 'kernel-seek-data', ranges: expected });
    useKoffiLoader(() => {
      throw new Error("Cannot find module 'koffi'");
    });
    expect(kernelIo()).toBeUndefined();
    expect(await open()).toEqual({ dataMap: 'scan', ranges: expected });
    // A package that loads but whose calls do not work (lseek answers 0 even for fd -1).
    useKoffiLoader(() => ({ load: () => ({ func: () => () => 0 }), sizeof: () => 8, errno: () => 0 }));
    expect(kernelIo()).toBeUndefined();
    expect(await open()).toEqual({ dataMap: 'scan', ranges: expected });
    useKoffiLoader();
    process.env.DISKMINT_PURE_IO = '1';
    expect(kernelIo()).toBeUndefined();
    expect(await open()).toEqual({ dataMap: 'scan', ranges: expected });
    delete process.env.DISKMINT_PURE_IO;
    expect(await open()).toEqual({ dataMap: 'kernel-seek-data', ranges: expected });
  });
});
