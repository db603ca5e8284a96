/**
 * The file tree a FAT volume is built from: read from a folder on disk (file contents stay on
 * disk and are read only when the image is written) or given in memory.
 */
import { readdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { fail } from '../../../formats/common/errors.js';

export type FatTreeNode =
  | { kind: 'dir'; name: string; children: FatTreeNode[]; mtime?: Date }
  | { kind: 'file'; name: string; size: number; source: { path: string } | { bytes: Uint8Array }; mtime?: Date };

export type FatTreeDir = Extract<FatTreeNode, { kind: 'dir' }>;
export type FatTreeFile = Extract<FatTreeNode, { kind: 'file' }>;

/** Code-unit order, so the same folder always gives the same volume. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Read `dir` into a tree. Children are sorted by name (code-unit order). Symbolic links are
 * followed; a link back to a folder being read (a loop) and anything that is neither a regular
 * file nor a folder (device, FIFO, socket) is refused with FormatError INVALID_ARGUMENT.
 * `keepTimes` records each entry's modification time; otherwise the build timestamp applies.
 *
 * The walk is synchronous: it reads names and sizes only (contents are read when the image is
 * written), and a stat of a cached inode costs microseconds, less than one trip through libuv's
 * thread pool (200 files: ~2 ms here against ~13 ms with a promise per stat).
 */
export async function treeFromFolder(dir: string, opts: { keepTimes?: boolean } = {}): Promise<FatTreeNode> {
  const top = statOrFail(dir, (why) => `cannot read folder ${dir}: ${why}`);
  if (!top.isDirectory()) throw fail('fat', 'INVALID_ARGUMENT', `${dir} is not a folder`);
  return readFolder(dir, '', opts.keepTimes ?? false, new Set([realpathSync(dir)]), top.mtime);
}

function statOrFail(path: string, explain: (reason: string) => string): Stats {
  try {
    return statSync(path);
  } catch (err) {
    throw fail('fat', 'INVALID_ARGUMENT', explain((err as Error).message));
  }
}

function readFolder(path: string, name: string, keepTimes: boolean, ancestors: Set<string>, mtime: Date): FatTreeDir {
  let names: string[];
  try {
    names = readdirSync(path);
  } catch (err) {
    throw fail('fat', 'INVALID_ARGUMENT', `cannot read folder ${path}: ${(err as Error).message}`);
  }
  names.sort(compareNames);
  const children: FatTreeNode[] = [];
  for (const child of names) {
    const childPath = join(path, child);
    const st = statOrFail(childPath, (why) => `cannot read ${childPath}: ${why} (a dangling symbolic link?)`);
    const childTime = keepTimes ? st.mtime : undefined;
    if (st.isDirectory()) {
      const real = realpathSync(childPath);
      if (ancestors.has(real)) {
        throw fail('fat', 'INVALID_ARGUMENT', `${childPath} links back to ${real}, a folder that contains it (a symbolic link loop)`);
      }
      ancestors.add(real);
      children.push(readFolder(childPath, child, keepTimes, ancestors, st.mtime));
      ancestors.delete(real);
    } else if (st.isFile()) {
      children.push({ kind: 'file', name: child, size: st.size, source: { path: childPath }, ...(childTime ? { mtime: childTime } : {}) });
    } else {
      throw fail('fat', 'INVALID_ARGUMENT', `${childPath} is not a regular file or folder (device, FIFO or socket); FAT cannot hold it`);
    }
  }
  return { kind: 'dir', name, children, ...(keepTimes ? { mtime } : {}) };
}

/** A tree from an object literal: strings and byte arrays are files, objects are folders. */
export type InMemoryTree = { [name: string]: string | Uint8Array | InMemoryTree };

export function treeFromObject(spec: InMemoryTree, name = ''): FatTreeDir {
  const children: FatTreeNode[] = Object.keys(spec)
    .sort(compareNames)
    .map((key) => {
      const v = spec[key];
      if (typeof v === 'string' || v instanceof Uint8Array) {
        const bytes = typeof v === 'string' ? new TextEncoder().encode(v) : v;
        return { kind: 'file' as const, name: key, size: bytes.length, source: { bytes } };
      }
      return treeFromObject(v, key);
    });
  return { kind: 'dir', name, children };
}
