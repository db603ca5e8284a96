import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeInode, encodeInode, IFLNK, IFREG, makeDev, splitDev, UFS2_DINODE_SIZE, type Ufs2Inode } from '../../formats/fs/ufs2/inode.js';
import { expectFormatError } from '../helpers/codec.js';

const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const time = fc.record({ sec: fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), nsec: fc.integer({ min: 0, max: 999_999_999 }) });
const addr = fc.maxSafeNat();

const inode: fc.Arbitrary<Ufs2Inode> = fc.record({
  mode: fc.integer({ min: 0, max: 0xffff }).filter((m) => (m & 0o170000) !== IFLNK),
  nlink: fc.integer({ min: 0, max: 32767 }),
  uid: u32,
  gid: u32,
  blksize: u32,
  size: fc.maxSafeNat(),
  blocks: fc.maxSafeNat(),
  atime: time,
  mtime: time,
  ctime: time,
  birthtime: time,
  gen: u32,
  kernflags: u32,
  flags: u32,
  db: fc.array(addr, { minLength: 12, maxLength: 12 }),
  ib: fc.array(addr, { minLength: 3, maxLength: 3 }),
  modrev: fc.maxSafeNat(),
});

describe('UFS2 inode codec (struct ufs2_dinode)', () => {
  it('decode(encode(inode)) gives it back', () => {
    fc.assert(
      fc.property(inode, (ino) => {
        expect(decodeInode(encodeInode(ino, new Uint8Array(256)))).toEqual(ino);
      }),
    );
  });

  it('keeps short symlink targets (under 120 bytes) in di_db, from byte 112', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 119 }), inode, (target, base) => {
        const ino = { ...base, mode: IFLNK | 0o755, size: target.length, blocks: 0, shortLink: target };
        const bytes = encodeInode(ino, new Uint8Array(256));
        expect(bytes.slice(112, 112 + target.length)).toEqual(target);
        expect(decodeInode(bytes).shortLink).toEqual(target);
      }),
    );
    const base = fc.sample(inode, { seed: 2, numRuns: 1 })[0];
    expectFormatError(() => encodeInode({ ...base, mode: IFLNK, shortLink: new Uint8Array(120) }, new Uint8Array(256)), 'BAD_VALUE');
  });

  it('puts the fields at the dinode.h offsets', () => {
    const base = fc.sample(inode, { seed: 5, numRuns: 1 })[0];
    const bytes = encodeInode({ ...base, mode: IFREG | 0o644, nlink: 3, size: 5000, blocks: 16, db: [777, ...base.db.slice(1)] }, new Uint8Array(512), 256);
    const dv = new DataView(bytes.buffer, 256);
    expect(dv.getUint16(0, true)).toBe(0o100644);
    expect(dv.getInt16(2, true)).toBe(3);
    expect(dv.getBigUint64(16, true)).toBe(5000n);
    expect(dv.getBigUint64(24, true)).toBe(16n);
    expect(dv.getBigInt64(112, true)).toBe(777n);
    expect(bytes.length - 256).toBe(UFS2_DINODE_SIZE);
  });

  it('device numbers: makeDev and splitDev are inverse, and small ones are (major << 8) | minor', () => {
    fc.assert(
      fc.property(u32, u32, (major, minor) => {
        expect(splitDev(makeDev(major, minor))).toEqual({ major, minor });
      }),
    );
    expect(makeDev(4, 66)).toBe(0x442n);
  });
});
