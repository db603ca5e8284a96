/**
 * A FileTree from a folder on this machine: an lstat walk (symlinks are kept, never followed),
 * owners, modes and times as the file system reports them, hard links found by device and
 * inode number, device nodes, FIFOs and sockets. Linux keeps no BSD file flags: all are 0.
 * Only the modification time is the tree's own: a folder's access and change times say when
 * this machine last read or copied a file (the walk itself moves atime), and it keeps no birth
 * time. All four are taken as the modification time, so the same folder gives the same tree.
 */
import { lstatSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import { join, resolve } from 'node:path';
import { DiskmintError, isSystemError } from '../../model/errors.js';
import { finishTree } from './order.js';
import { clampTimes } from './times.js';
import type { FileTree, TreeNode, TreeNodeKind, TreeTime } from './types.js';

export interface FolderOptions {
  /** SOURCE_DATE_EPOCH: later timestamps are clamped to it (times.ts). */
  sourceDateEpoch?: number;
}

const NS = 1_000_000_000n;
export function timeOfNs(ns: bigint): TreeTime {
  let sec = ns / NS;
  let nsec = ns % NS;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += NS;
  }
  return { sec: Number(sec), nsec: Number(nsec) };
}

/** Linux's dev_t split (include/linux/kdev_t.h, new_decode_dev as glibc's gnu_dev_major/minor). */
export function linuxDevice(rdev: bigint): { major: number; minor: number } {
  return {
    major: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
    minor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
  };
}

function kindOf(st: BigIntStats): TreeNodeKind | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  return undefined;
}

/** The node of `path` (its bytes at `abs`) as lstat reported it. */
export function nodeOfStat(abs: string, path: string, st: BigIntStats): TreeNode {
  const kind = kindOf(st);
  if (!kind) throw new DiskmintError('INPUT', `${abs} is of a file type diskmint cannot put in a file system`);
  const mtime = timeOfNs(st.mtimeNs);
  const node: TreeNode = {
    path,
    kind,
    mode: Number(st.mode) & 0o7777,
    uid: Number(st.uid),
    gid: Number(st.gid),
    flags: 0,
    atime: mtime,
    mtime,
    ctime: mtime,
    birthtime: mtime,
    size: 0,
  };
  if (kind === 'file') {
    node.size = Number(st.size);
    node.content = { path: abs, offset: 0, length: node.size };
  } else if (kind === 'symlink') {
    node.target = readlinkSync(abs);
    node.size = Buffer.byteLength(node.target);
  } else if (kind === 'char' || kind === 'block') node.device = linuxDevice(st.rdev);
  return node;
}

/**
 * The tree of folder `dir` (its own metadata for the root). The walk is synchronous: nothing else
 * runs while a tree is read, and a metadata call served from the kernel's caches costs ~5 us
 * where the same call through libuv's thread pool costs ~40 us of hand-offs (measured on the
 * 6,320-entry bench tree: lstatSync 30 ms, 16 lstat promises in flight 160 ms).
 */
export async function treeFromFolder(dir: string, opts: FolderOptions = {}): Promise<FileTree> {
  const root = resolve(dir);
  let rootStat: BigIntStats;
  try {
    rootStat = lstatSync(root, { bigint: true });
  } catch (err) {
    throw new DiskmintError('INPUT', `cannot read the folder ${dir}: ${(err as Error).message}`);
  }
  if (!rootStat.isDirectory()) throw new DiskmintError('BAD_ARGUMENT', `${dir} is not a folder`);
  const nodes = new Map<string, TreeNode>([['', nodeOfStat(root, '', rootStat)]]);
  const inodes = new Map<string, string>(); // "dev:ino" -> first path seen (finishTree re-roots on the first in order)
  const folders = ['']; // folders still to read (a stack: depth costs no recursion)
  try {
    for (let rel = folders.pop(); rel !== undefined; rel = folders.pop()) {
      for (const name of readdirSync(join(root, rel))) {
        const path = rel === '' ? name : `${rel}/${name}`;
        const abs = join(root, path);
        const st = lstatSync(abs, { bigint: true });
        const node = nodeOfStat(abs, path, st);
        if (node.kind === 'dir') folders.push(path);
        else if (st.nlink > 1n) {
          const key = `${st.dev}:${st.ino}`;
          const first = inodes.get(key);
          if (first !== undefined) {
            node.hardlinkOf = first;
            delete node.content;
          } else inodes.set(key, path);
        }
        nodes.set(path, node);
      }
    }
  } catch (err) {
    if (isSystemError(err)) throw new DiskmintError('INPUT', `reading the folder ${dir} failed: ${err.message}`);
    throw err;
  }
  const tree = finishTree(nodes, dir);
  return opts.sourceDateEpoch === undefined ? tree : clampTimes(tree, opts.sourceDateEpoch);
}
