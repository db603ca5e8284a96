/**
 * A UFS1/UFS2 file system opened over a DiskReader: the superblock found as FreeBSD finds it
 * (formats/fs/ufs.ts), its geometry checked for sanity, and bounded readers of inodes,
 * cylinder groups and directories that the reader (read.ts) and the check (check.ts) share.
 * Nothing is loaded whole: inodes are read a block at a time through a small cache.
 */
import { fail } from '../../../formats/common/errors.js';
import { findUfsSuperblock, UFS_PROBE_BYTES } from '../../../formats/fs/ufs.js';
import { decodeSuperblock, SBLOCKSIZE, type Superblock } from '../../../formats/fs/ufs2/superblock.js';
import { decodeCylinderGroup, type CylinderGroup } from '../../../formats/fs/ufs2/cylinder-group.js';
import { decodeDirectory } from '../../../formats/fs/ufs2/directory.js';
import type { DiskReader } from '../../model/disk-reader.js';
import { decodeInodeBytes } from './inode-decode.js';
import { fileBytes, fileExtents } from './read-file.js';
import { cgTod, DIRBLKSIZ, inodeCount, inodeOffset, mappableBytes, type UfsGeometry } from './read-geometry.js';
import { IFDIR, IFMT } from '../../../formats/fs/ufs2/inode.js';
import type { UfsInode } from './inode-types.js';

/** Largest directory read (a directory of 64 MiB holds over a million entries). */
export const MAX_DIR_BYTES = 64 << 20;
const INODE_CACHE_BLOCKS = 64;

export interface UfsDirRecord {
  ino: number;
  type: number;
  name: string;
}

export interface UfsVolume {
  disk: DiskReader;
  sb: Superblock;
  g: UfsGeometry;
  /** Exactly `length` bytes at `offset` of the file system (TRUNCATED past its end). */
  readExact(offset: number, length: number): Promise<Uint8Array>;
  /** Inode `ino` (BAD_VALUE outside 0..ipg*ncg-1). */
  readInode(ino: number): Promise<UfsInode>;
  /** Cylinder group `c`, decoded. */
  readCg(c: number): Promise<CylinderGroup>;
  /** The live entries of a directory inode, '.' and '..' included, in on-disk order. */
  readDir(inode: UfsInode): Promise<UfsDirRecord[]>;
  fileBytes(inode: UfsInode): AsyncGenerator<Uint8Array>;
  fileExtents(inode: UfsInode): AsyncGenerator<{ offset: number; bytes: Uint8Array }>;
}

const utf8 = new TextDecoder('utf-8');

export async function mountUfsVolume(disk: DiskReader): Promise<UfsVolume> {
  const head = await disk.read(0, Math.min(disk.size, UFS_PROBE_BYTES));
  const probe = findUfsSuperblock(head);
  if (probe.endian !== 'little') throw fail('ufs', 'BAD_VALUE', 'a big-endian UFS file system: diskmint reads little-endian ones only');
  const sb = decodeSuperblock(head.subarray(probe.superblockOffset, probe.superblockOffset + SBLOCKSIZE));
  const g = geometryOf(sb, probe.version, probe.superblockOffset);
  const fsBytes = g.sizeFrags * g.fragSize;
  if (fsBytes > disk.size)
    throw fail('ufs', 'TRUNCATED', `the file system is ${fsBytes} bytes (fs_size ${g.sizeFrags} fragments); the disk or partition holds ${disk.size}`);
  const readExact = async (offset: number, length: number): Promise<Uint8Array> => {
    if (offset < 0 || offset + length > fsBytes)
      throw fail('ufs', 'BAD_VALUE', `bytes ${offset}..${offset + length} lie outside the ${fsBytes}-byte file system`);
    const bytes = await disk.read(offset, length);
    if (bytes.length !== length) throw fail('ufs', 'TRUNCATED', `the file system ends at byte ${disk.size} of the disk, before byte ${offset + length}`);
    return bytes;
  };
  const cache = new Map<number, Uint8Array>();
  const readInode = async (ino: number): Promise<UfsInode> => {
    if (!Number.isInteger(ino) || ino < 0 || ino >= inodeCount(g)) throw fail('ufs', 'BAD_VALUE', `inode ${ino} is outside 0..${inodeCount(g) - 1}`);
    const at = inodeOffset(g, ino);
    const block = at - (at % g.blockSize);
    let bytes = cache.get(block);
    if (!bytes) {
      bytes = await readExact(block, g.blockSize);
      if (cache.size >= INODE_CACHE_BLOCKS) cache.delete(cache.keys().next().value!);
      cache.set(block, bytes);
    }
    return decodeInodeBytes(g, ino, bytes.subarray(at - block, at - block + g.inodeSize));
  };
  const params = { ipg: g.ipg, fpg: g.fpg, frag: g.frag, contigsumsize: Math.max(0, sb.contigsumsize) };
  const readCg = async (c: number): Promise<CylinderGroup> => {
    const cg = decodeCylinderGroup(await readExact(cgTod(g, c) * g.fragSize, g.cgsize), params);
    if (cg.cgx !== c) throw fail('ufs', 'BAD_VALUE', `cylinder group ${c} says it is group ${cg.cgx}`);
    return cg;
  };
  const read = (o: number, n: number) => readExact(o, n);
  const readDir = async (inode: UfsInode): Promise<UfsDirRecord[]> => {
    if ((inode.mode & IFMT) !== IFDIR) throw fail('ufs', 'BAD_VALUE', `inode ${inode.ino} is not a directory`);
    if (inode.size > MAX_DIR_BYTES) throw fail('ufs', 'TOO_LARGE', `directory inode ${inode.ino} is ${inode.size} bytes, more than ${MAX_DIR_BYTES}`);
    if (inode.size % DIRBLKSIZ !== 0) throw fail('ufs', 'BAD_VALUE', `directory inode ${inode.ino} is ${inode.size} bytes, not whole ${DIRBLKSIZ}-byte chunks`);
    const bytes = new Uint8Array(inode.size);
    let at = 0;
    for await (const chunk of fileBytes(g, read, inode)) {
      bytes.set(chunk, at);
      at += chunk.length;
    }
    return decodeDirectory(bytes).map((e) => ({ ino: e.ino, type: e.type, name: utf8.decode(e.name) }));
  };
  return {
    disk,
    sb,
    g,
    readExact,
    readInode,
    readCg,
    readDir,
    fileBytes: (inode) => fileBytes(g, read, inode),
    fileExtents: (inode) => fileExtents(g, read, inode),
  };
}

/** The geometry of a decoded superblock, refused when its numbers cannot describe a file system. */
export function geometryOf(sb: Superblock, version: 1 | 2, superblockOffset: number): UfsGeometry {
  const inodeSize = version === 2 ? 256 : 128;
  const g: UfsGeometry = {
    version,
    littleEndian: true,
    superblockOffset,
    volname: sb.volname,
    blockSize: sb.bsize,
    fragSize: sb.fsize,
    frag: sb.frag,
    sizeFrags: version === 2 ? sb.size : sb.oldSize,
    ncg: sb.ncg,
    ipg: sb.ipg,
    fpg: sb.fpg,
    inodeSize,
    nindir: sb.nindir,
    sblkno: sb.sblkno,
    cblkno: sb.cblkno,
    iblkno: sb.iblkno,
    dblkno: sb.dblkno,
    oldCgOffset: version === 1 ? sb.oldCgoffset : 0,
    oldCgMask: version === 1 ? sb.oldCgmask : 0xffffffff,
    csaddr: version === 2 ? sb.csaddr : sb.oldCsaddr,
    cssize: sb.cssize,
    cgsize: sb.cgsize,
    maxSymlinkLen: Math.max(0, sb.maxsymlinklen),
    maxFileSize: 0,
  };
  const bad = (what: string) => fail('ufs', 'BAD_VALUE', `superblock: ${what}`);
  // fs.h: fs_nindir = bsize / sizeof(ufs2_daddr_t or ufs1_daddr_t); fs_inopb = bsize / sizeof(dinode).
  if (g.nindir !== g.blockSize / (version === 2 ? 8 : 4)) throw bad(`fs_nindir ${g.nindir} does not match fs_bsize ${g.blockSize}`);
  if (sb.inopb !== g.blockSize / inodeSize) throw bad(`fs_inopb ${sb.inopb} does not match fs_bsize ${g.blockSize}`);
  if (g.ipg < 1 || g.ipg % sb.inopb !== 0) throw bad(`fs_ipg ${g.ipg} is not a positive multiple of fs_inopb ${sb.inopb}`);
  if (g.fpg < g.frag || g.fpg % g.frag !== 0) throw bad(`fs_fpg ${g.fpg} is not a whole number of blocks`);
  if (g.sizeFrags > g.ncg * g.fpg || g.sizeFrags <= (g.ncg - 1) * g.fpg) throw bad(`fs_size ${g.sizeFrags} does not fit ${g.ncg} groups of ${g.fpg} fragments`);
  if (!(g.sblkno >= 0 && g.sblkno < g.cblkno && g.cblkno < g.iblkno && g.iblkno < g.dblkno && g.dblkno <= g.fpg)) {
    throw bad(`group offsets sblkno ${g.sblkno}, cblkno ${g.cblkno}, iblkno ${g.iblkno}, dblkno ${g.dblkno} are out of order`);
  }
  if (g.iblkno + (g.ipg * inodeSize) / g.fragSize > g.dblkno) throw bad(`${g.ipg} inodes per group do not fit before fs_dblkno ${g.dblkno}`);
  if (g.cgsize < 168 || g.cgsize > (g.iblkno - g.cblkno) * g.fragSize) throw bad(`fs_cgsize ${g.cgsize} does not fit between fs_cblkno and fs_iblkno`);
  if (g.csaddr <= 0 || g.csaddr >= g.sizeFrags || g.cssize < g.ncg * 16) throw bad(`summary area at fragment ${g.csaddr} of ${g.cssize} bytes`);
  if (g.maxSymlinkLen > (version === 2 ? 120 : 60)) throw bad(`fs_maxsymlinklen ${g.maxSymlinkLen} is more than the inode holds`);
  g.maxFileSize = mappableBytes(g);
  return g;
}
