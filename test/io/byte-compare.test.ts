/** firstUnequalByte: the first differing index, across and inside its 4 KiB memcmp blocks (property). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { firstUnequalByte } from '../../src/io/byte-compare.js';

describe('firstUnequalByte', () => {
  it('finds the first of any set of changed bytes, and nothing in equal runs, at any offset into a buffer (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 20_000 }), fc.integer({ min: 0, max: 7 }), fc.array(fc.nat(), { maxLength: 4 }), (n, shift, picks) => {
        const base = new Uint8Array(n + shift).map((_, i) => (i * 37) & 0xff);
        const x = base.subarray(shift);
        const copy = new Uint8Array(n + 3);
        copy.set(x, 3);
        const y = copy.subarray(3); // a view that does not start its buffer
        expect(firstUnequalByte(x, y)).toBeUndefined();
        const changed = n ? [...new Set(picks.map((p) => p % n))] : [];
        for (const at of changed) y[at] ^= 1 + (at % 255);
        expect(firstUnequalByte(x, y)).toBe(changed.length ? Math.min(...changed) : undefined);
      }),
    );
  });
});
