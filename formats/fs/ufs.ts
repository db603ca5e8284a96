/**
 * UFS1/UFS2 superblock probe (pure; no I/O).
 *
 * Layout from FreeBSD sys/ufs/ffs/fs.h `struct fs` (1376 bytes; offsets are the same on
 * 32- and 64-bit builds because the in-core pointer area is a fixed 128 bytes):
 *   36 fs_old_size (int32, UFS1 size in frags)   44 fs_ncg      48 fs_bsize   52 fs_fsize
 *   56 fs_frag     104 fs_sbsize    144 fs_id[2]   680 fs_volname[MAXVOLLEN = 32]
 *   1000 fs_sblockloc (int64)       1080 fs_size (int64, UFS2 size in frags)
 *   1372 fs_magic: FS_UFS1_MAGIC 0x011954, FS_UFS2_MAGIC 0x19540119, FS_BAD_MAGIC 0x19960408
 * SBLOCKSEARCH = { SBLOCK_UFS2 65536, SBLOCK_UFS1 8192, SBLOCK_FLOPPY 0, SBLOCK_PIGGY 262144 },
 * SBLOCKSIZE 8192.
 *
 * Acceptance follows sys/ufs/ffs/ffs_subr.c readsuper(): a UFS1 magic counts only at an
 * offset <= SBLOCK_UFS1 (0 or 8192); a UFS2 magic only where fs_sblockloc equals the offset
 * it was found at (NetBSD's makefs, as shipped in Debian, puts a UFS2 superblock at 8192
 * with fs_sblockloc 8192, which FreeBSD accepts); then fs_ncg >= 1,
 * MINBSIZE 4096 <= fs_bsize <= MAXBSIZE 65536, fs_sbsize <= SBLOCKSIZE. We add fragment
 * checks (power of two, >= 512, bsize/fsize in 1..8 = MAXFRAG and equal to fs_frag) so that
 * garbage with a lucky magic is rejected. FreeBSD reads only its native byte order; we accept
 * both and report which one matched.
 */
import { latin1Z } from '../common/bytes.js';
import { fail, FormatError } from '../common/errors.js';
import { FS_UFS2_MAGIC, MAXVOLLEN, SB_OFFSETS, SB_VOLNAME, STRUCT_FS_SIZE } from './ufs2/superblock.js';

export const UFS1_MAGIC = 0x011954;
export const UFS2_MAGIC = FS_UFS2_MAGIC;
export const UFS_BAD_MAGIC = 0x19960408; // newfs did not finish
export const UFS_SUPERBLOCK_SIZE = 8192;
export const UFS_SUPERBLOCK_OFFSETS: readonly number[] = Object.freeze([65536, 8192, 0, 262144]);
/** Bytes from the start of the partition that cover every probe location. */
export const UFS_PROBE_BYTES = 262144 + UFS_SUPERBLOCK_SIZE;

// One table of struct fs offsets: the UFS2 codec's (struct fs is laid out alike for UFS1).
const OFF = {
  oldSize: SB_OFFSETS.oldSize,
  ncg: SB_OFFSETS.ncg,
  bsize: SB_OFFSETS.bsize,
  fsize: SB_OFFSETS.fsize,
  frag: SB_OFFSETS.frag,
  sbsize: SB_OFFSETS.sbsize,
  id: SB_OFFSETS.id0,
  volname: SB_VOLNAME,
  sblockloc: SB_OFFSETS.sblockloc,
  size: SB_OFFSETS.size,
  magic: SB_OFFSETS.magic,
} as const;
const VOLNAME_LEN = MAXVOLLEN;
const MINBSIZE = 4096;
const MAXBSIZE = 65536;
const MAXFRAG = 8;

export interface UfsSuperblock {
  version: 1 | 2;
  endian: 'little' | 'big';
  /** fs_volname up to the first NUL ('' when unset). */
  volname: string;
  blockSize: number;
  fragSize: number;
  /** File system size in fragments (fs_size for UFS2, fs_old_size for UFS1). */
  sizeFrags: number;
  /** Byte offset of the superblock this came from. */
  superblockOffset: number;
  /** fs_id[0] and fs_id[1] as 16 hex digits. */
  id: string;
  cylinderGroups: number;
}

/**
 * Parse the superblock in `bytes` (which starts at the superblock) found at byte
 * `superblockOffset` of the partition. Throws FormatError on anything not a superblock.
 */
export function decodeUfsSuperblock(bytes: Uint8Array, superblockOffset: number): UfsSuperblock {
  if (!(bytes instanceof Uint8Array)) throw fail('ufs', 'BAD_VALUE', 'superblock bytes must be a Uint8Array');
  if (bytes.length < STRUCT_FS_SIZE) throw fail('ufs', 'TRUNCATED', `superblock needs ${STRUCT_FS_SIZE} bytes, have ${bytes.length}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, STRUCT_FS_SIZE);
  let le = true;
  let magic = dv.getUint32(OFF.magic, true);
  if (magic !== UFS1_MAGIC && magic !== UFS2_MAGIC && magic !== UFS_BAD_MAGIC) {
    le = false;
    magic = dv.getUint32(OFF.magic, false);
  }
  if (magic === UFS_BAD_MAGIC) throw fail('ufs', 'BAD_MAGIC', `superblock at ${superblockOffset} carries FS_BAD_MAGIC (newfs did not finish)`);
  if (magic !== UFS1_MAGIC && magic !== UFS2_MAGIC) throw fail('ufs', 'BAD_MAGIC', `no UFS magic at ${superblockOffset}`);
  const version: 1 | 2 = magic === UFS1_MAGIC ? 1 : 2;
  const i32 = (o: number) => dv.getInt32(o, le);
  const u32 = (o: number) => dv.getUint32(o, le);
  const i64 = (o: number) => dv.getBigInt64(o, le);

  if (version === 1 && superblockOffset > 8192) {
    throw fail('ufs', 'BAD_VALUE', `UFS1 magic at ${superblockOffset}: UFS1 superblocks live at 0 or 8192 (ffs_subr.c readsuper)`);
  }
  if (version === 2) {
    const loc = i64(OFF.sblockloc);
    if (loc !== BigInt(superblockOffset)) {
      throw fail('ufs', 'BAD_VALUE', `UFS2 superblock at ${superblockOffset} says fs_sblockloc ${loc} (ffs_subr.c readsuper)`);
    }
  }
  const ncg = u32(OFF.ncg);
  const bsize = i32(OFF.bsize);
  const fsize = i32(OFF.fsize);
  const frag = i32(OFF.frag);
  const sbsize = i32(OFF.sbsize);
  if (ncg < 1) throw fail('ufs', 'BAD_VALUE', 'fs_ncg is 0');
  if (bsize < MINBSIZE || bsize > MAXBSIZE || (bsize & (bsize - 1)) !== 0) throw fail('ufs', 'BAD_VALUE', `fs_bsize ${bsize} out of range`);
  if (fsize < 512 || fsize > bsize || (fsize & (fsize - 1)) !== 0) throw fail('ufs', 'BAD_VALUE', `fs_fsize ${fsize} out of range`);
  if (bsize / fsize > MAXFRAG || frag !== bsize / fsize) throw fail('ufs', 'BAD_VALUE', `fs_frag ${frag} does not match ${bsize}/${fsize}`);
  if (sbsize <= 0 || sbsize > UFS_SUPERBLOCK_SIZE) throw fail('ufs', 'BAD_VALUE', `fs_sbsize ${sbsize} out of range`);
  let sizeFrags: number;
  if (version === 2) {
    const s = i64(OFF.size);
    if (s <= 0n || s > BigInt(Number.MAX_SAFE_INTEGER)) throw fail('ufs', 'BAD_VALUE', `fs_size ${s} out of range`);
    sizeFrags = Number(s);
  } else {
    sizeFrags = i32(OFF.oldSize);
    if (sizeFrags <= 0) throw fail('ufs', 'BAD_VALUE', `fs_old_size ${sizeFrags} out of range`);
  }
  const volname = latin1Z(bytes, OFF.volname, VOLNAME_LEN);
  const hex8 = (n: number) => n.toString(16).padStart(8, '0');
  return {
    version,
    endian: le ? 'little' : 'big',
    volname,
    blockSize: bsize,
    fragSize: fsize,
    sizeFrags,
    superblockOffset,
    id: hex8(u32(OFF.id)) + hex8(u32(OFF.id + 4)),
    cylinderGroups: ncg,
  };
}

/**
 * Probe the SBLOCKSEARCH locations in FreeBSD's order over the first bytes of a partition
 * (pass at least UFS_PROBE_BYTES, or the whole partition if smaller). Returns the first
 * superblock that passes; throws FormatError when none does: the first rejection of a
 * location that had a magic, else BAD_MAGIC (TRUNCATED when too short to hold one).
 */
export function findUfsSuperblock(head: Uint8Array): UfsSuperblock {
  if (!(head instanceof Uint8Array)) throw fail('ufs', 'BAD_VALUE', 'partition bytes must be a Uint8Array');
  let rejection: FormatError | undefined;
  for (const off of UFS_SUPERBLOCK_OFFSETS) {
    if (off + STRUCT_FS_SIZE > head.length) continue;
    const end = Math.min(head.length, off + UFS_SUPERBLOCK_SIZE);
    try {
      return decodeUfsSuperblock(head.subarray(off, end), off);
    } catch (e) {
      if (!(e instanceof FormatError)) throw e; // a bug: not a rejection, never hidden by a later location
      if (rejection === undefined && e.code !== 'BAD_MAGIC') rejection = e;
    }
  }
  if (rejection !== undefined) throw rejection;
  if (head.length < STRUCT_FS_SIZE) throw fail('ufs', 'TRUNCATED', `only ${head.length} bytes: too short for a UFS superblock`);
  throw fail('ufs', 'BAD_MAGIC', `no UFS superblock at ${UFS_SUPERBLOCK_OFFSETS.join(', ')}`);
}
