import fc from 'fast-check';
import { inflateRawSync, inflateSync } from 'node:zlib';
import { createCompressor, zstdDecompress } from '../../src/containers/compress.js';
import { describe, expect, it } from 'vitest';
import { forEachConcurrent, mapOrdered } from '../../src/io/concurrency.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('forEachConcurrent', () => {
  it('visits every item once, with at most `workers` calls running (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(3), { maxLength: 40 }), fc.integer({ min: 1, max: 6 }), async (delays, workers) => {
        const seen: number[] = [];
        let running = 0;
        let most = 0;
        await forEachConcurrent(delays.keys(), workers, async (i, worker) => {
          expect(worker).toBeLessThan(workers);
          most = Math.max(most, ++running);
          await tick(delays[i]);
          seen.push(i);
          running--;
        });
        expect([...seen].sort((a, b) => a - b)).toEqual([...delays.keys()]);
        expect(most).toBeLessThanOrEqual(workers);
      }),
      { numRuns: 30 },
    );
  });

  it('after a failure starts nothing new, lets running calls settle, then throws the first error', async () => {
    const started: number[] = [];
    let settled = 0;
    const run = forEachConcurrent(Array.from({ length: 20 }, (_, i) => i), 3, async (i) => {
      started.push(i);
      if (i === 1) throw new Error('first');
      if (i === 2) {
        await tick(5);
        settled++;
        throw new Error('second');
      }
      await tick(10);
      settled++;
    });
    await expect(run).rejects.toThrow('first');
    expect(started).toEqual([0, 1, 2]);
    expect(settled).toBe(2);
  });
});

describe('mapOrdered', () => {
  it('yields results in input order whatever order they finish in', async () => {
    const out: number[] = [];
    for await (const v of mapOrdered([30, 1, 20, 2, 10], 3, async (ms) => (await tick(ms), ms))) out.push(v);
    expect(out).toEqual([30, 1, 20, 2, 10]);
  });
});

describe('createCompressor', () => {
  it("compresses a view of a caller's Buffer without detaching or changing it (zstd and deflate)", async () => {
    const compressor = createCompressor({ threads: 2 });
    try {
      const backing = Buffer.alloc(1 << 20);
      for (let i = 0; i < backing.length; i++) backing[i] = (i * 31) % 253;
      const before = Buffer.from(backing);
      for (const kind of ['zstd', 'zlib', 'deflate-raw'] as const) {
        const view = backing.subarray(65536, 2 * 65536); // a Buffer view: its .slice() is not a copy
        const packed = await compressor.compress(view, kind);
        expect(backing.length).toBe(1 << 20);
        expect(backing.equals(before)).toBe(true);
        const back = kind === 'zstd' ? await zstdDecompress(packed, 1 << 20) : kind === 'zlib' ? inflateSync(packed) : inflateRawSync(packed);
        expect(Buffer.from(back).equals(view)).toBe(true);
      }
    } finally {
      await compressor.close();
    }
  });

  it('zstd: blocks of changing sizes, many at once, come back intact while input buffers are reused (property)', async () => {
    const compressor = createCompressor({ threads: 2 });
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.record({ length: fc.integer({ min: 0, max: 200_000 }), seed: fc.nat(250), random: fc.boolean() }), { minLength: 1, maxLength: 24 }), async (blocks) => {
          const inputs = blocks.map(({ length, seed, random }) => {
            const b = new Uint8Array(length);
            for (let i = 0; i < length; i++) b[i] = random ? (Math.imul(i + 1, 2654435761 + seed) >>> 24) : (i >> 9) + seed;
            return b;
          });
          // All in flight at once: spare buffers of one size get offered to blocks of another.
          const packed = await Promise.all(inputs.map((b) => compressor.compress(b, 'zstd')));
          for (const [k, p] of packed.entries()) expect(Buffer.from(await zstdDecompress(p, 1 << 20)).equals(Buffer.from(inputs[k]))).toBe(true);
        }),
        { numRuns: 30 },
      );
    } finally {
      await compressor.close();
    }
  });
});

describe('pipelines with nothing to wait for', () => {
  /** Ticks of a 5 ms interval while `work` runs on microtasks alone (busy items, no I/O). */
  async function ticksDuring(work: (busyItem: () => Promise<void>) => Promise<void>): Promise<number> {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const busyItem = async () => {
      const until = Date.now() + 2;
      while (Date.now() < until); // CPU work, as zero-scanning a chunk is
    };
    try {
      const before = ticks;
      await work(busyItem);
      return ticks - before;
    } finally {
      clearInterval(timer);
    }
  }

  // 150 items of 2 ms: without turns of the event loop no timer (and no signal handler) runs.
  it('forEachConcurrent lets the event loop turn (timers, Ctrl-C) while it runs', async () => {
    expect(await ticksDuring((busy) => forEachConcurrent(Array.from({ length: 150 }, (_, i) => i), 4, busy))).toBeGreaterThan(0);
  });

  it('mapOrdered does too', async () => {
    const ticks = await ticksDuring(async (busy) => {
      for await (const _ of mapOrdered(Array.from({ length: 150 }, (_, i) => i), 4, busy));
    });
    expect(ticks).toBeGreaterThan(0);
  });
});
