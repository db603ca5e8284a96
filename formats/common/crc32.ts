import { crc32 as zlibCrc32 } from 'node:zlib';

/** CRC-32 (IEEE 802.3, the polynomial GPT uses: UEFI 2.10 section 5.3.2). */
export function crc32(bytes: Uint8Array, initial = 0): number {
  return zlibCrc32(bytes, initial) >>> 0;
}
