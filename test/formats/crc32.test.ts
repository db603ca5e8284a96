import { crc32 as zlibCrc32 } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../../formats/common/crc32.js';
import { crc32 as engineCrc32 } from '../../src/model/crc32.js';

/** The definition, bit by bit: reflected 0xEDB88320, init and final XOR 0xFFFFFFFF. */
function bitwiseCrc32(bytes: Uint8Array, initial = 0): number {
  let c = ~initial >>> 0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

describe('CRC-32', () => {
  it('matches the check value of the catalogue ("123456789" -> cbf43926) and the empty input', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(new Uint8Array(0), 0x12345678)).toBe(0x12345678);
    expect(engineCrc32(new Uint8Array(0), 0x12345678)).toBe(0x12345678);
  });

  it('the pure one equals the bitwise definition and the engine wrapper, at any length, offset and initial value', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(7), fc.integer({ min: 0, max: 0xffffffff }), (bytes, skip, initial) => {
        const view = bytes.subarray(Math.min(skip, bytes.length));
        const want = bitwiseCrc32(view, initial);
        expect(crc32(view, initial)).toBe(want);
        expect(engineCrc32(view, initial)).toBe(want);
      }),
      { numRuns: 500 },
    );
  });

  it('continues over a split: crc32(b, crc32(a)) = crc32(a + b)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }), (a, b) => {
        const ab = new Uint8Array(a.length + b.length);
        ab.set(a);
        ab.set(b, a.length);
        expect(crc32(b, crc32(a))).toBe(crc32(ab));
        expect(crc32(ab)).toBe(engineCrc32(ab));
      }),
    );
  });

  it('agrees with zlib on a 1 MiB buffer of every byte value', () => {
    const big = new Uint8Array(1 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
    expect(crc32(big)).toBe(zlibCrc32(big) >>> 0);
  });
});
