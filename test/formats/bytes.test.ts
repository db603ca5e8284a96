import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  hasLatin1,
  isZero,
  latin1,
  latin1Z,
  putLatin1,
  putU16be,
  putU16le,
  putU32be,
  putU32le,
  putU64,
  putUtf16le,
  safeU64,
  u16be,
  u16le,
  u32be,
  u32le,
  u64,
  utf16le,
  view,
} from '../../formats/common/bytes.js';

/** Buffer is the reference here (tests run in Node); formats/ itself may not use it. */
const buf = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

describe('bytes helpers', () => {
  it('u16/u32 reads and writes agree with Buffer in both byte orders, at any offset', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 40 }), fc.nat(), fc.nat(0xffffffff), (bytes, pick, v) => {
        const at = pick % (bytes.length - 3);
        expect(u16le(bytes, at)).toBe(buf(bytes).readUInt16LE(at));
        expect(u16be(bytes, at)).toBe(buf(bytes).readUInt16BE(at));
        expect(u32le(bytes, at)).toBe(buf(bytes).readUInt32LE(at));
        expect(u32be(bytes, at)).toBe(buf(bytes).readUInt32BE(at));
        const a = new Uint8Array(bytes.length);
        const b = Buffer.alloc(bytes.length);
        putU32le(a, at, v);
        b.writeUInt32LE(v, at);
        expect(buf(a).equals(b)).toBe(true);
        putU32be(a, at, v);
        b.writeUInt32BE(v, at);
        expect(buf(a).equals(b)).toBe(true);
        putU16le(a, at, v & 0xffff);
        b.writeUInt16LE(v & 0xffff, at);
        expect(buf(a).equals(b)).toBe(true);
        putU16be(a, at, v & 0xffff);
        b.writeUInt16BE(v & 0xffff, at);
        expect(buf(a).equals(b)).toBe(true);
      }),
    );
  });

  it('u64 round trips every safe integer in both byte orders; safeU64 refuses 2^53 and above', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.boolean(), fc.nat(8), (v, le, at) => {
        const b = new Uint8Array(16);
        const dv = view(b);
        dv.setBigUint64(at, v, le);
        const safe = v <= BigInt(Number.MAX_SAFE_INTEGER);
        expect(safeU64(dv, at, le)).toBe(safe ? Number(v) : undefined);
        if (safe) expect(u64(dv, at, le)).toBe(Number(v));
        else expect(u64(dv, at, le)).toBeGreaterThan(Number.MAX_SAFE_INTEGER);
        if (safe) {
          const c = new Uint8Array(16);
          putU64(view(c), at, Number(v), le);
          expect(Array.from(c)).toEqual(Array.from(b));
        }
      }),
    );
  });

  it('Latin-1 text: written and read back, padded, cut at NUL, recognised', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.integer({ min: 1, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 20 }), fc.nat(8), (text, extra) => {
        const width = text.length + extra;
        const b = new Uint8Array(width + 4).fill(0xee);
        putLatin1(b, 2, text, width, 0x20);
        expect(latin1(b, 2, width)).toBe(text + ' '.repeat(extra));
        expect(hasLatin1(b, 2, text)).toBe(true);
        expect(b[1]).toBe(0xee);
        expect(b[2 + width]).toBe(0xee);
        putLatin1(b, 2, text, width);
        expect(latin1Z(b, 2, width)).toBe(text);
        expect(buf(b.subarray(2, 2 + text.length)).toString('latin1')).toBe(text);
      }),
    );
    expect(hasLatin1(new Uint8Array([0x45, 0x46]), 0, 'EFI')).toBe(false);
    expect(latin1(new Uint8Array(20000).fill(0x41), 0, 20000)).toBe('A'.repeat(20000));
  });

  it('UTF-16LE text agrees with Buffer and stops at the first 0 unit or the unit limit', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), fc.nat(40), (s, limit) => {
        const text = s.replace(/\0/g, '');
        const b = new Uint8Array(2 * text.length + 4);
        putUtf16le(b, 0, text);
        expect(buf(b.subarray(0, 2 * text.length)).equals(Buffer.from(text, 'utf16le'))).toBe(true);
        expect(utf16le(b, 0, text.length + 2)).toBe(text);
        expect(utf16le(b, 0, limit)).toBe(text.slice(0, limit));
      }),
    );
  });

  it('isZero looks only at its range', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(64), fc.nat(64), (bytes, at, length) => {
        const want = bytes.subarray(at, at + length).every((x) => x === 0);
        expect(isZero(bytes, at, length)).toBe(want);
      }),
    );
    expect(isZero(new Uint8Array([0, 0, 1]))).toBe(false);
    expect(isZero(new Uint8Array([1, 0, 0]), 1)).toBe(true);
  });
});
