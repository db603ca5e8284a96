/**
 * UFS2 geometry (pure): from a size in bytes and the block/fragment sizes and inode density,
 * the superblock fields that place everything, computed as FreeBSD's makefs does
 * (usr.sbin/makefs/ffs/mkfs.c ffs_mkfs; the same algorithm as sbin/newfs/mkfs.c except where
 * README.md in this folder says otherwise). Addresses are in fragments from the start of the
 * file system; cylinder group c starts at c * fs_fpg (fs.h cgbase/cgstart for UFS2).
 */
import { fail } from '../../common/errors.js';
import { cgSize } from './cylinder-group.js';
import { UFS2_DINODE_SIZE, UFS_NDADDR, UFS_NIADDR, MAXSYMLINKLEN_UFS2 } from './inode.js';
import {
  FS_44INODEFMT,
  FS_FLAGS_UPDATED,
  FS_ISCLEAN,
  FS_OPTSPACE,
  FS_UFS2_MAGIC,
  SBLOCK_UFS2,
  SBLOCKSIZE,
  STRUCT_FS_SIZE,
  type Superblock,
} from './superblock.js';

/** fs.h MINBSIZE; makefs FFS_MAXBSIZE; MAXFRAG; FS_MAXCONTIG; dev_bsize (DEV_BSIZE 512). */
const MINBSIZE = 4096;
const FFS_MAXBSIZE = 65536;
const MAXFRAG = 8;
const FS_MAXCONTIG = 16;
const DEV_BSIZE = 512;
/** makefs defaults (ffs.c ffs_prep_opts): MINFREE 8, AVFILESIZ 16384, AFPDIR 64. */
export const UFS_DEFAULT_MINFREE = 8;
const AVFILESIZ = 16384;
const AFPDIR = 64;
/** newfs.c NFPI: default fragments per inode (density = NFPI * fsize). */
export const NFPI = 2;

export interface Ufs2LayoutOptions {
  sizeBytes: number;
  /** fs_bsize, 4096..32768, a power of two (default 32768, makefs' default). */
  blockSize?: number;
  /** fs_fsize, bsize/8..bsize (default 4096). */
  fragSize?: number;
  /** Bytes of data per inode (default NFPI * fsize, newfs' default). */
  density?: number;
  /** fs_minfree percent (default 8). */
  minfree?: number;
}

/** The geometry and the superblock fields that do not depend on contents. */
export interface Ufs2Layout {
  bsize: number;
  fsize: number;
  frag: number;
  /** fs_size: fragments in the file system. */
  size: number;
  ncg: number;
  fpg: number;
  ipg: number;
  inopb: number;
  nindir: number;
  sblkno: number;
  cblkno: number;
  iblkno: number;
  dblkno: number;
  cgsize: number;
  cssize: number;
  csaddr: number;
  contigsumsize: number;
  maxcontig: number;
  density: number;
  minfree: number;
  maxfilesize: number;
}

const log2 = (n: number) => Math.round(Math.log2(n));
const roundup = (n: number, m: number) => Math.ceil(n / m) * m;
const isPow2 = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;

export function computeUfs2Layout(opts: Ufs2LayoutOptions): Ufs2Layout {
  const bsize = opts.blockSize ?? 32768;
  const fsize = opts.fragSize ?? 4096;
  const minfree = opts.minfree ?? UFS_DEFAULT_MINFREE;
  // 65536-byte blocks make fs_maxfilesize exceed 2^53, which this codec keeps as a number.
  if (!isPow2(bsize) || bsize < MINBSIZE || bsize > FFS_MAXBSIZE / 2)
    throw fail('ufs', 'INVALID_ARGUMENT', `block size ${bsize} must be a power of two from ${MINBSIZE} to ${FFS_MAXBSIZE / 2}`);
  if (!isPow2(fsize) || fsize > bsize || bsize / fsize > MAXFRAG || fsize < DEV_BSIZE) {
    throw fail('ufs', 'INVALID_ARGUMENT', `fragment size ${fsize} must be a power of two from block size / ${MAXFRAG} to the block size (${bsize})`);
  }
  if (!Number.isInteger(minfree) || minfree < 0 || minfree > 99) throw fail('ufs', 'INVALID_ARGUMENT', `minfree ${minfree} must be 0..99 percent`);
  let density = opts.density ?? NFPI * fsize;
  if (!Number.isSafeInteger(density) || density < fsize)
    throw fail('ufs', 'INVALID_ARGUMENT', `density ${density} must be at least one fragment (${fsize} bytes) per inode`);
  if (!Number.isSafeInteger(opts.sizeBytes) || opts.sizeBytes <= 0)
    throw fail('ufs', 'INVALID_ARGUMENT', `file system size ${opts.sizeBytes} is not a positive whole number of bytes`);
  const frag = bsize / fsize;
  const size = Math.floor(opts.sizeBytes / fsize);
  const inopb = bsize / UFS2_DINODE_SIZE;
  const inopf = inopb / frag;
  const nindir = bsize / 8;
  // makefs: maxbsize = bsize, maxcontig = MAX(1, MIN(MAXPHYS, FFS_MAXBSIZE) / bsize); cluster summary when > 1.
  const maxcontig = Math.max(1, FFS_MAXBSIZE / bsize);
  const contigsumsize = maxcontig > 1 ? Math.min(maxcontig, FS_MAXCONTIG) : 0;
  // mkfs.c: superblock at SBLOCK_UFS2, then the cg block, then inodes, each rounded to a block.
  const sblkno = roundup(Math.ceil((SBLOCK_UFS2 + SBLOCKSIZE) / fsize), frag);
  const cblkno = sblkno + roundup(Math.ceil(SBLOCKSIZE / fsize), frag);
  const iblkno = cblkno + frag;
  let maxfilesize = bsize * UFS_NDADDR - 1;
  for (let i = 0, per = bsize; i < UFS_NIADDR; i++) {
    per *= nindir;
    maxfilesize += per;
  }
  const cgBytes = (ipg: number, fpg: number) => cgSize(ipg, fpg, frag, contigsumsize);
  // mkfs.c: the smallest group meeting the density, reducing the density until its map fits a block.
  let fragsperinode: number;
  let ipg: number;
  let fpg: number;
  for (;;) {
    fragsperinode = Math.max(Math.floor(density / fsize), 1);
    // mkfs.c caps minfpg at fs_size; a size that is not whole blocks would then leave fs_fpg off a
    // block boundary, which fs.h's block maps (and FreeBSD's superblock checks) do not allow, so the
    // cap is the size rounded up to a block: the one group then simply ends at fs_size.
    const minfpg = Math.min(fragsperinode * inopb, roundup(size, frag));
    fpg = Math.max(roundup(iblkno + inopb / inopf, frag), minfpg);
    ipg = roundup(Math.ceil(fpg / fragsperinode), inopb);
    fpg = Math.max(roundup(iblkno + ipg / inopf, frag), minfpg);
    ipg = roundup(Math.ceil(fpg / fragsperinode), inopb);
    if (cgBytes(ipg, fpg) < bsize) break;
    density -= fsize;
    if (density < fsize) throw fail('ufs', 'INVALID_ARGUMENT', `no density fits a cylinder group in a ${bsize}-byte block`);
  }
  // makefs: grow the group (maxblkspercg = fs_size - 1) until its map fills a block or one group holds it all.
  const maxblkspercg = size - 1;
  for (; fpg < maxblkspercg; fpg += frag) {
    ipg = roundup(Math.ceil(fpg / fragsperinode), inopb);
    if (Math.floor(size / fpg) < 1) break;
    const c = cgBytes(ipg, fpg);
    if (c < bsize) continue;
    if (c === bsize) break;
    fpg -= frag;
    ipg = roundup(Math.ceil(fpg / fragsperinode), inopb);
    break;
  }
  // mkfs.c: shrink the groups until the last one holds its metadata.
  let ncg: number;
  for (;;) {
    ncg = Math.ceil(size / fpg);
    const lastminfpg = roundup(iblkno + ipg / inopf, frag);
    if (size < lastminfpg) throw fail('ufs', 'INVALID_ARGUMENT', `file system of ${size} fragments is under the minimum of ${lastminfpg}`);
    if (size % fpg >= lastminfpg || size % fpg === 0) break;
    fpg -= frag;
    ipg = roundup(Math.ceil(fpg / fragsperinode), inopb);
  }
  const cgsize = roundup(cgBytes(ipg, fpg), fsize);
  const dblkno = iblkno + ipg / inopf;
  const cssize = roundup(ncg * 16, fsize);
  const csaddr = dblkno; // cgdmin(fs, 0)
  if (csaddr + Math.ceil(cssize / fsize) > Math.min(fpg, size))
    throw fail('ufs', 'INVALID_ARGUMENT', `file system of ${size} fragments is too small for its summary area`);
  return {
    bsize,
    fsize,
    frag,
    size,
    ncg,
    fpg,
    ipg,
    inopb,
    nindir,
    sblkno,
    cblkno,
    iblkno,
    dblkno,
    cgsize,
    cssize,
    csaddr,
    contigsumsize,
    maxcontig,
    density,
    minfree,
    maxfilesize,
  };
}

/** First fragment of group c, and the fragments it holds (the last may be short). */
export function cgRange(l: Ufs2Layout, c: number): { base: number; ndblk: number } {
  const base = c * l.fpg;
  return { base, ndblk: Math.min(base + l.fpg, l.size) - base };
}

/** Fragments of the summary area (fs_cssize rounded up to fragments). */
export const csFrags = (l: Ufs2Layout): number => Math.ceil(l.cssize / l.fsize);

/** fs_dsize as mkfs.c computes it: fragments outside every group's metadata and the summary area. */
export const dataFrags = (l: Ufs2Layout): number => l.size - l.sblkno - l.ncg * (l.dblkno - l.sblkno) - csFrags(l);

/**
 * The superblock for a layout, every field makefs sets, with the contents-dependent ones
 * (fs_cstotal, fs_time, fs_id, fs_volname, fs_flags) from `fill`.
 */
export function superblockFor(
  l: Ufs2Layout,
  fill: { cstotal: Superblock['cstotal']; time: number; id: [number, number]; volname: string; softupdates: boolean },
): Superblock {
  const sbsize = Math.min(roundup(STRUCT_FS_SIZE, l.fsize), SBLOCKSIZE);
  return {
    sblkno: l.sblkno,
    cblkno: l.cblkno,
    iblkno: l.iblkno,
    dblkno: l.dblkno,
    oldCgoffset: 0,
    oldCgmask: 0,
    oldTime: 0,
    oldSize: 0,
    oldDsize: 0,
    ncg: l.ncg,
    bsize: l.bsize,
    fsize: l.fsize,
    frag: l.frag,
    minfree: l.minfree,
    oldRotdelay: 0,
    oldRps: 0,
    bmask: ~(l.bsize - 1),
    fmask: ~(l.fsize - 1),
    bshift: log2(l.bsize),
    fshift: log2(l.fsize),
    maxcontig: l.maxcontig,
    maxbpg: l.bsize / 8, // newfs MAXBLKPG(bsize): bsize / sizeof(ufs2_daddr_t)
    fragshift: log2(l.frag),
    fsbtodb: log2(l.fsize / DEV_BSIZE),
    sbsize,
    nindir: l.nindir,
    inopb: l.inopb,
    oldNspf: 0,
    optim: FS_OPTSPACE,
    oldNpsect: 0,
    oldInterleave: 0,
    oldTrackskew: 0,
    id0: fill.id[0] >>> 0,
    id1: fill.id[1] >>> 0,
    oldCsaddr: 0,
    cssize: l.cssize,
    cgsize: l.cgsize,
    oldNsect: 0,
    oldSpc: 0,
    oldNcyl: 0,
    oldCpg: 0,
    ipg: l.ipg,
    fpg: l.fpg,
    fmod: 0,
    clean: FS_ISCLEAN,
    ronly: 0,
    oldFlags: FS_FLAGS_UPDATED,
    swuid: 0,
    cgrotor: 0,
    oldCpc: 0,
    maxbsize: l.bsize,
    unrefs: 0,
    providersize: 0,
    metaspace: 0,
    sblockactualloc: 0,
    sblockloc: SBLOCK_UFS2,
    time: fill.time,
    size: l.size,
    dsize: dataFrags(l),
    csaddr: l.csaddr,
    pendingblocks: 0,
    pendinginodes: 0,
    avgfilesize: AVFILESIZ,
    avgfpdir: AFPDIR,
    saveCgsize: 0,
    mtime: 0,
    sujfree: 0,
    ckhash: 0,
    metackhash: 0,
    flags: fill.softupdates ? 0x2 : 0, // fs.h FS_DOSOFTDEP
    contigsumsize: l.contigsumsize,
    maxsymlinklen: MAXSYMLINKLEN_UFS2,
    oldInodefmt: FS_44INODEFMT,
    maxfilesize: l.maxfilesize,
    qbmask: l.bsize - 1,
    qfmask: l.fsize - 1,
    state: 0,
    oldPostblformat: 0,
    oldNrpos: 0,
    magic: FS_UFS2_MAGIC,
    oldCstotal: { ndir: 0, nbfree: 0, nifree: 0, nffree: 0 },
    cstotal: fill.cstotal,
    fsmnt: '',
    volname: fill.volname,
  };
}
