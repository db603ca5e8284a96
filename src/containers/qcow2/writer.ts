/**
 * qcow2 writer (QEMU docs/interop/qcow2.txt, "qcow2 spec"): option parsing and the choice of
 * layout. Files get the data-first layout (data-first.ts: one read of the source, and the
 * only layout compression can use). Pipes get this file's metadata-first layout:
 *
 * Header cluster, L1 table, refcount table, refcount blocks, L2 tables, then data clusters in
 * guest order, in one forward pass. Every offset is computed up front, so the set of data
 * clusters must be known first: the shared pre-scan (block-layout.ts) finds the non-zero
 * clusters (all-zero ones are left unallocated, as qemu-img does), then a second pass writes
 * them. Only chunks that hold data are read, so cost follows the data, not the virtual size.
 *
 * The header's virtual size is the disk's size rounded up to a multiple of 512: qemu reads a
 * qcow2 as size / 512 whole sectors and would drop a partial last sector.
 */
import { DiskmintError } from '../../model/errors.js';
import type { VirtualDisk } from '../../model/extents.js';
import type { ByteSink } from '../../io/sink.js';
import type { WriteContext } from '../types.js';
import { READ_CHUNK } from '../blocks.js';
import { scanNonZeroBlocks, twoPassProgress, writeListedBlocks } from '../block-layout.js';
import { parseByteSize } from '../../model/size.js';
import { writeQcow2DataFirst } from './data-first.js';
import { entriesToBytes, geometry, qcow2Header, refcountBlock, refcountTable, type Qcow2WriteSettings } from './tables.js';
import { QCOW2_COMPRESSION, QCOW2_MAX_CLUSTER_BITS, QCOW2_MIN_CLUSTER_BITS } from '../../../formats/containers/qcow2.js';
import { refcountLayout } from '../../../formats/containers/qcow2-refcounts.js';
import { encodeL1Entry, encodeL2Standard } from '../../../formats/containers/qcow2-tables.js';

export type { Qcow2WriteSettings } from './tables.js';

export const QCOW2_OPTION_KEYS = ['compat', 'cluster_size', 'compression_type', 'refcount_bits', 'preallocation'] as const;

/** qemu-img's default cluster_size (64 KiB). */
const DEFAULT_CLUSTER_SIZE = 65536;

const bad = (message: string) => new DiskmintError('BAD_ARGUMENT', message);

/** Validate `-o` options and the compression request into writer settings. */
export function qcow2WriteSettings(options: Readonly<Record<string, string>>, compress: WriteContext['compress']): Qcow2WriteSettings {
  for (const key of Object.keys(options)) {
    if (!(QCOW2_OPTION_KEYS as readonly string[]).includes(key))
      throw bad(`qcow2 does not support option "${key}" (supported: ${QCOW2_OPTION_KEYS.join(', ')})`);
  }
  const compat = (options.compat ?? '1.1').toLowerCase();
  let version: 2 | 3;
  if (compat === '1.1' || compat === 'v3') version = 3;
  else if (compat === '0.10' || compat === 'v2') version = 2;
  else throw bad(`qcow2 option compat="${options.compat}" must be 1.1 (v3) or 0.10 (v2)`);

  const clusterSize = options.cluster_size === undefined ? DEFAULT_CLUSTER_SIZE : parseByteSize(options.cluster_size);
  const clusterBits = clusterSize ? Math.log2(clusterSize) : NaN;
  if (!Number.isInteger(clusterBits) || clusterBits < QCOW2_MIN_CLUSTER_BITS || clusterBits > QCOW2_MAX_CLUSTER_BITS) {
    throw bad(`qcow2 option cluster_size="${options.cluster_size}" must be a power of two from 512 to 2M`);
  }
  if (options.refcount_bits !== undefined && options.refcount_bits !== '16')
    throw bad(`qcow2 option refcount_bits="${options.refcount_bits}": only 16 is supported`);
  if (options.preallocation !== undefined && options.preallocation !== 'off')
    throw bad(`qcow2 option preallocation="${options.preallocation}": only off is supported`);

  let compressionType: number = QCOW2_COMPRESSION.zlib;
  const typeOption = options.compression_type?.toLowerCase();
  if (typeOption !== undefined && typeOption !== 'zlib' && typeOption !== 'zstd')
    throw bad(`qcow2 option compression_type="${options.compression_type}" must be zlib or zstd`);
  if (typeOption !== undefined && compress?.algorithm !== undefined && (compress.algorithm === 'zstd') !== (typeOption === 'zstd')) {
    throw bad(`compression ${compress.algorithm} conflicts with qcow2 option compression_type=${typeOption}`);
  }
  if (typeOption === 'zstd' || (typeOption === undefined && compress?.algorithm === 'zstd')) compressionType = QCOW2_COMPRESSION.zstd;
  if (compressionType === QCOW2_COMPRESSION.zstd && version === 2)
    throw bad('zstd compression needs qcow2 compat=1.1 (version 3); compat=0.10 supports only zlib');
  return { version, clusterBits, compressionType };
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

/** Metadata first, for pipes: a pre-scan, then one forward pass; see the file comment. */
export async function writeQcow2MetadataFirst(disk: VirtualDisk, sink: ByteSink, s: Qcow2WriteSettings, ctx: WriteContext): Promise<void> {
  const g = geometry(disk, s);
  const progress = twoPassProgress(disk.size, ctx.onProgress && ((done) => ctx.onProgress?.(done, disk.size)));
  const data = await scanNonZeroBlocks(disk, g.cs, progress.scan);
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
  await out.write(qcow2Header(s, g, rtCluster, tableClusters));
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
  await out.flush();
  await writeListedBlocks(disk, sink, g.cs, data, { onProgress: progress.write });
  ctx.onProgress?.(disk.size, disk.size);
}

/** Entry point used by the handler: settings, then data first for files, metadata first for pipes. */
export async function writeQcow2(disk: VirtualDisk, sink: ByteSink, ctx: WriteContext): Promise<void> {
  const settings = qcow2WriteSettings(ctx.options, ctx.compress);
  geometry(disk, settings); // refuses an oversized L1 before any byte is written
  if (sink.seekable) return writeQcow2DataFirst(disk, sink, settings, ctx);
  if (ctx.compress) {
    throw new DiskmintError('BAD_ARGUMENT', 'compressed qcow2 cannot be written to a pipe (its tables depend on compressed sizes): write to a file instead');
  }
  return writeQcow2MetadataFirst(disk, sink, settings, ctx);
}
