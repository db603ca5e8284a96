/**
 * The file sink every container writer uses: forward writes (coalesced when small, straight from
 * the caller's buffer when large), skips and zero pieces left as holes, positional writes. The
 * caller reuses its buffer as soon as a write resolves, so a sink that kept a reference would
 * show up here as wrong bytes.
 */
import { readFileSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fileSink } from '../../src/io/sink.js';
import { tempDir } from '../helpers/golden.js';

const KiB = 1024;

type Step =
  | { kind: 'write'; length: number; fill: 'zero' | 'data' | 'mixed'; seed: number }
  | { kind: 'skip'; length: number }
  | { kind: 'pwrite'; at: number; length: number; seed: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant('write' as const),
    length: fc.oneof(fc.integer({ min: 1, max: 3 * KiB }), fc.integer({ min: 60 * KiB, max: 600 * KiB })),
    fill: fc.constantFrom('zero' as const, 'data' as const, 'mixed' as const),
    seed: fc.integer({ min: 1, max: 250 }),
  }),
  fc.record({ kind: fc.constant('skip' as const), length: fc.integer({ min: 0, max: 200 * KiB }) }),
  fc.record({
    kind: fc.constant('pwrite' as const),
    at: fc.nat(400 * KiB),
    length: fc.integer({ min: 1, max: 8 * KiB }),
    seed: fc.integer({ min: 1, max: 250 }),
  }),
);

function pattern(length: number, fill: 'zero' | 'data' | 'mixed', seed: number): Uint8Array {
  const out = new Uint8Array(length);
  if (fill === 'zero') return out;
  for (let i = 0; i < length; i++) {
    // 'mixed': 64 KiB stripes of zeros between data, so some pieces become holes mid-write
    const zeroStripe = fill === 'mixed' && Math.floor(i / (64 * KiB)) % 2 === 1;
    out[i] = zeroStripe ? 0 : (i * 7 + seed) & 0xff || 1;
  }
  return out;
}

describe('fileSink', () => {
  it('writes what it was given, at the right places, though the caller reuses its buffer at once (property)', async () => {
    const dir = tempDir('diskmint-sink-');
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { maxLength: 12 }), async (steps) => {
        const path = join(dir, `out${n++}.bin`);
        const handle = await open(path, 'wx');
        const sink = fileSink(handle);
        let expected = new Uint8Array(0);
        const place = (bytes: Uint8Array, at: number) => {
          if (at + bytes.length > expected.length) {
            const grown = new Uint8Array(at + bytes.length);
            grown.set(expected);
            expected = grown;
          }
          expected.set(bytes, at);
        };
        const reused = new Uint8Array(700 * KiB); // one buffer for every write, as the ring readers do
        const skipped: [number, number][] = [];
        try {
          for (const step of steps) {
            if (step.kind === 'write') {
              const data = reused.subarray(0, step.length);
              data.set(pattern(step.length, step.fill, step.seed));
              place(data.slice(), sink.position);
              await sink.write(data);
              reused.fill(0xee); // the sink must be done with it now
            } else if (step.kind === 'skip') {
              place(new Uint8Array(step.length), sink.position);
              if (step.length) skipped.push([sink.position, step.length]);
              await sink.skip(step.length);
            } else if (skipped.length) {
              // As the writers do: tables go by pwrite into ranges skipped for them.
              const [start, length] = skipped[step.at % skipped.length];
              const data = pattern(Math.min(step.length, length), 'data', step.seed);
              const at = start + ((step.at >> 4) % (length - data.length + 1));
              place(data, at);
              await sink.pwrite(data, at);
            }
          }
          await sink.finish();
        } finally {
          await handle.close();
        }
        const written = readFileSync(path);
        expect(written.length).toBe(expected.length);
        expect(Buffer.compare(written, Buffer.from(expected))).toBe(0);
      }),
      { numRuns: 60 },
    );
  });

  it('leaves zero pieces and skips as holes, and writes a large data span whole', async () => {
    const dir = tempDir('diskmint-sink-');
    const path = join(dir, 'holes.bin');
    const handle = await open(path, 'wx');
    const sink = fileSink(handle);
    await sink.write(new Uint8Array(4 << 20)); // all zeros: a hole
    await sink.skip(4 << 20);
    await sink.write(pattern(1 << 20, 'data', 3)); // a large span: written straight from the buffer
    await sink.finish(12 << 20);
    await handle.close();
    const st = statSync(path);
    expect(st.size).toBe(12 << 20);
    expect(st.blocks * 512).toBeLessThan(2 << 20); // ~1 MiB allocated of 12
    expect(Buffer.compare(readFileSync(path).subarray(8 << 20, 9 << 20), Buffer.from(pattern(1 << 20, 'data', 3)))).toBe(0);
  });
});
