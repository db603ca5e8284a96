/**
 * A file tree to put into a file system, independent of where it came from (a folder, a
 * tarball, an mtree spec or METALOG over a folder, several of those layered) and of the file
 * system that receives it (UFS2 today). Sources build it (src/fs/tree/), file-system builders
 * consume it (src/fs/ufs/). No file contents are held: a regular file names the bytes it
 * takes (a file on disk, or a range of a spooled archive).
 */

export type TreeNodeKind = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

/** Where a regular file's bytes are: `length` bytes of `path` from `offset`. */
export interface ContentRef {
  path: string;
  offset: number;
  length: number;
}

/** A timestamp as the file systems keep it: whole seconds since the epoch and nanoseconds. */
export interface TreeTime {
  sec: number;
  nsec: number;
}

export interface TreeNode {
  /** Relative, '/'-separated, no leading './' or '/'; '' is the root directory. */
  path: string;
  kind: TreeNodeKind;
  /** Permission bits with setuid/setgid/sticky (mode & 0o7777); the kind gives the type bits. */
  mode: number;
  uid: number;
  gid: number;
  /** FreeBSD st_flags (sys/sys/stat.h: UF_NODUMP 0x1, SF_IMMUTABLE (schg) 0x20000, ...). */
  flags: number;
  atime: TreeTime;
  mtime: TreeTime;
  ctime: TreeTime;
  birthtime: TreeTime;
  /** Regular files: byte length (equals content.length). Symlinks: the target's byte length. */
  size: number;
  /** Regular files that are not hard links to an earlier node. */
  content?: ContentRef;
  /** Symlinks. */
  target?: string;
  /** Character and block devices. */
  device?: { major: number; minor: number };
  /**
   * A hard link: the path of the node (kind 'file', or another kind a file system allows)
   * whose inode this path shares. That node comes earlier in `FileTree.nodes`.
   */
  hardlinkOf?: string;
}

/**
 * The whole tree: nodes sorted so that every directory comes before what it holds and, within
 * a directory, names in byte order (the order builders lay out, so the bytes are
 * deterministic). The root ('') is always the first node.
 */
export interface FileTree {
  nodes: TreeNode[];
}
