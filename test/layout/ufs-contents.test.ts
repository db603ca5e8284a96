/** UFS2 file systems in layouts: `contents: { "ufs": { "from": [...], "label", "size" } }`. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildImage, DiskmintError, type Layout } from '../../src/index.js';
import { decodeDirectory } from '../../formats/fs/ufs2/directory.js';
import { tempDir } from '../helpers/golden.js';
import { checkUfsImage } from '../helpers/ufs-image-check.js';

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
});
