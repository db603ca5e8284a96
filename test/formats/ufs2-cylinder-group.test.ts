import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  CG_HEADER_SIZE,
  cgMapOffsets,
  cgSize,
  decodeCylinderGroup,
  encodeCylinderGroup,
  summarizeFreeMap,
  type CylinderGroup,
} from '../../formats/fs/ufs2/cylinder-group.js';
import { expectFormatError } from '../helpers/codec.js';

const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const i32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });

const params = fc.record({
  ipg: fc.integer({ min: 1, max: 4000 }),
  fpg: fc.integer({ min: 8, max: 20000 }),
  frag: fc.constantFrom(1, 2, 4, 8),
  contigsumsize: fc.constantFrom(0, 1, 2, 16),
});

function group(p: { ipg: number; fpg: number; frag: number; contigsumsize: number }): fc.Arbitrary<CylinderGroup> {
  return fc.record({
    cgx: u32,
    ndblk: u32,
    cs: fc.record({ ndir: i32, nbfree: i32, nifree: i32, nffree: i32 }),
    rotor: u32,
    frotor: u32,
    irotor: u32,
    frsum: fc.array(u32, { minLength: 8, maxLength: 8 }),
    nclusterblks: u32,
    niblk: u32,
    initediblk: u32,
    unrefs: u32,
    ckhash: u32,
    time: fc.maxSafeNat(),
    inosused: fc.uint8Array({ minLength: Math.ceil(p.ipg / 8), maxLength: Math.ceil(p.ipg / 8) }),
    blksfree: fc.uint8Array({ minLength: Math.ceil(p.fpg / 8), maxLength: Math.ceil(p.fpg / 8) }),
    clustersum: fc.array(u32, { minLength: p.contigsumsize, maxLength: p.contigsumsize }).map((c) => (p.contigsumsize > 0 ? [0, ...c] : [])),
    clustersfree:
      p.contigsumsize > 0
        ? fc.uint8Array({ minLength: Math.ceil(Math.floor(p.fpg / p.frag) / 8), maxLength: Math.ceil(Math.floor(p.fpg / p.frag) / 8) })
        : fc.constant(new Uint8Array(0)),
  });
}

describe('UFS2 cylinder group codec (struct cg)', () => {
  it('decode(encode(cg)) gives cg back, and the maps fit inside CGSIZE', () => {
    fc.assert(
      fc.property(
        params.chain((p) => fc.tuple(fc.constant(p), group(p))),
        ([p, cg]) => {
          const size = cgSize(p.ipg, p.fpg, p.frag, p.contigsumsize);
          expect(cgMapOffsets(p.ipg, p.fpg, p.frag, p.contigsumsize).nextfreeoff).toBeLessThanOrEqual(size);
          const bytes = encodeCylinderGroup(cg, { ...p, cgsize: size });
          expect(decodeCylinderGroup(bytes, p)).toEqual(cg);
        },
      ),
    );
  });

  it('lays out the maps as fs.h says: used inodes at 168, free frags right after', () => {
    const off = cgMapOffsets(1024, 65536, 8, 2);
    expect(off.iusedoff).toBe(CG_HEADER_SIZE);
    expect(off.freeoff).toBe(168 + 128);
    // clustersumoff = roundup(freeoff + fpg/8 - 4, 4); two counts plus the unused [0].
    expect(off.clustersumoff).toBe(168 + 128 + 8192 - 4);
    expect(off.clusteroff).toBe(off.clustersumoff + 12);
    expect(off.nextfreeoff).toBe(off.clusteroff + 1024);
  });

  it('summarizes a free map as ffs_fragacct counts it', () => {
    // 3 blocks of 4 frags + 2 trailing frags: block 0 all free, block 1 frags 0,2,3 free,
    // block 2 used, the partial block both free.
    const map = new Uint8Array(2);
    const free = [0, 1, 2, 3, 4, 6, 7, 12, 13];
    for (const f of free) map[f >> 3] |= 1 << (f & 7);
    const s = summarizeFreeMap(map, { ndblk: 14, fpg: 14, frag: 4, contigsumsize: 2 });
    expect(s.nbfree).toBe(1);
    expect(s.nffree).toBe(5);
    expect(s.frsum).toEqual([0, 1, 2, 0, 0, 0, 0, 0]);
    expect(s.nclusterblks).toBe(3);
    expect(Array.from(s.clustersfree)).toEqual([0b001]);
    expect(s.clustersum).toEqual([0, 1, 0]);
  });

  it('refuses a group without CG_MAGIC or with maps outside its bytes', () => {
    const p = { ipg: 64, fpg: 256, frag: 8, contigsumsize: 0 };
    const cg = fc.sample(group(p), { seed: 1, numRuns: 1 })[0];
    const bytes = encodeCylinderGroup(cg, { ...p, cgsize: 4096 });
    const bad = bytes.slice();
    bad[4] ^= 0xff;
    expectFormatError(() => decodeCylinderGroup(bad, p), 'BAD_MAGIC');
    const far = bytes.slice();
    new DataView(far.buffer).setUint32(96, 5000, true);
    expectFormatError(() => decodeCylinderGroup(far, p), 'BAD_VALUE');
  });
});
