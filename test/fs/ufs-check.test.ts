/**
 * The UFS consistency check: each finding code produced by one targeted corruption of a clean
 * makefs image (several cylinder groups, 4 KiB blocks), and random byte flips in the metadata
 * giving findings or typed FormatErrors, never another exception or a hang.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { FormatError } from '../../formats/common/errors.js';
import { memoryDiskReader } from '../../src/model/disk-reader.js';
import { openUfs } from '../../src/fs/ufs/read.js';
import { cgBase, cgSblock, cgTod, inodeOffset, type UfsGeometry } from '../../src/fs/ufs/read-geometry.js';
import type { UfsReader } from '../../src/fs/ufs/read-types.js';
import { budgetedReader } from '../helpers/budget.js';
import { tempDir } from '../helpers/golden.js';
import { havePeer, requirePeer } from '../helpers/peer.js';
import { makefs, makeSourceTree } from '../helpers/ufs-makefs.js';

/** struct fs offsets (fs.h): fs_bsize, fs_clean; struct cg (fs.h): cg_magic, cg_rotor, cg_cs.cs_nbfree, cg_iusedoff, cg_freeoff. */
const FS_BSIZE = 48;
const FS_CLEAN = 209;
const CG_MAGIC_AT = 4;
const CG_ROTOR = 40;
const CG_NBFREE = 28;
const CG_IUSEDOFF = 92;
const CG_FREEOFF = 96;
/** ufs2_dinode (dinode.h): di_mode at 0, di_nlink at 2, di_blocks at 24, di_db[0] at 112. */
const DI_NLINK = 2;
const DI_DB = 112;
const DI_BLOCKS = 24;

interface Clean {
  bytes: Uint8Array;
  g: UfsGeometry;
  ino: (path: string) => Promise<number>;
  firstBlock: (path: string) => Promise<number>;
}

describe('ufs check on a FreeBSD image that keeps cylinder-group check-hashes (fs_metackhash CK_CYLGRP)', () => {
  it('ufs.checksum: group 1 changed where nothing else looks (cg_rotor), its cg_ckhash no longer matches', async () => {
    const bytes = new Uint8Array(gunzipSync(readFileSync(new URL('../../fixtures/ufs/ffs.bin.gz', import.meta.url).pathname)));
    const ufs = await openUfs(memoryDiskReader(bytes));
    expect(await ufs.check()).toEqual([]);
    const copy = bytes.slice();
    copy[cgTod(ufs.geometry, 1) * ufs.geometry.fragSize + CG_ROTOR] ^= 0x10;
    const problems = await (await openUfs(memoryDiskReader(copy))).check();
    expect(problems.map((p) => p.code)).toEqual(['ufs.checksum']);
    expect(problems[0].message).toMatch(/cylinder group 1/);
  });
});

describe.runIf(havePeer('makefs') || process.env.CI)('ufs check', () => {
  let clean: Clean;
  beforeAll(async () => {
    requirePeer('makefs', 'makefs');
    const dir = tempDir('diskmint-ufs-check-');
    makeSourceTree(join(dir, 'src'), 300_000);
    const img = join(dir, 'ufs.img');
    makefs(img, join(dir, 'src'), 'version=2,bsize=4096,fsize=512', ['-s', '32m']);
    const bytes = new Uint8Array(readFileSync(img));
    const ufs = await openUfs(memoryDiskReader(bytes));
    const ino = async (p: string) => (await ufs.stat(p))!.ino;
    clean = { bytes, g: ufs.geometry, ino, firstBlock: async (p) => (await ufs.readInode(await ino(p))).direct[0] };
    expect(clean.g.ncg).toBeGreaterThan(2);
    expect(await ufs.check()).toEqual([]);
    const counted = budgetedReader(bytes, { reads: Infinity, bytes: Infinity });
    await exercise(await openUfs(counted));
    expect(counted.used.bytes).toBeLessThan(2 * bytes.length); // the fuzz budget below is 16 times the image
  });

  /** The check's codes on a copy of the clean image changed by `edit`. */
  const codesAfter = async (edit: (b: Uint8Array, dv: DataView) => void | Promise<void>): Promise<string[]> => {
    const copy = clean.bytes.slice();
    await edit(copy, new DataView(copy.buffer));
    const problems = await (await openUfs(memoryDiskReader(copy))).check();
    return [...new Set(problems.map((p) => p.code))].sort();
  };
  const cgAt = (c: number) => cgTod(clean.g, c) * clean.g.fragSize;

  it('ufs.superblock-copy-mismatch: the copy in group 1 says another block size', async () => {
    const codes = await codesAfter((_, dv) => dv.setInt32(cgSblock(clean.g, 1) * clean.g.fragSize + FS_BSIZE, 8192, true));
    expect(codes).toEqual(['ufs.superblock-copy-mismatch']);
  });

  it('ufs.cg-summary: group 0 counts one free block more than its map holds', async () => {
    const codes = await codesAfter((_, dv) => dv.setInt32(cgAt(0) + CG_NBFREE, dv.getInt32(cgAt(0) + CG_NBFREE, true) + 1, true));
    expect(codes).toEqual(['ufs.cg-summary']);
  });

  it('ufs.cg-header: group 2 lost its magic', async () => {
    const codes = await codesAfter((_, dv) => dv.setUint32(cgAt(2) + CG_MAGIC_AT, 0, true));
    expect(codes).toContain('ufs.cg-header');
  });

  it('ufs.block-bitmap: a fragment of /small.txt marked free in its group', async () => {
    const f = await clean.firstBlock('/small.txt');
    const codes = await codesAfter((b, dv) => {
      const c = Math.floor(f / clean.g.fpg);
      const map = cgAt(c) + dv.getUint32(cgAt(c) + CG_FREEOFF, true);
      const i = f - cgBase(clean.g, c);
      b[map + (i >> 3)] |= 1 << (i & 7);
    });
    expect(codes).toContain('ufs.block-bitmap');
  });

  it('ufs.inode-bitmap: the inode of /frag.bin marked free', async () => {
    const ino = await clean.ino('/frag.bin');
    const codes = await codesAfter((b, dv) => {
      const c = Math.floor(ino / clean.g.ipg);
      const map = cgAt(c) + dv.getUint32(cgAt(c) + CG_IUSEDOFF, true);
      const i = ino % clean.g.ipg;
      b[map + (i >> 3)] &= ~(1 << (i & 7));
    });
    expect(codes).toContain('ufs.inode-bitmap');
  });

  it('ufs.link-count: /small.txt (three names) says five links', async () => {
    const ino = await clean.ino('/small.txt');
    const codes = await codesAfter((_, dv) => dv.setInt16(inodeOffset(clean.g, ino) + DI_NLINK, 5, true));
    expect(codes).toEqual(['ufs.link-count']);
  });

  it("ufs.dir-entry: the root's first entry has a d_reclen of 6", async () => {
    const root = (await clean.firstBlock('/')) * clean.g.fragSize;
    const codes = await codesAfter((_, dv) => dv.setUint16(root + 4, 6, true));
    expect(codes).toContain('ufs.dir-entry');
  });

  it('ufs.dir-entry: an entry names a free inode', async () => {
    const root = (await clean.firstBlock('/')) * clean.g.fragSize;
    const free = clean.g.ipg - 1; // the last inode of group 0 is never used by this small tree
    const codes = await codesAfter((_, dv) => {
      const third = root + dv.getUint16(root + 4, true) + dv.getUint16(root + dv.getUint16(root + 4, true) + 4, true);
      dv.setUint32(third, free, true);
    });
    expect(codes).toContain('ufs.dir-entry');
  });

  it('ufs.block-dup: /frag.bin starts on the block of /blocks.bin', async () => {
    const ino = await clean.ino('/frag.bin');
    const other = await clean.firstBlock('/blocks.bin');
    const codes = await codesAfter((_, dv) => dv.setBigInt64(inodeOffset(clean.g, ino) + DI_DB, BigInt(other), true));
    expect(codes).toContain('ufs.block-dup');
  });

  it('ufs.block-out-of-range: /frag.bin points past the end, and into group 1 metadata', async () => {
    const at = inodeOffset(clean.g, await clean.ino('/frag.bin')) + DI_DB;
    expect(await codesAfter((_, dv) => dv.setBigInt64(at, BigInt(clean.g.sizeFrags + 8), true))).toContain('ufs.block-out-of-range');
    expect(await codesAfter((_, dv) => dv.setBigInt64(at, BigInt(cgTod(clean.g, 1)), true))).toContain('ufs.block-out-of-range');
  });

  it('ufs.inode: di_blocks of /frag.bin one sector off; an inode with no file type', async () => {
    const at = inodeOffset(clean.g, await clean.ino('/frag.bin'));
    expect(await codesAfter((_, dv) => dv.setBigUint64(at + DI_BLOCKS, dv.getBigUint64(at + DI_BLOCKS, true) + 1n, true))).toEqual(['ufs.inode']);
    expect(await codesAfter((_, dv) => dv.setUint16(at, 0o070644, true))).toContain('ufs.inode');
  });

  it('ufs.not-clean: fs_clean 0 in the superblock', async () => {
    expect(await codesAfter((b) => void (b[clean.g.superblockOffset + FS_CLEAN] = 0))).toEqual(['ufs.not-clean']);
  });

  it('random byte flips in the metadata give findings or FormatErrors, never another error or a hang', async () => {
    const g = clean.g;
    const regions: [number, number][] = [
      [g.superblockOffset, 1376],
      [cgAt(0), g.cgsize],
      [cgAt(1), g.cgsize],
      [inodeOffset(g, 0), 64 * g.inodeSize],
      [(await clean.firstBlock('/')) * g.fragSize, 512],
      [(await clean.firstBlock('/links')) * g.fragSize, 512],
    ];
    const flip = fc.record({ region: fc.nat(regions.length - 1), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) });
    await fc.assert(
      fc.asyncProperty(fc.array(flip, { minLength: 1, maxLength: 6 }), async (flips) => {
        const copy = clean.bytes.slice();
        for (const f of flips) {
          const [start, len] = regions[f.region];
          copy[start + (f.at % len)] = f.value;
        }
        // Work, not time: a loop would read past this budget (a clean image needs well under it).
        const disk = budgetedReader(copy, { reads: 200_000, bytes: 16 * copy.length });
        try {
          await exercise(await openUfs(disk));
        } catch (e) {
          if (!(e instanceof FormatError)) throw e;
        }
      }),
      { numRuns: 80 },
    );
  });
});

/** Everything a user can do with a file system: walk it, read every file (at most 8 MiB each), check it. */
async function exercise(ufs: UfsReader): Promise<void> {
  const paths: string[] = [];
  try {
    for await (const e of ufs.walk()) if (e.stat.kind === 'file') paths.push(e.path);
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
  }
  for (const p of paths) {
    let n = 0;
    try {
      for await (const chunk of ufs.readFile(p)) if ((n += chunk.length) > 8 << 20) break;
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
    }
  }
  await ufs.check();
}
