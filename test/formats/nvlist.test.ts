/**
 * The XDR nvlist codec: a hand-checked encoding, round trips over every data type
 * (fast-check), and hostile input (mutations, truncations, huge counts) giving FormatError only.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FormatError } from '../../formats/common/errors.js';
import { nvAdd, nvlist, nvRemove, nvToJson, encodeNvlist, decodeNvlist, type NvList, type NvPair } from '../../formats/fs/nvlist.js';

const utf8Safe = (s: string) => !s.includes('\0') && new TextDecoder().decode(new TextEncoder().encode(s)) === s;
const str = fc.string({ unit: 'grapheme', maxLength: 12 }).filter(utf8Safe);
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const i64 = fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n });
const arr = <T>(a: fc.Arbitrary<T>) => fc.array(a, { maxLength: 5 });

function scalarPair(): fc.Arbitrary<Omit<NvPair, 'name'>> {
  return fc.oneof(
    fc.constant({ type: 'boolean' as const }),
    fc.boolean().map((value) => ({ type: 'boolean_value' as const, value })),
    fc.integer({ min: 0, max: 255 }).map((value) => ({ type: 'byte' as const, value })),
    fc.integer({ min: -128, max: 127 }).map((value) => ({ type: 'int8' as const, value })),
    fc.integer({ min: 0, max: 255 }).map((value) => ({ type: 'uint8' as const, value })),
    fc.integer({ min: -32768, max: 32767 }).map((value) => ({ type: 'int16' as const, value })),
    fc.integer({ min: 0, max: 65535 }).map((value) => ({ type: 'uint16' as const, value })),
    fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((value) => ({ type: 'int32' as const, value })),
    fc.integer({ min: 0, max: 2 ** 32 - 1 }).map((value) => ({ type: 'uint32' as const, value })),
    i64.map((value) => ({ type: 'int64' as const, value })),
    u64.map((value) => ({ type: 'uint64' as const, value })),
    i64.map((value) => ({ type: 'hrtime' as const, value })),
    fc.double({ noNaN: true }).map((value) => ({ type: 'double' as const, value })),
    str.map((value) => ({ type: 'string' as const, value })),
    arr(fc.integer({ min: 0, max: 255 })).map((value) => ({ type: 'byte_array' as const, value })),
    arr(fc.integer({ min: -128, max: 127 })).map((value) => ({ type: 'int8_array' as const, value })),
    arr(fc.integer({ min: 0, max: 255 })).map((value) => ({ type: 'uint8_array' as const, value })),
    arr(fc.integer({ min: -32768, max: 32767 })).map((value) => ({ type: 'int16_array' as const, value })),
    arr(fc.integer({ min: 0, max: 65535 })).map((value) => ({ type: 'uint16_array' as const, value })),
    arr(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })).map((value) => ({ type: 'int32_array' as const, value })),
    arr(fc.integer({ min: 0, max: 2 ** 32 - 1 })).map((value) => ({ type: 'uint32_array' as const, value })),
    arr(fc.boolean()).map((value) => ({ type: 'boolean_array' as const, value })),
    arr(i64).map((value) => ({ type: 'int64_array' as const, value })),
    arr(u64).map((value) => ({ type: 'uint64_array' as const, value })),
    arr(str).map((value) => ({ type: 'string_array' as const, value })),
  );
}

/** nvlists of every type, nested up to three levels; names unique (as NV_UNIQUE_NAME requires). */
const nvlistArb: fc.Arbitrary<NvList> = fc.letrec<{ list: NvList; pair: Omit<NvPair, 'name'> }>((tie) => ({
  pair: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalarPair(),
    tie('list').map((value) => ({ type: 'nvlist' as const, value })),
    fc.array(tie('list'), { maxLength: 3 }).map((value) => ({ type: 'nvlist_array' as const, value })),
  ),
  list: fc
    .uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 10 }).filter(utf8Safe), tie('pair')), { maxLength: 6, selector: ([n]) => n })
    .map((pairs) => nvlist(pairs.map(([name, v]) => ({ name, ...v }) as NvPair))),
})).list;

describe('nvlist XDR codec', () => {
  it('encodes a uint64 pair as OpenZFS does (sizes, padding, terminator)', () => {
    const bytes = encodeNvlist(nvlist([{ name: 'a', type: 'uint64', value: 1n }]));
    const hex = Buffer.from(bytes).toString('hex');
    expect(hex).toBe(
      '01010000' +
        '00000000' +
        '00000001' + // header XDR/little, nvl_version 0, NV_UNIQUE_NAME
        '00000020' +
        '00000020' + // encoded size 32, native size align8(16+2)+8 = 32
        '00000001' +
        '61000000' +
        '00000008' +
        '00000001' +
        '0000000000000001' + // "a", DATA_TYPE_UINT64, 1 element
        '00000000' +
        '00000000',
    );
  });

  it('round-trips lists of every data type', () => {
    fc.assert(
      fc.property(nvlistArb, (list) => {
        expect(decodeNvlist(encodeNvlist(list))).toEqual(list);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps pair order and duplicate names when the list is not unique-named', () => {
    const list: NvList = {
      version: 0,
      flags: 0,
      pairs: [
        { name: 'x', type: 'string', value: 'one' },
        { name: 'x', type: 'uint32', value: 2 },
      ],
    };
    expect(decodeNvlist(encodeNvlist(list))).toEqual(list);
  });

  it('nvAdd replaces a name and appends it, as nvlist_add_* does on unique-name lists', () => {
    let l = nvlist([
      { name: 'version', type: 'uint64', value: 0n },
      { name: 'k', type: 'string', value: 'v' },
    ]);
    l = nvAdd(l, { name: 'version', type: 'uint64', value: 1n });
    expect(l.pairs.map((p) => p.name)).toEqual(['k', 'version']);
    expect(nvToJson(nvRemove(l, 'k'))).toEqual({ version: '1' });
  });

  it('reads sign-extended and zero-extended chars (xdr_char on either char signedness)', () => {
    const bytes = encodeNvlist(nvlist([{ name: 'b', type: 'uint8', value: 200 }]));
    // x86 writes 200 as the int -56; an unsigned-char platform writes 200.
    expect(Buffer.from(bytes.subarray(36, 40)).toString('hex')).toBe('ffffffc8');
    const other = new Uint8Array(bytes);
    other.set([0, 0, 0, 200], 36);
    expect(decodeNvlist(other).pairs[0]).toEqual({ name: 'b', type: 'uint8', value: 200 });
  });

  it('refuses values a type cannot hold and NUL in strings', () => {
    expect(() => encodeNvlist(nvlist([{ name: 'x', type: 'uint16', value: 70000 }]))).toThrow(FormatError);
    expect(() => encodeNvlist(nvlist([{ name: 'x', type: 'string', value: 'a\0b' }]))).toThrow(FormatError);
  });
});

describe('nvlist parser on hostile bytes', () => {
  const expectFormatErrorOrList = (bytes: Uint8Array) => {
    try {
      decodeNvlist(bytes);
    } catch (err) {
      expect(err).toBeInstanceOf(FormatError);
    }
  };

  it('mutated and truncated lists give FormatError or a list, never another error', () => {
    fc.assert(
      fc.property(nvlistArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat(), (list, flips, cut) => {
        const bytes = encodeNvlist(list);
        const m = new Uint8Array(bytes);
        for (const [at, v] of flips) m[at % m.length] = v;
        expectFormatErrorOrList(m);
        expectFormatErrorOrList(bytes.subarray(0, cut % (bytes.length + 1)));
      }),
      { numRuns: 500 },
    );
  });

  it('huge counts and lengths are refused before any allocation', () => {
    const base = encodeNvlist(nvlist([{ name: 'a', type: 'uint64_array', value: [1n] }]));
    const view = new DataView(base.buffer);
    const nelemAt = 12 + 8 + 8 + 4; // header+version+flags, sizes, name, type
    const huge = new Uint8Array(base);
    new DataView(huge.buffer).setInt32(nelemAt, 0x7fffffff);
    expect(() => decodeNvlist(huge)).toThrow(expect.objectContaining({ code: 'TOO_LARGE' }));
    const longName = new Uint8Array(base);
    new DataView(longName.buffer).setUint32(20, 0xffffffff);
    expect(() => decodeNvlist(longName)).toThrow(FormatError);
    expect(view.getInt32(nelemAt)).toBe(1);
  });

  it('refuses deep nesting, unknown types and wrong headers with typed errors', () => {
    let deep = nvlist();
    for (let i = 0; i < 70; i++) deep = nvlist([{ name: 'n', type: 'nvlist', value: deep }]);
    expect(() => encodeNvlist(deep)).toThrow(FormatError);
    const bytes = encodeNvlist(nvlist([{ name: 'a', type: 'uint64', value: 1n }]));
    const badType = new Uint8Array(bytes);
    new DataView(badType.buffer).setInt32(28, 99);
    expect(() => decodeNvlist(badType)).toThrow(expect.objectContaining({ code: 'BAD_VALUE' }));
    const native = new Uint8Array(bytes);
    native[0] = 0; // NV_ENCODE_NATIVE
    expect(() => decodeNvlist(native)).toThrow(expect.objectContaining({ code: 'BAD_MAGIC' }));
    expect(() => decodeNvlist(new Uint8Array(2))).toThrow(expect.objectContaining({ code: 'TRUNCATED' }));
  });
});
