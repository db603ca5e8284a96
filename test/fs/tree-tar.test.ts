import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { treeFromTar } from '../../src/fs/tree/tar-source.js';
import type { FileTree } from '../../src/fs/tree/types.js';
import { DiskmintError } from '../../src/model/errors.js';
import { FILE_FLAGS } from '../../formats/archive/file-flags.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer, runPeerOk } from '../helpers/peer.js';
import { contentOf } from '../helpers/file-tree.js';

const FIXTURES = join(import.meta.dirname, '../../fixtures/ufs-sources');
const TARBALL = join(FIXTURES, 'owners.tar');

/** Everything but where the bytes are: the same tree from a plain and a compressed tarball. */
const metadata = (tree: FileTree) => tree.nodes.map(({ content: _, ...n }) => ({ ...n, bytes: n.kind === 'file' ? contentOf(tree, { ...n, content: _ }) : undefined }));

describe('treeFromTar', () => {
  it('takes owners, modes, flags, devices and times from the archive (the bsdtar fixture)', async () => {
    const { tree, close } = await treeFromTar(TARBALL);
    await close();
    const at = (p: string) => tree.nodes.find((n) => n.path === p)!;
    expect(tree.nodes.map((n) => n.path)).toEqual([
      '', 'bin', 'bin/link name', 'bin/rsh', 'bin/sh', 'dev', 'dev/disk0', 'dev/null', 'etc', 'etc/group', 'etc/master.passwd', 'home', 'home/builder', 'var', 'var/run', 'var/run/fifo',
    ]);
    expect(at('bin/rsh')).toMatchObject({ kind: 'file', mode: 0o555, uid: 0, gid: 0, flags: FILE_FLAGS.SF_IMMUTABLE | FILE_FLAGS.UF_ARCHIVE, size: 18 });
    expect(at('bin/rsh').mtime).toEqual({ sec: 1700000001, nsec: 500000000 });
    // bin/rsh comes first in tree order, so it holds the inode; bin/sh links to it.
    expect(at('bin/sh')).toMatchObject({ hardlinkOf: 'bin/rsh', flags: FILE_FLAGS.SF_IMMUTABLE | FILE_FLAGS.UF_ARCHIVE });
    expect(contentOf(tree, at('bin/sh'))).toBe(readFileSync(join(FIXTURES, 'tree/bin/sh'), 'utf8'));
    expect(at('bin/link name')).toMatchObject({ kind: 'symlink', target: 'sh', size: 2 });
    expect(at('dev/null')).toMatchObject({ kind: 'char', device: { major: 1, minor: 3 }, mode: 0o666 });
    expect(at('dev/disk0')).toMatchObject({ kind: 'block', device: { major: 8, minor: 0 }, gid: 5 });
    expect(at('home/builder')).toMatchObject({ kind: 'dir', uid: 1001, gid: 1001, mode: 0o750 });
    expect(at('var/run/fifo')).toMatchObject({ kind: 'fifo', flags: FILE_FLAGS.UF_NODUMP });
    expect(contentOf(tree, at('etc/group'))).toBe(readFileSync(join(FIXTURES, 'tree/etc/group'), 'utf8'));
  });

  for (const [tool, pkg, ext] of [
    ['gzip', 'gzip', 'gz'],
    ['xz', 'xz-utils', 'xz'],
    ['zstd', 'zstd', 'zst'],
    ['bzip2', 'bzip2', 'bz2'],
  ] as const) {
    it(`reads the same tree from a .tar.${ext}, decompressed once into a temp file that close() removes`, async (ctx) => {
      if (!requirePeer(tool, pkg)) return ctx.skip();
      const dir = tempDir();
      const plain = join(dir, 'owners.tar');
      copyFileSync(TARBALL, plain);
      runPeerOk(tool, ['-q', '-k', plain]);
      const compressed = `${plain}.${ext}`;
      const renamed = join(dir, 'named-anything'); // known by content, not by name
      copyFileSync(compressed, renamed);
      const expected = await treeFromTar(TARBALL);
      const got = await treeFromTar(renamed);
      try {
        expect(metadata(got.tree)).toEqual(metadata(expected.tree));
        const spool = got.tree.nodes.find((n) => n.content)!.content!.path;
        expect(spool).not.toBe(renamed);
        expect(existsSync(spool)).toBe(true);
        await got.close();
        expect(existsSync(spool)).toBe(false);
      } finally {
        await got.close();
        await expected.close();
      }
    });
  }

  it('makes the folders an archive implies without naming them', async (ctx) => {
    if (!requirePeer('tar', 'tar')) return ctx.skip();
    const dir = tempDir();
    mkdirSync(join(dir, 'src', 'usr', 'local', 'bin'), { recursive: true });
    writeFileSync(join(dir, 'src', 'usr', 'local', 'bin', 'tool'), 'tool');
    const tar = join(dir, 'files-only.tar');
    runPeerOk('tar', ['--format=pax', '--mtime=@1650000000', '-C', join(dir, 'src'), '-cf', tar, 'usr/local/bin/tool']);
    const { tree } = await treeFromTar(tar);
    expect(tree.nodes.map((n) => [n.path, n.kind, n.mode])).toEqual([
      ['', 'dir', 0o755],
      ['usr', 'dir', 0o755],
      ['usr/local', 'dir', 0o755],
      ['usr/local/bin', 'dir', 0o755],
      ['usr/local/bin/tool', 'file', 0o644],
    ]);
    expect(tree.nodes[1].mtime).toEqual({ sec: 1650000000, nsec: 0 });
  });

  it('refuses what is not a tarball, a damaged stream and a truncated archive, naming the file', async () => {
    const dir = tempDir();
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'just some words, long enough to fill a header? no.'.repeat(20));
    await expect(treeFromTar(text)).rejects.toThrow(/notes\.txt is not a tar archive/);
    const cut = join(dir, 'cut.tar');
    writeFileSync(cut, readFileSync(TARBALL).subarray(0, 2048 + 100));
    await expect(treeFromTar(cut)).rejects.toBeInstanceOf(DiskmintError);
    const badGz = join(dir, 'bad.tar.gz');
    writeFileSync(badGz, Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3]), Buffer.alloc(50, 0xee)]));
    await expect(treeFromTar(badGz)).rejects.toThrow(/gzip stream is damaged or truncated/);
    await expect(treeFromTar(join(dir, 'missing.tar'))).rejects.toThrow(/cannot read the archive/);
  });

  it('clamps times later than SOURCE_DATE_EPOCH', async () => {
    const { tree } = await treeFromTar(TARBALL, { sourceDateEpoch: 1700000001 });
    expect(tree.nodes.find((n) => n.path === 'bin/rsh')!.mtime).toEqual({ sec: 1700000001, nsec: 0 });
    expect(tree.nodes.find((n) => n.path === 'etc')!.mtime).toEqual({ sec: 1700000000, nsec: 0 });
  });
});
