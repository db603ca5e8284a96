/**
 * FAT12/16/32 reader over any DiskReader (a raw file, a partition slice of a container): list,
 * stat, stream files, extract, and a consistency check in the spirit of `fsck.fat -n`.
 * Everything is bounded: chains cannot run longer than the volume has clusters, directories
 * are capped at fatgen103's 65536 entries, folder loops are detected. Hostile bytes give
 * FormatError, never another exception; check() reports problems instead where it can.
 * This file opens the volume and reads it; the check is check.ts, extraction extract.ts, and
 * what they share (entries, limits, the opened volume) volume.ts.
 */
import { FormatError, fail } from '../../../formats/common/errors.js';
import { clusterBytes, decodeBootSector, firstDataSector, rootDirSector, type FatGeometry } from '../../../formats/fs/fat-boot.js';
import { ATTR_DIRECTORY, decodeDirEntries, DIR_ENTRY_BYTES, type DecodedDirEntry } from '../../../formats/fs/fat-dir.js';
import { caseFoldName, decodeOem } from '../../../formats/fs/fat-names.js';
import { badClusterMark, endOfChainThreshold, fatBytesFor, decodeFatEntries, type FatBits } from '../../../formats/fs/fat-table.js';
import type { DiskReader } from '../../model/disk-reader.js';
import { checkFat } from './check.js';
import { extractFat } from './extract.js';
import { MAX_DEPTH, MAX_DIR_BYTES, isDotEntry, storedShortName, type FatDirEntry, type FatProblem, type MountedFat } from './volume.js';

export interface FatReader {
  type: FatBits;
  /** Volume label (root label entry, else the BPB's), '' when none. */
  label: string;
  serial: number;
  clusterSize: number;
  clusters: number;
  geometry: FatGeometry;
  list(path: string): Promise<FatDirEntry[]>;
  stat(path: string): Promise<FatDirEntry | undefined>;
  /** Streams the file's bytes in chunks of up to 1 MiB. */
  readFile(path: string): AsyncIterable<Uint8Array>;
  /** Write the whole tree under `dest` (created if missing); returns the entries written under a safe name. */
  extract(dest: string): Promise<FatDirEntry[]>;
  check(): Promise<FatProblem[]>;
}

/** Largest FAT we load into memory. */
const MAX_FAT_BYTES = 512 * 1024 * 1024;
const READ_CHUNK = 1 << 20;

export async function openFat(disk: DiskReader): Promise<FatReader> {
  const head = await disk.read(0, 512);
  const boot = decodeBootSector(head);
  const g = boot.geometry;
  const ss = g.sectorSize;
  const cb = clusterBytes(g);
  const fatLen = fatBytesFor(g.bits, g.clusters + 2);
  if (fatLen > MAX_FAT_BYTES) throw fail('fat', 'TOO_LARGE', `a FAT of ${fatLen} bytes is more than this reader loads (${MAX_FAT_BYTES})`);
  const fatEnd = (g.reservedSectors + g.fatCount * g.fatSectors) * ss;
  if (fatEnd > disk.size) throw fail('fat', 'TRUNCATED', `the FATs end at byte ${fatEnd}, past the end of the ${disk.size}-byte disk`);
  // FAT32 BPB_ExtFlags bit 7: mirroring off, bits 0-3 name the active FAT (fatgen103 section 3.2).
  const active = g.bits === 32 && boot.extFlags & 0x80 ? boot.extFlags & 0x0f : 0;
  if (active >= g.fatCount) throw fail('fat', 'BAD_VALUE', `active FAT ${active} of ${g.fatCount}`);
  const readExact = async (offset: number, length: number): Promise<Uint8Array> => {
    const bytes = await disk.read(offset, length);
    if (bytes.length !== length) throw fail('fat', 'TRUNCATED', `the volume ends before byte ${offset + length} (disk of ${disk.size} bytes)`);
    return bytes;
  };
  const fatOffset = (k: number) => (g.reservedSectors + k * g.fatSectors) * ss;
  const fat = decodeFatEntries(g.bits, await readExact(fatOffset(active), fatLen), g.clusters + 2);
  const eoc = endOfChainThreshold(g.bits);
  const bad = badClusterMark(g.bits);
  const maxCluster = g.clusters + 1;
  const dataStart = firstDataSector(g) * ss;
  const clusterOffset = (c: number) => dataStart + (c - 2) * cb;
  const rootIsChain = g.bits === 32;

  /** Follow a chain from `first`; at most `limit` clusters are wanted (throws TOO_LARGE past it when `strict`). */
  const chain = (first: number, limit: number, what: string): number[] => {
    const out: number[] = [];
    const visited = new Set<number>();
    let c = first;
    while (true) {
      if (c < 2 || c > maxCluster) throw fail('fat', 'BAD_VALUE', `${what}: cluster ${c} is outside 2..${maxCluster}`);
      if (visited.has(c)) throw fail('fat', 'LOOP', `${what}: the cluster chain loops back to cluster ${c}`);
      visited.add(c);
      out.push(c);
      if (out.length > limit) throw fail('fat', 'TOO_LARGE', `${what}: the cluster chain is longer than ${limit} clusters`);
      const nextValue = fat[c];
      if (nextValue >= eoc) return out;
      if (nextValue === bad) throw fail('fat', 'BAD_VALUE', `${what}: the chain runs into a bad cluster after ${c}`);
      if (nextValue < 2) throw fail('fat', 'BAD_VALUE', `${what}: the chain ends in a free cluster after ${c}`);
      c = nextValue;
    }
  };

  const readDirBytes = async (cluster: number, what: string): Promise<Uint8Array> => {
    if (cluster === 0 && !rootIsChain) return readExact(rootDirSector(g) * ss, Math.min(g.rootEntries * DIR_ENTRY_BYTES, MAX_DIR_BYTES));
    const clusters = chain(cluster === 0 ? boot.rootCluster : cluster, Math.ceil(MAX_DIR_BYTES / cb), what);
    const out = new Uint8Array(clusters.length * cb);
    for (let i = 0; i < clusters.length;) {
      let n = 1;
      while (i + n < clusters.length && clusters[i + n] === clusters[i] + n) n++;
      out.set(await readExact(clusterOffset(clusters[i]), n * cb), i * cb);
      i += n;
    }
    return out;
  };

  const toEntry = (e: DecodedDirEntry, parentPath: string): FatDirEntry => ({
    name: e.name,
    shortName: e.shortName,
    path: `${parentPath === '/' ? '' : parentPath}/${e.name}`,
    isDirectory: (e.attr & ATTR_DIRECTORY) !== 0,
    size: (e.attr & ATTR_DIRECTORY) !== 0 ? 0 : e.size,
    firstCluster: g.bits === 32 ? e.cluster & 0x0fffffff : e.cluster & 0xffff,
    attributes: e.attr,
    mtime: e.mtime,
    ...(e.renamed ? { storedName: storedShortName(e.name11) } : {}),
  });

  const listCluster = async (cluster: number, path: string): Promise<FatDirEntry[]> => {
    const decoded = decodeDirEntries(await readDirBytes(cluster, path)).filter((e) => !isDotEntry(e));
    // A safe name given to an invalid short name must not take another entry's name: '~N' after it.
    const taken = new Set(decoded.filter((e) => !e.renamed).map((e) => caseFoldName(e.name)));
    return decoded.map((e) => {
      if (e.renamed) {
        let name = e.name;
        for (let n = 1; taken.has(caseFoldName(name)); n++) name = `${e.name}~${n}`;
        taken.add(caseFoldName(name));
        e = { ...e, name };
      }
      return toEntry(e, path);
    });
  };

  const resolve = async (path: string): Promise<FatDirEntry | undefined> => {
    const parts = path.split('/').filter((p) => p !== '' && p !== '.');
    if (parts.length > MAX_DEPTH) return undefined;
    let dir = 0;
    let current: FatDirEntry | undefined = rootEntry();
    for (const part of parts) {
      if (!current?.isDirectory) return undefined;
      const key = caseFoldName(part);
      const entries = await listCluster(dir, current.path);
      current = entries.find((e) => caseFoldName(e.name) === key || caseFoldName(e.shortName) === key);
      if (!current) return undefined;
      dir = current.firstCluster;
      if (current.isDirectory && dir === 0) throw fail('fat', 'BAD_VALUE', `folder ${current.path} has no cluster`);
    }
    return current;
  };
  const rootEntry = (): FatDirEntry => ({
    name: '',
    shortName: '',
    path: '/',
    isDirectory: true,
    size: 0,
    firstCluster: 0,
    attributes: ATTR_DIRECTORY,
    mtime: new Date(0),
  });

  async function* readFile(path: string): AsyncGenerator<Uint8Array> {
    const e = await resolve(path);
    if (!e || e.isDirectory) throw fail('fat', 'INVALID_ARGUMENT', `${path}: no such file`);
    const other = e.size > 0 ? (await firstClusterOwners()).get(e.firstCluster)?.find((p) => p !== e.path) : undefined;
    if (other !== undefined) throw fail('fat', 'BAD_VALUE', `${e.path}: its first cluster ${e.firstCluster} is also where ${other} starts (cross-linked)`);
    yield* readEntry(e);
  }

  /**
   * Every entry's first cluster and the paths that start there, from one walk of the folders
   * (computed once, when a single file is read: two entries starting at the same cluster are a
   * cross-link no FAT entry shows; extract catches it as it goes).
   */
  let startsAt: Map<number, string[]> | undefined;
  const firstClusterOwners = async (): Promise<Map<number, string[]>> => {
    if (startsAt) return startsAt;
    const found = new Map<number, string[]>();
    const walk = async (cluster: number, path: string, depth: number) => {
      if (depth > MAX_DEPTH) return;
      for (const e of await listCluster(cluster, path)) {
        if (e.firstCluster < 2) continue;
        const paths = found.get(e.firstCluster);
        if (paths) paths.push(e.path);
        else found.set(e.firstCluster, [e.path]);
        if (e.isDirectory && !paths) await walk(e.firstCluster, e.path, depth + 1); // a folder seen before is a loop: walked once
      }
    };
    await walk(0, '/', 0);
    return (startsAt = found);
  };

  /**
   * How many FAT entries point at each cluster, computed once when first asked. A cluster that
   * two entries point at is where two chains merge (a cross-link, as fsck.fat calls it); a
   * file's first cluster that any entry points at is the tail of another chain.
   */
  let inDegree: Uint8Array | undefined;
  let visitedBits: Uint8Array | undefined;
  const pointedAt = (c: number): number => {
    if (!inDegree) {
      inDegree = new Uint8Array(g.clusters + 2);
      for (let k = 2; k <= maxCluster; k++) {
        const nx = fat[k];
        if (nx >= 2 && nx <= maxCluster && inDegree[nx] < 255) inDegree[nx]++;
      }
    }
    return inDegree[c];
  };

  /**
   * The clusters of a file, in order, before any byte is read: a chain that comes back to a
   * cluster it has visited (a loop), merges with another chain, or starts inside one (a
   * cross-link) is an error naming the file, as mtools refuses a loop ("loop detected") and
   * fsck.fat reports both. `owners`, shared across one extract, also catches two entries that
   * start at the same cluster.
   */
  const fileClusters = (e: FatDirEntry, want: number, owners?: Map<number, string>): number[] => {
    const out: number[] = [];
    // One bit a cluster (allocated once, cleared after each file) marks the clusters visited.
    visitedBits ??= new Uint8Array((g.clusters + 9) >> 3);
    const seen = visitedBits;
    try {
      let c = e.firstCluster;
      while (true) {
        if (c < 2 || c > maxCluster) throw fail('fat', 'BAD_VALUE', `${e.path}: cluster ${c} is outside 2..${maxCluster}`);
        if (seen[c >> 3] & (1 << (c & 7))) throw fail('fat', 'LOOP', `${e.path}: the cluster chain loops back to cluster ${c}`);
        seen[c >> 3] |= 1 << (c & 7);
        out.push(c);
        if (out.length === want) break;
        const nx = fat[c];
        if (nx >= eoc || nx < 2 || nx === bad)
          throw fail('fat', 'BAD_VALUE', `${e.path}: the cluster chain ends ${e.size - out.length * cb} bytes before the file does`);
        c = nx;
      }
    } finally {
      for (const k of out) seen[k >> 3] = 0;
    }
    for (let i = 0; i < out.length; i++) {
      const k = out[i];
      if (i === 0 && pointedAt(k) > 0) throw fail('fat', 'BAD_VALUE', `${e.path}: its first cluster ${k} is also inside another cluster chain (cross-linked)`);
      if (i > 0 && pointedAt(k) > 1) throw fail('fat', 'BAD_VALUE', `${e.path}: cluster ${k} is shared with another cluster chain (cross-linked)`);
      const other = owners?.get(k);
      if (other !== undefined) throw fail('fat', 'BAD_VALUE', `${e.path}: cluster ${k} also belongs to ${other} (cross-linked)`);
    }
    if (owners) for (const k of out) owners.set(k, e.path);
    return out;
  };

  async function* readEntry(e: FatDirEntry, owners?: Map<number, string>): AsyncGenerator<Uint8Array> {
    if (e.size === 0) return;
    if (e.firstCluster === 0) throw fail('fat', 'BAD_VALUE', `${e.path}: ${e.size} bytes but no cluster`);
    const want = Math.ceil(e.size / cb);
    // A chain visits each data cluster at most once (clusters 2..maxCluster), so a size needing
    // more clusters than the volume has is refused before reading: a looping chain would
    // otherwise be read for as many bytes as the size claims (up to 4 GiB).
    if (want > maxCluster - 1) throw fail('fat', 'BAD_VALUE', `${e.path}: ${e.size} bytes need ${want} clusters; the volume has ${maxCluster - 1}`);
    const clusters = fileClusters(e, want, owners);
    let left = e.size;
    for (let i = 0; i < clusters.length;) {
      // A run of consecutive clusters, up to READ_CHUNK bytes, in one read.
      let n = 1;
      while (i + n < clusters.length && clusters[i + n] === clusters[i] + n && (n + 1) * cb <= READ_CHUNK) n++;
      const len = Math.min(left, n * cb);
      yield await readExact(clusterOffset(clusters[i]), len);
      left -= len;
      i += n;
    }
  }

  // The label: the root volume-label entry wins over the BPB copy (as Windows and mtools show it).
  let label = boot.label.trim() === 'NO NAME' ? '' : boot.label.trimEnd();
  try {
    const rootLabel = decodeDirEntries(await readDirBytes(0, '/'), { withLabels: true }).find((e) => (e.attr & 0x18) === 0x08);
    if (rootLabel) label = decodeOem(rootLabel.name11).trimEnd();
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
  }

  const mounted: MountedFat = {
    head,
    boot,
    g,
    ss,
    cb,
    fatLen,
    fatOffset,
    fat,
    eoc,
    bad,
    maxCluster,
    rootIsChain,
    readExact,
    readDirBytes,
    toEntry,
    listCluster,
    readEntry,
  };

  return {
    type: g.bits,
    label,
    serial: boot.serial,
    clusterSize: cb,
    clusters: g.clusters,
    geometry: g,
    async list(path: string) {
      const e = await resolve(path);
      if (!e || !e.isDirectory) throw fail('fat', 'INVALID_ARGUMENT', `${path}: no such folder`);
      return listCluster(e.firstCluster, e.path);
    },
    stat: resolve,
    readFile,
    extract: (dest: string) => extractFat(mounted, dest),
    check: () => checkFat(mounted),
  };
}
