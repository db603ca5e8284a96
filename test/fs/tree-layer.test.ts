import { copyFileSync, existsSync, mkdirSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { layerTrees } from '../../src/fs/tree/layer.js';
import { loadTreeSources, parseTreeSource } from '../../src/fs/tree/sources.js';
import { treeFromFolder } from '../../src/fs/tree/folder.js';
import { treeFromTar } from '../../src/fs/tree/tar-source.js';
import type { FileTree, TreeNode } from '../../src/fs/tree/types.js';
import { tempDir } from '../helpers/golden.js';
import { contentOf, treeNode } from '../helpers/file-tree.js';
import { requirePeer, runPeerOk } from '../helpers/peer.js';

const FIXTURES = join(import.meta.dirname, '../../fixtures/ufs-sources');
const T = { sec: 10, nsec: 0 };
const node = (path: string, kind: TreeNode['kind'], extra: Partial<TreeNode> = {}): TreeNode => treeNode(path, kind, { mode: 0o644, ...extra }, T);
const file = (path: string, at: string, extra: Partial<TreeNode> = {}) =>
  node(path, 'file', { size: 1, content: { path: at, offset: 0, length: 1 }, ...extra });

describe('layerTrees', () => {
  it('lets later trees override earlier ones path by path', () => {
    const base: FileTree = { nodes: [node('', 'dir'), node('etc', 'dir', { mode: 0o755 }), file('etc/rc.conf', 'base'), file('etc/motd', 'base')] };
    const overlay: FileTree = { nodes: [node('', 'dir'), node('etc', 'dir', { mode: 0o700 }), file('etc/rc.conf', 'overlay', { uid: 7 })] };
    const tree = layerTrees([base, overlay]);
    expect(tree.nodes.map((n) => [n.path, n.content?.path, n.mode])).toEqual([
      ['', undefined, 0o644],
      ['etc', undefined, 0o700],
      ['etc/motd', 'base', 0o644],
      ['etc/rc.conf', 'overlay', 0o644],
    ]);
  });

  it("keeps a folder's metadata when a later tarball only implies it", async (ctx) => {
    if (!requirePeer('tar', 'tar')) return ctx.skip();
    const dir = tempDir();
    mkdirSync(join(dir, 'src', 'etc'), { recursive: true });
    writeFileSync(join(dir, 'src', 'etc', 'extra'), 'x');
    runPeerOk('tar', ['--format=pax', '-C', join(dir, 'src'), '-cf', join(dir, 'overlay.tar'), 'etc/extra']);
    const base = await treeFromTar(join(FIXTURES, 'owners.tar'));
    const overlay = await treeFromTar(join(dir, 'overlay.tar'));
    const tree = layerTrees([{ nodes: base.tree.nodes.map((n) => (n.path === 'etc' ? { ...n, mode: 0o711, uid: 3 } : n)) }, overlay.tree]);
    expect(tree.nodes.find((n) => n.path === 'etc')).toMatchObject({ mode: 0o711, uid: 3 });
    expect(tree.nodes.find((n) => n.path === 'etc/extra')).toBeDefined();
    await base.close();
  });

  it('drops what a replaced folder held, and re-roots a hard link whose first path was replaced', () => {
    const base: FileTree = {
      nodes: [
        node('', 'dir'),
        node('a', 'dir'),
        file('a/x', 'base'),
        file('b', 'base-inode', { mode: 0o600 }),
        node('c', 'file', { hardlinkOf: 'b', size: 1 }),
      ],
    };
    const overlay: FileTree = { nodes: [node('', 'dir'), node('a', 'symlink', { target: 'elsewhere', size: 9 }), file('b', 'new')] };
    const tree = layerTrees([base, overlay]);
    expect(tree.nodes.map((n) => n.path)).toEqual(['', 'a', 'b', 'c']);
    expect(tree.nodes.find((n) => n.path === 'b')!.content?.path).toBe('new');
    const c = tree.nodes.find((n) => n.path === 'c')!;
    expect(c).toMatchObject({ kind: 'file', mode: 0o600, content: { path: 'base-inode' } });
    expect(c.hardlinkOf).toBeUndefined();
  });
});

describe('loadTreeSources', () => {
  it('parses --from values: a path, mtree:SPEC, mtree:SPEC@FOLDER', () => {
    expect(parseTreeSource('base.txz')).toEqual({ kind: 'path', path: 'base.txz' });
    expect(parseTreeSource('mtree:/s/METALOG')).toEqual({ kind: 'mtree', spec: '/s/METALOG', folder: '/s' });
    expect(parseTreeSource('mtree:spec@/w/stage')).toEqual({ kind: 'mtree', spec: 'spec', folder: '/w/stage' });
    expect(() => parseTreeSource('mtree:@x')).toThrow(/mtree:SPEC/);
    expect(() => parseTreeSource('')).toThrow(/--from needs/);
  });

  it('layers a compressed tarball, a METALOG stage and an overlay folder, clamping times', async (ctx) => {
    if (!requirePeer('xz', 'xz-utils')) return ctx.skip();
    const dir = tempDir();
    copyFileSync(join(FIXTURES, 'owners.tar'), join(dir, 'base.tar'));
    runPeerOk('xz', ['-q', join(dir, 'base.tar')]);
    const overlay = join(dir, 'overlay');
    mkdirSync(join(overlay, 'etc'), { recursive: true });
    writeFileSync(join(overlay, 'etc', 'rc.conf'), 'hostname="mint"\n');
    chmodSync(join(overlay, 'etc'), 0o755);
    const loaded = await loadTreeSources([join(dir, 'base.tar.xz'), `mtree:${join(FIXTURES, 'stage/METALOG')}`, overlay], { sourceDateEpoch: 1700000000 });
    try {
      const at = (p: string) => loaded.tree.nodes.find((n) => n.path === p);
      expect(at('dev/null')).toMatchObject({ kind: 'char', device: { major: 1, minor: 3 } }); // from the tarball
      expect(at('usr/share/doc/README')).toMatchObject({ uid: 9 }); // from the METALOG
      expect(contentOf(loaded.tree, at('etc/rc.conf')!)).toBe('hostname="mint"\n'); // from the folder
      expect(at('etc')).toMatchObject({ mode: 0o755 }); // the overlay names etc last
      expect(at('stray.txt')).toBeUndefined();
      expect(loaded.tree.nodes.every((n) => n.mtime.sec <= 1700000000 && n.ctime.sec <= 1700000000)).toBe(true);
      const spool = at('bin/rsh')!.content!.path;
      expect(existsSync(spool)).toBe(true);
      await loaded.close();
      expect(existsSync(spool)).toBe(false);
    } finally {
      await loaded.close();
    }
  });

  it('gives one source back as it is, and refuses no source or a missing one', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'f'), 'f');
    const one = await loadTreeSources([dir]);
    expect(one.tree).toEqual(await treeFromFolder(dir));
    await expect(loadTreeSources([])).rejects.toThrow(/no source given/);
    await expect(loadTreeSources([join(dir, 'missing')])).rejects.toThrow(/--from .*missing/);
  });
});
