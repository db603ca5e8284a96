/**
 * The boot-stage checksum table of diskmint's fallback selector (pure; no I/O).
 *
 * diskmint's own first stage (bootcode/fallback-mbr.asm + fallback-stage2.asm, see
 * bootcode/SELECTOR.md) picks one of several freebsd-boot partitions. It must not jump into
 * a stage whose bytes were damaged, and it has no file system to read a checksum from, so the
 * checksums live in sector 0 of the selector's own BIOS-boot partition (type
 * 21686148-6449-6e6f-744e-656564454649; the selector's code follows from sector 1):
 *
 *   0   8  magic "DMSTAGES"
 *   8   4  version (1)
 *   12  4  entry count n (0..14)
 *   16  4  CRC-32 (IEEE, as GPT's) of the whole 512-byte sector with these 4 bytes zero
 *   20  12 zero
 *   32 + 32*i, i < n:
 *       0  16 the freebsd-boot partition's unique GUID, the same 16 bytes as at byte 16 of its
 *             GPT entry (UEFI 2.10 table 5.6: mixed-endian)
 *       16 4  length: how many bytes from the start of the partition the checksum covers
 *             (1..558,080, pmbr's limit: 0x90000 - 0x7c00)
 *       20 4  CRC-32 (IEEE) of those bytes
 *       24 8  zero
 *
 * All integers little-endian. A sector whose magic, version or CRC does not match is "no
 * table": the selector then accepts any stage that is not empty (its first sector not all
 * zeros), so a torn write of this sector costs the damage check, never the boot.
 */
import { putLatin1, putU32le, u32le, hasLatin1, isZero } from '../common/bytes.js';
import { crc32 } from '../common/crc32.js';
import { fail } from '../common/errors.js';
import { decodeGuid, encodeGuid } from '../common/guid.js';

export const STAGE_TABLE_MAGIC = 'DMSTAGES';
export const STAGE_TABLE_VERSION = 1;
export const STAGE_TABLE_SIZE = 512;
/** (512 - 32) / 32 = 15 slots fit; 14 keeps the last 32 bytes free for a later version. */
export const STAGE_TABLE_MAX_ENTRIES = 14;
/** pmbr's load limit: 0x90000 - 0x7c00 (FreeBSD stand/i386/pmbr/pmbr.S). */
export const STAGE_MAX_BYTES = 558_080;
const HEADER_BYTES = 32;
const ENTRY_BYTES = 32;
const CRC_AT = 16;

export interface StageChecksum {
  /** The freebsd-boot partition's unique GUID (text form, lower case). */
  partitionGuid: string;
  /** Bytes from the start of the partition covered by the checksum. */
  length: number;
  /** CRC-32 (IEEE) of those bytes. */
  crc32: number;
}

/** Encodes the table sector (512 bytes). Throws on too many entries or bad lengths. */
export function encodeStageTable(entries: readonly StageChecksum[]): Uint8Array {
  if (entries.length > STAGE_TABLE_MAX_ENTRIES) {
    throw fail('stage-table', 'INVALID_ARGUMENT', `a boot-stage table holds at most ${STAGE_TABLE_MAX_ENTRIES} stages, not ${entries.length}`);
  }
  const out = new Uint8Array(STAGE_TABLE_SIZE);
  putLatin1(out, 0, STAGE_TABLE_MAGIC);
  putU32le(out, 8, STAGE_TABLE_VERSION);
  putU32le(out, 12, entries.length);
  entries.forEach((e, i) => {
    if (!Number.isInteger(e.length) || e.length < 1 || e.length > STAGE_MAX_BYTES) {
      throw fail('stage-table', 'INVALID_ARGUMENT', `a boot stage's checksummed length must be 1..${STAGE_MAX_BYTES} bytes, not ${e.length}`);
    }
    const at = HEADER_BYTES + i * ENTRY_BYTES;
    encodeGuid(e.partitionGuid, out, at);
    putU32le(out, at + 16, e.length);
    putU32le(out, at + 20, e.crc32 >>> 0);
  });
  putU32le(out, CRC_AT, crc32(out));
  return out;
}

/**
 * Decodes a table sector; `undefined` when the sector holds no valid table (wrong magic,
 * version, count or CRC), which is what the selector treats as "no checksums".
 */
export function decodeStageTable(sector: Uint8Array): StageChecksum[] | undefined {
  if (sector.length < STAGE_TABLE_SIZE || !hasLatin1(sector, 0, STAGE_TABLE_MAGIC)) return undefined;
  if (u32le(sector, 8) !== STAGE_TABLE_VERSION) return undefined;
  const count = u32le(sector, 12);
  if (count > STAGE_TABLE_MAX_ENTRIES) return undefined;
  const copy = sector.slice(0, STAGE_TABLE_SIZE);
  putU32le(copy, CRC_AT, 0);
  if (crc32(copy) !== u32le(sector, CRC_AT)) return undefined;
  const entries: StageChecksum[] = [];
  for (let i = 0; i < count; i++) {
    const at = HEADER_BYTES + i * ENTRY_BYTES;
    const length = u32le(sector, at + 16);
    if (length < 1 || length > STAGE_MAX_BYTES) return undefined;
    entries.push({ partitionGuid: decodeGuid(sector, at), length, crc32: u32le(sector, at + 20) });
  }
  return entries;
}

export type StageCheck = 'ok' | 'empty' | 'mismatch' | 'unchecked';

/**
 * What the selector concludes about one stage: `bytes` are the partition's first bytes (at
 * least the recorded length, or the first sector when there is no record). 'empty': the
 * first 512 bytes are all zero; 'mismatch': a record exists and its CRC differs;
 * 'unchecked': no record, not empty (accepted); 'ok': the record matches.
 */
export function checkStage(bytes: Uint8Array, record: StageChecksum | undefined): StageCheck {
  if (bytes.length === 0 || isZero(bytes, 0, Math.min(512, bytes.length))) return 'empty';
  if (!record) return 'unchecked';
  if (bytes.length < record.length) return 'mismatch';
  return crc32(bytes.subarray(0, record.length)) === record.crc32 ? 'ok' : 'mismatch';
}
