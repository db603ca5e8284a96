/**
 * zstd framing read without decoding (RFC 8878 3.1): frame headers written here field by field
 * from the RFC's tables read back as written; block headers; skippable frames; and frames made
 * by the real libzstd (node:zlib where this Node has it, else the WebAssembly build diskmint
 * compresses with) carry the content size the walk sums.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseZstdBlockHeader, parseZstdFrameStart, ZSTD_MAGIC } from '../../formats/common/zstd-frame.js';
import { createCompressor } from '../../src/containers/compress.js';

/** A frame header from its fields, as RFC 8878 3.1.1.1 lays it out. */
function frameHeader(f: { fcsFlag: number; single: boolean; checksum: boolean; dictFlag: number; window: number; dictId: number; size: number }): Uint8Array {
  const out: number[] = [0x28, 0xb5, 0x2f, 0xfd];
  out.push((f.fcsFlag << 6) | (f.single ? 0x20 : 0) | (f.checksum ? 0x04 : 0) | f.dictFlag);
  if (!f.single) out.push(f.window);
  const dictBytes = [0, 1, 2, 4][f.dictFlag];
  for (let i = 0; i < dictBytes; i++) out.push(Math.floor(f.dictId / 256 ** i) & 0xff);
  const fcsBytes = [f.single ? 1 : 0, 2, 4, 8][f.fcsFlag];
  const stored = f.fcsFlag === 1 ? f.size - 256 : f.size;
  for (let i = 0; i < fcsBytes; i++) out.push(Math.floor(stored / 256 ** i) & 0xff);
  return new Uint8Array(out);
}

/** A size that the flag's field can hold (the 2-byte field is offset by 256). */
const sizeFor = (fcsFlag: number, single: boolean) =>
  [
    single ? fc.integer({ min: 0, max: 255 }) : fc.constant(-1),
    fc.integer({ min: 256, max: 65_791 }),
    fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  ][fcsFlag];

describe('zstd frame headers', () => {
  it('read back the fields they were written with (property)', () => {
    const fields = fc
      .record({
        fcsFlag: fc.integer({ min: 0, max: 3 }),
        single: fc.boolean(),
        checksum: fc.boolean(),
        dictFlag: fc.integer({ min: 0, max: 3 }),
        window: fc.integer({ min: 0, max: 255 }),
        dictId: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
      })
      .chain((f) => sizeFor(f.fcsFlag, f.single).map((size) => ({ ...f, size })));
    fc.assert(
      fc.property(fields, fc.uint8Array({ maxLength: 8 }), (f, tail) => {
        const header = frameHeader(f);
        const got = parseZstdFrameStart(new Uint8Array([...header, ...tail]));
        const recorded = f.fcsFlag === 0 && !f.single ? undefined : f.size;
        expect(got).toEqual({ kind: 'frame', headerSize: header.length, checksum: f.checksum, ...(recorded === undefined ? {} : { contentSize: recorded }) });
        // Cut short, the header is not taken for a frame.
        expect(parseZstdFrameStart(header.subarray(0, header.length - 1))).toBeUndefined();
      }),
    );
  });

  it('refuse the reserved bit and other magics; skippable frames give their length', () => {
    const ok = frameHeader({ fcsFlag: 2, single: true, checksum: false, dictFlag: 0, window: 0, dictId: 0, size: 4096 });
    expect(parseZstdFrameStart(ok)).toMatchObject({ contentSize: 4096 });
    const reserved = ok.slice();
    reserved[4] |= 0x08;
    expect(parseZstdFrameStart(reserved)).toBeUndefined();
    const other = ok.slice();
    other[0] = 0x29;
    expect(parseZstdFrameStart(other)).toBeUndefined();
    // RFC 8878 3.1.2: magic 0x184D2A5?, then Frame_Size (LE 32).
    expect(parseZstdFrameStart(new Uint8Array([0x5a, 0x2a, 0x4d, 0x18, 10, 0, 0, 0]))).toEqual({ kind: 'skippable', size: 18 });
    expect(ZSTD_MAGIC).toBe(0xfd2fb528);
  });

  it('block headers: last flag, type, size; RLE blocks hold one byte; the reserved type is refused (property)', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 2 ** 21 - 1 }), (last, type, size) => {
        const v = (size << 3) | (type << 1) | (last ? 1 : 0);
        const got = parseZstdBlockHeader(new Uint8Array([0xee, v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff]), 1);
        if (type === 3) expect(got).toBeUndefined();
        else expect(got).toEqual({ last, contentBytes: type === 1 ? 1 : size });
      }),
    );
  });

  it('frames made by libzstd record their content size', async () => {
    const compressor = createCompressor({ threads: 1 });
    try {
      for (const n of [1, 255, 256, 70_000, 4 << 20]) {
        const data = new Uint8Array(n).map((_, i) => (i * 31) & 0xff);
        const frame = await compressor.compress(data, 'zstd', 3);
        expect(parseZstdFrameStart(frame)).toMatchObject({ kind: 'frame', contentSize: n });
      }
    } finally {
      await compressor.close();
    }
  });
});
