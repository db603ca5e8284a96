/** What the UFS reader hands out: entries, problems found by the check, and the reader itself. */
import type { UfsGeometry } from './read-geometry.js';
import type { UfsInode, UfsStat } from './inode-types.js';

export interface UfsEntry {
  /** Name in its directory ('' for the root). */
  name: string;
  /** '/'-separated path from the root, e.g. '/etc/rc.conf'. */
  path: string;
  ino: number;
  stat: UfsStat;
  /** Symlinks: the target. */
  target?: string;
}

export interface UfsProblem {
  /** `ufs.superblock-copy-mismatch`, `ufs.cg-summary`, `ufs.block-bitmap`, ... */
  code: string;
  severity: 'error' | 'warning';
  message: string;
}

export interface UfsReader {
  geometry: UfsGeometry;
  version: 1 | 2;
  /** fs_volname, '' when unset. */
  label: string;
  /** The entry at `path` (symlinks not followed), undefined when there is none. */
  stat(path: string): Promise<UfsEntry | undefined>;
  /** The entries of the directory at `path` (symlinks followed), in on-disk order, without '.' and '..'. */
  list(path: string): Promise<UfsEntry[]>;
  /** The file's bytes (symlinks followed, as open() does), holes as zeros, in chunks of up to 1 MiB. */
  readFile(path: string): AsyncIterable<Uint8Array>;
  /** A regular file's data as runs at their offsets, holes left out (extraction writes sparse files). */
  readExtents(inode: UfsInode): AsyncIterable<{ offset: number; bytes: Uint8Array }>;
  /** A symlink's target. */
  readLink(path: string): Promise<string>;
  readInode(ino: number): Promise<UfsInode>;
  /** Every entry below the root, depth first, directories before what they hold. */
  walk(): AsyncIterable<UfsEntry>;
  /** fsck_ffs -n style consistency check (at most 1000 problems). */
  check(): Promise<UfsProblem[]>;
}
