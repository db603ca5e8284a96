/**
 * UFS1/UFS2 reader over any DiskReader (a raw file, a partition of any container): stat, list,
 * stream files, read symlinks, walk the tree, and the fsck_ffs -n style check (check.ts).
 * Paths are resolved from the root inode (UFS_ROOTINO 2); symlinks in the middle of a path are
 * followed inside the file system (at most MAXSYMLINKS, as namei does), the last one never.
 * Hostile bytes give FormatError, never another exception.
 */
import { fail } from '../../../formats/common/errors.js';
import type { DiskReader } from '../../model/disk-reader.js';
import { checkUfs } from './check.js';
import { IFLNK, IFMT } from '../../../formats/fs/ufs2/inode.js';
import { kindOfMode, statOf, type UfsInode } from './inode-types.js';
import { ROOT_INO } from './read-geometry.js';
import type { UfsEntry, UfsReader } from './read-types.js';
import { mountUfsVolume, type UfsVolume } from './read-volume.js';

/** sys/sys/param.h MAXSYMLINKS: symlinks followed while resolving one path. */
const MAXSYMLINKS = 32;
/** Deepest nesting walk() follows. */
const MAX_DEPTH = 1024;
/** Longest symlink target read (Linux's PATH_MAX; FreeBSD's MAXPATHLEN is 1024). */
const MAX_LINK_BYTES = 4096;
const utf8 = new TextDecoder('utf-8');

export async function openUfs(disk: DiskReader): Promise<UfsReader> {
  const v = await mountUfsVolume(disk);
  const root = await v.readInode(ROOT_INO);
  if (kindOfMode(root.mode) !== 'dir') throw fail('ufs', 'BAD_VALUE', `the root inode ${ROOT_INO} is not a directory (mode 0${root.mode.toString(8)})`);

  const entryOf = async (ino: number, name: string, path: string): Promise<UfsEntry> => {
    const inode = await v.readInode(ino);
    if (kindOfMode(inode.mode) === undefined) throw fail('ufs', 'BAD_VALUE', `${path}: inode ${ino} has no file type (mode 0${inode.mode.toString(8)})`);
    const e: UfsEntry = { name, path, ino, stat: statOf(inode) };
    if ((inode.mode & IFMT) === IFLNK) e.target = await linkTarget(v, inode);
    return e;
  };
  const rootEntry = () => entryOf(ROOT_INO, '', '/');

  const children = async (dir: UfsEntry): Promise<UfsEntry[]> => {
    const out: UfsEntry[] = [];
    for (const r of await v.readDir(await v.readInode(dir.ino))) {
      if (r.name === '.' || r.name === '..') continue;
      out.push(await entryOf(r.ino, r.name, `${dir.path === '/' ? '' : dir.path}/${r.name}`));
    }
    return out;
  };

  /** The entry at `path`, symlinks in the middle (and the last one with `followLast`) followed; undefined when a name is missing. */
  const resolve = async (path: string, followLast = false): Promise<UfsEntry | undefined> => {
    let todo = path.split('/').filter((p) => p !== '' && p !== '.');
    const stack: UfsEntry[] = [await rootEntry()];
    let hops = 0;
    while (todo.length > 0) {
      const [part, ...rest] = todo;
      todo = rest;
      const dir = stack[stack.length - 1];
      if (part === '..') {
        if (stack.length > 1) stack.pop();
        continue;
      }
      if (dir.stat.kind !== 'dir') return undefined;
      const rec = (await v.readDir(await v.readInode(dir.ino))).find((r) => r.name === part);
      if (!rec) return undefined;
      const e = await entryOf(rec.ino, part, `${dir.path === '/' ? '' : dir.path}/${part}`);
      if (e.stat.kind === 'symlink' && (todo.length > 0 || followLast)) {
        if (++hops > MAXSYMLINKS) throw fail('ufs', 'LOOP', `${path}: more than ${MAXSYMLINKS} symlinks`);
        const target = e.target ?? '';
        if (target.startsWith('/')) stack.splice(1);
        todo = [...target.split('/').filter((p) => p !== '' && p !== '.'), ...todo];
        continue;
      }
      stack.push(e);
    }
    return stack[stack.length - 1];
  };

  const mustBe = async (path: string, kind: 'dir' | 'file' | 'symlink'): Promise<UfsEntry> => {
    const e = await resolve(path, kind !== 'symlink');
    if (!e) throw fail('ufs', 'INVALID_ARGUMENT', `${path}: no such file or folder`);
    if (e.stat.kind !== kind) throw fail('ufs', 'INVALID_ARGUMENT', `${path} is a ${e.stat.kind}, not a ${kind === 'dir' ? 'folder' : kind}`);
    return e;
  };

  async function* readFile(path: string): AsyncGenerator<Uint8Array> {
    const e = await mustBe(path, 'file');
    yield* v.fileBytes(await v.readInode(e.ino));
  }

  async function* walk(): AsyncGenerator<UfsEntry> {
    const seen = new Set<number>([ROOT_INO]);
    const down = async function* (dir: UfsEntry, depth: number): AsyncGenerator<UfsEntry> {
      if (depth > MAX_DEPTH) throw fail('ufs', 'TOO_LARGE', `${dir.path}: folders nested more than ${MAX_DEPTH} deep`);
      for (const e of await children(dir)) {
        yield e;
        if (e.stat.kind !== 'dir') continue;
        if (seen.has(e.ino)) throw fail('ufs', 'LOOP', `${e.path}: folder inode ${e.ino} is reached twice (a loop)`);
        seen.add(e.ino);
        yield* down(e, depth + 1);
      }
    };
    yield* down(await rootEntry(), 0);
  }

  return {
    geometry: v.g,
    version: v.g.version,
    label: v.g.volname,
    stat: (path) => resolve(path),
    list: async (path) => children(await mustBe(path, 'dir')),
    readFile,
    readExtents: (inode) => v.fileExtents(inode),
    readLink: async (path) => (await mustBe(path, 'symlink')).target ?? '',
    readInode: (ino) => v.readInode(ino),
    walk,
    check: () => checkUfs(v),
  };
}

/** A symlink's target: inside the inode when shorter than fs_maxsymlinklen, else in its blocks. */
export async function linkTarget(v: UfsVolume, inode: UfsInode): Promise<string> {
  if (inode.size > MAX_LINK_BYTES) throw fail('ufs', 'BAD_VALUE', `symlink inode ${inode.ino} is ${inode.size} bytes long, more than ${MAX_LINK_BYTES}`);
  if (inode.size < v.g.maxSymlinkLen) return utf8.decode(inode.pointerArea.subarray(0, inode.size));
  const parts: Uint8Array[] = [];
  for await (const chunk of v.fileBytes(inode)) parts.push(chunk);
  return utf8.decode(Buffer.concat(parts));
}
