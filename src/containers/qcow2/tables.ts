/**
 * What both qcow2 writer layouts share (QEMU docs/interop/qcow2.txt): geometry from the disk and
 * cluster size, table encoders (L1/L2 and refcount entries, big-endian), the header.
 */
import { DiskmintError } from '../../model/errors.js';
import type { VirtualDisk } from '../../model/extents.js';
import { QCOW2_FEATURE_NAMES, QCOW2_MAX_L1_BYTES, encodeQcow2Header, l1EntriesFor, l2EntriesPerTable } from '../../../formats/containers/qcow2.js';
import { refcountsPerBlock } from '../../../formats/containers/qcow2-refcounts.js';

export interface Qcow2WriteSettings {
  version: 2 | 3;
  clusterBits: number;
  compressionType: number;
}

export interface Geometry {
  cs: number;
  l2Entries: number;
  l1Size: number;
  l1Clusters: number;
  /** The header's size: the disk rounded up to whole 512-byte sectors (qemu reads `size / 512` sectors). */
  virtualSize: number;
}

export function geometry(disk: VirtualDisk, s: Qcow2WriteSettings): Geometry {
  const cs = 2 ** s.clusterBits;
  const virtualSize = Math.ceil(disk.size / 512) * 512;
  const l1Size = l1EntriesFor(virtualSize, s.clusterBits);
  if (l1Size * 8 > QCOW2_MAX_L1_BYTES) {
    throw new DiskmintError(
      'BAD_ARGUMENT',
      `a ${disk.size}-byte disk needs an L1 table larger than qemu's 32 MiB limit with ${cs}-byte clusters; choose a larger cluster_size`,
    );
  }
  // An empty disk has no L1 table at all (offset 0), as qemu-img create writes it.
  return { cs, l2Entries: l2EntriesPerTable(s.clusterBits), l1Size, l1Clusters: Math.ceil((l1Size * 8) / cs), virtualSize };
}

/** Big-endian 64-bit entries (hi, lo pairs) into a zero-padded buffer of `bytes` bytes. */
export function entriesToBytes(entries: Uint32Array, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  const view = new DataView(out.buffer);
  for (let i = 0; i < entries.length; i++) view.setUint32(i * 4, entries[i]);
  return out;
}

/** Refcount block `b` of 16-bit counts, taken from `countOf(hostCluster)`. */
export function refcountBlock(g: Geometry, clusterBits: number, b: number, countOf: (cluster: number) => number): Uint8Array {
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
export function refcountTable(g: Geometry, tableClusters: number, blocks: number, firstBlock: number): Uint8Array {
  const entries = new Uint32Array(blocks * 2);
  for (let b = 0; b < blocks; b++) entries.set(encodeL2StandardPlain((firstBlock + b) * g.cs), b * 2);
  return entriesToBytes(entries, tableClusters * g.cs);
}

/** Refcount table entries carry only the offset (bits 9-63), no flags. */
function encodeL2StandardPlain(offset: number): [number, number] {
  return [Math.floor(offset / 0x100000000) >>> 0, offset >>> 0];
}

export function qcow2Header(s: Qcow2WriteSettings, g: Geometry, refcountTableCluster: number, tableClusters: number): Uint8Array {
  return encodeQcow2Header({
    version: s.version,
    clusterBits: s.clusterBits,
    size: g.virtualSize,
    l1Size: g.l1Size,
    l1TableOffset: g.l1Size ? g.cs : 0,
    refcountTableOffset: refcountTableCluster * g.cs,
    refcountTableClusters: tableClusters,
    compressionType: s.compressionType,
    featureNames: s.version === 3 ? QCOW2_FEATURE_NAMES : undefined,
  });
}
