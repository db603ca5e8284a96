/**
 * The Linux UFS reader harness (test/helpers/linux-ufs.ts), proved on an image Linux mounts
 * today: Debian's makefs (NetBSD's) UFS1, `ufstype=44bsd`. Its listing must match the folder
 * the image was made from, read by treeFromFolder; and the comparison must catch differences.
 */
import { chmodSync, chownSync, linkSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { treeFromFolder } from '../../src/fs/tree/folder.js';
import type { FileTree } from '../../src/fs/tree/types.js';
import { tempDir } from '../helpers/golden.js';
import { sha256Of } from '../helpers/file-tree.js';
import { compareTreeWithListing, listUfsWithLinux, parseListing, requireLinuxUfs } from '../helpers/linux-ufs.js';
import { requirePeer, runPeerOk } from '../helpers/peer.js';

const isRoot = process.getuid?.() === 0;

function makeFolder(): string {
  const dir = join(tempDir(), 'src');
  const deep = join(dir, ...Array.from({ length: 12 }, (_, i) => `level${i}`));
  mkdirSync(deep, { recursive: true });
  mkdirSync(join(dir, 'sbin'));
  writeFileSync(join(dir, 'empty'), '');
  writeFileSync(join(dir, 'sbin', 'init'), Buffer.alloc(200_000, 0x5a).fill(0x41, 70_000, 90_000));
  writeFileSync(join(deep, 'leaf.txt'), 'deep\n');
  writeFileSync(join(dir, `${'n'.repeat(200)}.txt`), 'a long name\n');
  linkSync(join(dir, 'sbin', 'init'), join(dir, 'init-hardlink'));
  symlinkSync('sbin/init', join(dir, 'short-link'));
  symlinkSync(`${'../'.repeat(10)}${'t'.repeat(90)}`, join(dir, 'long-link')); // longer than a UFS1 inode keeps inline
  runPeerOk('mkfifo', [join(dir, 'fifo')]);
  chmodSync(join(dir, 'sbin', 'init'), 0o4555);
  chmodSync(join(dir, 'empty'), 0o600);
  if (isRoot) {
    runPeerOk('mknod', [join(dir, 'null'), 'c', '1', '3']);
    runPeerOk('mknod', [join(dir, 'disk'), 'b', '8', '16']);
    chownSync(join(dir, 'sbin'), 0, 5);
    chownSync(join(dir, 'empty'), 1001, 1002);
  }
  for (const p of ['empty', 'sbin/init', 'fifo']) utimesSync(join(dir, p), 1500000000, 1500000000);
  return dir;
}

describe('Linux UFS reader harness', () => {
  it('lists a makefs UFS1 image as its source folder holds it', { timeout: 240_000 }, async (ctx) => {
    if (!requireLinuxUfs() || !requirePeer('makefs', 'makefs')) return ctx.skip();
    const dir = makeFolder();
    const image = join(dir, '..', 'ufs1.img');
    runPeerOk('makefs', ['-t', 'ffs', '-B', 'little', '-o', 'version=1', '-s', '8m', image, dir]);
    const tree = await treeFromFolder(dir);
    const { records, log } = await listUfsWithLinux(image, { ufstype: '44bsd' });
    expect(records.length, log.slice(-2000)).toBe(tree.nodes.length);
    expect(compareTreeWithListing(tree, records, sha256Of(tree), { mtime: true })).toEqual([]);
    expect(records.find((r) => r.path === 'init-hardlink')?.nlink).toBe(2);
  });

  it('says so when Linux cannot mount the image', { timeout: 240_000 }, async (ctx) => {
    if (!requireLinuxUfs()) return ctx.skip();
    const image = join(tempDir(), 'zeros.img');
    writeFileSync(image, Buffer.alloc(1 << 20));
    await expect(listUfsWithLinux(image, { ufstype: 'ufs2' })).rejects.toThrow(/Linux could not mount the image/);
  });
});

describe('compareTreeWithListing (no QEMU: a listing written here)', () => {
  const T = { sec: 100, nsec: 0 };
  const base = { flags: 0, atime: T, mtime: T, ctime: T, birthtime: T };
  const tree: FileTree = {
    nodes: [
      { ...base, path: '', kind: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 },
      { ...base, path: 'a b', kind: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, content: { path: '/dev/null', offset: 0, length: 3 } },
      { ...base, path: 'h', kind: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, hardlinkOf: 'a b' },
      { ...base, path: 'l', kind: 'symlink', mode: 0o755, uid: 0, gid: 0, size: 3, target: 'a b' },
    ],
  };
  const sha = 'ab'.repeat(32);
  const listing = (mode = '81a4', target = 'a b') =>
    [
      'S\t41ed\t0\t0\t512\t2\t0\t0\t100\t2\t.',
      `S\t${mode}\t0\t0\t3\t2\t0\t0\t100\t3\t./a b`,
      `S\t${mode}\t0\t0\t3\t2\t0\t0\t100\t3\t./h`,
      'S\ta1ed\t0\t0\t3\t1\t0\t0\t100\t4\t./l',
      `H\t${sha}  ./a b`,
      `H\t${sha}  ./h`,
      `L\t./l\t${target}`,
    ].join('\n');

  it('finds nothing to report when the listing matches', () => {
    expect(compareTreeWithListing(tree, parseListing(listing()), () => sha, { mtime: true })).toEqual([]);
  });

  it('reports a different mode, content, link target or a missing path', () => {
    expect(compareTreeWithListing(tree, parseListing(listing('81b4')), () => sha)).toEqual([
      '"a b": mode 644 in the tree, 664 as Linux reads it',
      '"h": mode 644 in the tree, 664 as Linux reads it',
    ]);
    expect(compareTreeWithListing(tree, parseListing(listing()), () => 'cd'.repeat(32))).toHaveLength(2);
    expect(compareTreeWithListing(tree, parseListing(listing('81a4', 'elsewhere')), () => sha)).toEqual([
      '"l": target a b in the tree, elsewhere as Linux reads it',
    ]);
    const fewer = listing()
      .split('\n')
      .filter((l) => !l.endsWith('./h'))
      .join('\n');
    expect(compareTreeWithListing(tree, parseListing(fewer), () => sha)).toEqual(['"h" is in the tree but Linux does not list it']);
  });
});
