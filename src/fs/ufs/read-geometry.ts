/**
 * The numbers of an opened UFS1/UFS2 file system that the reader and the check use, and the
 * address arithmetic of FreeBSD sys/ufs/ffs/fs.h over them (cgbase, cgstart, cgsblock, cgtod,
 * cgimin, cgdmin, ino_to_cg). Addresses are in fragments, as on disk.
 */

/** sys/ufs/ufs/dinode.h: UFS_NDADDR direct and UFS_NIADDR indirect block pointers. */
export const NDADDR = 12;
export const NIADDR = 3;
/** sys/ufs/ufs/dinode.h UFS_ROOTINO: the root directory's inode. */
export const ROOT_INO = 2;
/** sys/ufs/ufs/dir.h DIRBLKSIZ: directory entries never cross a 512-byte boundary. */
export const DIRBLKSIZ = 512;
/** sys/ufs/ufs/dir.h UFS_MAXNAMLEN. */
export const MAXNAMLEN = 255;

export interface UfsGeometry {
  version: 1 | 2;
  littleEndian: boolean;
  /** Byte offset of the superblock read (fs_sblockloc for UFS2). */
  superblockOffset: number;
  volname: string;
  blockSize: number;
  fragSize: number;
  /** Fragments per block (fs_frag). */
  frag: number;
  /** File system size in fragments (fs_size; UFS1 fs_old_size). */
  sizeFrags: number;
  ncg: number;
  /** Inodes per cylinder group (fs_ipg) and fragments per group (fs_fpg). */
  ipg: number;
  fpg: number;
  /** Bytes of one on-disk inode: 128 (UFS1) or 256 (UFS2). */
  inodeSize: number;
  /** Block pointers per indirect block (fs_nindir). */
  nindir: number;
  /** Offsets inside each group, in fragments: superblock copy, cg block, inodes, first data. */
  sblkno: number;
  cblkno: number;
  iblkno: number;
  dblkno: number;
  /** UFS1 only: fs_old_cgoffset and fs_old_cgmask (the staggering of groups); 0 and ~0 otherwise. */
  oldCgOffset: number;
  oldCgMask: number;
  /** The cylinder-group summary array: fragment address (fs_csaddr) and bytes (fs_cssize). */
  csaddr: number;
  cssize: number;
  /** fs_cgsize: bytes of a cylinder-group block. */
  cgsize: number;
  /** Longest symlink target kept inside the inode (fs_maxsymlinklen); 0 = never. */
  maxSymlinkLen: number;
  /** Largest file size the block tree can map (fs_maxfilesize, capped by what we compute). */
  maxFileSize: number;
}

/** cgbase(fs, c): the first fragment of group c. */
export const cgBase = (g: UfsGeometry, c: number): number => g.fpg * c;

/** cgstart(fs, c): UFS1 groups are staggered by fs_old_cgoffset; UFS2 groups are not. */
export function cgStart(g: UfsGeometry, c: number): number {
  if (g.version === 2) return cgBase(g, c);
  return cgBase(g, c) + g.oldCgOffset * ((c & ~g.oldCgMask) >>> 0);
}

export const cgSblock = (g: UfsGeometry, c: number): number => cgStart(g, c) + g.sblkno;
export const cgTod = (g: UfsGeometry, c: number): number => cgStart(g, c) + g.cblkno;
export const cgImin = (g: UfsGeometry, c: number): number => cgStart(g, c) + g.iblkno;
export const cgDmin = (g: UfsGeometry, c: number): number => cgStart(g, c) + g.dblkno;

/** Inodes in the file system (fs_ipg * fs_ncg). */
export const inodeCount = (g: UfsGeometry): number => g.ipg * g.ncg;

/** Byte offset of inode `ino` (ino_to_fsba and ino_to_fsbo: inodes lie back to back from cgimin). */
export function inodeOffset(g: UfsGeometry, ino: number): number {
  const cg = Math.floor(ino / g.ipg);
  return cgImin(g, cg) * g.fragSize + (ino % g.ipg) * g.inodeSize;
}

/** Bytes of logical block `lbn` of a file of `size` bytes (fs.h blksize: the last direct block may be fragments). */
export function logicalBlockBytes(g: UfsGeometry, size: number, lbn: number): number {
  if (lbn >= NDADDR || size >= (lbn + 1) * g.blockSize) return g.blockSize;
  const tail = size - lbn * g.blockSize;
  return Math.ceil(tail / g.fragSize) * g.fragSize;
}

/** The largest size the direct and indirect pointers can map. */
export function mappableBytes(g: UfsGeometry): number {
  const n = g.nindir;
  return Math.min(Number.MAX_SAFE_INTEGER, (NDADDR + n + n * n + n * n * n) * g.blockSize);
}
