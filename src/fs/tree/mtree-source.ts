/**
 * An mtree spec or FreeBSD METALOG applied over a folder or a tree, with makefs -F semantics:
 * the spec decides which paths exist and their metadata (type, owner, mode, flags, time, link
 * target, device); the folder (or `contents=`) gives the bytes of files, and whatever the spec
 * leaves out of an entry. A file the spec names that the folder lacks is an error (unless the
 * entry says `optional`); folders the spec names need not exist. Hard links are files the
 * folder holds as one inode (device and inode number), or one tree node and its links. A path
 * that neither the spec (time=) nor the folder dates takes the spec file's modification time.
 */
import { stat } from 'node:fs/promises';
import { lstatSync, type BigIntStats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { FormatError } from '../../../formats/common/errors.js';
import { parseMtree, type MtreeEntry, type MtreeType } from '../../../formats/fs/mtree.js';
import { DiskmintError } from '../../model/errors.js';
import { nodeOfStat, timeOfNs } from './folder.js';
import { finishTree } from './order.js';
import { clampTimes } from './times.js';
import type { FileTree, TreeNode, TreeNodeKind, TreeTime } from './types.js';
import { lookupId, nameTables, readText } from './users.js';

export interface MtreeOptions {
  sourceDateEpoch?: number;
  /** Trees whose etc/master.passwd and etc/group name users when this one holds none. */
  nameTrees?: FileTree[];
}

const KIND: Record<MtreeType, TreeNodeKind> = { file: 'file', dir: 'dir', link: 'symlink', char: 'char', block: 'block', fifo: 'fifo', socket: 'socket' };

interface Found {
  node?: TreeNode;
  /** "dev:ino" for a folder's file (hard-link detection). */
  inode?: string;
}

/** Synchronous, as the folder walk (folder.ts says why). */
function statOrUndefined(abs: string): BigIntStats | undefined {
  try {
    return lstatSync(abs, { bigint: true });
  } catch {
    return undefined;
  }
}

/** What the folder or tree holds at `path` (for files: the bytes of `contents=` when given). */
function lookup(base: FileTree | string, byPath: Map<string, TreeNode> | undefined, path: string, contents: string | undefined): Found {
  if (typeof base !== 'string') {
    const node = byPath!.get(contents ?? path);
    const owner = node?.hardlinkOf ? byPath!.get(node.hardlinkOf) : node;
    return { node: owner, inode: node ? `tree:${node.hardlinkOf ?? node.path}` : undefined };
  }
  const abs = resolve(base, contents ?? path);
  const st = statOrUndefined(abs);
  if (!st) return {};
  const node = nodeOfStat(abs, path, st);
  return { node, inode: `${st.dev}:${st.ino}` };
}

/** The tree `specFile` describes over `base` (a folder, or a tree from other sources). */
export async function applyMtree(base: FileTree | string, specFile: string, opts: MtreeOptions = {}): Promise<FileTree> {
  let entries: MtreeEntry[];
  let specTime: TreeTime;
  try {
    entries = parseMtree(await readText(specFile, 'mtree spec'));
    specTime = timeOfNs((await stat(specFile, { bigint: true })).mtimeNs);
  } catch (err) {
    if (err instanceof FormatError) throw new DiskmintError('INPUT', `${specFile}: ${err.message}`);
    throw err;
  }
  const where = typeof base === 'string' ? base : 'the tree';
  const byPath = typeof base === 'string' ? undefined : new Map(base.nodes.map((n) => [n.path, n]));
  const nodes = new Map<string, TreeNode>();
  const names = new Map<TreeNode, { uname?: string; gname?: string }>();
  const inodes = new Map<string, string>();
  for (const { path, keywords: k } of entries) {
    if (k.ignore) continue;
    const at = `${specFile}: ./${path}`;
    const found = lookup(base, byPath, path, k.contents);
    const have = found.node;
    const kind = k.type ? KIND[k.type] : have?.kind;
    if (!kind) {
      if (k.optional) continue;
      throw new DiskmintError('INPUT', `${at} has no type= and ${where} does not hold it`);
    }
    // Neither the spec nor the folder dates it (a folder only the spec names): the spec's own time.
    const time = k.time ?? have?.mtime ?? specTime;
    const node: TreeNode = {
      path,
      kind,
      mode: k.mode ?? have?.mode ?? (kind === 'file' || kind === 'fifo' || kind === 'socket' ? 0o644 : 0o755),
      uid: k.uid ?? have?.uid ?? 0,
      gid: k.gid ?? have?.gid ?? 0,
      flags: k.flags ?? have?.flags ?? 0,
      atime: k.time ?? have?.atime ?? time,
      mtime: time,
      ctime: k.time ?? have?.ctime ?? time,
      birthtime: k.time ?? have?.birthtime ?? time,
      size: 0,
    };
    if (kind === 'file') {
      if (!have || have.kind !== 'file' || !have.content) {
        if (k.optional) continue;
        const what = k.contents ? `its contents= ${k.contents}` : `./${path}`;
        throw new DiskmintError('INPUT', `${at} is a file, but ${where} holds ${have ? `a ${have.kind} at` : 'nothing at'} ${what}`);
      }
      if (k.size !== undefined && k.size !== have.size)
        throw new DiskmintError('INPUT', `${at} says size=${k.size}, but ${where} holds ${have.size} bytes there: the spec and the folder disagree`);
      node.size = have.size;
      node.content = have.content;
      const first = found.inode === undefined ? undefined : inodes.get(found.inode);
      if (first !== undefined) {
        node.hardlinkOf = first;
        delete node.content;
      } else if (found.inode !== undefined) inodes.set(found.inode, path);
    } else if (kind === 'symlink') {
      node.target = k.link ?? (have?.kind === 'symlink' ? have.target : undefined);
      if (node.target === undefined) throw new DiskmintError('INPUT', `${at} is a symlink with no link= and ${where} holds no symlink there`);
      node.size = Buffer.byteLength(node.target);
    } else if (kind === 'char' || kind === 'block') {
      node.device = k.device ?? have?.device;
      if (!node.device) throw new DiskmintError('INPUT', `${at} is a ${kind} device with no device= and ${where} holds no device there`);
    }
    if ((k.uid === undefined && k.uname !== undefined) || (k.gid === undefined && k.gname !== undefined))
      names.set(node, { uname: k.uid === undefined ? k.uname : undefined, gname: k.gid === undefined ? k.gname : undefined });
    nodes.set(path, node);
  }
  if (names.size > 0) {
    const tables = await nameTables([{ nodes: [...nodes.values()] }, ...(opts.nameTrees ?? [])]);
    for (const [node, { uname, gname }] of names) {
      if (uname !== undefined) node.uid = lookupId(tables, 'user', uname, `${specFile}: ./${node.path}`);
      if (gname !== undefined) node.gid = lookupId(tables, 'group', gname, `${specFile}: ./${node.path}`);
    }
  }
  const tree = finishTree(nodes, specFile);
  return opts.sourceDateEpoch === undefined ? tree : clampTimes(tree, opts.sourceDateEpoch);
}

/** The folder a spec's files are in by default: the spec's own (METALOG sits in DESTDIR). */
export const specFolder = (specFile: string): string => dirname(resolve(specFile));
