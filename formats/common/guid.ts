import { fail } from './errors.js';

/**
 * GUIDs as UEFI stores them (UEFI 2.10 appendix A): the first three fields little-endian,
 * the last 8 bytes as written. Text form is lower-case 8-4-4-4-12.
 */
const GUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isGuid(text: string): boolean {
  return GUID_TEXT.test(text.toLowerCase());
}

export function encodeGuid(text: string, out: Uint8Array, offset: number): void {
  const t = text.toLowerCase();
  if (!GUID_TEXT.test(t)) throw fail('guid', 'INVALID_ARGUMENT', `"${text}" is not a GUID`);
  const hex = t.replace(/-/g, '');
  const raw = new Uint8Array(16);
  for (let i = 0; i < 16; i++) raw[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  // Mixed endian: time_low (4), time_mid (2), time_hi (2) are little-endian.
  const order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
  for (let i = 0; i < 16; i++) out[offset + i] = raw[order[i]];
}

export function decodeGuid(bytes: Uint8Array, offset: number): string {
  if (offset + 16 > bytes.length) throw fail('guid', 'TRUNCATED', 'GUID runs past the end of the data');
  const order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
  let hex = '';
  for (let i = 0; i < 16; i++) hex += bytes[offset + order[i]].toString(16).padStart(2, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const ZERO_GUID = '00000000-0000-0000-0000-000000000000';
