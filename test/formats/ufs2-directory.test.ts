import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeDirectory, DIRBLKSIZ, directSize, DT_DIR, encodeDirectory, type DirEntry } from '../../formats/fs/ufs2/directory.js';
import { expectFormatError } from '../helpers/codec.js';

const name = fc.uint8Array({ minLength: 1, maxLength: 255 }).map((b) => b.map((c) => (c === 0 || c === 0x2f ? 0x41 : c)));
const entry: fc.Arbitrary<DirEntry> = fc.record({ ino: fc.integer({ min: 1, max: 2 ** 32 - 1 }), type: fc.integer({ min: 0, max: 14 }), name });

describe('UFS directory codec (struct direct)', () => {
  it('decode(encode(entries)) gives the entries back, in whole 512-byte chunks', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 60 }), (entries) => {
        const bytes = encodeDirectory(entries);
        expect(bytes.length % DIRBLKSIZ).toBe(0);
        expect(decodeDirectory(bytes)).toEqual(entries);
      }),
    );
  });

  it('writes . and .. as dir.h lays them out (reclen 12, the last entry to the chunk end)', () => {
    const bytes = encodeDirectory([
      { ino: 2, type: DT_DIR, name: new Uint8Array([0x2e]) },
      { ino: 2, type: DT_DIR, name: new Uint8Array([0x2e, 0x2e]) },
    ]);
    expect(Array.from(bytes.subarray(0, 24))).toEqual([2, 0, 0, 0, 12, 0, 4, 1, 0x2e, 0, 0, 0, 2, 0, 0, 0, 500 & 0xff, 500 >> 8, 4, 2, 0x2e, 0x2e, 0, 0]);
    expect(directSize(1)).toBe(12);
    expect(directSize(4)).toBe(16);
  });

  it('refuses names with a slash and chains that leave their chunk', () => {
    expectFormatError(() => encodeDirectory([{ ino: 3, type: 8, name: new Uint8Array([0x61, 0x2f]) }]), 'BAD_VALUE');
    const bytes = encodeDirectory([{ ino: 3, type: 8, name: new Uint8Array([0x61]) }]);
    new DataView(bytes.buffer).setUint16(4, 516, true);
    expectFormatError(() => decodeDirectory(bytes), 'BAD_VALUE');
  });
});
