/**
 * qcow2 written data first (seekable files only; QEMU docs/interop/qcow2.txt): the header
 * cluster and L1 table are reserved at the front, data clusters follow in guest order (all-zero
 * clusters left unallocated, as qemu-img does), then the L2 tables, the refcount table and its
 * blocks; header and L1 are written last with pwrite. One read of the source, so a file costs
 * one pass where a pipe (writer.ts, metadata first) costs two.
 *
 * Compressed clusters (the shared pipeline, compressed-blocks.ts, with qcow2Packer's policy) are
 * packed byte-contiguously; a cluster that does not shrink is stored whole and cluster-aligned.
 * Since L2 entries depend on compressed sizes, this layout is the only one compression can use.
 */
import type { VirtualDisk } from '../../model/extents.js';
import type { ByteSink } from '../../io/sink.js';
import type { WriteContext } from '../types.js';
import { writeNonZeroBlocks } from '../block-layout.js';
import { compressedBlocks, type CompressedBlocksOptions } from '../compressed-blocks.js';
import { entriesToBytes, geometry, qcow2Header, refcountBlock, refcountTable, type Geometry, type Qcow2WriteSettings } from './tables.js';
import { QCOW2_COMPRESSED_SECTOR, QCOW2_COMPRESSION } from '../../../formats/containers/qcow2.js';
import { refcountLayout } from '../../../formats/containers/qcow2-refcounts.js';
import { encodeCompressedDescriptor, encodeL1Entry, encodeL2Standard } from '../../../formats/containers/qcow2-tables.js';

/** 16-bit refcounts (refcount_order 4, "Host cluster management"): the largest count a cluster can hold. */
const MAX_REFCOUNT = 0xffff;

/**
 * qcow2's compression policy: deflate (raw, 4 KiB window, as QEMU) or zstd as the header says,
 * at the requested level; a cluster whose compressed form is not at most cluster_size - 1 bytes
 * is stored whole, as qemu does.
 */
function qcow2Packer(s: Qcow2WriteSettings, g: Geometry, ctx: WriteContext): CompressedBlocksOptions<Uint8Array | undefined>['pack'] {
  const kind = s.compressionType === QCOW2_COMPRESSION.zstd ? 'zstd' : 'deflate-raw';
  const level = ctx.compress?.level;
  return async (data, compressor) => {
    const packed = await compressor.compress(data, kind, level);
    return packed.length < g.cs ? packed : undefined;
  };
}

/** L2 tables created as guest clusters get host offsets. */
function l2Slots(g: Geometry): { tables: Map<number, Uint32Array>; set(guestCluster: number, entry: [number, number]): void } {
  const tables = new Map<number, Uint32Array>();
  return {
    tables,
    set(guestCluster, entry) {
      const t = Math.floor(guestCluster / g.l2Entries);
      let table = tables.get(t);
      if (!table) tables.set(t, (table = new Uint32Array(g.l2Entries * 2)));
      table.set(entry, (guestCluster % g.l2Entries) * 2);
    },
  };
}

/** One forward pass over the source; `ctx.compress` decides whether clusters are compressed. */
export async function writeQcow2DataFirst(disk: VirtualDisk, sink: ByteSink, s: Qcow2WriteSettings, ctx: WriteContext): Promise<void> {
  const g = geometry(disk, s);
  // Per-cluster reference counts only when compressed clusters share host clusters; otherwise
  // every host cluster below the end holds exactly one reference.
  const refcounts: number[] | undefined = ctx.compress ? new Array<number>(1 + g.l1Clusters).fill(1) : undefined;
  const l2 = l2Slots(g);
  let cursor = (1 + g.l1Clusters) * g.cs;
  await sink.skip(cursor); // header and L1, written last
  // No write batching: a file sink already coalesces small writes.
  const padTo = async (offset: number) => {
    if (offset > cursor) await sink.write(new Uint8Array(offset - cursor));
    cursor = offset;
  };
  const roundUp = (n: number) => Math.ceil(n / g.cs) * g.cs;

  const onProgress = (done: number) => ctx.onProgress?.(done, disk.size);
  if (!refcounts) {
    const start = cursor;
    const stored = await writeNonZeroBlocks(disk, sink, g.cs, { onStored: (index, k) => l2.set(index, encodeL2Standard(start + k * g.cs)), onProgress });
    cursor += stored * g.cs;
  } else {
    for await (const r of compressedBlocks(disk, g.cs, { threads: ctx.threads, pack: qcow2Packer(s, g, ctx), onProgress })) {
      if (r.packed) {
        await padTo(placeCompressed(cursor, r.packed.length, g.cs, refcounts));
        l2.set(r.index, encodeCompressedDescriptor(cursor, r.packed.length, s.clusterBits));
        await sink.write(r.packed);
        cursor += r.packed.length;
      } else {
        await padTo(roundUp(cursor));
        l2.set(r.index, encodeL2Standard(cursor));
        refcounts[cursor / g.cs] = 1;
        await sink.write(r.data); // a file sink is done with the reused buffer when this resolves
        cursor += g.cs;
      }
    }
  }
  await padTo(roundUp(cursor));
  ctx.onProgress?.(disk.size, disk.size);

  const l1 = new Uint32Array(g.l1Size * 2);
  for (const t of [...l2.tables.keys()].sort((a, b) => a - b)) {
    l1.set(encodeL1Entry(cursor), t * 2);
    if (refcounts) refcounts[cursor / g.cs] = 1;
    await sink.write(entriesToBytes(l2.tables.get(t)!, g.cs));
    cursor += g.cs;
  }
  const rtCluster = cursor / g.cs;
  const { blocks, tableClusters } = refcountLayout(s.clusterBits, rtCluster);
  const end = rtCluster + tableClusters + blocks;
  if (refcounts) for (let c = rtCluster; c < end; c++) refcounts[c] = 1;
  const countOf = refcounts ? (c: number) => refcounts[c] ?? 0 : (c: number) => (c < end ? 1 : 0);
  await sink.write(refcountTable(g, tableClusters, blocks, rtCluster + tableClusters));
  for (let b = 0; b < blocks; b++) await sink.write(refcountBlock(g, s.clusterBits, b, countOf));
  await sink.pwrite(qcow2Header(s, g, rtCluster, tableClusters), 0);
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
