/**
 * Build a UFS2 file system from a FileTree as a VirtualDisk (src/model/extents.ts): the
 * superblock and its copies, cylinder groups, summary area, inodes, directories, pointer
 * blocks and long symlinks are in-memory extents; file contents are file-range extents read
 * only when the image is written. Cost follows the metadata, never the data.
 *
 * Geometry: formats/fs/ufs2/layout.ts (makefs' algorithm, superblock at 65,536 as FreeBSD).
 * Allocation: build-alloc.ts. Same tree and options, same bytes: fs_id and each di_gen derive
 * from `seed`; fs_time is `time`, else SOURCE_DATE_EPOCH, else the tree's newest mtime.
 */
import { fail, FormatError } from '../../../formats/common/errors.js';
import { encodeCylinderGroup, summarizeFreeMap } from '../../../formats/fs/ufs2/cylinder-group.js';
import { encodeInode, makeDev, UFS2_DINODE_SIZE, UFS_NDADDR, UFS_NIADDR, type Ufs2Inode } from '../../../formats/fs/ufs2/inode.js';
import { cgRange, computeUfs2Layout, dataFrags, NFPI, superblockFor, type Ufs2Layout } from '../../../formats/fs/ufs2/layout.js';
import { encodeCsumArray, encodeSuperblock, SBLOCK_UFS2, type Csum } from '../../../formats/fs/ufs2/superblock.js';
import { DiskmintError } from '../../model/errors.js';
import { VirtualDisk } from '../../model/extents.js';
import { deriveU32 } from '../../model/seed.js';
import { sourceDateEpoch } from '../../model/source-date.js';
import type { FileTree } from '../tree/types.js';
import { allocateData, FragAllocator, type InodeBlocks } from './build-alloc.js';
import { planInodes, type PlannedInode } from './build-plan.js';

export interface UfsBuildOptions {
  /** Bytes; omitted = the smallest that holds the tree with fs_minfree percent to spare. */
  size?: number;
  blockSize?: number;
  fragSize?: number;
  /** Bytes per inode; default newfs' NFPI * fsize, lowered when the tree needs more inodes. */
  density?: number;
  minfree?: number;
  /** fs_volname (/dev/ufs/LABEL), up to 31 bytes. */
  label?: string;
  /** Set FS_DOSOFTDEP (soft updates); off by default as for makefs. */
  softupdates?: boolean;
  seed?: string;
  /** fs_time and cg_time, seconds since 1970. */
  time?: number;
}

export interface UfsVolume {
  disk: VirtualDisk;
  layout: Ufs2Layout;
  sizeBytes: number;
  inodes: number;
  freeBytes: number;
}

/** Build into exactly `size` bytes, or the smallest size that fits. */
export function buildUfsVolume(tree: FileTree, opts: UfsBuildOptions = {}): UfsVolume {
  const inodes = planInodes(tree);
  try {
    if (opts.size !== undefined) return buildSized(inodes, opts.size, opts, false);
    // Dry runs (allocation only) find the smallest size, in 2 % steps; then one real build.
    let size = estimateSize(inodes, opts);
    for (;;) {
      try {
        const free = fitsWithSpare(inodes, size, opts);
        if (free * 100 >= (opts.minfree ?? 8) * size) return buildSized(inodes, size, opts, true);
      } catch (err) {
        if (!(err instanceof FormatError) || !/does not fit/.test(err.message)) throw err;
      }
      size = Math.ceil((size * 1.02) / 65536) * 65536;
    }
  } catch (err) {
    if (err instanceof FormatError) throw new DiskmintError('BAD_ARGUMENT', `ufs: ${err.message}`);
    throw err;
  }
}

function estimateSize(inodes: PlannedInode[], opts: UfsBuildOptions): number {
  const bsize = opts.blockSize ?? 32768;
  const fsize = opts.fragSize ?? 4096;
  let data = 0;
  for (const i of inodes) if (!i.shortLink) data += Math.ceil(i.size / fsize) * fsize + Math.floor(i.size / (bsize * 256)) * bsize;
  const meta = inodes.length * UFS2_DINODE_SIZE * 2 + 4 * bsize + 131072;
  // Free space is at least fs_minfree percent of the whole (a dry run checks it).
  return Math.ceil((data + meta) / (1 - (opts.minfree ?? 8) / 100) / 65536) * 65536;
}

/** Free bytes after allocating the tree's data at `sizeBytes` (throws when it does not fit). */
function fitsWithSpare(inodes: PlannedInode[], sizeBytes: number, opts: UfsBuildOptions): number {
  const l = layoutFor(inodes, sizeBytes, opts, true);
  const alloc = new FragAllocator(l);
  for (const inode of inodes) if (!(inode.shortLink || inode.size === 0 || isSpecial(inode))) allocateData(alloc, inode.size, false);
  return (dataFrags(l) - alloc.allocated) * l.fsize;
}

/**
 * Inodes: a size chosen here gets makefs' density (size / inodes + 1, with a tenth more inodes
 * to spare); a given size gets newfs' NFPI * fsize, or denser when the tree needs more inodes.
 */
function layoutFor(inodes: PlannedInode[], sizeBytes: number, opts: UfsBuildOptions, fitted: boolean): Ufs2Layout {
  const fsize = opts.fragSize ?? 4096;
  const wanted = Math.ceil((inodes.length + 2) * 1.1) + 16;
  const treeDensity = Math.floor(sizeBytes / wanted) + 1;
  const density = opts.density ?? Math.max(fsize, fitted ? treeDensity : Math.min(NFPI * fsize, treeDensity));
  const l = computeUfs2Layout({ sizeBytes, blockSize: opts.blockSize, fragSize: opts.fragSize, density, minfree: opts.minfree });
  if (inodes.length + 2 > l.ncg * l.ipg)
    throw fail('ufs', 'INVALID_ARGUMENT', `the tree does not fit: ${inodes.length} inodes, ${l.ncg * l.ipg - 2} available`);
  return l;
}

function buildSized(inodes: PlannedInode[], sizeBytes: number, opts: UfsBuildOptions, fitted: boolean): UfsVolume {
  const l = layoutFor(inodes, sizeBytes, opts, fitted);
  const seed = opts.seed ?? 'diskmint-ufs';
  const time = opts.time ?? sourceDateEpoch() ?? newestMtime(inodes);
  const disk = new VirtualDisk(l.size * l.fsize);
  const alloc = new FragAllocator(l);
  const inodeTables = Array.from({ length: l.ncg }, () => ({ used: 0, ndir: 0 }));
  const tableBytes: Uint8Array[] = [];
  const placed: { inode: PlannedInode; blocks: InodeBlocks | undefined }[] = [];
  for (const inode of inodes) {
    const blocks = inode.shortLink || inode.size === 0 || isSpecial(inode) ? undefined : allocateData(alloc, inode.size);
    placed.push({ inode, blocks });
    if (blocks) placeData(disk, l, inode, blocks);
    const c = Math.floor(inode.ino / l.ipg);
    inodeTables[c].used = (inode.ino % l.ipg) + 1;
    if (inode.isDir) inodeTables[c].ndir++;
  }
  inodeTables[0].used = Math.max(inodeTables[0].used, 2);
  // cg_initediblk: the inode blocks written (zeroed) in each group; at least two blocks (makefs).
  const inited = inodeTables.map((t) => Math.min(l.ipg, Math.max(2 * l.inopb, Math.ceil(t.used / l.inopb) * l.inopb)));
  for (let c = 0; c < l.ncg; c++) tableBytes.push(new Uint8Array(inited[c] * UFS2_DINODE_SIZE));
  const genBase = deriveU32(seed, 'ufs-gen');
  for (const { inode, blocks } of placed) {
    const c = Math.floor(inode.ino / l.ipg);
    encodeInode(inodeFor(inode, blocks, l, generation(genBase, inode.ino)), tableBytes[c], (inode.ino % l.ipg) * UFS2_DINODE_SIZE);
  }
  const groups: Csum[] = [];
  for (let c = 0; c < l.ncg; c++) {
    const { base, ndblk } = cgRange(l, c);
    const blksfree = new Uint8Array(Math.ceil(l.fpg / 8));
    for (let i = 0; i < blksfree.length; i++) blksfree[i] = ~alloc.used[c][i] & 0xff;
    for (let f = ndblk; f < blksfree.length * 8; f++) blksfree[f >> 3] &= ~(1 << (f & 7));
    const s = summarizeFreeMap(blksfree, { ndblk, fpg: l.fpg, frag: l.frag, contigsumsize: l.contigsumsize });
    const inosused = new Uint8Array(Math.ceil(l.ipg / 8));
    const usedInodes = c === 0 ? Math.max(inodeTables[0].used, 2) : inodeTables[c].used;
    for (let i = 0; i < usedInodes; i++) inosused[i >> 3] |= 1 << (i & 7);
    const cs: Csum = { ndir: inodeTables[c].ndir, nbfree: s.nbfree, nifree: l.ipg - usedInodes, nffree: s.nffree };
    groups.push(cs);
    const cgBytes = encodeCylinderGroup(
      {
        cgx: c,
        ndblk,
        cs,
        rotor: 0,
        frotor: 0,
        irotor: 0,
        frsum: s.frsum,
        nclusterblks: s.nclusterblks,
        niblk: l.ipg,
        initediblk: inited[c],
        unrefs: 0,
        ckhash: 0,
        time,
        inosused,
        blksfree,
        clustersum: s.clustersum,
        clustersfree: s.clustersfree,
      },
      { ipg: l.ipg, fpg: l.fpg, frag: l.frag, contigsumsize: l.contigsumsize, cgsize: l.cgsize },
    );
    disk.placeBytes((base + l.cblkno) * l.fsize, cgBytes);
    disk.placeBytes((base + l.iblkno) * l.fsize, tableBytes[c]);
  }
  const total = groups.reduce((t, g) => ({ ndir: t.ndir + g.ndir, nbfree: t.nbfree + g.nbfree, nifree: t.nifree + g.nifree, nffree: t.nffree + g.nffree }), {
    ndir: 0,
    nbfree: 0,
    nifree: 0,
    nffree: 0,
  });
  const label = opts.label ?? '';
  if (new TextEncoder().encode(label).length > 31)
    throw new DiskmintError('BAD_ARGUMENT', `label ${JSON.stringify(label)} is longer than 31 bytes (fs_volname)`);
  const sb = superblockFor(l, {
    cstotal: { ...total, numclusters: 0 },
    time,
    id: [time >>> 0, deriveU32(seed, 'ufs-fs-id')],
    volname: label,
    softupdates: opts.softupdates ?? false,
  });
  const sbBytes = encodeSuperblock(sb, sb.sbsize);
  disk.placeBytes(SBLOCK_UFS2, sbBytes);
  for (let c = 0; c < l.ncg; c++) disk.placeBytes((cgRange(l, c).base + l.sblkno) * l.fsize, sbBytes);
  disk.placeBytes(l.csaddr * l.fsize, encodeCsumArray(groups, l.cssize));
  return { disk, layout: l, sizeBytes: l.size * l.fsize, inodes: inodes.length, freeBytes: (total.nbfree * l.frag + total.nffree) * l.fsize };
}

const isSpecial = (i: PlannedInode) => !['file', 'dir', 'symlink'].includes(i.node.kind);

function placeData(disk: VirtualDisk, l: Ufs2Layout, inode: PlannedInode, blocks: InodeBlocks): void {
  for (const p of blocks.indirect) disk.placeBytes(p.addr * l.fsize, p.data);
  for (const run of blocks.runs) {
    if (inode.bytes) disk.placeBytes(run.addr * l.fsize, inode.bytes.subarray(run.offset, run.offset + run.bytes));
    else {
      const content = inode.node.content!;
      disk.place(run.addr * l.fsize, run.bytes, { kind: 'file', path: content.path, offset: content.offset + run.offset });
    }
  }
}

/** di_gen: one hash of the seed, then murmur3's 32-bit finalizer of base + inode (no hash per inode). */
function generation(base: number, ino: number): number {
  let h = (base + ino) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0 || 1;
}

function inodeFor(inode: PlannedInode, blocks: InodeBlocks | undefined, l: Ufs2Layout, gen: number): Ufs2Inode {
  const n = inode.node;
  const db = blocks?.db ?? new Array<number>(UFS_NDADDR).fill(0);
  if (n.device) {
    const dev = makeDev(n.device.major, n.device.minor);
    if (dev > BigInt(Number.MAX_SAFE_INTEGER))
      throw new DiskmintError('BAD_ARGUMENT', `${n.path}: device ${n.device.major},${n.device.minor} is beyond what diskmint stores`);
    db[0] = Number(dev); // dinode.h: di_rdev is di_db[0]
  }
  return {
    mode: inode.mode,
    nlink: inode.nlink,
    uid: n.uid,
    gid: n.gid,
    blksize: 0,
    size: inode.size,
    blocks: ((blocks?.frags ?? 0) * l.fsize) / 512,
    atime: n.atime,
    mtime: n.mtime,
    ctime: n.ctime,
    birthtime: n.birthtime,
    gen,
    kernflags: 0,
    flags: n.flags,
    db,
    ib: blocks?.ib ?? new Array<number>(UFS_NIADDR).fill(0),
    modrev: 0,
    shortLink: inode.shortLink,
  };
}

function newestMtime(inodes: PlannedInode[]): number {
  let t = 0;
  for (const i of inodes) t = Math.max(t, i.node.mtime.sec);
  return t;
}
