/**
 * A file's block map: its logical blocks through the 12 direct pointers and the single, double
 * and triple indirect blocks (sys/ufs/ufs/dinode.h di_db, di_ib; sys/ufs/ffs/ffs_balloc.c), in
 * logical order. A zero pointer is a hole (at any level: a zero indirect pointer is a hole the
 * size of everything below it, skipped without reading). Only the blocks the file's size
 * reaches are visited, so the cost follows the allocated blocks, never the claimed size.
 */
import { fail } from '../../../formats/common/errors.js';
import { logicalBlockBytes, NDADDR, NIADDR, type UfsGeometry } from './read-geometry.js';
import type { UfsInode } from './inode-types.js';

export type BlockPiece =
  /** Logical block `lbn` lives at fragment `addr`, `bytes` long (a whole block, or fragments at the end of a small file). */
  | { kind: 'data'; lbn: number; addr: number; bytes: number }
  /** An indirect block of `level` (1 single, 2 double, 3 triple) at fragment `addr`, a whole block. */
  | { kind: 'indirect'; level: number; addr: number }
  /** A pointer outside the file system (`addr` may be negative); nothing below it is visited. */
  | { kind: 'bad'; level: number; lbn: number; addr: number; bytes: number };

export type ReadBytes = (offset: number, length: number) => Promise<Uint8Array>;

/** Decode the pointers of an indirect block: int64 (UFS2) or int32 (UFS1), in the file system's byte order. */
export function indirectPointers(g: UfsGeometry, bytes: Uint8Array): number[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const out = new Array<number>(g.nindir);
  for (let i = 0; i < g.nindir; i++) {
    out[i] = g.version === 2 ? pointer64(dv.getBigInt64(i * 8, g.littleEndian)) : dv.getInt32(i * 4, g.littleEndian);
  }
  return out;
}

/** An int64 block pointer as a number; one too large for a double becomes -1 (out of range anyway). */
export function pointer64(v: bigint): number {
  return v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(v);
}

/** Is `addr`..`addr + frags` inside the file system (fragment 0 is never a file's block)? */
export const inRange = (g: UfsGeometry, addr: number, frags: number): boolean => addr > 0 && addr + frags <= g.sizeFrags;

/**
 * The pieces of `inode`'s block map for its first `size` bytes, in logical order (holes are the
 * gaps between data pieces). `maxPieces` bounds the allocated pieces visited (TOO_LARGE past it).
 */
export async function* blockMap(g: UfsGeometry, read: ReadBytes, inode: UfsInode, maxPieces = Infinity): AsyncGenerator<BlockPiece> {
  const size = inode.size;
  const nblocks = Math.ceil(size / g.blockSize);
  let pieces = 0;
  const count = () => {
    if (++pieces > maxPieces) throw fail('ufs', 'TOO_LARGE', `inode ${inode.ino}: more allocated blocks than the file system holds`);
  };
  for (let lbn = 0; lbn < Math.min(NDADDR, nblocks); lbn++) {
    const addr = inode.direct[lbn];
    if (addr === 0) continue;
    count();
    const bytes = logicalBlockBytes(g, size, lbn);
    const frags = bytes / g.fragSize;
    yield inRange(g, addr, frags) ? { kind: 'data', lbn, addr, bytes } : { kind: 'bad', level: 0, lbn, addr, bytes };
  }
  // lbn where the subtree of indirect pointer i starts, and how many blocks each level spans.
  let first = NDADDR;
  let span = 1;
  for (let level = 1; level <= NIADDR; level++) {
    span *= g.nindir;
    if (first >= nblocks) return;
    const addr = inode.indirect[level - 1];
    if (addr !== 0) yield* subtree(addr, level, first, span);
    first += span;
  }

  async function* subtree(addr: number, level: number, firstLbn: number, blocks: number): AsyncGenerator<BlockPiece> {
    count();
    if (!inRange(g, addr, g.frag)) {
      yield { kind: 'bad', level, lbn: firstLbn, addr, bytes: g.blockSize };
      return;
    }
    yield { kind: 'indirect', level, addr };
    const bytes = await read(addr * g.fragSize, g.blockSize);
    if (bytes.length !== g.blockSize) throw fail('ufs', 'TRUNCATED', `inode ${inode.ino}: indirect block ${addr} lies past the end of the disk`);
    const ptrs = indirectPointers(g, bytes);
    const each = blocks / g.nindir;
    for (let i = 0; i < ptrs.length; i++) {
      const lbn = firstLbn + i * each;
      if (lbn >= nblocks) return;
      const p = ptrs[i];
      if (p === 0) continue;
      if (level > 1) {
        yield* subtree(p, level - 1, lbn, each);
        continue;
      }
      count();
      yield inRange(g, p, g.frag) ? { kind: 'data', lbn, addr: p, bytes: g.blockSize } : { kind: 'bad', level: 0, lbn, addr: p, bytes: g.blockSize };
    }
  }
}
