/**
 * Build a FAT12/16/32 volume from a file tree as a VirtualDisk: boot sector(s), FATs and
 * directories are small in-memory extents; every file is laid out contiguously (a fresh volume
 * never fragments) so its contents are one file-range extent read only when the image is
 * written. Cost follows the metadata, not the data.
 *
 * Cluster order: (FAT32 root,) then depth first: a folder's own clusters, its files in name
 * order, then its subfolders.
 */
import { fail } from '../../../formats/common/errors.js';
import {
  chooseFatGeometry,
  clusterBytes,
  encodeBootSector,
  FAT32_BACKUP_BOOT_SECTOR,
  FAT32_FSINFO_SECTOR,
  firstDataSector,
  rootDirSector,
  type FatGeometry,
} from '../../../formats/fs/fat-boot.js';
import { encodeFsInfo } from '../../../formats/fs/fat-fsinfo.js';
import { ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_VOLUME_ID, DIR_ENTRY_BYTES, encodeLongEntries, encodeShortEntry, entriesFor } from '../../../formats/fs/fat-dir.js';
import { assignShortNames, caseFoldName, normalizeLabel, validateLongName, type ShortNamePlan } from '../../../formats/fs/fat-names.js';
import { encodeContiguousFat, fatBytesFor, type FatBits } from '../../../formats/fs/fat-table.js';
import { VirtualDisk } from '../../model/extents.js';
import { deriveU32 } from '../../model/seed.js';
import { sourceDateEpoch } from '../../model/source-date.js';
import type { FatTreeDir, FatTreeFile, FatTreeNode } from './tree.js';

export interface FatBuildOptions {
  /** 'auto' (default): as mkfs.fat chooses by size. */
  type?: 'auto' | 12 | 16 | 32;
  /** Bytes, a multiple of the sector size; omitted = the smallest volume that holds the tree. */
  size?: number;
  sectorSize?: 512 | 4096;
  /** Up to 11 characters; upper-cased; stored in the BPB and as a root volume-label entry. */
  label?: string;
  /** Volume serial = deriveU32(seed, 'fat-serial'); default seed ''. */
  seed?: string;
  /** The partition's start LBA when the volume is placed in a partition table. */
  hiddenSectors?: number;
  /** Bytes per cluster, overriding mkfs.fat's choice. */
  clusterSize?: number;
  /**
   * Time stamped on entries without their own mtime. Default: SOURCE_DATE_EPOCH when set, else
   * 1980-01-01 00:00:00 UTC (the FAT epoch). Times are stored as UTC.
   */
  timestamp?: Date;
  /** BS_OEMName, up to 8 ASCII characters; default 'DISKMINT'. */
  oemName?: string;
}

export interface FatVolume {
  disk: VirtualDisk;
  type: FatBits;
  clusterSize: number;
  clusters: number;
  /** Clusters left free after the tree. */
  freeClusters: number;
  sizeBytes: number;
  geometry: FatGeometry;
}

/** A directory with its entries' short names decided (independent of geometry). */
interface PlannedDir {
  node: FatTreeDir;
  isRoot: boolean;
  children: { node: FatTreeNode; short: ShortNamePlan; dir?: PlannedDir }[];
  /** 32-byte entries: '.', '..' or the label, LFN and short entries. */
  entryCount: number;
}

/** fatgen103 section 6: a directory holds at most 65536 entries (2 MiB). */
const MAX_DIR_ENTRIES = 65536;
const MAX_FILE_SIZE = 0xffffffff;
const FAT_EPOCH = new Date(Date.UTC(1980, 0, 1));

const invalid = (msg: string) => fail('fat', 'INVALID_ARGUMENT', msg);

function planTree(tree: FatTreeNode, hasLabel: boolean): PlannedDir {
  if (tree.kind !== 'dir') throw invalid('the root of a FAT tree must be a folder');
  const plan = (node: FatTreeDir, isRoot: boolean, where: string): PlannedDir => {
    const seen = new Map<string, string>();
    for (const child of node.children) {
      validateLongName(child.name);
      const key = caseFoldName(child.name);
      const other = seen.get(key);
      if (other !== undefined) {
        throw invalid(`${where}/${child.name} and ${where}/${other} differ only in case; FAT names ignore case`);
      }
      seen.set(key, child.name);
      if (child.kind === 'file') checkFile(child, `${where}/${child.name}`);
    }
    const shorts = assignShortNames(node.children.map((c) => c.name));
    const children = node.children.map((c, i) => ({
      node: c,
      short: shorts[i],
      dir: c.kind === 'dir' ? plan(c, false, `${where}/${c.name}`) : undefined,
    }));
    let entryCount = isRoot ? (hasLabel ? 1 : 0) : 2;
    for (const c of children) entryCount += entriesFor(c.short);
    if (entryCount > MAX_DIR_ENTRIES) throw invalid(`folder ${where || '/'} needs ${entryCount} directory entries; FAT allows ${MAX_DIR_ENTRIES}`);
    return { node, isRoot, children, entryCount };
  };
  return plan(tree, true, '');
}

function checkFile(f: FatTreeFile, where: string): void {
  if (!Number.isSafeInteger(f.size) || f.size < 0) throw invalid(`${where}: size ${f.size} is not a byte count`);
  if (f.size > MAX_FILE_SIZE) throw invalid(`${where} is ${f.size} bytes; a FAT file holds at most 4 GiB - 1 (${MAX_FILE_SIZE}) bytes`);
  if ('bytes' in f.source && f.source.bytes.length !== f.size) throw invalid(`${where}: size ${f.size} differs from its ${f.source.bytes.length} bytes`);
}

function dirClusters(d: PlannedDir, cb: number): number {
  return Math.max(1, Math.ceil((d.entryCount * DIR_ENTRY_BYTES) / cb));
}

/** Clusters the tree needs at cluster size `cb` (the FAT12/16 root lives outside the data area). */
function clustersNeeded(root: PlannedDir, cb: number, bits: FatBits): number {
  let n = bits === 32 ? dirClusters(root, cb) : 0;
  const walk = (d: PlannedDir) => {
    for (const c of d.children) {
      if (c.dir) {
        n += dirClusters(c.dir, cb);
        walk(c.dir);
      } else if (c.node.kind === 'file') n += Math.ceil(c.node.size / cb);
    }
  };
  walk(root);
  return n;
}

function fits(root: PlannedDir, g: FatGeometry): boolean {
  if (g.bits !== 32 && root.entryCount > g.rootEntries) return false;
  return clustersNeeded(root, clusterBytes(g), g.bits) <= g.clusters;
}

interface Settings {
  sectorSize: number;
  bits: 'auto' | FatBits;
  sectorsPerCluster?: number;
  hiddenSectors: number;
}

function settings(opts: FatBuildOptions): Settings {
  const sectorSize = opts.sectorSize ?? 512;
  if (sectorSize !== 512 && sectorSize !== 4096) throw invalid(`sector size ${sectorSize}: use 512 or 4096`);
  const bits = opts.type ?? 'auto';
  if (bits !== 'auto' && bits !== 12 && bits !== 16 && bits !== 32) throw invalid(`FAT type ${String(bits)}: use 'auto', 12, 16 or 32`);
  let sectorsPerCluster: number | undefined;
  if (opts.clusterSize !== undefined) {
    sectorsPerCluster = opts.clusterSize / sectorSize;
    if (!Number.isInteger(sectorsPerCluster) || sectorsPerCluster < 1) {
      throw invalid(`cluster size ${opts.clusterSize} is not a multiple of the ${sectorSize}-byte sector`);
    }
  }
  const hiddenSectors = opts.hiddenSectors ?? 0;
  if (!Number.isInteger(hiddenSectors) || hiddenSectors < 0 || hiddenSectors > 0xffffffff) throw invalid(`hidden sectors ${hiddenSectors} must fit in 32 bits`);
  return { sectorSize, bits, sectorsPerCluster, hiddenSectors };
}

function geometryFor(totalSectors: number, s: Settings): FatGeometry {
  return chooseFatGeometry({ totalSectors, sectorSize: s.sectorSize, bits: s.bits, sectorsPerCluster: s.sectorsPerCluster, hiddenSectors: s.hiddenSectors });
}

/** Root entries mkfs.fat gives FAT12/16 volumes (fatgen103 recommends 512 for hard disks). */
const ROOT_ENTRIES = 512;

/**
 * 'auto' settles on FAT32 when the root needs more entries than a FAT12/16 root holds: FAT32's
 * root is a cluster chain that grows (mkfs.fat would pick FAT16 and leave mcopy to fail).
 */
function settingsForTree(root: PlannedDir, s: Settings): Settings {
  return s.bits === 'auto' && root.entryCount > ROOT_ENTRIES ? { ...s, bits: 32 } : s;
}

function minimumSectors(root: PlannedDir, s: Settings): number {
  // (With 'auto' the search below grows to FAT32 sizes, where the root is a cluster chain.)
  if ((s.bits === 12 || s.bits === 16) && root.entryCount > ROOT_ENTRIES) {
    throw invalid(`the root folder needs ${root.entryCount} directory entries; a FAT${s.bits} root holds ${ROOT_ENTRIES}`);
  }
  const tryFit = (sectors: number): boolean => {
    try {
      return fits(root, geometryFor(sectors, s));
    } catch {
      return false;
    }
  };
  // A lower bound: file data in whole sectors plus directory entries.
  let bytes = root.entryCount * DIR_ENTRY_BYTES;
  const walk = (d: PlannedDir) => {
    for (const c of d.children) {
      if (c.dir) {
        bytes += c.dir.entryCount * DIR_ENTRY_BYTES;
        walk(c.dir);
      } else if (c.node.kind === 'file') bytes += Math.ceil(c.node.size / s.sectorSize) * s.sectorSize;
    }
  };
  walk(root);
  const limit = 0xffffffff;
  let lo = 0;
  let hi = Math.min(limit, Math.max(16, Math.ceil(bytes / s.sectorSize)));
  while (!tryFit(hi)) {
    if (hi >= limit) {
      throw invalid(
        `no FAT${s.bits === 'auto' ? '' : s.bits} volume with ${s.sectorSize}-byte sectors can hold this tree (${bytes} bytes of data and directories)`,
      );
    }
    lo = hi;
    hi = Math.min(limit, Math.ceil(hi * 1.25) + 16);
  }
  // Smallest fitting size between the last miss and the first hit.
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (tryFit(mid)) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** The smallest volume size in bytes (for the chosen or auto type) that holds `tree`. */
export function minimumFatSize(tree: FatTreeNode, opts: FatBuildOptions = {}): number {
  const root = planTree(tree, opts.label !== undefined && opts.label !== '');
  const s = settingsForTree(root, settings(opts));
  return minimumSectors(root, s) * s.sectorSize;
}

export function defaultFatTimestamp(): Date {
  const epoch = sourceDateEpoch();
  return epoch === undefined ? FAT_EPOCH : new Date(epoch * 1000);
}

export async function buildFatVolume(tree: FatTreeNode, opts: FatBuildOptions = {}): Promise<FatVolume> {
  const label = opts.label !== undefined && opts.label !== '' ? normalizeLabel(opts.label) : undefined;
  const oemName = opts.oemName ?? 'DISKMINT';
  if (oemName.length > 8 || !/^[\x20-\x7e]*$/.test(oemName)) throw invalid(`OEM name ${JSON.stringify(oemName)}: up to 8 printable ASCII characters`);
  const when = opts.timestamp ?? defaultFatTimestamp();
  const root = planTree(tree, label !== undefined);
  const s = settingsForTree(root, settings(opts));

  let totalSectors: number;
  if (opts.size === undefined) totalSectors = minimumSectors(root, s);
  else {
    if (!Number.isSafeInteger(opts.size) || opts.size <= 0 || opts.size % s.sectorSize !== 0) {
      throw invalid(`volume size ${opts.size} is not a positive multiple of the ${s.sectorSize}-byte sector`);
    }
    totalSectors = opts.size / s.sectorSize;
  }
  const g = geometryFor(totalSectors, s);
  const cb = clusterBytes(g);
  if (g.bits !== 32 && root.entryCount > g.rootEntries) {
    throw invalid(
      `the root folder needs ${root.entryCount} directory entries; this FAT${g.bits} root holds ${g.rootEntries} (use FAT32 or fewer names in the root)`,
    );
  }
  const needed = clustersNeeded(root, cb, g.bits);
  if (needed > g.clusters) {
    let hint = '';
    try {
      hint = `; at least ${minimumFatSize(tree, { ...opts, size: undefined })} bytes are needed`;
    } catch {
      // no size fits with these options: the message below still says why
    }
    throw invalid(
      `a ${g.totalSectors * g.sectorSize}-byte FAT${g.bits} volume is too small: the tree needs ${needed} clusters of ${cb} bytes, the volume has ${g.clusters}${hint}`,
    );
  }
  return emitVolume(root, g, {
    label,
    oemName,
    when,
    serial: deriveU32(opts.seed ?? '', 'fat-serial'),
  });
}

function emitVolume(root: PlannedDir, g: FatGeometry, m: { label?: string; oemName: string; when: Date; serial: number }): FatVolume {
  const cb = clusterBytes(g);
  const ss = g.sectorSize;
  const disk = new VirtualDisk(g.totalSectors * ss);
  const dataStart = firstDataSector(g) * ss;
  const clusterOffset = (c: number) => dataStart + (c - 2) * cb;

  // Pass 1: give every folder and non-empty file its run of clusters.
  let next = 2;
  const runs: [number, number][] = [];
  const take = (n: number) => {
    const first = next;
    next += n;
    runs.push([first, n]);
    return first;
  };
  const dirCluster = new Map<PlannedDir, number>();
  const fileCluster = new Map<FatTreeNode, number>();
  if (g.bits === 32) dirCluster.set(root, take(dirClusters(root, cb)));
  const assign = (d: PlannedDir) => {
    for (const c of d.children) {
      if (c.dir) dirCluster.set(c.dir, take(dirClusters(c.dir, cb)));
      else if (c.node.kind === 'file' && c.node.size > 0) fileCluster.set(c.node, take(Math.ceil(c.node.size / cb)));
    }
    for (const c of d.children) if (c.dir) assign(c.dir);
  };
  assign(root);

  // Pass 2: directory bytes, file extents.
  const emitDir = (d: PlannedDir, parent: PlannedDir | undefined) => {
    const self = dirCluster.get(d) ?? 0;
    const mtime = d.node.mtime ?? m.when;
    const bytes = new Uint8Array(d.isRoot && g.bits !== 32 ? g.rootEntries * DIR_ENTRY_BYTES : dirClusters(d, cb) * cb);
    let at = 0;
    const put = (f: Parameters<typeof encodeShortEntry>[2]) => {
      encodeShortEntry(bytes, at, f);
      at += DIR_ENTRY_BYTES;
    };
    if (d.isRoot) {
      if (m.label) put({ name11: m.label, attr: ATTR_VOLUME_ID, cluster: 0, size: 0, mtime: m.when });
    } else {
      // fatgen103 section 6.5: '.' points at itself, '..' at the parent (0 when that is the root).
      put({ name11: '.'.padEnd(11), attr: ATTR_DIRECTORY, cluster: self, size: 0, mtime });
      const up = parent && !parent.isRoot ? (dirCluster.get(parent) ?? 0) : 0;
      put({ name11: '..'.padEnd(11), attr: ATTR_DIRECTORY, cluster: up, size: 0, mtime: parent?.node.mtime ?? m.when });
    }
    for (const c of d.children) {
      if (c.short.longName !== undefined) at += encodeLongEntries(bytes, at, c.short.longName, c.short.name11) * DIR_ENTRY_BYTES;
      const node = c.node;
      if (c.dir) {
        put({
          name11: c.short.name11,
          ntCase: c.short.ntCase,
          attr: ATTR_DIRECTORY,
          cluster: dirCluster.get(c.dir) ?? 0,
          size: 0,
          mtime: node.mtime ?? m.when,
        });
      } else if (node.kind === 'file') {
        const first = fileCluster.get(node) ?? 0;
        put({ name11: c.short.name11, ntCase: c.short.ntCase, attr: ATTR_ARCHIVE, cluster: first, size: node.size, mtime: node.mtime ?? m.when });
        if (node.size > 0) {
          if ('bytes' in node.source) disk.placeBytes(clusterOffset(first), node.source.bytes);
          else disk.place(clusterOffset(first), node.size, { kind: 'file', path: node.source.path, offset: 0 });
        }
      }
    }
    disk.placeBytes(d.isRoot && g.bits !== 32 ? rootDirSector(g) * ss : clusterOffset(self), bytes);
    for (const c of d.children) if (c.dir) emitDir(c.dir, d);
  };
  emitDir(root, undefined);

  // FATs: only the used prefix is data; the rest of each FAT is free entries (zeros).
  const fatBytes = new Uint8Array(Math.min(g.fatSectors * ss, Math.ceil(fatBytesFor(g.bits, next) / ss) * ss));
  encodeContiguousFat(g.bits, g.media, runs, fatBytes);
  for (let k = 0; k < g.fatCount; k++) disk.placeBytes((g.reservedSectors + k * g.fatSectors) * ss, fatBytes);

  const boot = encodeBootSector({ geometry: g, oemName: m.oemName, serial: m.serial, label: m.label ?? 'NO NAME    ', rootCluster: 2 });
  disk.placeBytes(0, boot);
  const freeClusters = g.clusters - (next - 2);
  if (g.bits === 32) {
    const info = encodeFsInfo({ freeCount: freeClusters, nextFree: freeClusters > 0 ? next : 0xffffffff }, ss);
    disk.placeBytes(FAT32_FSINFO_SECTOR * ss, info);
    disk.placeBytes(FAT32_BACKUP_BOOT_SECTOR * ss, boot);
  }
  return { disk, type: g.bits, clusterSize: cb, clusters: g.clusters, freeClusters, sizeBytes: g.totalSectors * ss, geometry: g };
}
