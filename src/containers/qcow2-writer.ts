/**
 * qcow2 writer (QEMU docs/interop/qcow2.txt, "qcow2 spec"). Two layouts:
 *
 * Uncompressed, one forward pass (works on pipes): header cluster, L1 table, refcount table,
 * refcount blocks, L2 tables, then data clusters in guest order. Every offset is computed up
 * front, so the set of data clusters must be known first: a pre-scan reads the data once
 * (readBlocks + isAllZero) to drop all-zero clusters (left unallocated, as qemu-img does),
 * then a second pass writes them. Files get the same layout, so file and pipe bytes agree;
 * the price is reading the source twice. Only chunks that hold data are read (1 MiB at a
 * time, split into clusters), so cost follows the data, not the virtual size.
 *
 * Compressed (seekable sinks only, since L2 entries depend on compressed sizes): header and
 * L1 are reserved at the front, data follows (compressed clusters packed byte-contiguously,
 * clusters that do not shrink stored whole and cluster-aligned), then L2 tables, refcount
 * table and blocks; header and L1 are written last with pwrite.
 *
 * The header's virtual size is the disk's size rounded up to a multiple of 512: qemu reads a
 * qcow2 as size / 512 whole sectors and would drop a partial last sector.
 */
import { DiskmintError } from '../errors.js';
import type { VirtualDisk } from '../extents.js';
import type { ByteSink } from './sink.js';
import type { WriteContext } from './types.js';
import { isAllZero, readBlocks } from './blocks.js';
import { mapOrdered } from './compress.js';
import {
  QCOW2_COMPRESSED_SECTOR, QCOW2_COMPRESSION, QCOW2_FEATURE_NAMES, QCOW2_MAX_CLUSTER_BITS, QCOW2_MAX_L1_BYTES,
  QCOW2_MIN_CLUSTER_BITS, encodeCompressedDescriptor, encodeL1Entry, encodeL2Standard, encodeQcow2Header,
  l1EntriesFor, l2EntriesPerTable, refcountLayout, refcountsPerBlock,
} from '../../formats/qcow2.js';

export const QCOW2_OPTION_KEYS = ['compat', 'cluster_size', 'compression_type', 'refcount_bits', 'preallocation'] as const;

export interface Qcow2WriteSettings {
  version: 2 | 3;
  clusterBits: number;
  compressionType: number;
}

/** qemu-img's default cluster_size (64 KiB). */
const DEFAULT_CLUSTER_SIZE = 65536;
/** 16-bit refcounts (refcount_order 4, "Host cluster management"): the largest count a cluster can hold. */
const MAX_REFCOUNT = 0xffff;

const bad = (message: string) => new DiskmintError('BAD_ARGUMENT', message);

/** qemu-style sizes: a number with an optional k/M suffix (binary units). */
function parseSize(text: string): number | undefined {
  const m = /^(\d+)\s*([bkmg]?)$/i.exec(text.trim());
  if (!m) return undefined;
  return Number(m[1]) * { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase() as '' | 'b' | 'k' | 'm' | 'g'];
}

/** Validate `-o` options and the compression request into writer settings. */
export function qcow2WriteSettings(options: Readonly<Record<string, string>>, compress: WriteContext['compress']): Qcow2WriteSettings {
  for (const key of Object.keys(options)) {
    if (!(QCOW2_OPTION_KEYS as readonly string[]).includes(key)) throw bad(`qcow2 does not support option "${key}" (supported: ${QCOW2_OPTION_KEYS.join(', ')})`);
  }
  const compat = (options.compat ?? '1.1').toLowerCase();
  let version: 2 | 3;
  if (compat === '1.1' || compat === 'v3') version = 3;
  else if (compat === '0.10' || compat === 'v2') version = 2;
  else throw bad(`qcow2 option compat="${options.compat}" must be 1.1 (v3) or 0.10 (v2)`);

  const clusterSize = options.cluster_size === undefined ? DEFAULT_CLUSTER_SIZE : parseSize(options.cluster_size);
  const clusterBits = clusterSize ? Math.log2(clusterSize) : NaN;
  if (!Number.isInteger(clusterBits) || clusterBits < QCOW2_MIN_CLUSTER_BITS || clusterBits > QCOW2_MAX_CLUSTER_BITS) {
    throw bad(`qcow2 option cluster_size="${options.cluster_size}" must be a power of two from 512 to 2M`);
  }
  if (options.refcount_bits !== undefined && options.refcount_bits !== '16') throw bad(`qcow2 option refcount_bits="${options.refcount_bits}": only 16 is supported`);
  if (options.preallocation !== undefined && options.preallocation !== 'off') throw bad(`qcow2 option preallocation="${options.preallocation}": only off is supported`);

  let compressionType: number = QCOW2_COMPRESSION.zlib;
  const typeOption = options.compression_type?.toLowerCase();
  if (typeOption !== undefined && typeOption !== 'zlib' && typeOption !== 'zstd') throw bad(`qcow2 option compression_type="${options.compression_type}" must be zlib or zstd`);
  if (typeOption !== undefined && compress && (compress.algorithm === 'zstd') !== (typeOption === 'zstd')) {
    throw bad(`compression ${compress.algorithm} conflicts with qcow2 option compression_type=${typeOption}`);
  }
  if (typeOption === 'zstd' || (typeOption === undefined && compress?.algorithm === 'zstd')) compressionType = QCOW2_COMPRESSION.zstd;
  if (compressionType === QCOW2_COMPRESSION.zstd && version === 2) throw bad('zstd compression needs qcow2 compat=1.1 (version 3); compat=0.10 supports only zlib');
  return { version, clusterBits, compressionType };
}

interface Geometry {
  cs: number;
  l2Entries: number;
  l1Size: number;
  l1Clusters: number;
  /** The header's size: the disk rounded up to whole 512-byte sectors (qemu reads `size / 512` sectors). */
  virtualSize: number;
}

function geometry(disk: VirtualDisk, s: Qcow2WriteSettings): Geometry {
  const cs = 2 ** s.clusterBits;
  const virtualSize = Math.ceil(disk.size / 512) * 512;
  const l1Size = l1EntriesFor(virtualSize, s.clusterBits);
  if (l1Size * 8 > QCOW2_MAX_L1_BYTES) {
    throw bad(`a ${disk.size}-byte disk needs an L1 table larger than qemu's 32 MiB limit with ${cs}-byte clusters; choose a larger cluster_size`);
  }
  // An empty disk has no L1 table at all (offset 0), as qemu-img create writes it.
  return { cs, l2Entries: l2EntriesPerTable(s.clusterBits), l1Size, l1Clusters: Math.ceil((l1Size * 8) / cs), virtualSize };
}

/** Big-endian 64-bit entries (hi, lo pairs) into a zero-padded buffer of `bytes` bytes. */
function entriesToBytes(entries: Uint32Array, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  const view = new DataView(out.buffer);
  for (let i = 0; i < entries.length; i++) view.setUint32(i * 4, entries[i]);
  return out;
}

/** Refcount block `b` of 16-bit counts, taken from `countOf(hostCluster)`. */
function refcountBlock(g: Geometry, clusterBits: number, b: number, countOf: (cluster: number) => number): Uint8Array {
  const per = refcountsPerBlock(clusterBits);
  const out = new Uint8Array(g.cs);
  const view = new DataView(out.buffer);
  for (let i = 0; i < per; i++) {
    const n = countOf(b * per + i);
    if (n) view.setUint16(i * 2, n);
  }
  return out;
}

/** Refcount table: entry i points at refcount block i (the blocks sit contiguously at `firstBlock`). */
function refcountTable(g: Geometry, tableClusters: number, blocks: number, firstBlock: number): Uint8Array {
  const entries = new Uint32Array(blocks * 2);
  for (let b = 0; b < blocks; b++) entries.set(encodeL2StandardPlain((firstBlock + b) * g.cs), b * 2);
  return entriesToBytes(entries, tableClusters * g.cs);
}

/** Refcount table entries carry only the offset (bits 9-63), no flags. */
function encodeL2StandardPlain(offset: number): [number, number] {
  return [Math.floor(offset / 0x100000000) >>> 0, offset >>> 0];
}

function header(s: Qcow2WriteSettings, g: Geometry, refcountTableCluster: number, tableClusters: number): Uint8Array {
  return encodeQcow2Header({
    version: s.version, clusterBits: s.clusterBits, size: g.virtualSize, l1Size: g.l1Size, l1TableOffset: g.l1Size ? g.cs : 0,
    refcountTableOffset: refcountTableCluster * g.cs, refcountTableClusters: tableClusters, compressionType: s.compressionType,
    featureNames: s.version === 3 ? QCOW2_FEATURE_NAMES : undefined,
  });
}

/** Source reads go in chunks of at least 1 MiB (a multiple of the cluster size), then split into clusters. */
const READ_CHUNK = 1024 * 1024;

/**
 * Clusters of the chunks that hold data, ascending, each `{ index, data }` with `data` a view
 * of a fresh chunk (consumers may keep it). Clusters past the disk's end are left out.
 */
async function* readClusterGroups(disk: VirtualDisk, cs: number): AsyncGenerator<Array<{ index: number; data: Uint8Array }>> {
  const chunk = Math.max(cs, READ_CHUNK);
  const lastCluster = Math.ceil(disk.size / cs) - 1;
  for await (const block of readBlocks(disk, chunk)) {
    const group: Array<{ index: number; data: Uint8Array }> = [];
    const first = (block.index * chunk) / cs;
    for (let i = 0; i < chunk / cs && first + i <= lastCluster; i++) group.push({ index: first + i, data: block.data.subarray(i * cs, (i + 1) * cs) });
    yield group;
  }
}

async function* readClusters(disk: VirtualDisk, cs: number): AsyncGenerator<{ index: number; data: Uint8Array }> {
  for await (const group of readClusterGroups(disk, cs)) yield* group;
}

/** Gathers small writes into pieces of about 1 MiB (one sink.write each). */
function batchedWriter(sink: ByteSink): { write(data: Uint8Array): Promise<void>; flush(): Promise<void> } {
  let parts: Uint8Array[] = [];
  let bytes = 0;
  const flush = async () => {
    if (!parts.length) return;
    const joined = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    parts = [];
    bytes = 0;
    await sink.write(joined);
  };
  return {
    async write(data) {
      parts.push(data);
      bytes += data.length;
      if (bytes >= READ_CHUNK) await flush();
    },
    flush,
  };
}

/** One forward pass; see the file comment. */
export async function writeQcow2Uncompressed(disk: VirtualDisk, sink: ByteSink, s: Qcow2WriteSettings, ctx: WriteContext): Promise<void> {
  const g = geometry(disk, s);
  const data: number[] = [];
  // Progress: the pre-scan counts as the first half of the work, the write as the second.
  const progress = (pass: number, index: number) => ctx.onProgress?.(Math.floor((pass * disk.size + Math.min(disk.size, (index + 1) * g.cs)) / 2), disk.size);
  for await (const group of readClusterGroups(disk, g.cs)) {
    for (const c of group) if (!isAllZero(c.data)) data.push(c.index);
    progress(0, group[group.length - 1].index);
  }
  const tables: number[] = [];
  for (const c of data) {
    const t = Math.floor(c / g.l2Entries);
    if (tables[tables.length - 1] !== t) tables.push(t);
  }
  const rtCluster = 1 + g.l1Clusters;
  const { blocks, tableClusters } = refcountLayout(s.clusterBits, 1 + g.l1Clusters + tables.length + data.length);
  const firstBlock = rtCluster + tableClusters;
  const firstL2 = firstBlock + blocks;
  const firstData = firstL2 + tables.length;
  const totalClusters = firstData + data.length;

  const out = batchedWriter(sink);
  await out.write(header(s, g, rtCluster, tableClusters));
  const l1 = new Uint32Array(g.l1Size * 2);
  tables.forEach((t, i) => l1.set(encodeL1Entry((firstL2 + i) * g.cs), t * 2));
  await out.write(entriesToBytes(l1, g.l1Clusters * g.cs));
  await out.write(refcountTable(g, tableClusters, blocks, firstBlock));
  for (let b = 0; b < blocks; b++) await out.write(refcountBlock(g, s.clusterBits, b, (c) => (c < totalClusters ? 1 : 0)));
  let next = 0;
  for (const t of tables) {
    const l2 = new Uint32Array(g.l2Entries * 2);
    for (; next < data.length && Math.floor(data[next] / g.l2Entries) === t; next++) {
      l2.set(encodeL2Standard((firstData + next) * g.cs), (data[next] % g.l2Entries) * 2);
    }
    await out.write(entriesToBytes(l2, g.cs));
  }
  let written = 0;
  for await (const group of readClusterGroups(disk, g.cs)) {
    for (const c of group) {
      if (written < data.length && data[written] === c.index) {
        await out.write(c.data);
        written++;
      }
    }
    progress(1, group[group.length - 1].index);
  }
  await out.flush();
  ctx.onProgress?.(disk.size, disk.size);
  if (written !== data.length) throw new DiskmintError('IO', 'source data changed while the qcow2 image was written');
}

/** Compressed clusters; needs `sink.pwrite` (checked by the caller before any byte is written). */
export async function writeQcow2Compressed(disk: VirtualDisk, sink: ByteSink, s: Qcow2WriteSettings, ctx: WriteContext): Promise<void> {
  const g = geometry(disk, s);
  const level = ctx.compress?.level;
  const kind = s.compressionType === QCOW2_COMPRESSION.zstd ? 'zstd' : 'deflate-raw';
  const refcounts: number[] = new Array<number>(1 + g.l1Clusters).fill(1); // header and L1
  const l2Tables = new Map<number, Uint32Array>();
  const entrySlot = (guestCluster: number) => {
    const t = Math.floor(guestCluster / g.l2Entries);
    let table = l2Tables.get(t);
    if (!table) l2Tables.set(t, (table = new Uint32Array(g.l2Entries * 2)));
    return { table, at: (guestCluster % g.l2Entries) * 2 };
  };
  let cursor = (1 + g.l1Clusters) * g.cs;
  await sink.skip(cursor); // header and L1, written last
  const out = batchedWriter(sink);
  const padTo = async (offset: number) => {
    if (offset > cursor) await out.write(new Uint8Array(offset - cursor));
    cursor = offset;
  };
  const roundUp = (n: number) => Math.ceil(n / g.cs) * g.cs;

  const results = mapOrdered(readClusters(disk, g.cs), ctx.compressor.concurrency, async (b) => {
    if (isAllZero(b.data)) return { index: b.index, raw: undefined, packed: undefined };
    const packed = await ctx.compressor.compress(b.data, kind, level);
    // qemu stores a cluster whole when its compressed form is not at most cluster_size - 1 bytes.
    return packed.length < g.cs ? { index: b.index, raw: undefined, packed } : { index: b.index, raw: b.data, packed: undefined };
  });
  for await (const r of results) {
    ctx.onProgress?.(Math.min(disk.size, (r.index + 1) * g.cs), disk.size);
    if (r.raw) {
      await padTo(roundUp(cursor));
      const { table, at } = entrySlot(r.index);
      table.set(encodeL2Standard(cursor), at);
      refcounts[cursor / g.cs] = 1;
      await out.write(r.raw);
      cursor += g.cs;
    } else if (r.packed) {
      await padTo(placeCompressed(cursor, r.packed.length, g.cs, refcounts));
      const { table, at } = entrySlot(r.index);
      table.set(encodeCompressedDescriptor(cursor, r.packed.length, s.clusterBits), at);
      await out.write(r.packed);
      cursor += r.packed.length;
    }
  }
  await padTo(roundUp(cursor));
  ctx.onProgress?.(disk.size, disk.size);

  const l1 = new Uint32Array(g.l1Size * 2);
  for (const t of [...l2Tables.keys()].sort((a, b) => a - b)) {
    l1.set(encodeL1Entry(cursor), t * 2);
    refcounts[cursor / g.cs] = 1;
    await out.write(entriesToBytes(l2Tables.get(t)!, g.cs));
    cursor += g.cs;
  }
  const rtCluster = cursor / g.cs;
  const { blocks, tableClusters } = refcountLayout(s.clusterBits, rtCluster);
  for (let c = rtCluster; c < rtCluster + tableClusters + blocks; c++) refcounts[c] = 1;
  await out.write(refcountTable(g, tableClusters, blocks, rtCluster + tableClusters));
  for (let b = 0; b < blocks; b++) await out.write(refcountBlock(g, s.clusterBits, b, (c) => refcounts[c] ?? 0));
  await out.flush();
  await sink.pwrite(header(s, g, rtCluster, tableClusters), 0);
  if (g.l1Clusters) await sink.pwrite(entriesToBytes(l1, g.l1Clusters * g.cs), g.cs);
}

/**
 * Where `length` compressed bytes go: at `cursor`, packed after the previous ones, unless a host
 * cluster they touch already holds MAX_REFCOUNT references; then at the next cluster boundary.
 * Every host cluster overlapping the descriptor's 512-byte sectors gains a reference (that is
 * how qemu-img check counts them); `refcounts` is updated.
 */
export function placeCompressed(cursor: number, length: number, cs: number, refcounts: number[]): number {
  let offset = cursor;
  let span = sectorSpanClusters(offset, length, cs);
  if (span.some((c) => (refcounts[c] ?? 0) >= MAX_REFCOUNT)) {
    offset = Math.ceil(cursor / cs) * cs;
    span = sectorSpanClusters(offset, length, cs);
  }
  for (const c of span) refcounts[c] = (refcounts[c] ?? 0) + 1;
  return offset;
}

/** Host clusters touched by the 512-byte sectors holding `length` bytes at `offset`. */
function sectorSpanClusters(offset: number, length: number, cs: number): number[] {
  const start = Math.floor(offset / QCOW2_COMPRESSED_SECTOR) * QCOW2_COMPRESSED_SECTOR;
  const end = (Math.floor((offset + length - 1) / QCOW2_COMPRESSED_SECTOR) + 1) * QCOW2_COMPRESSED_SECTOR;
  const out: number[] = [];
  for (let c = Math.floor(start / cs); c <= Math.floor((end - 1) / cs); c++) out.push(c);
  return out;
}

/** Entry point used by the handler: settings, the pipe check, then the right layout. */
export async function writeQcow2(disk: VirtualDisk, sink: ByteSink, ctx: WriteContext): Promise<void> {
  const settings = qcow2WriteSettings(ctx.options, ctx.compress);
  if (ctx.compress) {
    if (!sink.seekable) {
      throw new DiskmintError('BAD_ARGUMENT', 'compressed qcow2 cannot be written to a pipe (its tables depend on compressed sizes): write to a file instead');
    }
    geometry(disk, settings);
    return writeQcow2Compressed(disk, sink, settings, ctx);
  }
  return writeQcow2Uncompressed(disk, sink, settings, ctx);
}
