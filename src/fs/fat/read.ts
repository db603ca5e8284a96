/**
 * FAT12/16/32 reader over any DiskReader (a raw file, a partition slice of a container): list,
 * stat, stream files, extract, and a consistency check in the spirit of `fsck.fat -n`.
 * Everything is bounded: chains cannot run longer than the volume has clusters, directories
 * are capped at fatgen103's 65536 entries, folder loops are detected. Hostile bytes give
 * FormatError, never another exception; check() reports problems instead where it can.
 */
import { open, utimes } from 'node:fs/promises';
import { makeDirectories } from '../../io/fs-util.js';
import { join } from 'node:path';
import { FormatError, fail } from '../../../formats/common/errors.js';
import { clusterBytes, decodeBootSector, firstDataSector, rootDirSector, type FatGeometry } from '../../../formats/fs/fat-boot.js';
import { decodeFsInfo } from '../../../formats/fs/fat-fsinfo.js';
import { ATTR_DIRECTORY, decodeDirEntries, DIR_ENTRY_BYTES, type DecodedDirEntry } from '../../../formats/fs/fat-dir.js';
import { caseFoldName, decodeOem } from '../../../formats/fs/fat-names.js';
import { badClusterMark, endOfChainThreshold, fatBytesFor, decodeFatEntries, type FatBits } from '../../../formats/fs/fat-table.js';
import type { DiskReader } from '../../model/disk-reader.js';

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

/** fatgen103 section 6: a directory holds at most 65536 entries. */
const MAX_DIR_BYTES = 65536 * DIR_ENTRY_BYTES;
/** Largest FAT we load into memory. */
const MAX_FAT_BYTES = 512 * 1024 * 1024;
const READ_CHUNK = 1 << 20;
/** Folder nesting we follow (paths stay far below PATH_MAX). */
const MAX_DEPTH = 128;

/** A stored 11-byte short name as 'BASE.EXT', spaces inside kept (the padding dropped). */
function storedShortName(name11: Uint8Array): string {
  const base = decodeOem(name11.subarray(0, 8)).replace(/ +$/, '');
  const ext = decodeOem(name11.subarray(8, 11)).replace(/ +$/, '');
  return ext ? `${base}.${ext}` : base;
}

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

  const isDotEntry = (e: DecodedDirEntry) => e.name11[0] === 0x2e && (e.shortName === '.' || e.shortName === '..');

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

  const extract = async (dest: string): Promise<FatDirEntry[]> => {
    const renamed: FatDirEntry[] = [];
    const seen = new Set<number>();
    const owners = new Map<number, string>();
    const walk = async (cluster: number, path: string, into: string, depth: number) => {
      if (depth > MAX_DEPTH) throw fail('fat', 'TOO_LARGE', `${path}: folders nested more than ${MAX_DEPTH} deep`);
      await makeDirectories(into);
      const names = new Set<string>();
      for (const e of await listCluster(cluster, path)) {
        if (e.name === '.' || e.name === '..' || /[/\\\0]/.test(e.name) || e.name === '') {
          throw fail('fat', 'BAD_VALUE', `${path}: the name ${JSON.stringify(e.name)} cannot be extracted`);
        }
        if (names.has(caseFoldName(e.name))) throw fail('fat', 'BAD_VALUE', `${e.path}: the name appears twice in its folder`);
        names.add(caseFoldName(e.name));
        if (e.storedName !== undefined) renamed.push(e);
        const target = join(into, e.name);
        if (e.isDirectory) {
          if (e.firstCluster === 0 || seen.has(e.firstCluster)) throw fail('fat', 'LOOP', `${e.path}: folder loops back to cluster ${e.firstCluster}`);
          seen.add(e.firstCluster);
          await walk(e.firstCluster, e.path, target, depth + 1);
        } else {
          const out = await open(target, 'w');
          try {
            let at = 0;
            for await (const chunk of readEntry(e, owners)) {
              await out.write(chunk, 0, chunk.length, at);
              at += chunk.length;
            }
          } finally {
            await out.close();
          }
          await utimes(target, e.mtime, e.mtime).catch(() => {});
        }
      }
    };
    await walk(0, '/', dest, 0);
    return renamed;
  };

  // The label: the root volume-label entry wins over the BPB copy (as Windows and mtools show it).
  let label = boot.label.trim() === 'NO NAME' ? '' : boot.label.trimEnd();
  try {
    const rootLabel = decodeDirEntries(await readDirBytes(0, '/'), { withLabels: true }).find((e) => (e.attr & 0x18) === 0x08);
    if (rootLabel) label = decodeOem(rootLabel.name11).trimEnd();
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
  }

  const check = async (): Promise<FatProblem[]> => {
    const problems: FatProblem[] = [];
    const add = (code: string, severity: FatProblem['severity'], message: string) => {
      if (problems.length < 1000) problems.push({ code, severity, message });
    };
    // Every FAT copy must agree with the first.
    const first = await readExact(fatOffset(0), fatLen);
    for (let k = 1; k < g.fatCount; k++) {
      const copy = await readExact(fatOffset(k), fatLen);
      if (!Buffer.from(copy).equals(Buffer.from(first))) add('FAT_MISMATCH', 'error', `FAT ${k + 1} differs from FAT 1`);
    }
    if ((fat[0] & 0xff) !== g.media)
      add('MEDIA_MISMATCH', 'warning', `FAT[0] holds media 0x${(fat[0] & 0xff).toString(16)}, the BPB 0x${g.media.toString(16)}`);
    // 0 unowned, 1 owned by an earlier chain, 2 owned by the chain being walked.
    const owner = new Uint8Array(g.clusters + 2);
    const claim = (start: number, what: string): number => {
      const mine: number[] = [];
      let c = start;
      let problem = false;
      while (true) {
        if (c < 2 || c > maxCluster) {
          add('CLUSTER_RANGE', 'error', `${what}: cluster ${c} is outside 2..${maxCluster}`);
          problem = true;
          break;
        }
        if (owner[c] === 2) {
          add('CHAIN_LOOP', 'error', `${what}: the cluster chain loops at cluster ${c}`);
          problem = true;
          break;
        }
        if (owner[c] === 1) {
          add('CROSS_LINK', 'error', `${what}: cluster ${c} also belongs to another file or folder`);
          problem = true;
          break;
        }
        owner[c] = 2;
        mine.push(c);
        const nx = fat[c];
        if (nx >= eoc) break;
        if (nx < 2 || nx === bad) {
          add('BAD_CHAIN', 'error', `${what}: the chain ends in a ${nx === bad ? 'bad' : 'free'} cluster after ${c}`);
          problem = true;
          break;
        }
        c = nx;
      }
      for (const m of mine) owner[m] = 1;
      return problem ? -1 : mine.length;
    };
    const seenDirs = new Set<number>();
    const walkDir = async (cluster: number, parent: number, path: string, depth: number): Promise<void> => {
      if (depth > MAX_DEPTH) return add('TOO_DEEP', 'error', `${path}: folders nested more than ${MAX_DEPTH} deep`);
      if (cluster !== 0 || rootIsChain) {
        const n = claim(cluster === 0 ? boot.rootCluster : cluster, path);
        if (n < 0) return;
        if (n * cb > MAX_DIR_BYTES) return add('DIR_TOO_LARGE', 'error', `${path}: folder of ${n * cb} bytes is larger than FAT allows`);
      }
      let entries: DecodedDirEntry[];
      try {
        entries = decodeDirEntries(await readDirBytes(cluster, path));
      } catch (err) {
        if (err instanceof FormatError) return add('UNREADABLE_DIR', 'error', `${path}: ${err.message}`);
        throw err;
      }
      if (cluster !== 0) {
        const [dot, dotdot] = entries;
        if (!dot || dot.shortName !== '.' || !(dot.attr & ATTR_DIRECTORY) || dot.cluster !== cluster)
          add('BAD_DOT', 'error', `${path}: first entry is not '.' pointing at cluster ${cluster}`);
        if (!dotdot || dotdot.shortName !== '..' || !(dotdot.attr & ATTR_DIRECTORY) || dotdot.cluster !== parent)
          add('BAD_DOTDOT', 'error', `${path}: second entry is not '..' pointing at cluster ${parent}`);
      }
      const names = new Set<string>();
      for (const raw of entries) {
        if (isDotEntry(raw)) continue;
        const e = toEntry(raw, path);
        if (e.storedName === undefined && names.has(caseFoldName(e.name))) add('DUPLICATE_NAME', 'error', `${e.path}: the name appears twice in its folder`);
        names.add(caseFoldName(e.name));
        if (raw.badShortName !== undefined)
          add(
            'BAD_SHORT_NAME',
            'error',
            `${e.path}: the short name ${JSON.stringify(storedShortName(raw.name11))} is not a valid 8.3 name: ${raw.badShortName}`,
          );
        if (raw.badLfn) add('BAD_LFN', 'warning', `${e.path}: long name entries do not match their short entry`);
        if (e.firstCluster !== 0 && (e.firstCluster < 2 || e.firstCluster > maxCluster)) {
          add('CLUSTER_RANGE', 'error', `${e.path}: first cluster ${e.firstCluster} is outside 2..${maxCluster}`);
          continue;
        }
        if (e.isDirectory) {
          if (e.firstCluster === 0) add('DIR_NO_CLUSTER', 'error', `${e.path}: folder without a cluster`);
          else if (seenDirs.has(e.firstCluster)) add('DIR_LOOP', 'error', `${e.path}: folder cluster ${e.firstCluster} is already a folder`);
          else {
            seenDirs.add(e.firstCluster);
            await walkDir(e.firstCluster, cluster, e.path, depth + 1);
          }
          continue;
        }
        if (e.firstCluster === 0) {
          if (e.size > 0) add('SIZE_WITHOUT_CLUSTERS', 'error', `${e.path}: ${e.size} bytes but no clusters`);
          continue;
        }
        const n = claim(e.firstCluster, e.path);
        if (n < 0) continue;
        const want = Math.ceil(e.size / cb);
        if (n !== want) add('SIZE_MISMATCH', 'error', `${e.path}: ${e.size} bytes need ${want} clusters, the chain has ${n}`);
      }
    };
    await walkDir(0, 0, '/', 0);
    let lost = 0;
    let free = 0;
    for (let c = 2; c <= maxCluster; c++) {
      if (fat[c] === 0) free++;
      else if (fat[c] !== bad && owner[c] === 0) lost++;
    }
    if (lost > 0) add('LOST_CLUSTERS', 'error', `${lost} clusters are allocated but belong to no file or folder`);
    if (g.bits === 32 && boot.fsInfoSector > 0 && boot.fsInfoSector < g.reservedSectors) {
      const info = decodeFsInfo(await readExact(boot.fsInfoSector * ss, 512));
      if (!info) add('FSINFO_SIGNATURE', 'warning', `FSInfo sector ${boot.fsInfoSector} lacks its signatures`);
      else if (info.freeCount !== 0xffffffff && info.freeCount !== free)
        add('FSINFO_FREE', 'warning', `FSInfo says ${info.freeCount} free clusters, the FAT has ${free}`);
    }
    if (g.bits === 32 && boot.backupBootSector > 0 && boot.backupBootSector < g.reservedSectors) {
      const backup = await readExact(boot.backupBootSector * ss, 512);
      if (!Buffer.from(backup).equals(Buffer.from(head)))
        add('BACKUP_BOOT', 'warning', `the backup boot sector ${boot.backupBootSector} differs from the boot sector`);
    }
    return problems;
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
    extract,
    check,
  };
}
