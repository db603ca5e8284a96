/**
 * The file sink's large writes past the page cache (src/io/sink-direct.ts): the bytes in the file
 * are those given, whatever the alignment of the write (its aligned middle goes O_DIRECT, its ends
 * buffered), on both paths; where the file system accepts O_DIRECT the middle really went direct,
 * and with DISKMINT_PURE_IO=1 nothing did.
 */
import { closeSync, constants, openSync, readFileSync, unlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fileSink } from '../../src/io/sink.js';
import { DIRECT_ALIGN } from '../../src/io/sink-direct.js';
import { isPageAligned, pageAlignedBuffer } from '../../src/io/aligned-memory.js';
import { tempDir } from '../helpers/golden.js';
import { eachTestChoosesItsPath } from '../helpers/kernel-path.js';

const KiB = 1024;

/** Whether files in `dir` open with O_DIRECT (tmpfs and some FUSE file systems refuse it). */
function directWorksIn(dir: string): boolean {
  const probe = join(dir, 'probe');
  try {
    closeSync(openSync(probe, constants.O_RDWR | constants.O_CREAT | (constants.O_DIRECT ?? 0)));
    return process.platform === 'linux';
  } catch {
    return false;
  } finally {
    try {
      unlinkSync(probe);
    } catch {
      /* never made */
    }
  }
}

/** Never zero (the sink writes every byte), never repeating at a multiple of 4 KiB (a misplaced block shows). */
const PATTERN = Uint8Array.from({ length: (4 << 20) + 256 }, (_, i) => (i % 251) + 1);

function bytes(length: number, seed: number): Uint8Array {
  return PATTERN.subarray(seed, seed + length);
}

/** Write `batches` (each parts back to back, after a skip of `gap`) and return the file and the bytes that went direct. */
async function writeBatches(path: string, batches: { gap: number; parts: number[]; seed: number }[]) {
  const handle = await open(path, 'wx');
  const sink = fileSink(handle);
  let expected = new Uint8Array(0);
  const reused = new Uint8Array(8 << 20); // the caller reuses its buffer as soon as a write resolves
  try {
    for (const { gap, parts, seed } of batches) {
      await sink.skip(gap);
      const views: Uint8Array[] = [];
      let at = 0;
      for (const [i, length] of parts.entries()) {
        const view = reused.subarray(at, at + length);
        view.set(bytes(length, seed + i));
        views.push(view);
        at += length;
      }
      const start = sink.position;
      const grown = new Uint8Array(start + at);
      grown.set(expected);
      grown.set(reused.subarray(0, at), start);
      expected = grown;
      await sink.writeParts(views);
      reused.fill(0xee);
    }
    await sink.finish();
  } finally {
    await handle.close();
  }
  return { written: readFileSync(path), expected, directBytes: sink.directBytes };
}

const batchArb = fc.record({
  gap: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3 * DIRECT_ALIGN }), fc.integer({ min: 0, max: 2 << 20 })),
  parts: fc.array(fc.oneof(fc.integer({ min: 1, max: 700 }), fc.integer({ min: 60 * KiB, max: 1200 * KiB })), { minLength: 1, maxLength: 5 }),
  seed: fc.integer({ min: 0, max: 255 }),
});

describe('file sink: large writes past the page cache', () => {
  eachTestChoosesItsPath();

  it('puts every byte where it was given, on both paths, at any alignment (property)', async () => {
    const dir = tempDir('diskmint-direct-');
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(batchArb, { minLength: 1, maxLength: 5 }), fc.boolean(), async (batches, pure) => {
        if (pure) process.env.DISKMINT_PURE_IO = '1';
        else delete process.env.DISKMINT_PURE_IO;
        const { written, expected } = await writeBatches(join(dir, `out${n++}.bin`), batches);
        expect(written.length).toBe(expected.length);
        expect(Buffer.compare(written, Buffer.from(expected))).toBe(0);
      }),
      { numRuns: 25 },
    );
  });

  it('sends the aligned middle of a large write direct where the file system allows, its unaligned ends buffered', async () => {
    const dir = tempDir('diskmint-direct-');
    const batch = { gap: 1000, parts: [300 * KiB, 5, 2 << 20, 777 * KiB], seed: 9 }; // starts and ends off the alignment
    const { written, expected, directBytes } = await writeBatches(join(dir, 'kernel.bin'), [batch]);
    expect(Buffer.compare(written, Buffer.from(expected))).toBe(0);
    const total = batch.parts.reduce((a, b) => a + b, 0);
    const middle = Math.floor((batch.gap + total) / DIRECT_ALIGN) * DIRECT_ALIGN - Math.ceil(batch.gap / DIRECT_ALIGN) * DIRECT_ALIGN;
    expect(directBytes).toBe(directWorksIn(dir) ? middle : 0);
  });

  it('writes buffered only with DISKMINT_PURE_IO=1, the same bytes', async () => {
    const dir = tempDir('diskmint-direct-');
    const batches = [{ gap: 0, parts: [4 << 20], seed: 3 }];
    process.env.DISKMINT_PURE_IO = '1';
    const pure = await writeBatches(join(dir, 'pure.bin'), batches);
    delete process.env.DISKMINT_PURE_IO;
    const kernel = await writeBatches(join(dir, 'kernel.bin'), batches);
    expect(pure.directBytes).toBe(0);
    expect(kernel.directBytes).toBe(directWorksIn(dir) ? 4 << 20 : 0);
    expect(Buffer.compare(pure.written, kernel.written)).toBe(0);
  });

  it('puts concurrent positioned writes where they were given, on both paths (property)', async () => {
    const dir = tempDir('diskmint-direct-');
    let n = 0;
    const regionArb = fc.record({
      length: fc.oneof(fc.integer({ min: 1, max: 9000 }), fc.integer({ min: 256 * KiB, max: 1500 * KiB })),
      gap: fc.integer({ min: 0, max: 3 * DIRECT_ALIGN }),
      seed: fc.integer({ min: 0, max: 255 }),
      // From page-aligned memory (written without a staging copy when the write starts on a page) or not.
      aligned: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(regionArb, { minLength: 1, maxLength: 6 }), fc.boolean(), async (regions, pure) => {
        if (pure) process.env.DISKMINT_PURE_IO = '1';
        else delete process.env.DISKMINT_PURE_IO;
        // Disjoint regions, written all at once in a shuffled order, as the raw writer's loops do.
        let at = 0;
        const placed = regions.map((r) => {
          at += r.gap;
          const data = r.aligned ? pageAlignedBuffer(r.length) : new Uint8Array(r.length);
          data.set(bytes(r.length, r.seed));
          const p = { at, data };
          at += r.length;
          return p;
        });
        const expected = new Uint8Array(at);
        for (const p of placed) expected.set(p.data, p.at);
        const path = join(dir, `pw${n++}.bin`);
        const handle = await open(path, 'wx');
        try {
          const sink = fileSink(handle);
          await Promise.all([...placed].reverse().map((p) => sink.pwrite(p.data, p.at)));
          await sink.finish(at);
        } finally {
          await handle.close();
        }
        expect(Buffer.compare(readFileSync(path), Buffer.from(expected))).toBe(0);
      }),
      { numRuns: 25 },
    );
  });

  it('writes a page-aligned buffer on a page boundary direct from the caller’s memory, the same bytes', async () => {
    const dir = tempDir('diskmint-direct-');
    const data = pageAlignedBuffer(2 << 20);
    data.set(bytes(2 << 20, 5));
    expect(isPageAligned(data)).toBe(true);
    expect(isPageAligned(data.subarray(DIRECT_ALIGN))).toBe(true);
    expect(isPageAligned(data.subarray(100))).toBe(false);
    expect(isPageAligned(new Uint8Array(2 << 20))).toBe(false);
    const path = join(dir, 'aligned.bin');
    const handle = await open(path, 'wx');
    const sink = fileSink(handle);
    try {
      await sink.pwrite(data.subarray(DIRECT_ALIGN), 3 * DIRECT_ALIGN);
      await sink.finish();
    } finally {
      await handle.close();
    }
    const written = readFileSync(path);
    expect(written.length).toBe(2 * DIRECT_ALIGN + (2 << 20));
    expect(Buffer.compare(written.subarray(3 * DIRECT_ALIGN), Buffer.from(data.subarray(DIRECT_ALIGN)))).toBe(0);
    expect(sink.directBytes).toBe(directWorksIn(dir) ? (2 << 20) - DIRECT_ALIGN : 0);
  });
});
