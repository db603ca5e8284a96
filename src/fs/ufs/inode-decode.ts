/**
 * One on-disk inode, UFS1 (formats/fs/ufs1-inode.ts) or UFS2 (formats/fs/ufs2/inode.ts), as
 * the reader's UfsInode. The block-pointer area is kept as bytes: a short symlink's target
 * lives there (sys/ufs/ufs/ufs_vnops.c ufs_readlink: inside the inode when the size is
 * below fs_maxsymlinklen).
 */
import { decodeUfs1Dinode } from '../../../formats/fs/ufs1-inode.js';
import { decodeInode } from '../../../formats/fs/ufs2/inode.js';
import { pointer64 } from './read-blocks.js';
import type { UfsGeometry } from './read-geometry.js';
import type { UfsInode } from './inode-types.js';

/** dinode.h: di_db starts at byte 112 of a ufs2_dinode; di_db and di_ib hold 15 pointers of 8 bytes. */
const UFS2_POINTERS_AT = 112;
const UFS2_POINTERS_BYTES = 120;
/** dinode.h: di_extsize (u32) at 92 and di_extb[UFS_NXADDR = 2] (int64) at 96: the extended-attribute blocks. */
const UFS2_EXTSIZE_AT = 92;
const UFS2_EXTB_AT = 96;
const NXADDR = 2;

/** The fields both dinode layouts name alike. */
type CommonDinode = Pick<ReturnType<typeof decodeInode>, 'mode' | 'nlink' | 'uid' | 'gid' | 'flags' | 'size' | 'blocks' | 'gen' | 'db' | 'ib'>;

function commonFields(ino: number, d: CommonDinode) {
  const { mode, nlink, uid, gid, flags, size, blocks, gen } = d;
  return { ino, mode, nlink, uid, gid, flags, size, blocks, gen, direct: d.db, indirect: d.ib };
}

export function decodeInodeBytes(g: UfsGeometry, ino: number, bytes: Uint8Array): UfsInode {
  if (g.version === 1) {
    const d = decodeUfs1Dinode(bytes);
    return {
      ...commonFields(ino, d),
      atime: { sec: d.atime, nsec: d.atimensec },
      mtime: { sec: d.mtime, nsec: d.mtimensec },
      ctime: { sec: d.ctime, nsec: d.ctimensec },
      pointerArea: d.pointerArea,
      extSize: 0,
      ext: [],
    };
  }
  const d = decodeInode(bytes);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  return {
    ...commonFields(ino, d),
    atime: d.atime,
    mtime: d.mtime,
    ctime: d.ctime,
    birthtime: d.birthtime,
    pointerArea: bytes.slice(UFS2_POINTERS_AT, UFS2_POINTERS_AT + UFS2_POINTERS_BYTES),
    extSize: dv.getUint32(UFS2_EXTSIZE_AT, true),
    ext: Array.from({ length: NXADDR }, (_, i) => pointer64(dv.getBigInt64(UFS2_EXTB_AT + 8 * i, true))),
  };
}
