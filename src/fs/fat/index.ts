/** FAT12/16/32 volumes: build from a tree (as a VirtualDisk), read and check any FAT volume. */
export { buildFatVolume, minimumFatSize, defaultFatTimestamp, type FatBuildOptions, type FatVolume } from './build.js';
export { treeFromFolder, treeFromObject, type FatTreeNode, type InMemoryTree } from './tree.js';
export { openFat, type FatReader } from './read.js';
export type { FatDirEntry, FatProblem } from './volume.js';
