import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError } from '../../formats/common/errors.js';
import { UFS1_MAGIC, UFS2_MAGIC, findUfsSuperblock, decodeUfsSuperblock } from '../../formats/fs/ufs.js';
import { detectFilesystem } from '../../src/fs/detect.js';
import { memoryDiskReader } from '../../src/model/disk-reader.js';
import { requirePeer, runPeerOk } from '../helpers/peer.js';
import { tempDir } from '../helpers/golden.js';

const KiB = 1024;

/** A minimal, valid superblock (sys/ufs/ffs/fs.h offsets) at `at` inside a zeroed buffer. */
function syntheticUfs(opts: { version: 1 | 2; big?: boolean; at?: number; volname?: string; size?: number }): Uint8Array {
  const at = opts.at ?? (opts.version === 2 ? 65536 : 8192);
  const buf = new Uint8Array(Math.max(at + 8192, 128 * KiB));
  const dv = new DataView(buf.buffer, at, 8192);
  const le = !opts.big;
  dv.setUint32(44, 1, le); // fs_ncg
  dv.setInt32(48, 32768, le); // fs_bsize
  dv.setInt32(52, 4096, le); // fs_fsize
  dv.setInt32(56, 8, le); // fs_frag
  dv.setInt32(104, 4096, le); // fs_sbsize
  dv.setUint32(144, 0x12345678, le); // fs_id
  dv.setUint32(148, 0x9abcdef0, le);
  if (opts.version === 2) {
    dv.setBigInt64(1000, BigInt(at), le); // fs_sblockloc
    dv.setBigInt64(1080, BigInt(opts.size ?? 2048), le); // fs_size
  } else {
    dv.setInt32(36, opts.size ?? 2048, le); // fs_old_size
  }
  if (opts.volname) buf.set(new TextEncoder().encode(opts.volname), at + 680);
  dv.setUint32(1372, opts.version === 2 ? UFS2_MAGIC : UFS1_MAGIC, le);
  return buf;
}

/** Debian's makefs (NetBSD 2019) has no `-o label`, so the label is written into fs_volname here. */
function withVolname(img: Uint8Array, sbOffset: number, name: string): Uint8Array {
  const out = img.slice();
  out.fill(0, sbOffset + 680, sbOffset + 712);
  out.set(new TextEncoder().encode(name), sbOffset + 680);
  return out;
}

describe('formats/fs/ufs.ts', () => {
  it('parses synthetic UFS1/UFS2 in both byte orders', () => {
    for (const version of [1, 2] as const) {
      for (const big of [false, true]) {
        const sb = findUfsSuperblock(syntheticUfs({ version, big, volname: 'osA', size: 4096 }));
        expect(sb).toMatchObject({
          version,
          endian: big ? 'big' : 'little',
          volname: 'osA',
          blockSize: 32768,
          fragSize: 4096,
          sizeFrags: 4096,
          superblockOffset: version === 2 ? 65536 : 8192,
          id: '123456789abcdef0',
        });
      }
    }
    expect(findUfsSuperblock(syntheticUfs({ version: 1, at: 0 })).superblockOffset).toBe(0);
    const piggy = new Uint8Array(270336);
    piggy.set(syntheticUfs({ version: 2, at: 262144 }).subarray(262144, 270336), 262144);
    expect(findUfsSuperblock(piggy).superblockOffset).toBe(262144);
  });

  it('follows ffs_subr.c readsuper(): UFS1 only at <= 8192, UFS2 only where fs_sblockloc says', () => {
    const ufs1At64k = syntheticUfs({ version: 1, at: 65536 });
    expect(() => findUfsSuperblock(ufs1At64k)).toThrow(/UFS1 superblocks live at 0 or 8192/);
    const wrongLoc = syntheticUfs({ version: 2 });
    new DataView(wrongLoc.buffer).setBigInt64(65536 + 1000, 8192n, true);
    expect(() => findUfsSuperblock(wrongLoc)).toThrow(/fs_sblockloc/);
    const badMagic = syntheticUfs({ version: 2 });
    new DataView(badMagic.buffer).setUint32(65536 + 1372, 0x19960408, true);
    expect(() => findUfsSuperblock(badMagic)).toThrow(FormatError);
  });

  it('a non-FormatError at one location (a bug) is thrown at once, not hidden by a superblock found later', () => {
    const ufs1 = syntheticUfs({ version: 1 }); // at 8192, probed after 65536
    const bug = new RangeError('a bug while reading at 65536');
    const head = Object.assign(ufs1, {
      subarray: (begin?: number, end?: number) => {
        if (begin === 65536) throw bug;
        return Uint8Array.prototype.subarray.call(ufs1, begin, end);
      },
    });
    expect(() => findUfsSuperblock(head)).toThrow(bug);
    // The same bytes without the bug: the UFS1 superblock at 8192.
    expect(findUfsSuperblock(syntheticUfs({ version: 1 })).superblockOffset).toBe(8192);
  });

  it('throws FormatError on garbage and short input', () => {
    expect(() => findUfsSuperblock(new Uint8Array(300 * KiB))).toThrow(FormatError);
    expect(() => findUfsSuperblock(new Uint8Array(10))).toThrow(FormatError);
    expect(() => decodeUfsSuperblock(new Uint8Array(100), 0)).toThrow(FormatError);
  });

  it('mutated superblocks throw nothing but FormatError', () => {
    const bases = [syntheticUfs({ version: 2 }), syntheticUfs({ version: 1, big: true })];
    fc.assert(
      fc.property(
        fc.constantFrom(0, 1),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 1375 }), fc.integer({ min: 0, max: 255 })), { maxLength: 12 }),
        fc.integer({ min: 0, max: 1400 }),
        (which, edits, cut) => {
          const at = which === 0 ? 65536 : 8192;
          const sb = bases[which].slice(at, at + 8192);
          for (const [o, v] of edits) sb[o] = v;
          const part = sb.subarray(0, cut < 1376 ? cut : 8192);
          try {
            const r = decodeUfsSuperblock(part, at);
            expect(r.blockSize).toBeGreaterThanOrEqual(4096);
            expect(r.fragSize * 8).toBeGreaterThanOrEqual(r.blockSize);
          } catch (e) {
            expect(e).toBeInstanceOf(FormatError);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('detectFilesystem', () => {
  it('real UFS images from makefs: ufs1/ufs2, little and big endian, with the label', async (ctx) => {
    if (!requirePeer('makefs', 'makefs')) return ctx.skip();
    const dir = tempDir('diskmint-fsdetect-');
    const src = join(dir, 'root');
    mkdirSync(join(src, 'etc'), { recursive: true });
    writeFileSync(join(src, 'etc', 'motd'), 'hello from a slot\n');
    for (const [version, endian] of [
      [2, 'little'],
      [1, 'little'],
      [2, 'big'],
      [1, 'big'],
    ] as const) {
      const out = join(dir, `v${version}-${endian}.ufs`);
      runPeerOk('makefs', ['-t', 'ffs', '-B', endian, '-o', `version=${version}`, '-s', '8m', out, src]);
      const img = new Uint8Array(readFileSync(out));
      const plain = await detectFilesystem(memoryDiskReader(img));
      expect(plain.kind).toBe(version === 2 ? 'ufs2' : 'ufs1');
      expect(plain.label).toBeUndefined();
      expect(plain.details).toMatchObject({ endian, sizeBytes: 8 * 1024 * 1024 });
      // NetBSD makefs puts even the UFS2 superblock at 8192 (fs_sblockloc 8192); FreeBSD accepts it.
      const at = plain.details!.superblockOffset as number;
      const labelled = await detectFilesystem(memoryDiskReader(withVolname(img, at, `os${version}${endian[0]}`)));
      expect(labelled).toMatchObject({ kind: plain.kind, label: `os${version}${endian[0]}` });
    }
  });

  it('FAT volumes from mkfs.fat', async (ctx) => {
    if (!requirePeer('mkfs.fat', 'dosfstools')) return ctx.skip();
    const dir = tempDir('diskmint-fsdetect-');
    for (const [bits, size] of [
      [12, 2],
      [16, 16],
      [32, 40],
    ] as const) {
      const out = join(dir, `fat${bits}.img`);
      writeFileSync(out, new Uint8Array(size * 1024 * 1024));
      runPeerOk('mkfs.fat', ['-F', String(bits), '-s', '1', '-n', `SLOT${bits}`, out]);
      const r = await detectFilesystem(memoryDiskReader(new Uint8Array(readFileSync(out))));
      expect(r).toMatchObject({ kind: `fat${bits}`, label: `SLOT${bits}` });
      expect(r.details!.bytesPerSector).toBe(512);
    }
  });

  it('zeros -> empty, random -> unknown, tiny disks do not throw', async () => {
    expect((await detectFilesystem(memoryDiskReader(new Uint8Array(1024 * KiB)))).kind).toBe('empty');
    expect((await detectFilesystem(memoryDiskReader(new Uint8Array(0)))).kind).toBe('empty');
    const rnd = new Uint8Array(600 * KiB);
    let s = 12345;
    for (let i = 0; i < rnd.length; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      rnd[i] = s >>> 24;
    }
    expect((await detectFilesystem(memoryDiskReader(rnd))).kind).toBe('unknown');
    expect((await detectFilesystem(memoryDiskReader(new Uint8Array([1, 2, 3])))).kind).toBe('unknown');
  });

  it('synthetic UFS found through the reader', async () => {
    const r = await detectFilesystem(memoryDiskReader(syntheticUfs({ version: 2, big: true, volname: 'osB' })));
    expect(r).toMatchObject({ kind: 'ufs2', label: 'osB', details: { endian: 'big', superblockOffset: 65536 } });
  });

  it('a fake ZFS label region with the uberblock magic -> zfs (either byte order, label 0 or 1)', async () => {
    const xdrNvlist = () => {
      // header (XDR, little-endian host), version 0, flags 1, one string pair name=tank, end.
      const words = [0x01010000, 0, 1, 32, 40, 4, 0x6e616d65 /* "name" */, 9, 1, 4, 0x74616e6b /* "tank" */, 0, 0];
      const b = new Uint8Array(words.length * 4);
      const dv = new DataView(b.buffer);
      words.forEach((w, i) => dv.setUint32(i * 4, w, false));
      return b;
    };
    for (const [label, le] of [
      [0, true],
      [0, false],
      [1, true],
    ] as const) {
      const img = new Uint8Array(1024 * KiB);
      const base = label * 256 * KiB;
      img.set(xdrNvlist(), base + 16 * KiB);
      const dv = new DataView(img.buffer);
      dv.setBigUint64(base + 128 * KiB + 5 * KiB, 0x00bab10cn, le);
      dv.setBigUint64(base + 128 * KiB + 9 * KiB, 0x00bab10cn, le);
      const r = await detectFilesystem(memoryDiskReader(img));
      expect(r).toMatchObject({ kind: 'zfs', label: 'tank', details: { vdevLabel: label, uberblocks: 2, endian: le ? 'little' : 'big' } });
    }
  });

  it('never throws on mutated UFS, FAT, ZFS or random heads', async () => {
    const ufs = syntheticUfs({ version: 2, volname: 'x' });
    const fatLike = new Uint8Array(128 * KiB);
    fatLike.set([0xeb, 0x3c, 0x90], 0);
    new DataView(fatLike.buffer).setUint16(11, 512, true);
    fatLike[13] = 4;
    fatLike[14] = 1;
    fatLike[16] = 2;
    new DataView(fatLike.buffer).setUint16(17, 512, true);
    new DataView(fatLike.buffer).setUint16(19, 8192, true);
    fatLike[21] = 0xf8;
    new DataView(fatLike.buffer).setUint16(22, 8, true);
    fatLike[510] = 0x55;
    fatLike[511] = 0xaa;
    const zfs = new Uint8Array(300 * KiB);
    new DataView(zfs.buffer).setBigUint64(128 * KiB, 0x00bab10cn, true);
    zfs.set([1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 16 * KiB);
    expect((await detectFilesystem(memoryDiskReader(fatLike))).kind).toBe('fat12');
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(0, 1, 2, 3),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 40 }),
        fc.nat({ max: 400 * KiB }),
        async (which, edits, len) => {
          const base = which === 0 ? ufs : which === 1 ? fatLike : which === 2 ? zfs : new Uint8Array(4096).map((_, i) => (i * 7919) & 255);
          const img = base.slice(0, Math.min(base.length, len));
          const hot = which === 0 ? 65536 : which === 2 ? 16 * KiB : 0;
          for (const [o, v] of edits) if (img.length) img[(hot + (o % 2048)) % img.length] = v;
          const r = await detectFilesystem(memoryDiskReader(img));
          expect(['ufs1', 'ufs2', 'fat12', 'fat16', 'fat32', 'zfs', 'empty', 'unknown']).toContain(r.kind);
        },
      ),
      { numRuns: 300 },
    );
  });
});
