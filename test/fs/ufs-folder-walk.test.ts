/**
 * The folder walk behind `ufs create --from DIR` runs its lstat calls concurrently: the tree it
 * gives must not depend on which call finishes first. Checked against a plain synchronous walk.
 */
import { chmodSync, linkSync, lstatSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { treeFromFolder } from '../../src/fs/tree/folder.js';
import { compareTreePaths } from '../../src/fs/tree/order.js';
import { DiskmintError } from '../../src/model/errors.js';
import { tempDir } from '../helpers/golden.js';

const isRoot = process.getuid?.() === 0;

/** 30 folders (some nested three deep) of 20 files, symlinks, and hard-link groups across folders. */
function makeWideFolder(): string {
  const dir = join(tempDir(), 'wide');
  for (let f = 0; f < 30; f++) {
    const folder = join(dir, `d${f % 10}`, ...(f >= 10 ? [`sub${f}`] : []), ...(f >= 20 ? ['deeper'] : []));
    mkdirSync(folder, { recursive: true });
    for (let i = 0; i < 20; i++) writeFileSync(join(folder, `f${i}`), `${f}:${i}`.repeat(i));
    symlinkSync(`f${f % 20}`, join(folder, 'link'));
  }
  // Hard-link groups whose members lie in folders the walk reaches in any order.
  for (let g = 0; g < 10; g++) {
    const first = join(dir, `d${g}`, 'f3');
    linkSync(first, join(dir, `d${(g + 5) % 10}`, `hard${g}`));
    linkSync(first, join(dir, `d${(g + 7) % 10}`, `sub${10 + ((g + 7) % 10)}`, `hard${g}`));
  }
  return dir;
}

/** What the tree must hold, from a synchronous walk: path, kind, size, and for a hard link the first path of its group in tree order. */
function referenceWalk(root: string): { path: string; kind: string; size: number; hardlinkOf?: string }[] {
  const entries: { path: string; kind: string; size: number; key: string; nlink: number }[] = [];
  const visit = (rel: string) => {
    for (const name of readdirSync(join(root, rel))) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(join(root, path));
      const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file';
      entries.push({ path, kind, size: kind === 'dir' ? 0 : st.size, key: `${st.dev}:${st.ino}`, nlink: st.nlink });
      if (kind === 'dir') visit(path);
    }
  };
  visit('');
  entries.sort((a, b) => compareTreePaths(a.path, b.path));
  const firstOf = new Map<string, string>();
  return [
    { path: '', kind: 'dir', size: 0 },
    ...entries.map((e) => {
      if (e.kind === 'dir' || e.nlink < 2) return { path: e.path, kind: e.kind, size: e.size };
      const first = firstOf.get(e.key);
      if (first === undefined) {
        firstOf.set(e.key, e.path);
        return { path: e.path, kind: e.kind, size: e.size };
      }
      return { path: e.path, kind: e.kind, size: e.size, hardlinkOf: first };
    }),
  ];
}

describe('the folder walk (concurrent lstat)', () => {
  it('gives every entry once, in tree order, hard links on the first path of their group', async () => {
    const dir = makeWideFolder();
    const expected = referenceWalk(dir);
    expect(expected.filter((e) => e.hardlinkOf).length).toBe(20);
    for (let run = 0; run < 3; run++) {
      const tree = await treeFromFolder(dir);
      const got = tree.nodes.map((n) => ({ path: n.path, kind: n.kind, size: n.size, ...(n.hardlinkOf ? { hardlinkOf: n.hardlinkOf } : {}) }));
      expect(got).toEqual(expected);
      for (const n of tree.nodes) if (n.kind === 'file') expect(n.content !== undefined).toBe(n.hardlinkOf === undefined);
    }
  });

  it.skipIf(isRoot)('fails with an INPUT error, and settles, when a folder inside cannot be read', async () => {
    const dir = makeWideFolder();
    const locked = join(dir, 'd4', 'sub14');
    chmodSync(locked, 0);
    try {
      const err = await treeFromFolder(dir).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DiskmintError);
      expect((err as DiskmintError).code).toBe('INPUT');
      expect((err as Error).message).toMatch(/sub14/);
    } finally {
      chmodSync(locked, 0o755);
    }
  });
});
