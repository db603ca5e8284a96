/** Reading a FileTree's file bytes back in tests (through each node's ContentRef). */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import type { FileTree, TreeNode } from '../../src/fs/tree/types.js';

/** The bytes of a regular file node (a hard link reads its group's owner). */
export function bytesOf(tree: FileTree, node: TreeNode): Buffer {
  const owner = node.hardlinkOf ? tree.nodes.find((n) => n.path === node.hardlinkOf)! : node;
  const ref = owner.content;
  if (!ref) throw new Error(`${node.path} has no content`);
  const buf = Buffer.alloc(ref.length);
  const fd = openSync(ref.path, 'r');
  try {
    for (let got = 0; got < ref.length; ) {
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
