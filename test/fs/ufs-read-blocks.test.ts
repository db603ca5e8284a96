/**
 * The block-map walker on a toy geometry (64-byte blocks, so 8 pointers an indirect block):
 * random sparse files reaching the single, double and triple indirect blocks, laid out by an
 * independent allocator here, map back logical block for logical block; pointers outside the
 * file system are reported, not followed; the bytes stream with holes as zeros.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { blockMap } from '../../src/fs/ufs/read-blocks.js';
import { fileBytes } from '../../src/fs/ufs/read-file.js';
import type { UfsGeometry } from '../../src/fs/ufs/read-geometry.js';
import type { UfsInode } from '../../src/fs/ufs/inode-types.js';

const BS = 64;
const NINDIR = BS / 8;
const g = { version: 2, littleEndian: true, blockSize: BS, fragSize: BS, frag: 1, nindir: NINDIR, sizeFrags: 1 << 20 } as UfsGeometry;
/** Logical blocks reached by direct (12), single (8), double (64) and triple (512) pointers. */
const MAX_BLOCKS = 12 + NINDIR + NINDIR ** 2 + NINDIR ** 3;

function inode(size: number): UfsInode {
  const t = { sec: 0, nsec: 0 };
  return { ino: 9, mode: 0o100644, nlink: 1, uid: 0, gid: 0, flags: 0, size, blocks: 0, gen: 0, atime: t, mtime: t, ctime: t, direct: Array(12).fill(0), indirect: [0, 0, 0], pointerArea: new Uint8Array(120), extSize: 0, ext: [] };
} // prettier-ignore

/** Lay out `lbns` (a set of allocated logical blocks) as ffs_balloc would link them: returns the inode and the toy disk. */
function layOut(size: number, lbns: number[]): { ino: UfsInode; disk: Map<number, Uint8Array>; where: Map<number, number> } {
  const ino = inode(size);
  const disk = new Map<number, Uint8Array>();
  const where = new Map<number, number>();
  let next = 100;
  const block = (fill?: number) => {
    const addr = next++;
    const b = new Uint8Array(BS);
    if (fill !== undefined) b.fill(fill);
    disk.set(addr, b);
    return addr;
  };
  /** The pointer slot for `lbn` at each level, making indirect blocks on the way. */
  const setPointer = (lbn: number, addr: number) => {
    if (lbn < 12) return void (ino.direct[lbn] = addr);
    let rel = lbn - 12;
    let level = 0;
    let span = NINDIR;
    while (rel >= span) {
      rel -= span;
      level++;
      span *= NINDIR;
    }
    if (ino.indirect[level] === 0) ino.indirect[level] = block();
    let at = ino.indirect[level];
    for (let l = level; l >= 0; l--) {
      const each = NINDIR ** l;
      const slot = Math.floor(rel / each);
      rel %= each;
      const dv = new DataView(disk.get(at)!.buffer);
      if (l === 0) dv.setBigInt64(slot * 8, BigInt(addr), true);
      else {
        let child = Number(dv.getBigInt64(slot * 8, true));
        if (child === 0) dv.setBigInt64(slot * 8, BigInt((child = block())), true);
        at = child;
      }
    }
  };
  for (const lbn of lbns) {
    const addr = block((lbn % 250) + 1);
    where.set(lbn, addr);
    setPointer(lbn, addr);
  }
  return { ino, disk, where };
}

const reader = (disk: Map<number, Uint8Array>) => async (offset: number, length: number) => {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += BS) out.set((disk.get((offset + i) / BS) ?? new Uint8Array(BS)).subarray(0, length - i), i);
  return out;
};

describe('UFS block map', () => {
  it('sparse files through direct, single, double and triple indirect blocks map back exactly', async () => {
    const file = fc
      .integer({ min: 1, max: MAX_BLOCKS * BS })
      .chain((size) => fc.tuple(fc.constant(size), fc.uniqueArray(fc.nat(Math.ceil(size / BS) - 1), { maxLength: 40 })));
    await fc.assert(
      fc.asyncProperty(file, async ([size, lbns]) => {
        const { ino, disk, where } = layOut(size, lbns);
        const data = new Map<number, number>();
        for await (const p of blockMap(g, reader(disk), ino)) {
          expect(p.kind).not.toBe('bad');
          if (p.kind === 'data') data.set(p.lbn, p.addr);
        }
        expect(data).toEqual(where);
        // The bytes: each allocated block filled with its marker, holes as zeros, cut at the size.
        const want = new Uint8Array(size);
        for (const [lbn] of where) want.fill((lbn % 250) + 1, lbn * BS, Math.min(size, (lbn + 1) * BS));
        const got: Uint8Array[] = [];
        for await (const chunk of fileBytes(g, reader(disk), ino)) got.push(chunk);
        expect(Buffer.concat(got).equals(want)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('a pointer outside the file system is reported and nothing below it read', async () => {
    const { ino, disk } = layOut(MAX_BLOCKS * BS, [12 + NINDIR + 5]);
    ino.indirect[1] = g.sizeFrags + 1;
    ino.direct[3] = -7;
    const pieces = [];
    for await (const p of blockMap(g, reader(disk), ino)) pieces.push(p);
    expect(pieces).toEqual([
      { kind: 'bad', level: 0, lbn: 3, addr: -7, bytes: BS },
      { kind: 'bad', level: 2, lbn: 12 + NINDIR, addr: g.sizeFrags + 1, bytes: BS },
    ]);
  });
});
