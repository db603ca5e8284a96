/**
 * UFS1 on-disk inode: FreeBSD sys/ufs/ufs/dinode.h `struct ufs1_dinode` (128 bytes), decode
 * only (diskmint reads UFS1, as old NanoBSD images hold, and writes UFS2). Little-endian.
 *
 *   0 di_mode u16      2 di_nlink i16     4 di_freelink u32   8 di_size u64
 *  16 di_atime i32    20 di_atimensec    24 di_mtime         28 di_mtimensec
 *  32 di_ctime        36 di_ctimensec    40 di_db[12] i32    88 di_ib[3] i32
 * 100 di_flags u32   104 di_blocks u32  108 di_gen u32      112 di_uid u32
 * 116 di_gid u32     120 di_modrev u64
 * A short symlink's target lives in di_db/di_ib (60 bytes, fs_maxsymlinklen).
 */
import { fail } from '../common/errors.js';

export const UFS1_DINODE_SIZE = 128;
/** dinode.h UFS_NDADDR, UFS_NIADDR. */
const NDADDR = 12;
const NIADDR = 3;
const DB = 40;
const IB = 88;

export interface Ufs1Dinode {
  mode: number;
  nlink: number;
  size: number;
  atime: number;
  atimensec: number;
  mtime: number;
  mtimensec: number;
  ctime: number;
  ctimensec: number;
  db: number[];
  ib: number[];
  flags: number;
  blocks: number;
  gen: number;
  uid: number;
  gid: number;
  /** The 60 bytes of di_db and di_ib (a short symlink's target). */
  pointerArea: Uint8Array;
}

/** Decode the 128-byte UFS1 dinode at the start of `bytes`. */
export function decodeUfs1Dinode(bytes: Uint8Array): Ufs1Dinode {
  if (bytes.length < UFS1_DINODE_SIZE) throw fail('ufs', 'TRUNCATED', `a UFS1 inode needs ${UFS1_DINODE_SIZE} bytes, have ${bytes.length}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, UFS1_DINODE_SIZE);
  const size = dv.getBigUint64(8, true);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw fail('ufs', 'BAD_VALUE', `UFS1 inode size ${size} is beyond 2^53`);
  const db: number[] = [];
  for (let i = 0; i < NDADDR; i++) db.push(dv.getInt32(DB + 4 * i, true));
  const ib: number[] = [];
  for (let i = 0; i < NIADDR; i++) ib.push(dv.getInt32(IB + 4 * i, true));
  return {
    mode: dv.getUint16(0, true),
    nlink: dv.getInt16(2, true),
    size: Number(size),
    atime: dv.getInt32(16, true),
    atimensec: dv.getInt32(20, true),
    mtime: dv.getInt32(24, true),
    mtimensec: dv.getInt32(28, true),
    ctime: dv.getInt32(32, true),
    ctimensec: dv.getInt32(36, true),
    db,
    ib,
    flags: dv.getUint32(100, true),
    blocks: dv.getUint32(104, true),
    gen: dv.getUint32(108, true),
    uid: dv.getUint32(112, true),
    gid: dv.getUint32(116, true),
    pointerArea: bytes.slice(DB, IB + 4 * NIADDR),
  };
}
