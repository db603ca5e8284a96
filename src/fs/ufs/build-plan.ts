/**
 * The first step of building a UFS2 file system: a FileTree (src/fs/tree/types.ts) checked and
 * turned into inodes, in tree order from UFS_ROOTINO (2): link counts, hard links sharing one
 * inode, directory entries ('.', '..', then the children in tree order) and the bytes each
 * inode stores in data blocks. Nothing here depends on the geometry.
 */
import { DiskmintError } from '../../model/errors.js';
import { DT_BLK, DT_CHR, DT_DIR, DT_FIFO, DT_LNK, DT_REG, DT_SOCK, encodeDirectory, UFS_MAXNAMLEN, type DirEntry } from '../../../formats/fs/ufs2/directory.js';
import { IFBLK, IFCHR, IFDIR, IFIFO, IFLNK, IFREG, IFSOCK, MAXSYMLINKLEN_UFS2, UFS_ROOTINO } from '../../../formats/fs/ufs2/inode.js';
import type { FileTree, TreeNode, TreeNodeKind } from '../tree/types.js';

export interface PlannedInode {
  ino: number;
  /** The first path naming this inode (hard links name it again). */
  node: TreeNode;
  /** di_mode: type bits and permissions. */
  mode: number;
  nlink: number;
  /** di_size. */
  size: number;
  /** Data held in memory (directories, long symlinks); files stream from node.content. */
  bytes?: Uint8Array<ArrayBuffer>;
  /** A symlink target short enough for the inode itself. */
  shortLink?: Uint8Array;
  isDir: boolean;
}

const TYPE_BITS: Record<TreeNodeKind, number> = { file: IFREG, dir: IFDIR, symlink: IFLNK, char: IFCHR, block: IFBLK, fifo: IFIFO, socket: IFSOCK };
const DT: Record<TreeNodeKind, number> = { file: DT_REG, dir: DT_DIR, symlink: DT_LNK, char: DT_CHR, block: DT_BLK, fifo: DT_FIFO, socket: DT_SOCK };
const utf8 = new TextEncoder();
const DOT = utf8.encode('.');
const DOTDOT = utf8.encode('..');

const bad = (msg: string) => new DiskmintError('BAD_ARGUMENT', msg);
/** dinode.h di_nlink is an int16: FreeBSD's UFS_LINK_MAX. */
const UFS_LINK_MAX = 32767;
const U32_MAX = 2 ** 32 - 1;

/** Inodes in tree order, root first (inode 2). Throws BAD_ARGUMENT on a tree UFS cannot hold. */
export function planInodes(tree: FileTree): PlannedInode[] {
  const nodes = tree.nodes;
  if (nodes.length === 0 || nodes[0].path !== '' || nodes[0].kind !== 'dir') throw bad('a file tree starts with its root directory');
  const inodeOf = new Map<string, PlannedInode>();
  const entries = new Map<PlannedInode, DirEntry[]>();
  const parentOf = new Map<PlannedInode, PlannedInode>();
  const out: PlannedInode[] = [];
  for (const node of nodes) {
    if (inodeOf.has(node.path)) throw bad(`the tree names ${node.path || '/'} twice`);
    let parent: PlannedInode | undefined;
    let name: Uint8Array | undefined;
    if (node.path !== '') {
      const slash = node.path.lastIndexOf('/');
      const parentPath = slash < 0 ? '' : node.path.slice(0, slash);
      parent = inodeOf.get(parentPath);
      if (!parent?.isDir) throw bad(`${node.path}: its folder ${parentPath || '/'} comes later in the tree or is not a folder`);
      name = utf8.encode(node.path.slice(slash + 1));
      if (name.length === 0 || name.length > UFS_MAXNAMLEN || name.includes(0))
        throw bad(`${node.path}: a UFS name has 1 to ${UFS_MAXNAMLEN} bytes and no NUL`);
    }
    let inode: PlannedInode;
    if (node.hardlinkOf !== undefined) {
      const target = inodeOf.get(node.hardlinkOf);
      if (!target) throw bad(`${node.path} is a hard link to ${node.hardlinkOf}, which does not come earlier in the tree`);
      if (target.isDir) throw bad(`${node.path} is a hard link to the folder ${node.hardlinkOf}`);
      target.nlink++;
      inode = target;
    } else {
      inode = newInode(node, out.length + UFS_ROOTINO);
      out.push(inode);
      if (inode.isDir) entries.set(inode, []);
    }
    inodeOf.set(node.path, inode);
    if (parent && name) {
      entries.get(parent)!.push({ ino: inode.ino, type: DT[inode.node.kind], name });
      if (inode.isDir && node.hardlinkOf === undefined) {
        parent.nlink++; // the child's '..'
        parentOf.set(inode, parent);
      }
    }
  }
  for (const inode of out) if (inode.nlink > UFS_LINK_MAX) throw bad(`${inode.node.path || '/'} would have ${inode.nlink} links; UFS allows ${UFS_LINK_MAX}`);
  for (const [dir, children] of entries) {
    const parent = parentOf.get(dir) ?? dir;
    dir.bytes = encodeDirectory([{ ino: dir.ino, type: DT_DIR, name: DOT }, { ino: parent.ino, type: DT_DIR, name: DOTDOT }, ...children]);
    dir.size = dir.bytes.length;
  }
  return out;
}

function newInode(node: TreeNode, ino: number): PlannedInode {
  if (!Number.isInteger(node.mode) || node.mode < 0 || node.mode > 0o7777) throw bad(`${node.path || '/'}: mode ${node.mode} is not permission bits`);
  for (const [what, v] of [
    ['uid', node.uid],
    ['gid', node.gid],
    ['flags', node.flags],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > U32_MAX) throw bad(`${node.path || '/'}: ${what} ${v} is not a 32-bit unsigned number`);
  }
  const inode: PlannedInode = { ino, node, mode: TYPE_BITS[node.kind] | node.mode, nlink: 1, size: 0, isDir: node.kind === 'dir' };
  if (node.kind === 'dir') inode.nlink = 2; // its own '.' and the entry in its parent (the root: '..')
  if (node.kind === 'file') {
    const length = node.content?.length ?? 0;
    if (node.size !== length) throw bad(`${node.path}: size ${node.size} differs from its content's ${length} bytes`);
    inode.size = length;
  } else if (node.kind === 'symlink') {
    if (node.target === undefined || node.target === '') throw bad(`${node.path}: a symlink needs a target`);
    const target = utf8.encode(node.target);
    inode.size = target.length;
    // ufs_symlink: in the inode when shorter than fs_maxsymlinklen (MAXSYMLINKLEN_UFS2).
    if (target.length < MAXSYMLINKLEN_UFS2) inode.shortLink = target;
    else inode.bytes = target;
  } else if ((node.kind === 'char' || node.kind === 'block') && node.device === undefined) {
    throw bad(`${node.path}: a device node needs its major and minor numbers`);
  }
  return inode;
}
