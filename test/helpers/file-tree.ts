/** FileTree nodes for tests, and reading a tree's file bytes back (through each node's ContentRef). */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import type { FileTree, TreeNode, TreeTime } from '../../src/fs/tree/types.js';

/** A node: mode 0755 for folders and 0644 otherwise, owner 0:0, no flags, size 0, every time `time`; `extra` overrides. */
export function treeNode(path: string, kind: TreeNode['kind'], extra: Partial<TreeNode> = {}, time: TreeTime = { sec: 0, nsec: 0 }): TreeNode {
  return {
    path,
    kind,
    mode: kind === 'dir' ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    flags: 0,
    atime: time,
    mtime: time,
    ctime: time,
    birthtime: time,
    size: 0,
    ...extra,
  };
}

/** The bytes of a regular file node (a hard link reads its group's owner). */
export function bytesOf(tree: FileTree, node: TreeNode): Buffer {
  const owner = node.hardlinkOf ? tree.nodes.find((n) => n.path === node.hardlinkOf)! : node;
  const ref = owner.content;
  if (!ref) throw new Error(`${node.path} has no content`);
  const buf = Buffer.alloc(ref.length);
  const fd = openSync(ref.path, 'r');
  try {
    for (let got = 0; got < ref.length;) {
      const n = readSync(fd, buf, got, ref.length - got, ref.offset + got);
      if (n === 0) throw new Error(`${ref.path} ends before ${node.path}'s bytes do`);
      got += n;
    }
  } finally {
    closeSync(fd);
  }
  return buf;
}

export const contentOf = (tree: FileTree, node: TreeNode): string => bytesOf(tree, node).toString('utf8');

/** sha256 (hex) of a file node's bytes, for compareTreeWithListing. */
export const sha256Of = (tree: FileTree) => (node: TreeNode) => createHash('sha256').update(bytesOf(tree, node)).digest('hex');
