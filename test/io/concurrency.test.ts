import fc from 'fast-check';
import { availableParallelism } from 'node:os';
import { deflateRawSync, deflateSync, gzipSync, inflateRawSync, inflateSync } from 'node:zlib';
import { QCOW2_DEFLATE_WINDOW_BITS, createCompressor, deflateChunkSize } from '../../src/containers/compress.js';
import { zstdDecompress } from '../../src/io/zstd.js';
import { deflateOnePass, PassStreams } from '../../src/io/zlib-async.js';
import { createRequire } from 'node:module';
import { describe, expect, it, vi } from 'vitest';
import { concurrencyLimit, forEachConcurrent, mapOrdered } from '../../src/io/concurrency.js';

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
    // Items 0 and 2 finish only when the test releases them: no timer decides what runs when.
    const started: number[] = [];
    const release: Array<(fail: boolean) => void> = [];
    let threeStarted!: () => void;
    const allStarted = new Promise<void>((r) => (threeStarted = r));
    let settled = 0;
    let ended = false;
    const run = forEachConcurrent(
      Array.from({ length: 20 }, (_, i) => i),
      3,
      async (i) => {
        started.push(i);
        if (started.length === 3) threeStarted();
        if (i === 1) throw new Error('first');
        if (i > 2) return; // started after the failure: the check below names it
        const fail = await new Promise<boolean>((r) => (release[i] = r));
        settled++;
        if (fail) throw new Error('second');
      },
    );
    run.then(
      () => (ended = true),
      () => (ended = true),
    );
    await allStarted;
    await new Promise((r) => setImmediate(r)); // item 1's failure has been seen by now
    expect(ended).toBe(false); // items 0 and 2 are still running
    release[2](true);
    await new Promise((r) => setImmediate(r));
    expect(ended).toBe(false); // item 0 still is
    release[0](false);
    await expect(run).rejects.toThrow('first');
    expect(started).toEqual([0, 1, 2]);
    expect(settled).toBe(2);
  });
});

describe('mapOrdered', () => {
  it('yields results in input order whatever order they finish in', async () => {
    // Each call finishes when the test resolves it, last item first.
    const items = [30, 1, 20, 2, 10];
    const resolvers = new Map<number, (v: number) => void>();
    let called!: () => void;
    const allCalled = new Promise<void>((r) => (called = r));
    const out: number[] = [];
    const consume = (async () => {
      const results = mapOrdered(
        items,
        items.length,
        (n) =>
          new Promise<number>((r) => {
            resolvers.set(n, r);
            if (resolvers.size === items.length) called();
          }),
      );
      for await (const v of results) out.push(v);
    })();
    await allCalled;
    for (const n of [...items].reverse()) {
      resolvers.get(n)!(n);
      await new Promise((r) => setImmediate(r));
      if (n !== items[0]) expect(out).toEqual([]); // nothing before the first item is done
    }
    await consume;
    expect(out).toEqual([30, 1, 20, 2, 10]);
  });
});

describe('concurrencyLimit', () => {
  it('runs every call, at most n at once, starting them in the order they came; a failure frees its slot (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ delay: fc.nat(3), fails: fc.boolean() }), { maxLength: 30 }), fc.integer({ min: 1, max: 5 }), async (calls, n) => {
        const limit = concurrencyLimit(n);
        const started: number[] = [];
        let running = 0;
        let most = 0;
        const results = await Promise.allSettled(
          calls.map((c, i) =>
            limit(async () => {
              started.push(i);
              most = Math.max(most, ++running);
              await tick(c.delay);
              running--;
              if (c.fails) throw new Error(`call ${i}`);
              return i;
            }),
          ),
        );
        expect(started).toEqual([...calls.keys()]);
        expect(most).toBeLessThanOrEqual(n);
        if (calls.length >= n && calls.some((c) => c.delay > 0)) expect(most).toBeGreaterThan(0);
        for (const [i, r] of results.entries())
          expect(r).toEqual(calls[i].fails ? { status: 'rejected', reason: new Error(`call ${i}`) } : { status: 'fulfilled', value: i });
      }),
      { numRuns: 40 },
    );
  });

  it('keeps n running while more wait: a freed slot is taken at once', async () => {
    const limit = concurrencyLimit(2);
    let running = 0;
    const seen: number[] = [];
    await Promise.all(
      Array.from({ length: 8 }, () =>
        limit(async () => {
          seen.push(++running);
          await tick(1);
          running--;
        }),
      ),
    );
    // Every call after the first found the other slot busy.
    expect(seen.slice(1).every((r) => r === 2)).toBe(true);
  });
});

describe('deflate in one pass', () => {
  it('deflateChunkSize holds the whole output of any block up to 2 MiB (the largest qcow2 cluster), and at levels 1-9 the bytes are those of node:zlib by default (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 << 20 }),
        fc.constantFrom('random', 'text', 'zeros' as const),
        fc.integer({ min: 0, max: 9 }),
        fc.nat(255),
        (length, kind, level, seed) => {
          const data = new Uint8Array(length);
          for (let i = 0, x = seed + 1; i < length; i++) {
            x = (Math.imul(x, 1103515245) + 12345) >>> 0;
            data[i] = kind === 'random' ? x >>> 24 : kind === 'text' ? 97 + ((i * 7 + seed + (i >> 6)) % 26) : 0;
          }
          const chunkSize = deflateChunkSize(length);
          const calls = [
            (o: object) => deflateRawSync(data, { level, windowBits: QCOW2_DEFLATE_WINDOW_BITS, ...o }),
            (o: object) => deflateSync(data, { level, ...o }),
            (o: object) => gzipSync(data, { level, ...o }),
          ];
          for (const call of calls) {
            const whole = call({ chunkSize });
            expect(whole.length).toBeLessThanOrEqual(chunkSize); // one output buffer: one pass
            // Level 0's stored blocks are cut to the output room zlib is given (deflate.c
            // deflate_stored), so there the bytes follow chunkSize; levels 1-9 never do.
            if (level > 0) expect(whole.equals(call({}))).toBe(true);
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  it('deflateOnePass (streams kept and reset between blocks, one _processChunk each) gives the bytes of the one-shot call with the same room, raw, zlib and gzip, levels 0-9 (property)', async () => {
    // One set of streams for every run: later blocks go through streams reset after earlier ones.
    const streams = new PassStreams();
    const pass = deflateOnePass(streams);
    expect(pass).toBeDefined(); // every Node this runs on has the entry; the fallback is the one-shot call compared with here
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.uint8Array({ minLength: 0, maxLength: 300_000 }),
          fc.integer({ min: 0, max: 9 }),
          fc.integer({ min: 0, max: 3 }),
          async (bytes, level, repeat) => {
            // Repeats make compressible data; raw random bytes exercise stored blocks.
            const data = repeat ? new Uint8Array(bytes.length * (repeat + 1)).map((_, i) => bytes[i % Math.max(1, bytes.length)] ?? 0) : bytes;
            const chunkSize = deflateChunkSize(data.length);
            const cases = [
              ['raw', (o: object) => deflateRawSync(data, { level, windowBits: QCOW2_DEFLATE_WINDOW_BITS, ...o }), { windowBits: QCOW2_DEFLATE_WINDOW_BITS }],
              ['zlib', (o: object) => deflateSync(data, { level, ...o }), {}],
              ['gzip', (o: object) => gzipSync(data, { level, ...o }), {}],
            ] as const;
            for (const [wrapper, oneShot, extra] of cases) {
              // Twice at once, then once more: two streams, the first of them reused.
              const outs = [
                ...(await Promise.all([0, 1].map(() => pass!(data, wrapper, { level, chunkSize, ...extra })))),
                await pass!(data, wrapper, { level, chunkSize, ...extra }),
              ];
              for (const out of outs) expect(Buffer.compare(out, oneShot({ chunkSize }))).toBe(0);
            }
          },
        ),
        { numRuns: 30 },
      );
    } finally {
      streams.close();
    }
  });

  it('a kept stream destroyed after its pass is passed over: the next block gets a new stream and its right bytes', async () => {
    const zlib = createRequire(import.meta.url)('node:zlib') as typeof import('node:zlib');
    const made: { destroy(err: Error): void }[] = [];
    const real = zlib.createDeflateRaw;
    const opened = vi.spyOn(zlib, 'createDeflateRaw').mockImplementation((o) => {
      const stream = real(o);
      made.push(stream);
      return stream;
    });
    const streams = new PassStreams();
    try {
      const pass = deflateOnePass(streams)!;
      const data = new Uint8Array(65536).map((_, i) => i >> 5);
      const opts = { level: 6, windowBits: QCOW2_DEFLATE_WINDOW_BITS, chunkSize: deflateChunkSize(data.length) };
      const expected = deflateRawSync(data, opts);
      expect(Buffer.compare(await pass(data, 'raw', opts), expected)).toBe(0);
      made[made.length - 1].destroy(new Error('gone')); // an error with no pass running: not thrown
      const before = opened.mock.calls.length;
      expect(Buffer.compare(await pass(data, 'raw', opts), expected)).toBe(0);
      expect(opened.mock.calls.length).toBe(before + 1);
    } finally {
      opened.mockRestore();
      streams.close();
    }
  });

  it('a compressor opens one zlib stream for each block compressed at once, not one per block, and gives its outputs their own memory', async () => {
    const zlib = createRequire(import.meta.url)('node:zlib') as typeof import('node:zlib');
    const opened = vi.spyOn(zlib, 'createDeflateRaw');
    const compressor = createCompressor({ threads: 2 });
    try {
      const blocks = Array.from({ length: 40 }, (_, k) => new Uint8Array(65536).map((_, i) => (i * (k + 1)) >> 7));
      const packed: Uint8Array[] = [];
      for await (const p of mapOrdered(blocks, compressor.concurrency, (b) => compressor.compress(b, 'deflate-raw'))) packed.push(p);
      // The probe deflateOnePass opens, then one stream for each block in flight.
      expect(opened.mock.calls.length).toBeLessThanOrEqual(1 + compressor.concurrency);
      // Each output is a copy: the stream's buffer took later blocks without changing it.
      for (const [k, p] of packed.entries()) {
        expect(p.byteLength).toBe(p.buffer.byteLength);
        expect(Buffer.from(inflateRawSync(p)).equals(Buffer.from(blocks[k]))).toBe(true);
      }
    } finally {
      opened.mockRestore();
      await compressor.close();
    }
  });
});

describe('createCompressor', () => {
  it('compresses as many blocks at once as --threads says, or the cores plus one by default', async () => {
    expect(createCompressor({ threads: 1 }).concurrency).toBe(1);
    expect(createCompressor({ threads: 3 }).concurrency).toBe(3);
    expect(createCompressor().concurrency).toBe(availableParallelism() + 1);
  });

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
        fc.asyncProperty(
          fc.array(fc.record({ length: fc.integer({ min: 0, max: 200_000 }), seed: fc.nat(250), random: fc.boolean() }), { minLength: 1, maxLength: 24 }),
          async (blocks) => {
            const inputs = blocks.map(({ length, seed, random }) => {
              const b = new Uint8Array(length);
              for (let i = 0; i < length; i++) b[i] = random ? Math.imul(i + 1, 2654435761 + seed) >>> 24 : (i >> 9) + seed;
              return b;
            });
            // All in flight at once: spare buffers of one size get offered to blocks of another.
            const packed = await Promise.all(inputs.map((b) => compressor.compress(b, 'zstd')));
            for (const [k, p] of packed.entries()) expect(Buffer.from(await zstdDecompress(p, 1 << 20)).equals(Buffer.from(inputs[k]))).toBe(true);
          },
        ),
        { numRuns: 30 },
      );
    } finally {
      await compressor.close();
    }
  });
});

describe('pipelines with nothing to wait for', () => {
  /** The clock the tests below give Date.now: it only moves forward, across tests too. */
  let clock = Date.now();

  /**
   * Runs `work` on busy items that wait for no I/O, under a clock (Date.now) that advances 2 ms
   * per item and not otherwise, so the pipelines' "turn every 50 ms" sees the same time on a busy
   * machine as on an idle one. A chain of setImmediate callbacks, the first scheduled before
   * `work` starts, notes the clock at each turn of the event loop while it runs. Returns the
   * longest stretch of the clock without a turn, from the start to the end of `work`.
   */
  async function longestWithoutTurn(work: (busyItem: () => Promise<void>) => Promise<void>): Promise<number> {
    // Never behind the real clock: a pipeline in an earlier test noted its last turn by it.
    clock = Math.max(clock, Date.now());
    const now = vi.spyOn(Date, 'now').mockImplementation(() => clock);
    const start = clock;
    const turns: number[] = [];
    let stop = false;
    const note = () => {
      if (stop) return;
      turns.push(clock);
      setImmediate(note);
    };
    setImmediate(note);
    try {
      await work(async () => {
        clock += 2; // CPU work, as zero-scanning a chunk is
      });
      const marks = [start, ...turns, clock];
      return Math.max(...marks.slice(1).map((t, i) => t - marks[i]));
    } finally {
      stop = true;
      now.mockRestore();
    }
  }

  // 300 items of 2 ms (600 ms by the clock above): without turns of the event loop no
  // setImmediate, timer or signal handler (Ctrl-C) runs until the pipeline ends. The workers share
  // one turn once 50 ms have passed (each used to run its own 50 ms: 4 x 50 ms without a turn);
  // the other 3 workers finish the 2 ms item they are in first.
  it('forEachConcurrent lets the event loop turn (timers, Ctrl-C) while it runs', async () => {
    const longest = await longestWithoutTurn((busy) =>
      forEachConcurrent(
        Array.from({ length: 300 }, (_, i) => i),
        4,
        busy,
      ),
    );
    expect(longest).toBeLessThanOrEqual(50 + 4 * 2);
  });

  it('mapOrdered does too', async () => {
    const longest = await longestWithoutTurn(async (busy) => {
      for await (const _ of mapOrdered(
        Array.from({ length: 300 }, (_, i) => i),
        4,
        busy,
      ));
    });
    expect(longest).toBeLessThanOrEqual(50 + 2);
  });
});
