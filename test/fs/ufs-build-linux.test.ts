/**
 * The independent reader: Linux's ufs driver (Debian's kernel under QEMU, test/helpers/
 * linux-ufs.ts) mounts what buildUfsVolume wrote and lists every path; the listing must match
 * the source tree (paths, kinds, modes, owners, sizes, link counts, hard links, symlink
 * targets, device numbers, sha256 of every file).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, mkdir, writeFile, symlink, link } from 'node:fs/promises';
import { openSync, writeSync, closeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createUfs } from '../../src/ops/ufs/create.js';
import { treeFromFolder } from '../../src/fs/tree/index.js';
import type { FileTree, TreeNode } from '../../src/fs/tree/types.js';
import { compareTreeWithListing, listUfsWithLinux, requireLinuxUfs } from '../helpers/linux-ufs.js';
import { sha256Of } from '../helpers/file-tree.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'diskmint-ufs-linux-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every file type, long names, deep folders, a hard link, short and long symlinks, devices. */
async function variedFolder(root: string): Promise<void> {
  let deep = root;
  for (let i = 0; i < 12; i++) deep = join(deep, `level-${i}`);
  await mkdir(deep, { recursive: true });
  await writeFile(join(deep, 'bottom.txt'), 'at the bottom\n');
  await writeFile(join(root, 'empty'), '');
  await writeFile(join(root, 'small.txt'), 'hello, ufs\n');
  await writeFile(join(root, 'n'.repeat(255)), 'a 255-byte name\n');
  await writeFile(join(root, 'tail.bin'), Buffer.alloc(32768 * 3 + 5000, 7));
  // 12 direct blocks and then indirect ones: 50 blocks of a repeating pattern.
  const big = Buffer.alloc(32768 * 50 + 123);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 12)) & 0xff;
  await writeFile(join(root, 'indirect.bin'), big);
  await link(join(root, 'small.txt'), join(root, 'hard-link'));
  await symlink('small.txt', join(root, 'short-link'));
  await symlink('t/'.repeat(80) + 'target', join(root, 'long-link'));
  await symlink('x'.repeat(119), join(root, 'link-119'));
  await symlink('y'.repeat(120), join(root, 'link-120'));
  await mkdir(join(root, 'many'));
  for (let i = 0; i < 300; i++) await writeFile(join(root, 'many', `file-with-a-longer-name-${i}`), `${i}\n`);
  execFileSync('mkfifo', [join(root, 'fifo')]);
  if (process.getuid?.() === 0) {
    execFileSync('mknod', [join(root, 'null'), 'c', '1', '3']);
    execFileSync('mknod', [join(root, 'disk'), 'b', '8', '17']); // Linux reads 8-bit minors (old_decode_dev)
  }
}

/** A sparse source file of `bytes` (zero-filled but for marks), to reach triple indirect blocks cheaply. */
function sparseFile(path: string, bytes: number): void {
  const fd = openSync(path, 'w');
  try {
    for (let at = 0; at < bytes; at += 64 << 20) writeSync(fd, Buffer.from(`mark ${at}\n`), 0, undefined, at);
    writeSync(fd, Buffer.from('end\n'), 0, undefined, bytes - 4);
  } finally {
    closeSync(fd);
  }
}

async function checkWithLinux(tree: FileTree, image: string): Promise<void> {
  const { records } = await listUfsWithLinux(image, { ufstype: 'ufs2' });
  expect(compareTreeWithListing(tree, records, sha256Of(tree) as (n: TreeNode) => string)).toEqual([]);
}

describe('UFS2 built by diskmint, read by Linux', () => {
  it('a tree of every file type reads back file for file', async (ctx) => {
    if (!requireLinuxUfs()) return ctx.skip();
    const src = join(dir, 'varied');
    await variedFolder(src);
    const image = join(dir, 'varied.ufs');
    await createUfs(image, { from: [src], label: 'VARIED' });
    await checkWithLinux(await treeFromFolder(src), image);
  }, 180_000);

  it('10,000 small files in 100 folders (fragment tails packed, directories of many chunks)', async (ctx) => {
    if (!requireLinuxUfs()) return ctx.skip();
    const src = join(dir, 'many-small');
    for (let d = 0; d < 100; d++) {
      await mkdir(join(src, `d${d}`), { recursive: true });
      for (let f = 0; f < 100; f++) await writeFile(join(src, `d${d}`, `small-file-${f}`), `${d}/${f}\n`.repeat(1 + ((d * 100 + f) % 300)));
    }
    const tree = await treeFromFolder(src);
    const image = join(dir, 'many-small.ufs');
    await createUfs(image, { tree });
    await checkWithLinux(tree, image);
  }, 600_000);

  it('a 600 MiB file at 4096/512 geometry (double indirect blocks; triple ones need over 1 GiB there)', async (ctx) => {
    if (!requireLinuxUfs()) return ctx.skip();
    const src = join(dir, 'huge');
    await mkdir(src);
    sparseFile(join(src, 'huge.bin'), 600 * 2 ** 20 + 777);
    const tree = await treeFromFolder(src);
    const image = join(dir, 'huge.ufs');
    await createUfs(image, { tree, blockSize: 4096, fragSize: 512 });
    await checkWithLinux(tree, image);
  }, 600_000);
});
