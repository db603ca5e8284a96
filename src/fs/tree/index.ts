/** File-tree sources (folder, tarball, mtree/METALOG, layered) that file-system builders take. */
export type { ContentRef, FileTree, TreeNode, TreeNodeKind, TreeTime } from './types.js';
export { treeFromFolder, type FolderOptions } from './folder.js';
export { treeFromTar, type LoadedTree, type TarOptions } from './tar-source.js';
export { applyMtree, type MtreeOptions } from './mtree-source.js';
export { layerTrees } from './layer.js';
export { loadTreeSources, parseTreeSource, type TreeSource, type TreeSourceOptions } from './sources.js';
export { clampTimes, parseSourceDateEpoch } from './times.js';
export { compareTreePaths } from './order.js';
