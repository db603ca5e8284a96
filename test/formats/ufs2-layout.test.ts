import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { closeSync, openSync, readSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cgSize } from '../../formats/fs/ufs2/cylinder-group.js';
import { computeUfs2Layout, csFrags, dataFrags, superblockFor } from '../../formats/fs/ufs2/layout.js';
import { decodeSuperblock, encodeSuperblock } from '../../formats/fs/ufs2/superblock.js';
import { expectFormatError } from '../helpers/codec.js';
import { requirePeer, runPeerOk } from '../helpers/peer.js';

const geometry = fc.record({
  sizeBytes: fc.integer({ min: 2 * 2 ** 20, max: 2 ** 37 }),
  pair: fc.constantFrom<[number, number]>([32768, 4096], [32768, 32768], [16384, 2048], [8192, 1024], [4096, 512], [4096, 4096]),
  densityFrags: fc.integer({ min: 1, max: 64 }),
});

describe('UFS2 geometry (makefs mkfs.c)', () => {
  it('holds fs.h invariants for any size, block and fragment size and density', () => {
    fc.assert(
      fc.property(geometry, ({ sizeBytes, pair: [blockSize, fragSize], densityFrags }) => {
        const l = computeUfs2Layout({ sizeBytes, blockSize, fragSize, density: densityFrags * fragSize });
        expect(l.size).toBe(Math.floor(sizeBytes / fragSize));
        expect(l.ncg).toBe(Math.ceil(l.size / l.fpg));
        expect(l.fpg % l.frag).toBe(0);
        expect(l.ipg % l.inopb).toBe(0);
        expect(l.cgsize).toBeLessThanOrEqual(l.bsize); // a group's maps fit one block
        expect(l.cgsize).toBeGreaterThanOrEqual(cgSize(l.ipg, l.fpg, l.frag, l.contigsumsize));
        expect(l.sblkno * l.fsize).toBeGreaterThanOrEqual(65536 + 8192); // primary superblock before the first copy
        expect(l.dblkno).toBe(l.iblkno + (l.ipg * 256) / l.fsize);
        const last = l.size - (l.ncg - 1) * l.fpg;
        expect(last).toBeGreaterThanOrEqual(l.dblkno + (l.ncg === 1 ? csFrags(l) : 0));
        expect(dataFrags(l)).toBeGreaterThan(0);
        const sb = superblockFor(l, {
          cstotal: { ndir: 1, nbfree: 2, nifree: 3, nffree: 4, numclusters: 5 },
          time: 1,
          id: [1, 2],
          volname: 'V',
          softupdates: false,
        });
        expect(decodeSuperblock(encodeSuperblock(sb, sb.sbsize))).toEqual(sb);
      }),
      { numRuns: 60 },
    );
  });

  it('refuses impossible parameters as arguments', () => {
    expectFormatError(() => computeUfs2Layout({ sizeBytes: 2 ** 30, blockSize: 3000 }), 'INVALID_ARGUMENT');
    expectFormatError(() => computeUfs2Layout({ sizeBytes: 2 ** 30, blockSize: 32768, fragSize: 2048 }), 'INVALID_ARGUMENT');
    expectFormatError(() => computeUfs2Layout({ sizeBytes: 100_000 }), 'INVALID_ARGUMENT');
  });

  describe('against Debian makefs (NetBSD: superblock at 8192, so compare geometry, not offsets)', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'diskmint-ufs-layout-'));
      await mkdir(join(dir, 'tree'));
      await writeFile(join(dir, 'tree', 'f'), 'x');
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    function makefsSuperblock(size: string, density: number, bsize = 32768, fsize = 4096) {
      const image = join(dir, `nb-${size}.img`);
      runPeerOk('makefs', [
        '-t',
        'ffs',
        '-B',
        'little',
        '-o',
        `version=2,bsize=${bsize},fsize=${fsize},density=${density}`,
        '-s',
        size,
        image,
        join(dir, 'tree'),
      ]);
      const buf = Buffer.alloc(8192);
      const fd = openSync(image, 'r');
      readSync(fd, buf, 0, 8192, 8192);
      closeSync(fd);
      return decodeSuperblock(new Uint8Array(buf.buffer, buf.byteOffset, 8192));
    }

    it('one cylinder group: the same fs_fpg, fs_ipg, fs_cgsize, cluster and inode fields', (ctx) => {
      if (!requirePeer('makefs', 'makefs')) return ctx.skip();
      for (const [size, density] of [
        ['48m', 8192],
        ['400m', 8192],
        ['300m', 65536],
      ] as const) {
        const nb = makefsSuperblock(size, density);
        const l = computeUfs2Layout({ sizeBytes: nb.size * nb.fsize, density });
        const pick = (o: {
          ncg: number;
          fpg: number;
          ipg: number;
          cgsize: number;
          cssize: number;
          contigsumsize: number;
          maxcontig: number;
          inopb: number;
          nindir: number;
        }) => [o.ncg, o.fpg, o.ipg, o.cgsize, o.cssize, o.contigsumsize, o.maxcontig, o.inopb, o.nindir];
        expect(pick(l)).toEqual(pick(nb));
        expect(l.dblkno - l.iblkno).toBe(nb.dblkno - nb.iblkno);
      }
    });

    it('several groups: the same count and cg size; fs_fpg a few blocks apart (the NetBSD CGSIZE lacks a padding word FreeBSD has)', (ctx) => {
      if (!requirePeer('makefs', 'makefs')) return ctx.skip();
      // 4096/512 blocks keep groups small (a group's maps fit one 4 KiB block), so 64 MiB has several.
      const nb = makefsSuperblock('64m', 2048, 4096, 512);
      expect(nb.ncg).toBeGreaterThan(2);
      const l = computeUfs2Layout({ sizeBytes: nb.size * nb.fsize, density: 2048, blockSize: 4096, fragSize: 512 });
      expect([l.ncg, l.cgsize]).toEqual([nb.ncg, nb.cgsize]);
      // FreeBSD's fs.h CGSIZE adds sizeof(int32_t) after the block map, NetBSD's does not: the
      // map-bound group differs by a few bytes of map, so by a few blocks and one inode block.
      expect(l.fpg - nb.fpg).toBeGreaterThan(0);
      expect(l.fpg - nb.fpg).toBeLessThanOrEqual(64);
      expect(Math.abs(l.ipg - nb.ipg)).toBeLessThanOrEqual(l.inopb);
    });
  });
});
