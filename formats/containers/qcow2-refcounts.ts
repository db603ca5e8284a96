/**
 * qcow2 refcounts (QEMU docs/interop/qcow2.txt, hereafter "qcow2 spec", "Host cluster
 * management"): refcount table entries, refcount block entries of any width, and the layout of
 * refcount structures that cover a file. 64-bit entries are two 32-bit halves (hi, lo).
 */
import { fail } from '../common/errors.js';

/** Refcount entries per block: cluster_size * 8 / refcount_bits ("Host cluster management"). */
export function refcountsPerBlock(clusterBits: number, refcountBits = 16): number {
  return (2 ** clusterBits * 8) / refcountBits;
}

/**
 * Refcount structures that cover `otherClusters` clusters plus themselves: the number of
 * refcount blocks and of refcount table clusters (one table entry, 8 bytes, per block).
 */
export function refcountLayout(clusterBits: number, otherClusters: number, refcountBits = 16): { blocks: number; tableClusters: number } {
  const perBlock = refcountsPerBlock(clusterBits, refcountBits);
  const cs = 2 ** clusterBits;
  let blocks = 0;
  let tableClusters = 0;
  for (;;) {
    const total = otherClusters + blocks + tableClusters;
    const needBlocks = Math.ceil(total / perBlock);
    const needTable = Math.max(1, Math.ceil((needBlocks * 8) / cs));
    if (needBlocks === blocks && needTable === tableClusters) return { blocks, tableClusters };
    blocks = Math.max(blocks, needBlocks);
    tableClusters = Math.max(tableClusters, needTable);
  }
}

/** Refcount table entry: bits 9-63 the refcount block's offset, no flags ("Host cluster management"). */
export function decodeRefcountTableEntry(hi: number, lo: number): number {
  return hi * 0x100000000 + ((lo & 0xfffffe00) >>> 0);
}

export function encodeRefcountTableEntry(blockOffset: number): [number, number] {
  return [Math.floor(blockOffset / 0x100000000) >>> 0, blockOffset >>> 0];
}

/**
 * Refcount `index` of a refcount block of 2^order-bit entries: big-endian from 8 bits up, and
 * "if refcount_bits implies a sub-byte width, bit 0 means the least significant bit" (qcow2 spec,
 * "Host cluster management"). 64-bit counts are read as two halves.
 */
export function getRefcount(block: Uint8Array, index: number, order: number): number {
  const view = new DataView(block.buffer, block.byteOffset, block.length);
  if (order === 6) return view.getUint32(index * 8) * 0x100000000 + view.getUint32(index * 8 + 4);
  if (order === 5) return view.getUint32(index * 4);
  if (order === 4) return view.getUint16(index * 2);
  if (order === 3) return block[index];
  const bits = 2 ** order;
  return (block[Math.floor((index * bits) / 8)] >> ((index * bits) % 8)) & ((1 << bits) - 1);
}

/** Set refcount `index` (0 <= value < 2^53 and below 2^refcount_bits); see getRefcount. */
export function setRefcount(block: Uint8Array, index: number, order: number, value: number): void {
  if (value < 0 || value >= 2 ** Math.min(53, 2 ** order)) throw fail('qcow2', 'INVALID_ARGUMENT', `refcount ${value} does not fit ${2 ** order} bits`);
  const view = new DataView(block.buffer, block.byteOffset, block.length);
  if (order === 6) {
    view.setUint32(index * 8, Math.floor(value / 0x100000000));
    view.setUint32(index * 8 + 4, value >>> 0);
  } else if (order === 5) view.setUint32(index * 4, value);
  else if (order === 4) view.setUint16(index * 2, value);
  else if (order === 3) block[index] = value;
  else {
    const bits = 2 ** order;
    const at = Math.floor((index * bits) / 8);
    const shift = (index * bits) % 8;
    block[at] = (block[at] & ~(((1 << bits) - 1) << shift)) | (value << shift);
  }
}
