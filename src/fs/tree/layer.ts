/**
 * Several trees as one (base.txz, then kernel.txz, then an overlay folder): later trees
 * override earlier ones path by path; a folder keeps the metadata of the last tree that names
 * it (a folder a tarball only implies overrides nothing); a non-folder replacing a folder
 * removes what the earlier trees held under it. Hard links stay within the tree that made
 * them: a group whose first path a later tree replaced is re-rooted on its next path.
 */
import { compareTreePaths, finishTree, isImpliedDirectory } from './order.js';
import type { FileTree, TreeNode } from './types.js';

interface Layered {
  node: TreeNode;
  /** Hard-link group: "<tree index>:<owner path>". */
  group?: string;
}

export function layerTrees(trees: FileTree[]): FileTree {
  const merged = new Map<string, Layered>();
  trees.forEach((tree, i) => {
    const byPath = new Map(tree.nodes.map((n) => [n.path, n]));
    const linked = new Set(tree.nodes.flatMap((n) => (n.hardlinkOf ? [n.hardlinkOf] : [])));
    for (const n of tree.nodes) {
      const before = merged.get(n.path);
      if (before && n.kind === 'dir' && before.node.kind === 'dir' && isImpliedDirectory(n)) continue;
      if (before && before.node.kind === 'dir' && n.kind !== 'dir') {
        const prefix = `${n.path}/`;
        for (const p of [...merged.keys()]) if (p.startsWith(prefix)) merged.delete(p);
      }
      const owner = n.hardlinkOf ? byPath.get(n.hardlinkOf)! : n;
      const group = n.hardlinkOf ? `${i}:${n.hardlinkOf}` : linked.has(n.path) ? `${i}:${n.path}` : undefined;
      // Every member carries its inode's data, so whichever comes first can hold it.
      const node: TreeNode = n.hardlinkOf ? { ...owner, path: n.path } : n;
      merged.set(n.path, { node, group });
    }
  });
  const groups = new Map<string, Layered[]>();
  for (const l of merged.values()) if (l.group) groups.set(l.group, [...(groups.get(l.group) ?? []), l]);
  for (const members of groups.values()) {
    members.sort((a, b) => compareTreePaths(a.node.path, b.node.path));
    const first = members[0].node;
    for (const m of members.slice(1)) {
      m.node = { ...first, path: m.node.path, hardlinkOf: first.path };
      delete m.node.content;
    }
  }
  return finishTree(new Map([...merged].map(([p, l]) => [p, l.node])), 'the layered sources');
}
