/**
 * UFS2 inode codec: FreeBSD sys/ufs/ufs/dinode.h `struct ufs2_dinode` (256 bytes),
 * little-endian.
 *   0 di_mode u16   2 di_nlink i16   4 di_uid   8 di_gid   12 di_blksize   16 di_size u64
 *   24 di_blocks u64 (512-byte units)   32 di_atime  40 di_mtime  48 di_ctime  56 di_birthtime
 *   (int64 seconds)  64 di_mtimensec  68 di_atimensec  72 di_ctimensec  76 di_birthnsec
 *   80 di_gen  84 di_kernflags  88 di_flags  92 di_extsize  96 di_extb[2]  112 di_db[12]
 *   208 di_ib[3]  232 di_modrev u64  240 di_freelink  244 di_ckhash  248 di_spare[2]
 * A short symlink's target lives in di_db/di_ib (MAXSYMLINKLEN_UFS2 = 120 bytes; FreeBSD's
 * ufs_symlink keeps it there when shorter than fs_maxsymlinklen). A device's number is di_rdev,
 * which dinode.h defines as di_db[0].
 */
import { fail } from '../../common/errors.js';

export const UFS2_DINODE_SIZE = 256;
/** dinode.h UFS_NDADDR, UFS_NIADDR, MAXSYMLINKLEN_UFS2; UFS_ROOTINO; UFS_WINO (whiteout, reserved). */
export const UFS_NDADDR = 12;
export const UFS_NIADDR = 3;
export const MAXSYMLINKLEN_UFS2 = (UFS_NDADDR + UFS_NIADDR) * 8;
export const UFS_ROOTINO = 2;
/** dinode.h IFMT type bits of di_mode. */
export const IFMT = 0o170000;
export const IFIFO = 0o010000;
export const IFCHR = 0o020000;
export const IFDIR = 0o040000;
export const IFBLK = 0o060000;
export const IFREG = 0o100000;
export const IFLNK = 0o120000;
export const IFSOCK = 0o140000;

export interface Ufs2Time {
  sec: number;
  nsec: number;
}

export interface Ufs2Inode {
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  blksize: number;
  size: number;
  /** 512-byte units held by the file: data fragments and indirect blocks. */
  blocks: number;
  atime: Ufs2Time;
  mtime: Ufs2Time;
  ctime: Ufs2Time;
  birthtime: Ufs2Time;
  gen: number;
  kernflags: number;
  /** st_flags (sys/stat.h: UF_NODUMP 0x1, SF_IMMUTABLE 0x20000, ...). */
  flags: number;
  /** 12 direct block addresses (fragment numbers), or a device number in [0]. */
  db: number[];
  /** Single, double and triple indirect block addresses. */
  ib: number[];
  modrev: number;
  /** A short symlink's target bytes (overrides db/ib when set). */
  shortLink?: Uint8Array;
}

const DB = 112;
const IB = 208;

function i64(dv: DataView, at: number, what: string): number {
  const v = dv.getBigInt64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw fail('ufs', 'BAD_VALUE', `inode ${what} ${v} is beyond 2^53`);
  return Number(v);
}

export function encodeInode<T extends Uint8Array>(ino: Ufs2Inode, out: T, at = 0): T {
  if (ino.db.length !== UFS_NDADDR || ino.ib.length !== UFS_NIADDR) throw fail('ufs', 'BAD_VALUE', 'an inode has 12 direct and 3 indirect addresses');
  const dv = new DataView(out.buffer, out.byteOffset + at, UFS2_DINODE_SIZE);
  dv.setUint16(0, ino.mode, true);
  dv.setInt16(2, ino.nlink, true);
  dv.setUint32(4, ino.uid >>> 0, true);
  dv.setUint32(8, ino.gid >>> 0, true);
  dv.setUint32(12, ino.blksize, true);
  dv.setBigUint64(16, BigInt(ino.size), true);
  dv.setBigUint64(24, BigInt(ino.blocks), true);
  const times = [ino.atime, ino.mtime, ino.ctime, ino.birthtime];
  times.forEach((t, i) => dv.setBigInt64(32 + 8 * i, BigInt(t.sec), true));
  dv.setInt32(64, ino.mtime.nsec, true);
  dv.setInt32(68, ino.atime.nsec, true);
  dv.setInt32(72, ino.ctime.nsec, true);
  dv.setInt32(76, ino.birthtime.nsec, true);
  dv.setUint32(80, ino.gen >>> 0, true);
  dv.setUint32(84, ino.kernflags >>> 0, true);
  dv.setUint32(88, ino.flags >>> 0, true);
  if (ino.shortLink !== undefined) {
    if (ino.shortLink.length >= MAXSYMLINKLEN_UFS2) throw fail('ufs', 'BAD_VALUE', `a short symlink holds under ${MAXSYMLINKLEN_UFS2} bytes`);
    out.set(ino.shortLink, at + DB);
  } else {
    ino.db.forEach((v, i) => dv.setBigInt64(DB + 8 * i, BigInt(v), true));
    ino.ib.forEach((v, i) => dv.setBigInt64(IB + 8 * i, BigInt(v), true));
  }
  dv.setBigUint64(232, BigInt(ino.modrev), true);
  return out;
}

/** Decode one inode. A symlink whose di_blocks is 0 is short: its target comes back in shortLink. */
export function decodeInode(bytes: Uint8Array, at = 0): Ufs2Inode {
  if (bytes.length < at + UFS2_DINODE_SIZE) throw fail('ufs', 'TRUNCATED', `an inode needs ${UFS2_DINODE_SIZE} bytes`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset + at, UFS2_DINODE_SIZE);
  const mode = dv.getUint16(0, true);
  const size = i64(dv, 16, 'di_size');
  const blocks = i64(dv, 24, 'di_blocks');
  const t = (i: number, nsAt: number): Ufs2Time => ({ sec: i64(dv, 32 + 8 * i, 'time'), nsec: dv.getInt32(nsAt, true) });
  const short = (mode & IFMT) === IFLNK && blocks === 0;
  if (short && size >= MAXSYMLINKLEN_UFS2) throw fail('ufs', 'BAD_VALUE', `short symlink of ${size} bytes exceeds ${MAXSYMLINKLEN_UFS2 - 1}`);
  const ino: Ufs2Inode = {
    mode,
    nlink: dv.getInt16(2, true),
    uid: dv.getUint32(4, true),
    gid: dv.getUint32(8, true),
    blksize: dv.getUint32(12, true),
    size,
    blocks,
    atime: t(0, 68),
    mtime: t(1, 64),
    ctime: t(2, 72),
    birthtime: t(3, 76),
    gen: dv.getUint32(80, true),
    kernflags: dv.getUint32(84, true),
    flags: dv.getUint32(88, true),
    db: Array.from({ length: UFS_NDADDR }, (_, i) => (short ? 0 : i64(dv, DB + 8 * i, 'di_db'))),
    ib: Array.from({ length: UFS_NIADDR }, (_, i) => (short ? 0 : i64(dv, IB + 8 * i, 'di_ib'))),
    modrev: i64(dv, 232, 'di_modrev'),
  };
  if (short) ino.shortLink = bytes.slice(at + DB, at + DB + size);
  return ino;
}

/**
 * FreeBSD's dev_t from major and minor (sys/sys/types.h makedev, 64-bit since FreeBSD 12):
 * ((major & 0xffffff00) << 32) | ((major & 0xff) << 8) | ((minor & 0xff00) << 24) |
 * (minor & 0xffff00ff). makefs stores st_rdev so in di_rdev (di_db[0]).
 */
export function makeDev(major: number, minor: number): bigint {
  const M = BigInt(major >>> 0);
  const m = BigInt(minor >>> 0);
  return ((M & 0xffffff00n) << 32n) | ((M & 0xffn) << 8n) | ((m & 0xff00n) << 24n) | (m & 0xffff00ffn);
}

/** The inverse of makeDev (sys/sys/types.h major()/minor()). */
export function splitDev(dev: bigint): { major: number; minor: number } {
  const major = Number(((dev >> 32n) & 0xffffff00n) | ((dev >> 8n) & 0xffn));
  const minor = Number(((dev >> 24n) & 0xff00n) | (dev & 0xffff00ffn));
  return { major, minor };
}
