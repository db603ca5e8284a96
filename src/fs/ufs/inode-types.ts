/**
 * An inode as the reader and the check see it, whether it came from a UFS1 (128-byte) or a
 * UFS2 (256-byte) dinode (sys/ufs/ufs/dinode.h), and the stat-like record the commands print.
 */

import { DT_BLK, DT_CHR, DT_DIR, DT_FIFO, DT_LNK, DT_REG, DT_SOCK } from '../../../formats/fs/ufs2/directory.js';
import { IFBLK, IFCHR, IFDIR, IFIFO, IFLNK, IFMT, IFREG, IFSOCK } from '../../../formats/fs/ufs2/inode.js';

export type UfsFileKind = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

const KINDS: ReadonlyMap<number, UfsFileKind> = new Map([
  [IFREG, 'file'],
  [IFDIR, 'dir'],
  [IFLNK, 'symlink'],
  [IFCHR, 'char'],
  [IFBLK, 'block'],
  [IFIFO, 'fifo'],
  [IFSOCK, 'socket'],
]);

/** The kind of a mode's type bits, undefined for a type UFS does not have. */
export const kindOfMode = (mode: number): UfsFileKind | undefined => KINDS.get(mode & IFMT);

/** sys/ufs/ufs/dir.h DT_* values, as d_type holds them. */
export const DT_BY_KIND: Readonly<Record<UfsFileKind, number>> = {
  fifo: DT_FIFO,
  char: DT_CHR,
  dir: DT_DIR,
  block: DT_BLK,
  file: DT_REG,
  symlink: DT_LNK,
  socket: DT_SOCK,
};

export interface UfsTime {
  sec: number;
  nsec: number;
}

export interface UfsInode {
  ino: number;
  /** st_mode: type and permission bits (di_mode). */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  /** di_flags (FreeBSD st_flags: UF_NODUMP 0x1, SF_IMMUTABLE 0x20000, ...). */
  flags: number;
  size: number;
  /** di_blocks: 512-byte sectors held (data and indirect blocks). */
  blocks: number;
  gen: number;
  atime: UfsTime;
  mtime: UfsTime;
  ctime: UfsTime;
  /** UFS2 only (di_birthtime). */
  birthtime?: UfsTime;
  /** di_db[0..11] and di_ib[0..2], fragment addresses (0 = a hole). */
  direct: number[];
  indirect: number[];
  /** The bytes of the block-pointer area (di_db and di_ib), where a short symlink's target lives. */
  pointerArea: Uint8Array;
  /** UFS2 extended attribute blocks (di_extb) and their size; UFS1 has none. */
  extSize: number;
  ext: number[];
}

/** What `stat` tells of an inode: its fields as UfsInode has them (mode in full, type and permission bits), plus the kind. */
export interface UfsStat extends Pick<
  UfsInode,
  'ino' | 'mode' | 'nlink' | 'uid' | 'gid' | 'flags' | 'size' | 'blocks' | 'atime' | 'mtime' | 'ctime' | 'birthtime'
> {
  kind: UfsFileKind;
  /** Character and block devices: di_rdev (stored in di_db[0]) split as FreeBSD's major()/minor(). */
  rdev?: { raw: number; major: number; minor: number };
}

/** FreeBSD sys/sys/types.h major()/minor() for the 32-bit dev_t UFS keeps in di_db[0]. */
export function splitDevice(raw: number): { raw: number; major: number; minor: number } {
  const r = raw >>> 0;
  return { raw: r, major: (r >>> 8) & 0xff, minor: (r & 0xffff00ff) >>> 0 };
}

export function statOf(inode: UfsInode): UfsStat {
  const kind = kindOfMode(inode.mode) ?? 'file';
  return {
    ino: inode.ino,
    kind,
    mode: inode.mode,
    nlink: inode.nlink,
    uid: inode.uid,
    gid: inode.gid,
    flags: inode.flags,
    size: inode.size,
    blocks: inode.blocks,
    atime: inode.atime,
    mtime: inode.mtime,
    ctime: inode.ctime,
    ...(inode.birthtime ? { birthtime: inode.birthtime } : {}),
    ...(kind === 'char' || kind === 'block' ? { rdev: splitDevice(inode.direct[0] ?? 0) } : {}),
  };
}
