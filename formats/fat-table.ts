/**
 * FAT12/16/32 allocation table entry packing (fatgen103 "FAT Data Structure"). Pure: bytes in,
 * bytes out. Entry values are cluster numbers, 0 for free, BAD for a bad cluster and any value
 * >= the end-of-chain threshold for the last cluster of a chain.
 */
import { formatError } from './errors.js';

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
export function packFatEntries(bits: FatBits, entries: ArrayLike<number>, out: Uint8Array): void {
  const need = fatBytesFor(bits, entries.length);
  if (out.length < need) throw formatError('fat', 'INVALID_ARGUMENT', `FAT buffer of ${out.length} bytes cannot hold ${entries.length} entries`);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let i = 0; i < entries.length; i++) {
    const v = entries[i];
    if (bits === 16) view.setUint16(i * 2, v & 0xffff, true);
    else if (bits === 32) view.setUint32(i * 4, v & FAT32_MASK, true);
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
export function unpackFatEntries(bits: FatBits, bytes: Uint8Array, count: number): Uint32Array {
  const need = fatBytesFor(bits, count);
  if (bytes.length < need) throw formatError('fat', 'TRUNCATED', `FAT of ${bytes.length} bytes cannot hold ${count} entries`);
  const out = new Uint32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < count; i++) {
    if (bits === 16) out[i] = view.getUint16(i * 2, true);
    else if (bits === 32) out[i] = view.getUint32(i * 4, true) & FAT32_MASK;
    else {
      const at = i + (i >> 1);
      const pair = bytes[at] | (bytes[at + 1] << 8);
      out[i] = i & 1 ? pair >> 4 : pair & 0x0fff;
    }
  }
  return out;
}
