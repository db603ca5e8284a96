/**
 * The UFS reader against file systems others made: FreeBSD-made UFS2 and UFS1 images (fox-it
 * dissect.ffs test data, fixtures/ufs/) and Debian's makefs (NetBSD's) over a tree with every
 * file type, read back file for file (names, kinds, sizes, sha256, modes, owners, times, link
 * targets, hard links) and passing the consistency check with no problem.
 */
import { gunzipSync } from 'node:zlib';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { memoryDiskReader, openRawFile } from '../../src/model/disk-reader.js';
import { openUfs } from '../../src/fs/ufs/read.js';
import { NDADDR } from '../../src/fs/ufs/read-geometry.js';
import { tempDir } from '../helpers/golden.js';
import { havePeer, requirePeer } from '../helpers/peer.js';
import { makefs, makeSourceTree, treeOfFolder, treeOfUfs, type TreeRecord } from '../helpers/ufs-makefs.js';

const FIXTURES = new URL('../../fixtures/ufs/', import.meta.url).pathname;
const fixture = (name: string) => memoryDiskReader(new Uint8Array(gunzipSync(readFileSync(join(FIXTURES, name)))));
const text = async (it: AsyncIterable<Uint8Array>) => {
  const parts: Uint8Array[] = [];
  for await (const p of it) parts.push(p);
  return Buffer.concat(parts).toString('utf8');
};

describe('FreeBSD-made images (fox-it/dissect.ffs test data)', () => {
  it('ffs.bin: a UFS2 file system of 32 KiB blocks with /test_file and /test_dir/test_file_2', async () => {
    const ufs = await openUfs(fixture('ffs.bin.gz'));
    expect(ufs.version).toBe(2);
    expect(ufs.geometry.blockSize).toBe(32 * 1024);
    expect(ufs.geometry.superblockOffset).toBe(65536);
    // dissect's test: listdir order ".", "..", ".snap", "test_file", "test_dir"; the root's atime.
    expect((await ufs.list('/')).map((e) => e.name)).toEqual(['.snap', 'test_file', 'test_dir']);
    const root = await ufs.stat('/');
    expect(root?.stat.kind).toBe('dir');
    expect(root?.stat.atime.sec).toBe(1650636914);
    const file = await ufs.stat('/test_file');
    expect(file?.stat).toMatchObject({ kind: 'file', size: 14, blocks: 8 });
    expect(await text(ufs.readFile('/test_file'))).toBe('test contents\n');
    expect((await ufs.stat('/test_dir'))?.stat.blocks).toBe(8);
    expect((await ufs.list('/test_dir')).map((e) => e.name)).toEqual(['test_file_2']);
    expect(await ufs.check()).toEqual([]);
  });

  for (const n of [1, 2, 3]) {
    it(`ffs_symlink_test${n}.bin: UFS1, a chain of relative symlinks resolves to the file`, async () => {
      const disk = fixture(`ffs_symlink_test${n}.bin.gz`);
      const ufs = await openUfs(disk);
      expect(ufs.version).toBe(1);
      const link = await ufs.stat('/path/to/dir/with/file.ext');
      expect(link?.stat).toMatchObject({ kind: 'symlink', blocks: 0 });
      expect(await text(ufs.readFile('/path/to/dir/with/file.ext'))).toBe('resolved!\n');
      // Images 2 and 3 were copied while mounted: fs_clean (struct fs byte 209, superblock at 8192) is 0.
      const fsClean = (await disk.read(8192 + 209, 1))[0];
      expect((await ufs.check()).map((p) => p.code)).toEqual(fsClean === 0 ? ['ufs.not-clean'] : []);
    });
  }
});

/** What makefs -F spec changes, and the nodes it adds, as the spec below says. */
const SPEC = `#mtree
. type=dir uid=0 gid=0 mode=0755
./small.txt type=file uid=1001 gid=1002 mode=0640
./links type=dir uid=5 gid=6 mode=0711
./blocks.bin type=file uid=0 gid=0 mode=04755
./empty-dir type=dir uid=0 gid=0 mode=01777
./null type=char uid=0 gid=0 mode=0666 device=native,2,2 time=1700000000.0
./disk0 type=block uid=0 gid=5 mode=0640 device=native,13,3 time=1700000000.0
./spec-link type=link link=small.txt uid=0 gid=0 mode=0755 time=1700000000.0
`;

function applySpec(tree: Map<string, TreeRecord>): Map<string, TreeRecord> {
  const out = new Map([...tree].map(([k, v]) => [k, { ...v }]));
  for (const p of out.get('/small.txt')!.links!) Object.assign(out.get(p)!, { uid: 1001, gid: 1002, perm: 0o640 });
  Object.assign(out.get('/links')!, { uid: 5, gid: 6, perm: 0o711 });
  Object.assign(out.get('/blocks.bin')!, { uid: 0, gid: 0, perm: 0o4755 });
  Object.assign(out.get('/empty-dir')!, { uid: 0, gid: 0, perm: 0o1777 });
  out.set('/null', { kind: 'char', size: 0, perm: 0o666, uid: 0, gid: 0, mtime: 1700000000, rdev: '2,2' });
  out.set('/disk0', { kind: 'block', size: 0, perm: 0o640, uid: 0, gid: 5, mtime: 1700000000, rdev: '13,3' });
  out.set('/spec-link', { kind: 'symlink', size: 9, perm: 0o755, uid: 0, gid: 0, mtime: 1700000000, target: 'small.txt' });
  return out;
}

const sorted = (m: Map<string, TreeRecord>) => new Map([...m].sort(([a], [b]) => (a < b ? -1 : 1)));

describe.runIf(havePeer('makefs') || process.env.CI)("Debian's makefs images read back file for file", () => {
  let dir: string;
  let src: string;
  let source: Map<string, TreeRecord>;
  beforeAll(() => {
    requirePeer('makefs', 'makefs');
    dir = tempDir('diskmint-ufs-read-');
    src = join(dir, 'src');
    makeSourceTree(src);
    source = treeOfFolder(src);
  });

  const variants: [string, string, string[]][] = [
    ['UFS2, makefs defaults', 'version=2', []],
    ['UFS2, 4 KiB blocks, several groups, double indirect blocks', 'version=2,bsize=4096,fsize=512', ['-s', '48m']],
    ['UFS1, makefs defaults', 'version=1', []],
    ['UFS1, 4 KiB blocks, several groups, double indirect blocks', 'version=1,bsize=4096,fsize=512', ['-s', '48m']],
  ];
  for (const [name, options, extra] of variants) {
    it(name, async () => {
      const img = join(dir, `${options.replace(/[=,]/g, '-')}.img`);
      makefs(img, src, options, extra);
      const disk = await openRawFile(img);
      try {
        const ufs = await openUfs(disk);
        expect(ufs.version).toBe(options.includes('version=1') ? 1 : 2);
        expect(sorted(await treeOfUfs(ufs))).toEqual(sorted(source));
        if (extra.length > 0) {
          expect(ufs.geometry.ncg).toBeGreaterThan(1);
          // big.bin (5 MiB) runs past the direct and single indirect blocks.
          const { nindir, blockSize } = ufs.geometry;
          expect((await ufs.stat('/big.bin'))!.stat.size).toBeGreaterThan((NDADDR + nindir) * blockSize);
        }
        expect(await ufs.check()).toEqual([]);
      } finally {
        await disk.close();
      }
    });
  }

  it('UFS2 with -F spec: owners, modes, setuid and sticky bits, device nodes and a symlink from the spec', async () => {
    const spec = join(dir, 'spec');
    writeFileSync(spec, SPEC);
    const img = join(dir, 'spec.img');
    makefs(img, src, 'version=2', ['-F', spec]);
    const disk = await openRawFile(img);
    try {
      const ufs = await openUfs(disk);
      expect(sorted(await treeOfUfs(ufs))).toEqual(sorted(applySpec(source)));
      expect(await ufs.check()).toEqual([]);
    } finally {
      await disk.close();
    }
  });
});
