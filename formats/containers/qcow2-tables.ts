/**
 * qcow2 cluster mapping (QEMU docs/interop/qcow2.txt, hereafter "qcow2 spec", "Cluster
 * mapping" and "Compressed Clusters Descriptor"): L1 and L2 entries, compressed cluster
 * descriptors and the host clusters they touch. 64-bit entries are two 32-bit halves (hi, lo).
 */
import { fail } from '../common/errors.js';
import { QCOW2_COMPRESSED_SECTOR } from './qcow2.js';

/** L1 entry: bits 9-55 offset of the L2 table, bit 63 "refcount is exactly one" ("Cluster mapping"). */
export function decodeL1Entry(hi: number, lo: number): number {
  return (hi & 0x00ffffff) * 0x100000000 + ((lo & 0xfffffe00) >>> 0);
}

/** L1 entry for an L2 table with refcount 1 (bit 63 set). */
export function encodeL1Entry(l2Offset: number): [number, number] {
  return [(0x80000000 | Math.floor(l2Offset / 0x100000000)) >>> 0, l2Offset >>> 0];
}

export type Qcow2L2Entry =
  | { kind: 'unallocated' }
  /** Standard descriptor bit 0: reads as zeros ("Standard Cluster Descriptor"). */
  | { kind: 'zero' }
  | { kind: 'normal'; hostOffset: number }
  /** Bytes to read start at hostOffset; `length` runs to the end of the last sector. */
  | { kind: 'compressed'; hostOffset: number; length: number };

/** Decode an L2 entry: bit 62 compressed, bit 63 copied, bits 0-61 the descriptor ("Cluster mapping"). */
export function decodeL2Entry(hi: number, lo: number, clusterBits: number): Qcow2L2Entry {
  if (hi & 0x40000000) {
    const d = decodeCompressedDescriptor(hi, lo, clusterBits);
    return { kind: 'compressed', hostOffset: d.hostOffset, length: d.sectors * QCOW2_COMPRESSED_SECTOR - (d.hostOffset % QCOW2_COMPRESSED_SECTOR) };
  }
  if (lo & 1) return { kind: 'zero' };
  const hostOffset = (hi & 0x00ffffff) * 0x100000000 + ((lo & 0xfffffe00) >>> 0);
  // "If the offset is 0 and bit 63 is clear, the cluster is unallocated"; offset 0 with bit 63
  // set is left as a normal cluster at 0 (valid only with external data files) for the caller to refuse.
  return hostOffset === 0 && !(hi & 0x80000000) ? { kind: 'unallocated' } : { kind: 'normal', hostOffset };
}

/** Standard cluster at `hostOffset`, refcount 1 (bit 63). */
export function encodeL2Standard(hostOffset: number): [number, number] {
  return encodeL1Entry(hostOffset);
}

/** x = 62 - (cluster_bits - 8): where the sector count starts ("Compressed Clusters Descriptor"). */
export function compressedOffsetBits(clusterBits: number): number {
  return 62 - (clusterBits - 8);
}

/** Host offset in bits 0..x-1, (sectors - 1) in bits x..61. */
export function decodeCompressedDescriptor(hi: number, lo: number, clusterBits: number): { hostOffset: number; sectors: number } {
  const x = compressedOffsetBits(clusterBits); // 49..61, so the offset's top lies in `hi`
  const hiOffsetBits = x - 32;
  const hostOffset = (hi & ((1 << hiOffsetBits) - 1)) * 0x100000000 + lo;
  const sectorBits = 62 - x;
  const sectors = (((hi & 0x3fffffff) >>> hiOffsetBits) & ((1 << sectorBits) - 1)) + 1;
  return { hostOffset, sectors };
}

/** L2 entry of a compressed cluster whose `byteLength` bytes start at `hostOffset` (bit 62 set, bit 63 clear). */
export function encodeCompressedDescriptor(hostOffset: number, byteLength: number, clusterBits: number): [number, number] {
  const x = compressedOffsetBits(clusterBits);
  // Offsets past 2^53 are not exact in a JS number (and past any real file): refuse them.
  if (!Number.isSafeInteger(hostOffset) || hostOffset < 0)
    throw fail('qcow2', 'INVALID_ARGUMENT', `compressed cluster offset ${hostOffset} is not a safe integer`);
  const extraSectors = Math.floor((hostOffset + byteLength - 1) / QCOW2_COMPRESSED_SECTOR) - Math.floor(hostOffset / QCOW2_COMPRESSED_SECTOR);
  if (byteLength < 1 || extraSectors >= 2 ** (62 - x))
    throw fail('qcow2', 'INVALID_ARGUMENT', `compressed cluster of ${byteLength} bytes does not fit a descriptor`);
  if (hostOffset >= 2 ** x || hostOffset > 2 ** 56)
    throw fail('qcow2', 'INVALID_ARGUMENT', `compressed cluster offset ${hostOffset} is past the descriptor's range`);
  const hiOffsetBits = x - 32;
  const hi = (0x40000000 | (extraSectors << hiOffsetBits) | Math.floor(hostOffset / 0x100000000)) >>> 0;
  return [hi, hostOffset >>> 0];
}

/** Bit 63 of L1/L2 entries, "refcount is exactly one" ("Cluster mapping": QCOW_OFLAG_COPIED). */
export function isCopied(hi: number): boolean {
  return (hi & 0x80000000) !== 0;
}

/** First and last host cluster a compressed descriptor's sectors touch (what qemu counts for it). */
export function compressedHostClusters(hostOffset: number, length: number, clusterBits: number): { first: number; last: number } {
  return { first: Math.floor(hostOffset / 2 ** clusterBits), last: Math.floor((hostOffset + length - 1) / 2 ** clusterBits) };
}
