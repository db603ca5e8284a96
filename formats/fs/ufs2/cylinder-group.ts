/**
 * UFS2 cylinder group codec: FreeBSD sys/ufs/ffs/fs.h `struct cg` (168-byte header, then the
 * maps at the offsets the header names), little-endian. The maps:
 *   used-inode map   cg_iusedoff, howmany(fs_ipg, 8) bytes, bit set = inode in use
 *   free-frag map    cg_freeoff, howmany(fs_fpg, 8) bytes, bit set = fragment free
 *   cluster summary  cg_clustersumoff, (fs_contigsumsize + 1) int32 counts of free runs; [0] is
 *                    never used and overlaps the end of the free-fragment map (makefs initcg
 *                    places it at roundup(end of free map - 4, 4)), so it is neither written nor read
 *   cluster map      cg_clusteroff, howmany(fs_fpg / fs_frag, 8) bytes, bit set = block free
 * Offsets as FreeBSD's makefs (usr.sbin/makefs/ffs/mkfs.c initcg) computes them for UFS2: the
 * cg_old_* fields stay zero.
 */
import { fail } from '../../common/errors.js';
import type { Csum } from './superblock.js';

/** fs.h CG_MAGIC; MAXFRAG (cg_frsum entries); sizeof(struct cg). */
export const CG_MAGIC = 0x090255;
export const MAXFRAG = 8;
export const CG_HEADER_SIZE = 168;

export interface CylinderGroup {
  cgx: number;
  /** cg_ndblk: fragments in this group (the last group may be short). */
  ndblk: number;
  cs: Csum;
  rotor: number;
  frotor: number;
  irotor: number;
  /** cg_frsum[1..7]: counts of free fragment runs of each length inside partly used blocks. */
  frsum: number[];
  nclusterblks: number;
  /** cg_niblk: inodes in this group (fs_ipg). */
  niblk: number;
  /** cg_initediblk: inodes whose blocks are initialized (zeroed). */
  initediblk: number;
  unrefs: number;
  ckhash: number;
  time: number;
  inosused: Uint8Array;
  blksfree: Uint8Array;
  /** Counts of free-block runs by length, [1..fs_contigsumsize] ([0] is 0); empty when fs_contigsumsize is 0. */
  clustersum: number[];
  clustersfree: Uint8Array;
}

/** Map offsets for a group of `ipg` inodes and `fpg` fragments (makefs initcg, UFS2). */
export function cgMapOffsets(ipg: number, fpg: number, frag: number, contigsumsize: number) {
  const iusedoff = CG_HEADER_SIZE;
  const freeoff = iusedoff + Math.ceil(ipg / 8);
  if (contigsumsize <= 0) return { iusedoff, freeoff, clustersumoff: 0, clusteroff: 0, nextfreeoff: freeoff + Math.ceil(fpg / 8) };
  const clustersumoff = roundup(freeoff + Math.ceil(fpg / 8) - 4, 4);
  const clusteroff = clustersumoff + (contigsumsize + 1) * 4;
  const nextfreeoff = clusteroff + Math.ceil(Math.floor(fpg / frag) / 8);
  return { iusedoff, freeoff, clustersumoff, clusteroff, nextfreeoff };
}

function roundup(n: number, m: number): number {
  return Math.ceil(n / m) * m;
}

/** fs.h CGSIZE for UFS2 (fs_old_cpg 0): the bytes a group's header and maps need. */
export function cgSize(ipg: number, fpg: number, frag: number, contigsumsize: number): number {
  const base = CG_HEADER_SIZE + Math.ceil(ipg / 8) + Math.ceil(fpg / 8) + 4;
  return contigsumsize <= 0 ? base : base + contigsumsize * 4 + Math.ceil(Math.floor(fpg / frag) / 8);
}

/** Encode a group into `cgsize` bytes (fs_cgsize) for a file system with these parameters. */
export function encodeCylinderGroup(cg: CylinderGroup, p: { ipg: number; fpg: number; frag: number; contigsumsize: number; cgsize: number }): Uint8Array {
  const off = cgMapOffsets(p.ipg, p.fpg, p.frag, p.contigsumsize);
  if (off.nextfreeoff > p.cgsize) throw fail('ufs', 'BAD_VALUE', `cylinder group maps need ${off.nextfreeoff} bytes, fs_cgsize is ${p.cgsize}`);
  if (cg.inosused.length !== Math.ceil(p.ipg / 8) || cg.blksfree.length !== Math.ceil(p.fpg / 8)) {
    throw fail('ufs', 'BAD_VALUE', 'cylinder group map sizes do not match fs_ipg and fs_fpg');
  }
  if (cg.frsum.length !== MAXFRAG) throw fail('ufs', 'BAD_VALUE', `cg_frsum has ${MAXFRAG} entries`);
  const out = new Uint8Array(p.cgsize);
  const dv = new DataView(out.buffer);
  const u32 = (at: number, v: number) => dv.setUint32(at, v >>> 0, true);
  u32(4, CG_MAGIC);
  u32(12, cg.cgx);
  u32(20, cg.ndblk);
  [cg.cs.ndir, cg.cs.nbfree, cg.cs.nifree, cg.cs.nffree].forEach((v, i) => dv.setInt32(24 + 4 * i, v, true));
  u32(40, cg.rotor);
  u32(44, cg.frotor);
  u32(48, cg.irotor);
  cg.frsum.forEach((v, i) => u32(52 + 4 * i, v));
  u32(92, off.iusedoff);
  u32(96, off.freeoff);
  u32(100, off.nextfreeoff);
  u32(104, off.clustersumoff);
  u32(108, off.clusteroff);
  u32(112, cg.nclusterblks);
  u32(116, cg.niblk);
  u32(120, cg.initediblk);
  u32(124, cg.unrefs);
  u32(132, cg.ckhash);
  dv.setBigInt64(136, BigInt(cg.time), true);
  out.set(cg.inosused, off.iusedoff);
  out.set(cg.blksfree, off.freeoff);
  if (p.contigsumsize > 0) {
    if (cg.clustersum.length !== p.contigsumsize + 1) throw fail('ufs', 'BAD_VALUE', `cluster summary has ${p.contigsumsize + 1} entries`);
    cg.clustersum.forEach((v, i) => {
      if (i > 0) u32(off.clustersumoff + 4 * i, v);
    });
    if (cg.clustersfree.length !== Math.ceil(Math.floor(p.fpg / p.frag) / 8)) throw fail('ufs', 'BAD_VALUE', 'cluster map size does not match fs_fpg');
    out.set(cg.clustersfree, off.clusteroff);
  }
  return out;
}

/** Decode a group; the map lengths come from the file system (fs_ipg, fs_fpg, fs_frag). */
export function decodeCylinderGroup(bytes: Uint8Array, p: { ipg: number; fpg: number; frag: number; contigsumsize: number }): CylinderGroup {
  if (bytes.length < CG_HEADER_SIZE) throw fail('ufs', 'TRUNCATED', `a cylinder group needs ${CG_HEADER_SIZE} bytes, have ${bytes.length}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const u32 = (at: number) => dv.getUint32(at, true);
  if (u32(4) !== CG_MAGIC) throw fail('ufs', 'BAD_MAGIC', 'cylinder group has no CG_MAGIC');
  const iusedoff = u32(92);
  const freeoff = u32(96);
  const clustersumoff = u32(104);
  const clusteroff = u32(108);
  const inoLen = Math.ceil(p.ipg / 8);
  const fragLen = Math.ceil(p.fpg / 8);
  const clusterLen = Math.ceil(Math.floor(p.fpg / p.frag) / 8);
  const within = (at: number, len: number, what: string) => {
    if (at < CG_HEADER_SIZE || at + len > bytes.length)
      throw fail('ufs', 'BAD_VALUE', `cylinder group ${what} at ${at} (+${len}) lies outside its ${bytes.length} bytes`);
  };
  within(iusedoff, inoLen, 'used-inode map');
  within(freeoff, fragLen, 'free-fragment map');
  let clustersum: number[] = [];
  let clustersfree = new Uint8Array(0);
  if (p.contigsumsize > 0) {
    within(clustersumoff, (p.contigsumsize + 1) * 4, 'cluster summary');
    within(clusteroff, clusterLen, 'cluster map');
    clustersum = Array.from({ length: p.contigsumsize + 1 }, (_, i) => (i === 0 ? 0 : u32(clustersumoff + 4 * i)));
    clustersfree = bytes.slice(clusteroff, clusteroff + clusterLen);
  }
  return {
    cgx: u32(12),
    ndblk: u32(20),
    cs: { ndir: dv.getInt32(24, true), nbfree: dv.getInt32(28, true), nifree: dv.getInt32(32, true), nffree: dv.getInt32(36, true) },
    rotor: u32(40),
    frotor: u32(44),
    irotor: u32(48),
    frsum: Array.from({ length: MAXFRAG }, (_, i) => u32(52 + 4 * i)),
    nclusterblks: u32(112),
    niblk: u32(116),
    initediblk: u32(120),
    unrefs: u32(124),
    ckhash: u32(132),
    time: Number(dv.getBigInt64(136, true)),
    inosused: bytes.slice(iusedoff, iusedoff + inoLen),
    blksfree: bytes.slice(freeoff, freeoff + fragLen),
    clustersum,
    clustersfree,
  };
}

/**
 * The summaries FreeBSD derives from a free-fragment map (ffs_alloc.c ffs_fragacct, and the
 * cluster accounting in makefs initcg): free whole blocks, free fragments in partly used
 * blocks with their run-length counts, the cluster map and its run summary capped at
 * `contigsumsize`. `ndblk` fragments are counted; a partial last block counts as fragments.
 * Map lengths follow `fpg` (fs_fpg) as encodeCylinderGroup expects.
 */
export function summarizeFreeMap(blksfree: Uint8Array, p: { ndblk: number; fpg: number; frag: number; contigsumsize: number }) {
  const { ndblk, frag, contigsumsize } = p;
  const isFree = (f: number) => (blksfree[f >> 3] >> (f & 7)) & 1;
  const frsum = new Array<number>(MAXFRAG).fill(0);
  let nbfree = 0;
  let nffree = 0;
  const nclusterblks = Math.floor(ndblk / frag);
  const clustersfree = new Uint8Array(Math.ceil(Math.floor(p.fpg / frag) / 8));
  const clustersum = contigsumsize > 0 ? new Array<number>(contigsumsize + 1).fill(0) : [];
  for (let b = 0; b * frag < ndblk; b++) {
    const first = b * frag;
    const n = Math.min(frag, ndblk - first);
    let freeHere = 0;
    for (let i = 0; i < n; i++) freeHere += isFree(first + i);
    if (n === frag && freeHere === frag) {
      nbfree++;
      clustersfree[b >> 3] |= 1 << (b & 7);
      continue;
    }
    nffree += freeHere;
    let run = 0;
    for (let i = 0; i < n; i++) {
      if (isFree(first + i)) run++;
      else if (run > 0) {
        frsum[run]++;
        run = 0;
      }
    }
    if (run > 0) frsum[run]++;
  }
  let run = 0;
  for (let b = 0; b < nclusterblks && contigsumsize > 0; b++) {
    if ((clustersfree[b >> 3] >> (b & 7)) & 1) run++;
    else if (run > 0) {
      clustersum[Math.min(run, contigsumsize)]++;
      run = 0;
    }
  }
  if (run > 0 && contigsumsize > 0) clustersum[Math.min(run, contigsumsize)]++;
  return { nbfree, nffree, frsum, nclusterblks, clustersfree: contigsumsize > 0 ? clustersfree : new Uint8Array(0), clustersum };
}
