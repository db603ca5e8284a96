/**
 * Deterministic allocation for a fresh UFS2 file system: inodes in tree order from
 * UFS_ROOTINO, data blocks in one forward sweep over the cylinder groups (a fresh file system
 * never fragments, so a file's blocks are contiguous except where its indirect blocks sit, as
 * ffs_balloc places each pointer block before the data it maps), and tails of small files in
 * fragments packed into partly used blocks (a tail never crosses a block).
 *
 * The fragments every group reserves are marked used up front: cg 0's boot area and primary
 * superblock [0, fs_sblkno), every group's superblock copy, cg block and inodes
 * [fs_sblkno, fs_dblkno), and cg 0's summary area after fs_dblkno (makefs initcg). A group's
 * blocks before its superblock copy (groups > 0) are left free, as makefs leaves them.
 */
import { fail } from '../../../formats/common/errors.js';
import { cgRange, csFrags, type Ufs2Layout } from '../../../formats/fs/ufs2/layout.js';
import { UFS_NDADDR, UFS_NIADDR } from '../../../formats/fs/ufs2/inode.js';

export class FragAllocator {
  /** Per group: bit set = fragment in use (the opposite sense of cg_blksfree). */
  readonly used: Uint8Array[];
  private cg = 0;
  private block: number;
  private partial: { next: number; free: number } | undefined;

  constructor(readonly l: Ufs2Layout) {
    this.used = Array.from({ length: l.ncg }, () => new Uint8Array(Math.ceil(l.fpg / 8)));
    for (let c = 0; c < l.ncg; c++) this.markRange(c, c === 0 ? 0 : l.sblkno, l.dblkno + (c === 0 ? csFrags(l) : 0));
    const dupper = l.dblkno + csFrags(l);
    this.block = Math.ceil(dupper / l.frag);
    const lead = this.block * l.frag - dupper;
    if (lead > 0) this.partial = { next: dupper, free: lead };
  }

  /** Fragments handed out for data and pointer blocks. */
  allocated = 0;

  private markRange(c: number, from: number, to: number): void {
    const map = this.used[c];
    for (let f = from; f < to; f++) map[f >> 3] |= 1 << (f & 7);
  }

  /** A whole free block: its first fragment's address. */
  allocBlock(): number {
    const l = this.l;
    for (;;) {
      if (this.cg >= l.ncg) throw fail('ufs', 'INVALID_ARGUMENT', 'the tree does not fit: no free block left');
      const { base, ndblk } = cgRange(l, this.cg);
      if ((this.block + 1) * l.frag <= ndblk) {
        const at = this.block * l.frag;
        this.block++;
        this.markRange(this.cg, at, at + l.frag);
        this.allocated += l.frag;
        return base + at;
      }
      this.cg++;
      this.block = l.dblkno / l.frag;
    }
  }

  /** n fragments (1..frag) inside one block. */
  allocFrags(n: number): number {
    if (n >= this.l.frag) return this.allocBlock();
    if (this.partial && this.partial.free >= n) {
      const at = this.partial.next;
      this.partial.next += n;
      this.partial.free -= n;
      this.allocated += n;
      const c = Math.floor(at / this.l.fpg);
      this.markRange(c, at - c * this.l.fpg, at - c * this.l.fpg + n);
      return at;
    }
    const at = this.allocBlock();
    const c = Math.floor(at / this.l.fpg);
    const rel = at - c * this.l.fpg;
    // allocBlock marked the whole block: give back what this tail does not take.
    for (let f = rel + n; f < rel + this.l.frag; f++) this.used[c][f >> 3] &= ~(1 << (f & 7));
    this.allocated -= this.l.frag - n;
    this.partial = { next: at + n, free: this.l.frag - n };
    return at;
  }
}

/** Where one inode's data went. */
export interface InodeBlocks {
  db: number[];
  ib: number[];
  /** Pointer blocks (UFS2 addresses, int64 little-endian) and where they go. */
  indirect: { addr: number; data: Uint8Array }[];
  /** Contiguous data: `bytes` bytes of the inode's data from `offset`, at fragment `addr`. */
  runs: { addr: number; offset: number; bytes: number }[];
  /** Fragments held, data and pointer blocks (di_blocks = frags * fsize / 512). */
  frags: number;
}

/**
 * Allocate the blocks for `size` bytes: direct blocks (the last one cut to whole fragments when
 * the file has no more than UFS_NDADDR blocks: fs.h blksize()), then single, double and triple
 * indirect trees, each pointer block allocated before the blocks it maps.
 */
/** `record` false: allocate only (sizing dry runs), without pointer-block contents or runs. */
export function allocateData(alloc: FragAllocator, size: number, record = true): InodeBlocks {
  const l = alloc.l;
  const nblk = Math.ceil(size / l.bsize);
  const db = new Array<number>(UFS_NDADDR).fill(0);
  const ib = new Array<number>(UFS_NIADDR).fill(0);
  const indirect: InodeBlocks['indirect'] = [];
  const runs: InodeBlocks['runs'] = [];
  let frags = 0;
  let lbn = 0;
  const dataBlock = (): number => {
    const offset = lbn * l.bsize;
    const bytes = Math.min(l.bsize, size - offset);
    const n = nblk <= UFS_NDADDR && lbn === nblk - 1 ? Math.ceil(bytes / l.fsize) : l.frag;
    const addr = alloc.allocFrags(n);
    frags += n;
    const last = runs.at(-1);
    if (!record) {
      lbn++;
      return addr;
    }
    if (last && last.addr + last.bytes / l.fsize === addr && last.bytes % l.bsize === 0) last.bytes += bytes;
    else runs.push({ addr, offset, bytes });
    lbn++;
    return addr;
  };
  const pointerBlock = (level: number): number => {
    const addr = alloc.allocBlock();
    frags += l.frag;
    if (!record) {
      for (let i = 0; i < l.nindir && lbn < nblk; i++)
        if (level === 1) dataBlock();
        else pointerBlock(level - 1);
      return addr;
    }
    const data = new Uint8Array(l.bsize);
    const dv = new DataView(data.buffer);
    indirect.push({ addr, data });
    for (let i = 0; i < l.nindir && lbn < nblk; i++) dv.setBigInt64(8 * i, BigInt(level === 1 ? dataBlock() : pointerBlock(level - 1)), true);
    return addr;
  };
  while (lbn < Math.min(nblk, UFS_NDADDR)) db[lbn] = dataBlock();
  for (let level = 1; level <= UFS_NIADDR && lbn < nblk; level++) ib[level - 1] = pointerBlock(level);
  if (lbn < nblk) throw fail('ufs', 'INVALID_ARGUMENT', `a file of ${size} bytes exceeds the largest this block size maps`);
  return { db, ib, indirect, runs, frags };
}
