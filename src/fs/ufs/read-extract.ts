/**
 * Extracting a UFS tree into a folder: directories, regular files (holes left as holes),
 * symlinks, hard links (one inode, one file, several names), FIFOs, and device nodes when run
 * as root; modes and times kept, owners too when root. Never follows a link while writing:
 * names are checked (no '/', '.', '..', NUL, no name twice in a folder), files are opened
 * O_NOFOLLOW, folders are made by us; a folder reached twice (a loop) is an error.
 * File flags (schg, nodump...) are not applied: Linux has no equivalent.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fail } from '../../../formats/common/errors.js';
import { makeDirectories } from '../../io/fs-util.js';
import type { UfsEntry, UfsReader } from './read-types.js';
import type { UfsTime } from './inode-types.js';

export interface UfsExtractReport {
  dirs: number;
  files: number;
  symlinks: number;
  /** Names written as hard links to a file extracted earlier. */
  hardlinks: number;
  /** Entries not created, and why (sockets; device nodes when not root). */
  skipped: { path: string; kind: string; reason: string }[];
}

/** Deepest folder nesting followed. */
const MAX_DEPTH = 1024;
const run = promisify(execFile);
/** Files written at once (their reads and writes overlap; the kernel's queue stays busy). */
const PARALLEL = 16;

/** Write `entry` (a folder's contents, or one file) under `dest`, created if missing. */
export async function extractUfsTree(ufs: UfsReader, entry: UfsEntry, dest: string): Promise<UfsExtractReport> {
  const report: UfsExtractReport = { dirs: 0, files: 0, symlinks: 0, hardlinks: 0, skipped: [] };
  const root = process.getuid?.() === 0;
  const linked = new Map<number, Promise<string | undefined>>();
  const dirsSeen = new Set<number>();
  const dirTimes: { target: string; e: UfsEntry }[] = [];
  const time = (t: UfsTime) => t.sec + t.nsec / 1e9;

  const finish = async (target: string, e: UfsEntry) => {
    const s = e.stat;
    if (root) await lchown(target, s.uid, s.gid);
    if (s.kind !== 'symlink') await chmod(target, s.mode & 0o7777);
    await lutimes(target, time(s.atime), time(s.mtime));
  };

  /** A directory, then what it holds; anything else through writeNode, hard links after their first name. */
  const writeOne = async (e: UfsEntry, target: string, depth: number): Promise<void> => {
    const s = e.stat;
    if (s.kind === 'dir') {
      if (dirsSeen.has(e.ino)) throw fail('ufs', 'LOOP', `${e.path}: folder inode ${e.ino} is reached twice (a loop)`);
      dirsSeen.add(e.ino);
      await makeFolder(target);
      report.dirs++;
      await writeChildren(e, target, depth + 1);
      dirTimes.push({ target, e }); // modes and times after the contents are in
      return;
    }
    if (s.nlink <= 1) return void (await writeNode(e, target));
    const first = linked.get(e.ino);
    if (first === undefined) {
      const written = writeNode(e, target).then((made) => (made ? target : undefined));
      linked.set(e.ino, written);
      await written;
      return;
    }
    const path = await first;
    if (path === undefined) return; // the first name was skipped (a socket, a device)
    await replaceWith(target, () => link(path, target));
    report.hardlinks++;
  };

  /** Everything but a directory; false when skipped. */
  const writeNode = async (e: UfsEntry, target: string): Promise<boolean> => {
    const s = e.stat;
    switch (s.kind) {
      case 'file':
        await writeFile(ufs, e, target, root);
        report.files++;
        return true;
      case 'symlink':
        await replaceWith(target, () => symlink(e.target ?? '', target));
        report.symlinks++;
        break;
      case 'fifo':
        await replaceWith(target, () => run('mkfifo', ['-m', (s.mode & 0o777).toString(8), '--', target]));
        break;
      case 'char':
      case 'block':
        if (!root || !s.rdev) {
          report.skipped.push({ path: e.path, kind: s.kind, reason: 'device nodes are made only when run as root' });
          return false;
        }
        await replaceWith(target, () => run('mknod', ['--', target, s.kind === 'char' ? 'c' : 'b', String(s.rdev!.major), String(s.rdev!.minor)]));
        break;
      default:
        report.skipped.push({ path: e.path, kind: s.kind, reason: 'a socket is made by the program that listens on it' });
        return false;
    }
    await finish(target, e);
    return true;
  };

  /** A folder's entries: names checked first, then files PARALLEL at a time, then the folders one by one. */
  const writeChildren = async (dir: UfsEntry, into: string, depth: number) => {
    if (depth > MAX_DEPTH) throw fail('ufs', 'TOO_LARGE', `${dir.path}: folders nested more than ${MAX_DEPTH} deep`);
    const names = new Set<string>();
    const entries = await ufs.list(dir.path);
    for (const e of entries) {
      if (e.name === '' || e.name === '.' || e.name === '..' || /[/\0]/.test(e.name)) {
        throw fail('ufs', 'BAD_VALUE', `${dir.path}: the name ${JSON.stringify(e.name)} cannot be extracted`);
      }
      if (names.has(e.name)) throw fail('ufs', 'BAD_VALUE', `${e.path}: the name appears twice in its folder`);
      names.add(e.name);
    }
    const others = entries.filter((e) => e.stat.kind !== 'dir');
    for (let i = 0; i < others.length; i += PARALLEL) {
      await Promise.all(others.slice(i, i + PARALLEL).map((e) => writeOne(e, join(into, e.name), depth)));
    }
    for (const e of entries) if (e.stat.kind === 'dir') await writeOne(e, join(into, e.name), depth);
  };

  await makeDirectories(dest);
  if (entry.stat.kind === 'dir') {
    dirsSeen.add(entry.ino);
    await writeChildren(entry, dest, 0);
  } else {
    await writeOne(entry, join(dest, entry.name), 0);
  }
  for (const { target, e } of dirTimes.reverse()) await finish(target, e);
  return report;
}

/** A folder we make: an existing real folder is reused, anything else (a symlink, a file) refused. */
async function makeFolder(target: string): Promise<void> {
  try {
    await mkdir(target, 0o700);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const st = await lstat(target);
    if (!st.isDirectory()) throw fail('ufs', 'BAD_VALUE', `${target} exists and is not a folder`);
  }
}

/** Create something at `target`, first removing a non-folder already there (a symlink is removed, never followed). */
async function replaceWith(target: string, create: () => Promise<unknown>): Promise<void> {
  const st = await lstat(target).catch(() => undefined);
  if (st?.isDirectory()) throw fail('ufs', 'BAD_VALUE', `${target} exists and is a folder`);
  if (st) await unlink(target);
  await create();
}

/** A regular file, written through one descriptor opened O_NOFOLLOW (a symlink already there is removed, never followed). */
async function writeFile(ufs: UfsReader, e: UfsEntry, target: string, root: boolean): Promise<void> {
  const inode = await ufs.readInode(e.ino);
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;
  const out = await open(target, flags, 0o600).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code === 'EISDIR') throw fail('ufs', 'BAD_VALUE', `${target} exists and is a folder`);
    if (err.code !== 'ELOOP') throw err;
    await unlink(target);
    return open(target, flags, 0o600);
  });
  try {
    let end = 0;
    for await (const { offset, bytes } of ufs.readExtents(inode)) {
      await out.write(bytes, 0, bytes.length, offset);
      end = offset + bytes.length;
    }
    if (end < inode.size) await out.truncate(inode.size); // a hole at the end
    const s = e.stat;
    if (root) await out.chown(s.uid, s.gid);
    await out.chmod(s.mode & 0o7777);
    await out.utimes(s.atime.sec + s.atime.nsec / 1e9, s.mtime.sec + s.mtime.nsec / 1e9);
  } finally {
    await out.close();
  }
}
