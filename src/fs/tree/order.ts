/**
 * Putting a FileTree in the order types.ts promises: the root first, every directory before
 * what it holds, names within a directory in byte order (UTF-8), each hard link after the
 * node whose inode it shares. Folders an archive implies but never names are made here.
 */
import { DiskmintError } from '../../model/errors.js';
import type { FileTree, TreeNode, TreeTime } from './types.js';

const segments = new Map<string, Buffer[]>();
function parts(path: string): Buffer[] {
  let p = segments.get(path);
  if (!p) {
    p = path === '' ? [] : path.split('/').map((s) => Buffer.from(s, 'utf8'));
    segments.set(path, p);
  }
  return p;
}

/** Depth-first order with names in byte order: a directory sorts before everything under it. */
export function compareTreePaths(a: string, b: string): number {
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const c = Buffer.compare(pa[i], pb[i]);
    if (c !== 0) return c;
  }
  return pa.length - pb.length;
}

export const parentOf = (path: string): string => (path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '');

const implied = new WeakSet<TreeNode>();

/** A directory node no source named: root-owned, 0755, dated like the node that implied it. */
export function impliedDirectory(path: string, time: TreeTime): TreeNode {
  const node: TreeNode = { path, kind: 'dir', mode: 0o755, uid: 0, gid: 0, flags: 0, atime: time, mtime: time, ctime: time, birthtime: time, size: 0 };
  implied.add(node);
  return node;
}

/** Whether finishTree made this folder because a source implied it without naming it. */
export const isImpliedDirectory = (node: TreeNode): boolean => implied.has(node);

/**
 * The tree of `nodes` (one per path) in order: missing parent folders added (impliedDirectory),
 * each hard-link group re-rooted on its first node in the order (which takes the group's
 * inode: kind, content, metadata), and a path held by a non-directory yet used as a parent
 * refused. `label` names the source in errors.
 */
export function finishTree(nodes: Map<string, TreeNode>, label: string): FileTree {
  for (const node of [...nodes.values()]) {
    for (let p = node.path; p !== ''; ) {
      p = parentOf(p);
      const parent = nodes.get(p);
      if (parent) {
        if (parent.kind !== 'dir') throw new DiskmintError('BAD_ARGUMENT', `${label}: ${JSON.stringify(node.path)} lies under ${JSON.stringify(p)}, which is a ${parent.kind}, not a folder`);
        break;
      }
      nodes.set(p, impliedDirectory(p, node.mtime));
    }
  }
  const sorted = [...nodes.values()].sort((a, b) => compareTreePaths(a.path, b.path));
  segments.clear();
  return { nodes: rerootHardLinks(sorted, nodes, label) };
}

/** Each hard link's group owner: the first node of the group in tree order. */
function rerootHardLinks(sorted: TreeNode[], byPath: Map<string, TreeNode>, label: string): TreeNode[] {
  const ownerOf = (n: TreeNode): TreeNode => {
    let at = n;
    for (let hops = 0; at.hardlinkOf !== undefined; hops++) {
      const next = byPath.get(at.hardlinkOf);
      if (!next) throw new DiskmintError('BAD_ARGUMENT', `${label}: ${JSON.stringify(at.path)} is a hard link to ${JSON.stringify(at.hardlinkOf)}, which it does not hold`);
      if (hops > byPath.size) throw new DiskmintError('BAD_ARGUMENT', `${label}: hard links around ${JSON.stringify(n.path)} form a loop`);
      at = next;
    }
    return at;
  };
  const firstOfGroup = new Map<TreeNode, TreeNode>(); // inode owner -> first path in order
  return sorted.map((n) => {
    const owner = ownerOf(n);
    if (owner === n && n.hardlinkOf === undefined && !firstOfGroup.has(owner)) {
      firstOfGroup.set(owner, n);
      return n;
    }
    const first = firstOfGroup.get(owner);
    if (first) return { ...first, ...pathOnly(n.path), hardlinkOf: first.path, content: undefined };
    if (owner.kind === 'dir') throw new DiskmintError('BAD_ARGUMENT', `${label}: ${JSON.stringify(n.path)} is a hard link to the folder ${JSON.stringify(owner.path)}`);
    // The first path of the group in order takes the owner's inode.
    const taken: TreeNode = { ...owner, path: n.path, hardlinkOf: undefined };
    delete taken.hardlinkOf;
    firstOfGroup.set(owner, taken);
    return taken;
  }).map(stripUndefined);
}

const pathOnly = (path: string) => ({ path });

function stripUndefined(n: TreeNode): TreeNode {
  if (n.content === undefined) delete n.content;
  if (n.hardlinkOf === undefined) delete n.hardlinkOf;
  return n;
}
