import { cpSync, linkSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyMtree } from '../../src/fs/tree/mtree-source.js';
import { treeFromTar } from '../../src/fs/tree/tar-source.js';
import { FILE_FLAGS } from '../../formats/archive/file-flags.js';
import { parseMtree } from '../../formats/fs/mtree.js';
import { tempDir } from '../helpers/golden.js';
import { contentOf } from '../helpers/file-tree.js';

const FIXTURES = join(import.meta.dirname, '../../fixtures/ufs-sources');

/** A writable copy of the staging folder and its METALOG. */
function stageCopy(): string {
  const dir = join(tempDir(), 'stage');
  cpSync(join(FIXTURES, 'stage'), dir, { recursive: true });
  return dir;
}

describe('applyMtree over a folder (makefs -F semantics)', () => {
  it('holds exactly the paths the METALOG names, with its owners, modes and flags', async () => {
    const stage = stageCopy();
    const tree = await applyMtree(stage, join(stage, 'METALOG'));
    const named = parseMtree(readFileSync(join(stage, 'METALOG'), 'utf8')).map((e) => e.path);
    expect(tree.nodes.map((n) => n.path).sort()).toEqual([...new Set(named)].sort());
    expect(tree.nodes.some((n) => n.path === 'stray.txt' || n.path === 'METALOG')).toBe(false);
    const at = (p: string) => tree.nodes.find((n) => n.path === p)!;
    expect(at('etc')).toMatchObject({ kind: 'dir', mode: 0o750, uid: 0, gid: 5 }); // the later ./etc line; operator from the stage's etc/group
    expect(at('home/builder')).toMatchObject({ kind: 'dir', uid: 1001, gid: 1001 }); // only the stage's files name builder
    expect(at('usr/share/doc/README')).toMatchObject({ kind: 'file', uid: 9, gid: 0, mode: 0o444, size: 22 });
    expect(contentOf(tree, at('usr/share/doc/README'))).toBe('FreeBSD documentation\n');
    expect(at('usr/share/doc/sh')).toMatchObject({ kind: 'symlink', target: '../../../bin/cat' });
    expect(at('var/empty')).toMatchObject({ kind: 'dir', flags: FILE_FLAGS.SF_IMMUTABLE, mode: 0o555 });
  });

  it('makes one inode of files the folder holds as hard links', async () => {
    const stage = stageCopy();
    unlinkSync(join(stage, 'bin/['));
    linkSync(join(stage, 'bin/test'), join(stage, 'bin/['));
    const tree = await applyMtree(stage, join(stage, 'METALOG'));
    expect(tree.nodes.find((n) => n.path === 'bin/test')).toMatchObject({ hardlinkOf: 'bin/[' });
    expect(tree.nodes.find((n) => n.path === 'bin/[')!.content).toBeDefined();
  });

  it('refuses a METALOG file the folder lacks, or whose size differs, naming it', async () => {
    const stage = stageCopy();
    rmSync(join(stage, 'bin/cat'));
    await expect(applyMtree(stage, join(stage, 'METALOG'))).rejects.toThrow(/METALOG: \.\/bin\/cat is a file, but .* holds nothing at \.\/bin\/cat/);
    const other = stageCopy();
    writeFileSync(join(other, 'usr/share/doc/README'), 'changed after the install\n');
    await expect(applyMtree(other, join(other, 'METALOG'))).rejects.toThrow(/README says size=22, but .* holds 26 bytes there/);
  });

  it("names users from the tree's own files, else FreeBSD's stock ones, else refuses naming the user", async () => {
    const stage = stageCopy();
    writeFileSync(join(stage, 'spec'), './usr type=dir uname=ntpd gname=tty\n');
    await expect(applyMtree(stage, join(stage, 'spec'))).resolves.toMatchObject({ nodes: [{ path: '' }, { path: 'usr', uid: 123, gid: 4 }] });
    writeFileSync(join(stage, 'spec2'), './etc/master.passwd type=file\n./usr type=dir uname=ntpd\n');
    await expect(applyMtree(stage, join(stage, 'spec2'))).rejects.toThrow(/no user named "ntpd" in the tree's etc\/master.passwd/);
    writeFileSync(join(stage, 'spec3'), './usr type=dir uname=nosuchuser\n');
    await expect(applyMtree(stage, join(stage, 'spec3'))).rejects.toThrow(/no user named "nosuchuser" in FreeBSD's stock/);
  });

  it('takes bytes from contents= and keeps what the spec leaves out from the folder', async () => {
    const stage = stageCopy();
    writeFileSync(join(stage, 'spec'), '/set uid=0 gid=0\n. type=dir mode=0755\n./boot type=dir mode=0755\n./boot/loader.conf type=file mode=0644 contents=usr/share/doc/README time=5.0\n');
    const tree = await applyMtree(stage, join(stage, 'spec'));
    const conf = tree.nodes.find((n) => n.path === 'boot/loader.conf')!;
    expect(contentOf(tree, conf)).toBe('FreeBSD documentation\n');
    expect(conf.mtime).toEqual({ sec: 5, nsec: 0 });
    await expect(applyMtree(stage, join(stage, 'nothere'))).rejects.toThrow(/cannot read the mtree spec/);
    writeFileSync(join(stage, 'bad'), './a type=file mode=9\n');
    await expect(applyMtree(stage, join(stage, 'bad'))).rejects.toThrow(/bad: line 1: mode/);
  });
});

describe('applyMtree over a tree', () => {
  it('re-describes a tarball: the spec decides paths and metadata, the tarball gives bytes', async () => {
    const { tree: base, close } = await treeFromTar(join(FIXTURES, 'owners.tar'));
    const dir = tempDir();
    writeFileSync(join(dir, 'spec'), '. type=dir mode=0700\n./bin type=dir\n./bin/sh mode=0511 flags=uchg\n./etc type=dir\n./etc/group\n');
    try {
      const tree = await applyMtree(base, join(dir, 'spec'));
      expect(tree.nodes.map((n) => n.path)).toEqual(['', 'bin', 'bin/sh', 'etc', 'etc/group']);
      const sh = tree.nodes.find((n) => n.path === 'bin/sh')!;
      expect(sh).toMatchObject({ kind: 'file', mode: 0o511, flags: FILE_FLAGS.UF_IMMUTABLE, size: 18 });
      expect(contentOf(tree, sh)).toBe(readFileSync(join(FIXTURES, 'tree/bin/sh'), 'utf8'));
      expect(tree.nodes[0]).toMatchObject({ mode: 0o700 });
    } finally {
      await close();
    }
  });
});
