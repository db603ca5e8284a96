/**
 * FAT12/16/32 allocation table entry packing (fatgen103 "FAT Data Structure"). Pure: bytes in,
 * bytes out. Entry values are cluster numbers, 0 for free, BAD for a bad cluster and any value
 * >= the end-of-chain threshold for the last cluster of a chain.
 */
import { view } from '../common/bytes.js';
import { fail } from '../common/errors.js';

export type FatBits = 12 | 16 | 32;

/** Bits of a FAT32 entry that hold the cluster number; the top 4 are reserved (fatgen103). */
const FAT32_MASK = 0x0fffffff;

/** Entry value a writer stores at the end of a chain (fatgen103: "EOC mark"). */
export function endOfChainMark(bits: FatBits): number {
  return bits === 12 ? 0xfff : bits === 16 ? 0xffff : 0x0fffffff;
}

/** Values >= this end a chain (fatgen103: 0xFF8 / 0xFFF8 / 0x0FFFFFF8). */
export function endOfChainThreshold(bits: FatBits): number {
  return bits === 12 ? 0xff8 : bits === 16 ? 0xfff8 : 0x0ffffff8;
}

/** The bad-cluster mark (fatgen103: 0xFF7 / 0xFFF7 / 0x0FFFFFF7). */
export function badClusterMark(bits: FatBits): number {
  return bits === 12 ? 0xff7 : bits === 16 ? 0xfff7 : 0x0ffffff7;
}

/**
 * The first two entries (fatgen103: FAT[0] holds BPB_Media in its low 8 bits, all other bits
 * set; FAT[1] holds an EOC mark, its high bits the clean-shutdown / no-error flags, set).
 */
export function reservedEntries(bits: FatBits, media: number): [number, number] {
  const all = endOfChainMark(bits);
  return [(all & ~0xff) | (media & 0xff), all];
}

/** Bytes needed for `entries` FAT entries. */
export function fatBytesFor(bits: FatBits, entries: number): number {
  return bits === 12 ? Math.ceil((entries * 3) / 2) : entries * (bits / 8);
}

/** Pack entries into `out` (which must hold fatBytesFor(bits, entries.length) bytes). */
export function encodeFatEntries(bits: FatBits, entries: ArrayLike<number>, out: Uint8Array): void {
  const need = fatBytesFor(bits, entries.length);
  if (out.length < need) throw fail('fat', 'INVALID_ARGUMENT', `FAT buffer of ${out.length} bytes cannot hold ${entries.length} entries`);
  const dv = view(out);
  for (let i = 0; i < entries.length; i++) {
    const v = entries[i];
    if (bits === 16) dv.setUint16(i * 2, v & 0xffff, true);
    else if (bits === 32) dv.setUint32(i * 4, v & FAT32_MASK, true);
    else {
      // FAT12: entry N sits at byte N + N/2; odd entries use the high 12 bits of the pair.
      const at = i + (i >> 1);
      if (i & 1) {
        out[at] = (out[at] & 0x0f) | ((v & 0x0f) << 4);
        out[at + 1] = (v >> 4) & 0xff;
      } else {
        out[at] = v & 0xff;
        out[at + 1] = (out[at + 1] & 0xf0) | ((v >> 8) & 0x0f);
      }
    }
  }
}

/** Decode `count` entries from FAT bytes; throws TRUNCATED when the bytes are too short. */
export function decodeFatEntries(bits: FatBits, bytes: Uint8Array, count: number): Uint32Array {
  const need = fatBytesFor(bits, count);
  if (bytes.length < need) throw fail('fat', 'TRUNCATED', `FAT of ${bytes.length} bytes cannot hold ${count} entries`);
  const out = new Uint32Array(count);
  const dv = view(bytes);
  for (let i = 0; i < count; i++) {
    if (bits === 16) out[i] = dv.getUint16(i * 2, true);
    else if (bits === 32) out[i] = dv.getUint32(i * 4, true) & FAT32_MASK;
    else {
      const at = i + (i >> 1);
      const pair = bytes[at] | (bytes[at + 1] << 8);
      out[i] = i & 1 ? pair >> 4 : pair & 0x0fff;
    }
  }
  return out;
}

/** Typed-array views store in the host's byte order; FAT entries are little-endian. */
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * The used prefix of a FAT in which every chain is a run of consecutive clusters (how diskmint
 * lays out the volumes it makes): entry k of a chain holds k + 1, its last entry the EOC mark;
 * entries 0 and 1 are the reserved ones. `out` must be zeroed (free entries stay 0) and hold
 * the entries up to the last chain's end. Same bytes as encodeFatEntries of those entries, in
 * one pass over a typed view (a 64 MiB tree of 512-byte clusters: ~2.5 ms instead of ~7).
 */
export function encodeContiguousFat(bits: FatBits, media: number, chains: ReadonlyArray<readonly [first: number, count: number]>, out: Uint8Array): void {
  let entries = 2;
  for (const [first, count] of chains) {
    if (!Number.isSafeInteger(first) || !Number.isSafeInteger(count) || first < 2 || count < 1 || first + count > badClusterMark(bits)) {
      throw fail('fat', 'INVALID_ARGUMENT', `chain of ${count} clusters from ${first} is not a valid FAT${bits} cluster range`);
    }
    entries = Math.max(entries, first + count);
  }
  const eoc = endOfChainMark(bits);
  const aligned = out.byteOffset % (bits / 8) === 0;
  if (bits === 12 || !HOST_IS_LITTLE_ENDIAN || !aligned) {
    const values = new Uint32Array(entries);
    for (const [first, count] of chains) {
      for (let k = first; k < first + count - 1; k++) values[k] = k + 1;
      values[first + count - 1] = eoc;
    }
    [values[0], values[1]] = reservedEntries(bits, media);
    encodeFatEntries(bits, values, out);
    return;
  }
  if (out.length < fatBytesFor(bits, entries)) throw fail('fat', 'INVALID_ARGUMENT', `FAT buffer of ${out.length} bytes cannot hold ${entries} entries`);
  const view = bits === 32 ? new Uint32Array(out.buffer, out.byteOffset, entries) : new Uint16Array(out.buffer, out.byteOffset, entries);
  for (const [first, count] of chains) {
    const last = first + count - 1;
    for (let k = first; k < last; k++) view[k] = k + 1;
    view[last] = eoc;
  }
  [view[0], view[1]] = reservedEntries(bits, media);
}
