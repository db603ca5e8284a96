/** UFS2 file systems in layouts: `contents: { "ufs": { "from": [...], "label", "size" } }`. */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildImage, DiskmintError, type Layout } from '../../src/index.js';
import { decodeDirectory } from '../../formats/fs/ufs2/directory.js';
import { tempDir } from '../helpers/golden.js';
import { checkUfsImage } from '../helpers/ufs-image-check.js';
import { requirePeer } from '../helpers/peer.js';
import { planLayout } from '../../src/layout/plan.js';

function osTree(dir: string): void {
  mkdirSync(join(dir, 'os', 'boot'), { recursive: true });
  writeFileSync(join(dir, 'os', 'boot', 'loader.conf'), 'autoboot_delay=1\n');
  writeFileSync(join(dir, 'os', 'kernel'), Buffer.alloc(300_000, 0x6b));
  writeFileSync(join(dir, 'METALOG'), '#mtree 2.0\n./kernel type=file uname=root gname=wheel mode=0555 flags=schg\n');
}

const layout = (ufs: Record<string, unknown>, size = '40M'): Layout => ({
  scheme: 'gpt',
  size: '64M',
  seed: 'ufs',
  partitions: [{ type: 'freebsd-ufs', label: 'os', size, contents: { ufs } } as Layout['partitions'][number]],
});

describe('ufs contents in layouts', () => {
  it('fills the partition with a consistent UFS2 holding the layered tree', async () => {
    const dir = tempDir();
    osTree(dir);
    const img = join(dir, 'disk.img');
    await buildImage(layout({ from: ['os', 'mtree:METALOG@os'], label: 'rootfs' }), { output: img, baseDir: dir });
    const fs = checkUfsImage(img, 2048 * 512);
    expect(fs.problems).toEqual([]);
    expect(fs.sb.volname).toBe('rootfs');
    expect(fs.sb.size * fs.sb.fsize).toBe(40 * 2 ** 20);
    const root = decodeDirectory(fs.dataOf(2));
    expect(root.map((e) => new TextDecoder().decode(e.name))).toEqual(['.', '..', 'boot', 'kernel']);
    const kernel = fs.inodes.get(root[3].ino)!;
    expect([kernel.size, kernel.flags, kernel.mode & 0o7777]).toEqual([300_000, 0x20000, 0o555]);
  });

  it('a tree larger than the partition is a layout error before any write', async () => {
    const dir = tempDir();
    osTree(dir);
    writeFileSync(join(dir, 'os', 'big'), Buffer.alloc(3 * 2 ** 20, 1));
    const img = join(dir, 'disk.img');
    const err = await buildImage(layout({ from: 'os' }, '2M'), { output: img, baseDir: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiskmintError);
    expect((err as DiskmintError).message).toMatch(/contents\.ufs.*UFS2 file system for this tree needs at least/);
  });

  it('two partitions from the same tarball (--copy-os) load it once; its spool goes with the last release', async (ctx) => {
    if (!requirePeer('bsdtar', 'libarchive-tools')) return ctx.skip();
    const dir = tempDir();
    osTree(dir);
    execFileSync('bsdtar', ['-c', '-z', '-f', join(dir, 'os.tar.gz'), '-C', join(dir, 'os'), '.']);
    const slot = (label: string) => ({ type: 'freebsd-ufs', label, size: '20M', contents: { ufs: { from: ['os.tar.gz'] } } }) as Layout['partitions'][number];
    const twoSlots: Layout = { scheme: 'gpt', size: '64M', seed: 'ufs', partitions: [slot('os1'), slot('os2')] };
    const plan = await planLayout(twoSlots, { baseDir: dir, seed: 'ufs', path: '' });
    const [a, b] = plan.partitions.map((p) => p.contents);
    if (a.kind !== 'ufs' || b.kind !== 'ufs') throw new Error('not ufs contents');
    expect(a.tree).toBe(b.tree); // one decompression, one tree
    expect(a.volume && b.volume && a.volume !== b.volume).toBe(true); // two file systems (their own ids)
    const spool = a.tree.nodes.find((n) => n.path === 'kernel')!.content!.path;
    await a.release();
    expect(existsSync(spool)).toBe(true); // os2 still reads from it
    await b.release();
    expect(existsSync(spool)).toBe(false);
    // Built for real: both slots hold the tree.
    const img = join(dir, 'disk.img');
    await buildImage(twoSlots, { output: img, baseDir: dir });
    for (const start of [2048, 2048 + 40960]) {
      const fs = checkUfsImage(img, start * 512);
      expect(fs.problems).toEqual([]);
      const names = decodeDirectory(fs.dataOf(2)).map((e) => new TextDecoder().decode(e.name));
      expect(names).toEqual(['.', '..', 'boot', 'kernel']);
    }
  });
});
