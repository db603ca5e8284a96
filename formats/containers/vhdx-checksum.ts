/**
 * VHDX structure checksums ([MS-VHDX] 2.2.2 / 2.2.3 / 2.3.1.1): CRC-32C over the structure with
 * the 4-byte checksum field at offset 4 zero while computing.
 */
import { view } from '../common/bytes.js';
import { crc32c } from '../common/crc32c.js';

/** Store the CRC-32C of `b` (checksum field at 4 zero while computing), 2.2.2 / 2.2.3. */
export function seal(b: Uint8Array): Uint8Array {
  view(b).setUint32(4, 0, true);
  view(b).setUint32(4, crc32c(b), true);
  return b;
}

export function crcOk(b: Uint8Array): { stored: number; computed: number } {
  const copy = new Uint8Array(b);
  const stored = view(copy).getUint32(4, true);
  view(copy).setUint32(4, 0, true);
  return { stored, computed: crc32c(copy) };
}
