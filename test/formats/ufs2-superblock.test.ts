import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  decodeCsumArray,
  decodeSuperblock,
  encodeCsumArray,
  encodeSuperblock,
  FS_UFS2_MAGIC,
  SB_OFFSETS,
  SCALAR_TYPES,
  SBLOCK_UFS2,
  STRUCT_FS_SIZE,
  type Superblock,
} from '../../formats/fs/ufs2/superblock.js';
import { decodeUfsSuperblock } from '../../formats/fs/ufs.js';
import { expectFormatError } from '../helpers/codec.js';

const RANGES = {
  i8: fc.integer({ min: -128, max: 127 }),
  u8: fc.integer({ min: 0, max: 255 }),
  i32: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  u32: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  i64: fc.maxSafeInteger(),
  u64: fc.maxSafeNat(),
} as const;

const csum = fc.record({ ndir: RANGES.i32, nbfree: RANGES.i32, nifree: RANGES.i32, nffree: RANGES.i32 });
const label = fc.string({ maxLength: 31 }).filter((s) => !s.includes('\0') && new TextEncoder().encode(s).length < 32);

const superblock: fc.Arbitrary<Superblock> = fc
  .record({
    ...(Object.fromEntries(Object.keys(SB_OFFSETS).map((k) => [k, RANGES[SCALAR_TYPES[k as keyof typeof SB_OFFSETS]]])) as Record<
      keyof typeof SB_OFFSETS,
      fc.Arbitrary<number>
    >),
    oldCstotal: csum,
    cstotal: fc.record({ ndir: RANGES.i64, nbfree: RANGES.i64, nifree: RANGES.i64, nffree: RANGES.i64, numclusters: RANGES.i64 }),
    fsmnt: fc.constantFrom('', '/', '/mnt/data'),
    volname: label,
  })
  .map((sb) => ({ ...sb, magic: FS_UFS2_MAGIC }));

describe('UFS2 superblock codec (struct fs)', () => {
  it('decode(encode(sb)) gives sb back, for any field values', () => {
    fc.assert(
      fc.property(superblock, (sb) => {
        expect(decodeSuperblock(encodeSuperblock(sb, 2048))).toEqual(sb);
      }),
    );
  });

  it('puts fs_magic at byte 1372 and fs_volname at 680, where the independent probe looks', () => {
    const sb = fc.sample(superblock, { seed: 7, numRuns: 1 })[0];
    const bytes = encodeSuperblock(
      { ...sb, ncg: 3, bsize: 32768, fsize: 4096, frag: 8, sbsize: 4096, sblockloc: SBLOCK_UFS2, size: 12345, volname: 'ROOTFS' },
      4096,
    );
    expect(new DataView(bytes.buffer).getUint32(1372, true)).toBe(0x19540119);
    const probed = decodeUfsSuperblock(bytes, SBLOCK_UFS2);
    expect(probed).toMatchObject({ version: 2, endian: 'little', volname: 'ROOTFS', blockSize: 32768, fragSize: 4096, sizeFrags: 12345, cylinderGroups: 3 });
  });

  it('refuses a wrong magic, short input and a label of 32 bytes', () => {
    const sb = fc.sample(superblock, { seed: 3, numRuns: 1 })[0];
    const bytes = encodeSuperblock(sb);
    bytes[1372] ^= 1;
    expectFormatError(() => decodeSuperblock(bytes), 'BAD_MAGIC');
    expectFormatError(() => decodeSuperblock(bytes.subarray(0, STRUCT_FS_SIZE - 1)), 'TRUNCATED');
    expectFormatError(() => encodeSuperblock({ ...sb, volname: 'x'.repeat(32) }), 'BAD_VALUE');
  });

  it('the csum array round-trips at 16 bytes a group', () => {
    fc.assert(
      fc.property(fc.array(csum, { maxLength: 40 }), (groups) => {
        const bytes = encodeCsumArray(groups, 4096);
        expect(decodeCsumArray(bytes, groups.length)).toEqual(groups);
        if (groups.length > 0) expect(new DataView(bytes.buffer).getInt32(16 * (groups.length - 1) + 8, true)).toBe(groups.at(-1)!.nifree);
      }),
    );
  });
});
