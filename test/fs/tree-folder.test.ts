import { linkSync, mkdirSync, symlinkSync, utimesSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { treeFromFolder } from '../../src/fs/tree/folder.js';
import { DiskmintError } from '../../src/model/errors.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer, runPeerOk } from '../helpers/peer.js';

const isRoot = process.getuid?.() === 0;

function makeFolder(): string {
  const dir = join(tempDir(), 'src');
  mkdirSync(join(dir, 'a', 'deep'), { recursive: true });
  mkdirSync(join(dir, 'B'));
  writeFileSync(join(dir, 'a', 'x'), 'x bytes');
  writeFileSync(join(dir, 'a-b'), 'dash');
  writeFileSync(join(dir, 'é'), 'accent');
  writeFileSync(join(dir, 'B', 'first'), 'shared inode');
  linkSync(join(dir, 'B', 'first'), join(dir, 'a', 'deep', 'second'));
  symlinkSync('../a-b', join(dir, 'B', 'lnk'));
  runPeerOk('mkfifo', [join(dir, 'pipe')]);
  chmodSync(join(dir, 'a', 'x'), 0o4750);
  utimesSync(join(dir, 'a-b'), 1600000000, 1600000000.25);
  return dir;
}

describe('treeFromFolder', () => {
  it('walks a folder in tree order: root first, folders before what they hold, names in byte order', async () => {
    const tree = await treeFromFolder(makeFolder());
    expect(tree.nodes.map((n) => n.path)).toEqual(['', 'B', 'B/first', 'B/lnk', 'a', 'a/deep', 'a/deep/second', 'a/x', 'a-b', 'pipe', 'é']);
  });

  it('keeps kinds, modes, symlink targets, times and finds hard links by inode', async () => {
    const dir = makeFolder();
    const tree = await treeFromFolder(dir);
    const at = (p: string) => tree.nodes.find((n) => n.path === p)!;
    expect(at('a/x')).toMatchObject({ kind: 'file', mode: 0o4750, size: 7, content: { path: join(dir, 'a/x'), offset: 0, length: 7 } });
    expect(at('B/lnk')).toMatchObject({ kind: 'symlink', target: '../a-b', size: 6 });
    expect(at('pipe')).toMatchObject({ kind: 'fifo' });
    expect(at('a-b').mtime).toEqual({ sec: 1600000000, nsec: 250000000 });
    expect(at('a/deep/second')).toMatchObject({ kind: 'file', hardlinkOf: 'B/first', size: 12 });
    expect(at('a/deep/second').content).toBeUndefined();
    expect(at('B/first').content).toMatchObject({ offset: 0, length: 12 }); // either name of the shared inode
    expect(tree.nodes.every((n) => n.flags === 0)).toBe(true);
  });

  it('agrees with GNU find on every path, type, mode, owner, size and link target', async (ctx) => {
    if (!requirePeer('find', 'findutils')) return ctx.skip();
    const dir = makeFolder();
    if (isRoot) runPeerOk('mknod', [join(dir, 'null'), 'c', '1', '3']);
    const tree = await treeFromFolder(dir);
    const kinds: Record<string, string> = { f: 'file', d: 'dir', l: 'symlink', p: 'fifo', c: 'char', b: 'block', s: 'socket' };
    const found = runPeerOk('find', [dir, '-printf', '%P\\t%y\\t%m\\t%U\\t%G\\t%s\\t%l\\n'])
      .replace(/\n$/, '')
      .split('\n')
      .map((l) => l.split('\t'))
      .map(([path, y, m, u, g, s, l]) => ({ path, kind: kinds[y], mode: parseInt(m, 8), uid: Number(u), gid: Number(g), size: kinds[y] === 'dir' ? 0 : Number(s), target: l || undefined }))
      .sort((a, b) => (a.path < b.path ? -1 : 1));
    const ours = tree.nodes
      .map((n) => ({ path: n.path, kind: n.kind, mode: n.mode, uid: n.uid, gid: n.gid, size: n.size, target: n.target }))
      .sort((a, b) => (a.path < b.path ? -1 : 1));
    expect(ours).toEqual(found);
    if (isRoot) expect(tree.nodes.find((n) => n.path === 'null')?.device).toEqual({ major: 1, minor: 3 });
  });

  it('clamps timestamps later than SOURCE_DATE_EPOCH and keeps earlier ones', async () => {
    const dir = makeFolder();
    const tree = await treeFromFolder(dir, { sourceDateEpoch: 1700000000 });
    const ab = tree.nodes.find((n) => n.path === 'a-b')!;
    expect(ab.mtime).toEqual({ sec: 1600000000, nsec: 250000000 });
    const x = tree.nodes.find((n) => n.path === 'a/x')!;
    for (const t of [x.atime, x.mtime, x.ctime, x.birthtime]) expect(t).toEqual({ sec: 1700000000, nsec: 0 });
  });

  it('refuses a path that is not a folder, or is missing', async () => {
    const dir = makeFolder();
    await expect(treeFromFolder(join(dir, 'a-b'))).rejects.toThrow(/is not a folder/);
    await expect(treeFromFolder(join(dir, 'nope'))).rejects.toBeInstanceOf(DiskmintError);
  });
});
