/**
 * A small consistency check of a UFS2 image for the builder's tests, written from fs.h and
 * dinode.h independently of the builder's allocator: walk every inode's blocks (direct and
 * through pointer blocks), and check that no fragment is claimed twice or lies in metadata,
 * that each group's free map is exactly the complement of what inodes and metadata hold, that
 * the used-inode maps, group summaries and fs_cstotal agree, and that directories decode with
 * '.' and '..' and link counts match. (The reader helper's `ufs verify` is the full fsck.)
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { decodeCylinderGroup, summarizeFreeMap } from '../../formats/fs/ufs2/cylinder-group.js';
import { decodeDirectory } from '../../formats/fs/ufs2/directory.js';
import { decodeInode, IFDIR, IFMT, UFS2_DINODE_SIZE, type Ufs2Inode } from '../../formats/fs/ufs2/inode.js';
import { decodeCsumArray, decodeSuperblock, SBLOCK_UFS2, type Superblock } from '../../formats/fs/ufs2/superblock.js';

export function readAt(path: string, offset: number, length: number): Uint8Array {
  const buf = Buffer.alloc(length);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, length, offset);
  } finally {
    closeSync(fd);
  }
  return new Uint8Array(buf.buffer, buf.byteOffset, length);
}

export interface CheckedUfs {
  sb: Superblock;
  problems: string[];
  inodes: Map<number, Ufs2Inode>;
  /** Bytes of an inode's data. */
  dataOf(ino: number): Uint8Array;
  /** Each inode's data blocks in logical order (fragment addresses). */
  blocksOf: Map<number, number[]>;
}

/** Check the file system at byte `at` of `path` (a partition's offset; 0 for a bare image). */
export function checkUfsImage(path: string, at = 0): CheckedUfs {
  const sb = decodeSuperblock(readAt(path, at + SBLOCK_UFS2, 8192));
  const problems: string[] = [];
  const { fsize, bsize, frag, fpg, ipg, ncg } = sb;
  const owner = new Map<number, string>();
  const claim = (f: number, what: string) => {
    if (f < 0 || f >= sb.size) problems.push(`${what}: fragment ${f} outside the file system`);
    else if (owner.has(f)) problems.push(`${what}: fragment ${f} also held by ${owner.get(f)}`);
    else owner.set(f, what);
  };
  for (let c = 0; c < ncg; c++) {
    const base = c * fpg;
    for (let f = c === 0 ? 0 : sb.sblkno; f < sb.dblkno; f++) claim(base + f, `cg ${c} metadata`);
  }
  for (let f = 0; f < Math.ceil(sb.cssize / fsize); f++) claim(sb.csaddr + f, 'summary area');
  const inodes = new Map<number, Ufs2Inode>();
  const cgs = [];
  for (let c = 0; c < ncg; c++) {
    const cg = decodeCylinderGroup(readAt(path, at + (c * fpg + sb.cblkno) * fsize, sb.cgsize), sb);
    cgs.push(cg);
    const table = readAt(path, at + (c * fpg + sb.iblkno) * fsize, cg.initediblk * UFS2_DINODE_SIZE);
    for (let i = c === 0 ? 2 : 0; i < cg.initediblk; i++) {
      const used = (cg.inosused[i >> 3] >> (i & 7)) & 1;
      const ino = decodeInode(table, i * UFS2_DINODE_SIZE);
      if (used !== (ino.mode !== 0 ? 1 : 0)) problems.push(`inode ${c * ipg + i}: used bit ${used} but mode ${ino.mode}`);
      if (ino.mode !== 0) inodes.set(c * ipg + i, ino);
    }
  }
  const blocksOf = new Map<number, number[]>();
  for (const [n, ino] of inodes) {
    if (ino.shortLink || (ino.mode & IFMT) === 0o020000 || (ino.mode & IFMT) === 0o060000) continue;
    const addrs: number[] = [];
    let frags = 0;
    const nblk = Math.ceil(ino.size / bsize);
    const take = (addr: number, lbn: number) => {
      const n2 = nblk <= 12 && lbn === nblk - 1 ? Math.ceil((ino.size - lbn * bsize) / fsize) : frag;
      for (let i = 0; i < n2; i++) claim(addr + i, `inode ${n}`);
      frags += n2;
      addrs.push(addr);
    };
    for (let lbn = 0; lbn < Math.min(nblk, 12); lbn++) take(ino.db[lbn], lbn);
    let lbn = 12;
    const walk = (addr: number, level: number) => {
      for (let i = 0; i < frag; i++) claim(addr + i, `inode ${n} pointers`);
      frags += frag;
      const dv = new DataView(readAt(path, at + addr * fsize, bsize).buffer);
      for (let i = 0; i < bsize / 8 && lbn < nblk; i++) {
        const child = Number(dv.getBigInt64(8 * i, true));
        if (level === 1) take(child, lbn++);
        else walk(child, level - 1);
      }
    };
    for (let level = 1; level <= 3 && lbn < nblk; level++) walk(ino.ib[level - 1], level);
    if (ino.blocks !== (frags * fsize) / 512) problems.push(`inode ${n}: di_blocks ${ino.blocks}, holds ${(frags * fsize) / 512}`);
    blocksOf.set(n, addrs);
  }
  const dataOf = (n: number): Uint8Array => {
    const ino = inodes.get(n)!;
    const out = new Uint8Array(ino.size);
    (blocksOf.get(n) ?? []).forEach((addr, lbn) => out.set(readAt(path, at + addr * fsize, Math.min(bsize, ino.size - lbn * bsize)), lbn * bsize));
    return out;
  };
  const total = { ndir: 0, nbfree: 0, nifree: 0, nffree: 0 };
  const csums = decodeCsumArray(readAt(path, at + sb.csaddr * fsize, sb.cssize), ncg);
  cgs.forEach((cg, c) => {
    const ndblk = Math.min(fpg, sb.size - c * fpg);
    for (let f = 0; f < ndblk; f++) {
      const free = (cg.blksfree[f >> 3] >> (f & 7)) & 1;
      if (free === (owner.has(c * fpg + f) ? 1 : 0))
        problems.push(`cg ${c} fragment ${f}: free bit ${free} disagrees with ${owner.get(c * fpg + f) ?? 'no owner'}`);
    }
    const s = summarizeFreeMap(cg.blksfree, { ndblk, fpg, frag, contigsumsize: sb.contigsumsize });
    let usedInodes = 0;
    let ndir = 0;
    for (let i = 0; i < ipg; i++) usedInodes += (cg.inosused[i >> 3] >> (i & 7)) & 1;
    for (const [n, ino] of inodes) if (Math.floor(n / ipg) === c && (ino.mode & IFMT) === IFDIR) ndir++;
    const want = { ndir, nbfree: s.nbfree, nifree: ipg - usedInodes, nffree: s.nffree };
    if (JSON.stringify(cg.cs) !== JSON.stringify(want)) problems.push(`cg ${c}: cg_cs ${JSON.stringify(cg.cs)}, maps say ${JSON.stringify(want)}`);
    if (JSON.stringify(csums[c]) !== JSON.stringify(want)) problems.push(`cg ${c}: summary area ${JSON.stringify(csums[c])}, maps say ${JSON.stringify(want)}`);
    if (JSON.stringify(cg.frsum) !== JSON.stringify(s.frsum)) problems.push(`cg ${c}: cg_frsum ${cg.frsum}, maps say ${s.frsum}`);
    if (JSON.stringify(cg.clustersum) !== JSON.stringify(s.clustersum)) problems.push(`cg ${c}: cluster summary ${cg.clustersum}, maps say ${s.clustersum}`);
    for (const k of ['ndir', 'nbfree', 'nifree', 'nffree'] as const) total[k] += want[k];
  });
  const cst = sb.cstotal;
  if (cst.ndir !== total.ndir || cst.nbfree !== total.nbfree || cst.nifree !== total.nifree || cst.nffree !== total.nffree) {
    problems.push(`fs_cstotal ${JSON.stringify(cst)}, groups sum to ${JSON.stringify(total)}`);
  }
  // Directories: '.', '..', and link counts from the entries.
  const links = new Map<number, number>();
  for (const [n, ino] of inodes) {
    if ((ino.mode & IFMT) !== IFDIR) continue;
    const entries = decodeDirectory(dataOf(n));
    const dec = new TextDecoder();
    if (dec.decode(entries[0]?.name) !== '.' || entries[0].ino !== n) problems.push(`directory ${n}: first entry is not '.'`);
    if (dec.decode(entries[1]?.name) !== '..') problems.push(`directory ${n}: second entry is not '..'`);
    for (const e of entries) links.set(e.ino, (links.get(e.ino) ?? 0) + 1);
  }
  for (const [n, ino] of inodes)
    if ((links.get(n) ?? 0) !== ino.nlink) problems.push(`inode ${n}: di_nlink ${ino.nlink}, ${links.get(n) ?? 0} entries name it`);
  return { sb, problems, inodes, dataOf, blocksOf };
}
