/**
 * What the parts of the FAT reader share: the entries and problems it reports, the limits it
 * keeps (fatgen103's largest folder, the deepest nesting followed), and `MountedFat`, the volume
 * openFat has read (geometry, the active FAT, readers of bytes, folders and files) that the
 * check (check.ts) and the extraction (extract.ts) work on.
 */
import type { FatBootSector, FatGeometry } from '../../../formats/fs/fat-boot.js';
import { DIR_ENTRY_BYTES, type DecodedDirEntry } from '../../../formats/fs/fat-dir.js';
import { decodeOem } from '../../../formats/fs/fat-names.js';

export interface FatDirEntry {
  name: string;
  shortName: string;
  /** '/'-separated path from the root, e.g. '/docs/readme.txt'. */
  path: string;
  isDirectory: boolean;
  size: number;
  firstCluster: number;
  attributes: number;
  mtime: Date;
  /**
   * Set when the entry's stored 8.3 name is invalid (fsck.fat's rule) and it has no long name:
   * the stored name, as 'BASE.EXT' with its spaces; `name` is then a safe name made from it.
   */
  storedName?: string;
}

export interface FatProblem {
  code: string;
  severity: 'error' | 'warning';
  message: string;
}

/** fatgen103 section 6: a directory holds at most 65536 entries. */
export const MAX_DIR_BYTES = 65536 * DIR_ENTRY_BYTES;
/** Folder nesting we follow (paths stay far below PATH_MAX). */
export const MAX_DEPTH = 128;

/** A stored 11-byte short name as 'BASE.EXT', spaces inside kept (the padding dropped). */
export function storedShortName(name11: Uint8Array): string {
  const base = decodeOem(name11.subarray(0, 8)).replace(/ +$/, '');
  const ext = decodeOem(name11.subarray(8, 11)).replace(/ +$/, '');
  return ext ? `${base}.${ext}` : base;
}

/** The "." and ".." entries of a folder. */
export const isDotEntry = (e: DecodedDirEntry) => e.name11[0] === 0x2e && (e.shortName === '.' || e.shortName === '..');

/** A FAT volume as openFat has read it: its boot sector and geometry, the active FAT, and readers over it. */
export interface MountedFat {
  head: Uint8Array;
  boot: FatBootSector;
  g: FatGeometry;
  /** Bytes per sector and per cluster. */
  ss: number;
  cb: number;
  /** Bytes of one FAT copy, and where copy `k` starts. */
  fatLen: number;
  fatOffset: (k: number) => number;
  /** The active FAT's entries, its end-of-chain threshold and bad-cluster mark, the highest cluster number. */
  fat: Uint32Array;
  eoc: number;
  bad: number;
  maxCluster: number;
  /** FAT32: the root folder is a cluster chain. */
  rootIsChain: boolean;
  readExact: (offset: number, length: number) => Promise<Uint8Array>;
  readDirBytes: (cluster: number, what: string) => Promise<Uint8Array>;
  toEntry: (e: DecodedDirEntry, parentPath: string) => FatDirEntry;
  listCluster: (cluster: number, path: string) => Promise<FatDirEntry[]>;
  readEntry: (e: FatDirEntry, owners?: Map<number, string>) => AsyncGenerator<Uint8Array>;
}
