/**
 * The check's first pass, as fsck_ffs pass1.c: every initialized inode of every group read
 * once, a block at a time; for each allocated inode its type, its used bit, and every block it
 * holds (data, indirect) claimed in a fragment map, so a fragment claimed twice (`ufs.block-dup`)
 * or outside the file system or inside a group's metadata (`ufs.block-out-of-range`) is seen;
 * di_blocks is compared with what the map holds (fsck's INCORRECT BLOCK COUNT).
 */
import { FormatError } from '../../../formats/common/errors.js';
import type { CylinderGroup } from '../../../formats/fs/ufs2/cylinder-group.js';
import { checkInodeHash } from './check-hashes.js';
import { decodeInodeBytes } from './inode-decode.js';
import { blockMap, inRange } from './read-blocks.js';
import { cgDmin, cgImin, cgSblock, ROOT_INO, type UfsGeometry } from './read-geometry.js';
import { kindOfMode, type UfsFileKind, type UfsInode } from './inode-types.js';
import type { UfsVolume } from './read-volume.js';
import type { Report } from './check-report.js';

export interface InodeFacts {
  kind: UfsFileKind;
  nlink: number;
}

export interface FragmentMaps {
  /** One bit a fragment: group metadata (boot area, superblock copies, cg blocks, inodes, summary). */
  meta: Uint8Array;
  /** One bit a fragment: claimed by an inode. */
  used: Uint8Array;
}

export const testBit = (map: Uint8Array, i: number): boolean => ((map[i >> 3] >> (i & 7)) & 1) === 1;
const setBit = (map: Uint8Array, i: number) => (map[i >> 3] |= 1 << (i & 7));

/** The metadata fragments of every group (fs.h cgsblock..cgdmin; group 0 from 0; the summary area). */
export function metadataMap(g: UfsGeometry, csFrags: number): Uint8Array {
  const meta = new Uint8Array(Math.ceil(g.sizeFrags / 8));
  const mark = (from: number, to: number) => {
    for (let f = Math.max(0, from); f < Math.min(to, g.sizeFrags); f++) setBit(meta, f);
  };
  for (let c = 0; c < g.ncg; c++) {
    mark(c === 0 ? 0 : cgSblock(g, c), cgDmin(g, c));
  }
  mark(g.csaddr, g.csaddr + csFrags);
  return meta;
}

/** Inodes of group `c` that hold something (UFS2: below cg_initediblk, the rest was never written). */
export const initializedInodes = (g: UfsGeometry, cg: CylinderGroup): number => (g.version === 2 ? Math.min(g.ipg, cg.initediblk) : g.ipg);

/**
 * Pass 1 over group `c`: returns nothing; fills `inodes` (allocated inodes' kind and nlink), `dirs`
 * (directory inode numbers) and `maps.used`, and reports into `report`.
 */
export async function scanGroupInodes(
  v: UfsVolume,
  c: number,
  cg: CylinderGroup | undefined,
  maps: FragmentMaps,
  inodes: Map<number, InodeFacts>,
  dirs: number[],
  report: Report,
): Promise<void> {
  const { g } = v;
  const count = cg ? initializedInodes(g, cg) : g.ipg;
  const perBlock = g.blockSize / g.inodeSize;
  for (let first = 0; first < count; first += perBlock) {
    const n = Math.min(perBlock, count - first);
    const bytes = await v.readExact(cgImin(g, c) * g.fragSize + first * g.inodeSize, n * g.inodeSize);
    for (let i = 0; i < n; i++) {
      const ino = c * g.ipg + first + i;
      if (ino < ROOT_INO) continue; // inodes 0 and 1 are reserved (dinode.h UFS_WINO)
      const raw = bytes.subarray(i * g.inodeSize, (i + 1) * g.inodeSize);
      const usedBit = cg ? testBit(cg.inosused, first + i) : true;
      let inode: UfsInode;
      try {
        inode = decodeInodeBytes(g, ino, raw);
      } catch (e) {
        if (!(e instanceof FormatError)) throw e;
        report('ufs.inode', 'error', `inode ${ino}: ${e.message}`);
        continue;
      }
      if (inode.mode === 0) {
        if (usedBit) report('ufs.inode-bitmap', 'warning', `inode ${ino} is free but marked in use in group ${c}'s inode map`);
        if (inode.size !== 0 || inode.blocks !== 0) report('ufs.inode', 'warning', `inode ${ino} is free but still has a size or blocks (partially allocated)`);
        continue;
      }
      const kind = kindOfMode(inode.mode);
      if (!kind) {
        report('ufs.inode', 'error', `inode ${ino} has an unknown file type (mode 0${inode.mode.toString(8)})`);
        continue;
      }
      checkInodeHash(g, v.sb.metackhash, ino, raw, report);
      if (!usedBit) report('ufs.inode-bitmap', 'error', `inode ${ino} (a ${kind}) is in use but marked free in group ${c}'s inode map`);
      inodes.set(ino, { kind, nlink: inode.nlink });
      if (kind === 'dir') dirs.push(ino);
      await claimBlocks(v, inode, kind, maps, report);
    }
  }
}

/** Claim the fragments of one inode; compare their count with di_blocks. */
async function claimBlocks(v: UfsVolume, inode: UfsInode, kind: UfsFileKind, maps: FragmentMaps, report: Report): Promise<void> {
  const { g } = v;
  const ino = inode.ino;
  if (inode.size > g.maxFileSize) {
    report('ufs.inode', 'error', `inode ${ino}: size ${inode.size} is more than the block pointers can map (${g.maxFileSize})`);
    return;
  }
  // Devices keep di_rdev in di_db[0]; FIFOs and sockets hold no blocks; short symlinks live in the inode.
  const holdsBlocks = kind === 'file' || kind === 'dir' || (kind === 'symlink' && inode.size >= g.maxSymlinkLen);
  let frags = 0;
  const claim = (addr: number, n: number) => {
    for (let f = addr; f < addr + n; f++) {
      if (testBit(maps.meta, f)) {
        report('ufs.block-out-of-range', 'error', `inode ${ino}: fragment ${f} lies in a cylinder group's metadata`);
        return;
      }
      if (testBit(maps.used, f)) {
        report('ufs.block-dup', 'error', `inode ${ino}: fragment ${f} is also claimed by another inode (or twice by this one)`);
        return;
      }
      setBit(maps.used, f);
    }
  };
  if (holdsBlocks) {
    try {
      for await (const p of blockMap(g, (o, n) => v.readExact(o, n), inode, g.sizeFrags)) {
        const n = p.kind === 'data' ? p.bytes / g.fragSize : g.frag;
        if (p.kind === 'bad') {
          report('ufs.block-out-of-range', 'error', `inode ${ino}: block pointer ${p.addr} is outside the ${g.sizeFrags}-fragment file system`);
          continue;
        }
        frags += n;
        claim(p.addr, n);
      }
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
      report('ufs.inode', 'error', `inode ${ino}: ${e.message}`);
      return;
    }
  }
  // UFS2 extended attributes: di_extsize bytes in di_extb[], whole blocks then fragments (ffs_balloc.c).
  for (let i = 0; i < inode.ext.length && i * g.blockSize < inode.extSize; i++) {
    const addr = inode.ext[i];
    if (addr === 0) continue;
    const n = Math.ceil(Math.min(g.blockSize, inode.extSize - i * g.blockSize) / g.fragSize);
    if (!inRange(g, addr, n)) {
      report('ufs.block-out-of-range', 'error', `inode ${ino}: extended-attribute block ${addr} is outside the ${g.sizeFrags}-fragment file system`);
      continue;
    }
    frags += n;
    claim(addr, n);
  }
  if (inode.blocks * 512 !== frags * g.fragSize) {
    report('ufs.inode', 'warning', `inode ${ino}: di_blocks says ${inode.blocks} sectors, its block map holds ${(frags * g.fragSize) / 512}`);
  }
}
