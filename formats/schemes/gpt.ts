/**
 * GUID Partition Table codec (UEFI 2.10 section 5.3). Pure: bytes in, bytes out, no I/O.
 * Parsers given hostile bytes throw only FormatError.
 */
import { crc32 } from '../common/crc32.js';
import { hasLatin1, isZero, putUtf16le, safeU64, utf16le, view } from '../common/bytes.js';
import { fail } from '../common/errors.js';
import { decodeGuid, encodeGuid, isGuid, ZERO_GUID } from '../common/guid.js';

export interface GptPartitionEntry {
  /** 1-based slot in the entry array. */
  index: number;
  /** Lower-case GUID text. */
  typeGuid: string;
  /** Unique partition GUID, lower-case. */
  guid: string;
  firstLba: number;
  /** Inclusive. */
  lastLba: number;
  /** Raw 64-bit attribute field (entry byte 48). */
  attributes: bigint;
  /** UTF-16LE, at most 36 code units. */
  name: string;
}

export interface GptHeader {
  revision: number;
  headerSize: number;
  headerCrc: number;
  myLba: number;
  alternateLba: number;
  firstUsableLba: number;
  lastUsableLba: number;
  diskGuid: string;
  entriesLba: number;
  entryCount: number;
  entrySize: number;
  entriesCrc: number;
}

/** Header signature, table 5-5 of UEFI 2.10 section 5.3.2 ("EFI PART"). */
export const GPT_SIGNATURE = 'EFI PART';
/** Revision 1.0 (section 5.3.2: 00h 00h 01h 00h). */
export const GPT_REVISION = 0x0001_0000;
/** The defined header is 92 bytes (section 5.3.2); the rest of the block is reserved zeros. */
export const GPT_HEADER_SIZE = 92;
/** Each entry is 128 bytes in practice; the spec allows 128 * 2^n (section 5.3.3). */
export const GPT_ENTRY_SIZE = 128;
/** Partition names are 36 UTF-16 code units (72 bytes at entry offset 56, section 5.3.3). */
export const GPT_NAME_UNITS = 36;
/** Entry count tools use by default: 16 KiB minimum array (section 5.3.2) / 128 bytes. */
export const GPT_DEFAULT_ENTRIES = 128;
/** UEFI does not cap the entry count; we refuse more than this before allocating anything. */
export const GPT_MAX_ENTRIES = 16384;
/** Largest entry array we accept: GPT_MAX_ENTRIES 128-byte entries (2 MiB). */
export const GPT_MAX_ENTRY_ARRAY_BYTES = GPT_MAX_ENTRIES * GPT_ENTRY_SIZE;

// Header field offsets (UEFI 2.10 table 5-5).
const H_SIGNATURE = 0;
const H_REVISION = 8;
const H_HEADER_SIZE = 12;
const H_HEADER_CRC = 16;
const H_MY_LBA = 24;
const H_ALTERNATE_LBA = 32;
const H_FIRST_USABLE = 40;
const H_LAST_USABLE = 48;
const H_DISK_GUID = 56;
const H_ENTRIES_LBA = 72;
const H_ENTRY_COUNT = 80;
const H_ENTRY_SIZE = 84;
const H_ENTRIES_CRC = 88;

// Entry field offsets (UEFI 2.10 table 5-6).
const E_TYPE_GUID = 0;
const E_UNIQUE_GUID = 16;
const E_FIRST_LBA = 32;
const E_LAST_LBA = 40;
const E_ATTRIBUTES = 48;
const E_NAME = 56;

const U64_LIMIT = 1n << 64n;

function readLba(dv: DataView, offset: number, what: string): number {
  const v = safeU64(dv, offset, true);
  if (v === undefined) throw fail('gpt', 'BAD_VALUE', `${what} ${dv.getBigUint64(offset, true)} is beyond what this tool can address`);
  return v;
}

/** True when `bytes` starts with the "EFI PART" signature. */
export function isGptHeaderSignature(bytes: Uint8Array): boolean {
  return bytes.length >= GPT_SIGNATURE.length && hasLatin1(bytes, H_SIGNATURE, GPT_SIGNATURE);
}

/** CRC32 of the first headerSize bytes with the CRC field (offset 16) taken as zero (section 5.3.2). */
function computeHeaderCrc(sector: Uint8Array, headerSize: number): number {
  const copy = sector.slice(0, headerSize);
  copy.fill(0, H_HEADER_CRC, H_HEADER_CRC + 4);
  return crc32(copy);
}

function checkEntryGeometry(entryCount: number, entrySize: number): void {
  if (entrySize < GPT_ENTRY_SIZE || entrySize % 8 !== 0) {
    throw fail('gpt', 'BAD_VALUE', `entry size ${entrySize} is not a multiple of 8 of at least 128 bytes`);
  }
  if (entryCount > GPT_MAX_ENTRIES || entryCount * entrySize > GPT_MAX_ENTRY_ARRAY_BYTES) {
    throw fail('gpt', 'TOO_LARGE', `entry array of ${entryCount} entries of ${entrySize} bytes exceeds the ${GPT_MAX_ENTRY_ARRAY_BYTES}-byte limit`);
  }
}

/**
 * Parse the header in `sector` (at least 92 bytes). headerCrcValid: CRC32 of headerSize bytes
 * with the CRC field zeroed matches the stored value.
 */
export function decodeGptHeader(sector: Uint8Array): GptHeader & { headerCrcValid: boolean } {
  if (sector.length < GPT_HEADER_SIZE) {
    throw fail('gpt', 'TRUNCATED', `GPT header needs ${GPT_HEADER_SIZE} bytes, got ${sector.length}`);
  }
  if (!hasLatin1(sector, H_SIGNATURE, GPT_SIGNATURE)) throw fail('gpt', 'BAD_MAGIC', `no "${GPT_SIGNATURE}" signature`);
  const dv = view(sector);
  const headerSize = dv.getUint32(H_HEADER_SIZE, true);
  // Section 5.3.2: HeaderSize must be at least 92 and no more than the logical block.
  if (headerSize < GPT_HEADER_SIZE || headerSize > sector.length) {
    throw fail('gpt', 'BAD_VALUE', `header size ${headerSize} is outside 92..${sector.length}`);
  }
  const entryCount = dv.getUint32(H_ENTRY_COUNT, true);
  const entrySize = dv.getUint32(H_ENTRY_SIZE, true);
  checkEntryGeometry(entryCount, entrySize);
  const headerCrc = dv.getUint32(H_HEADER_CRC, true);
  return {
    revision: dv.getUint32(H_REVISION, true),
    headerSize,
    headerCrc,
    myLba: readLba(dv, H_MY_LBA, 'my LBA'),
    alternateLba: readLba(dv, H_ALTERNATE_LBA, 'alternate LBA'),
    firstUsableLba: readLba(dv, H_FIRST_USABLE, 'first usable LBA'),
    lastUsableLba: readLba(dv, H_LAST_USABLE, 'last usable LBA'),
    diskGuid: decodeGuid(sector, H_DISK_GUID),
    entriesLba: readLba(dv, H_ENTRIES_LBA, 'partition entry LBA'),
    entryCount,
    entrySize,
    entriesCrc: dv.getUint32(H_ENTRIES_CRC, true),
    headerCrcValid: computeHeaderCrc(sector, headerSize) === headerCrc,
  };
}

/** Bytes the entry array occupies (entryCount * entrySize). */
export function gptEntryArrayBytes(h: Pick<GptHeader, 'entryCount' | 'entrySize'>): number {
  return h.entryCount * h.entrySize;
}

/** Parse the entry array: non-empty entries (type GUID not all-zero) and whether the array CRC matches. */
export function decodeGptEntries(bytes: Uint8Array, h: GptHeader): { entries: GptPartitionEntry[]; crcValid: boolean } {
  checkEntryGeometry(h.entryCount, h.entrySize);
  const total = gptEntryArrayBytes(h);
  if (bytes.length < total) {
    throw fail('gpt', 'TRUNCATED', `entry array needs ${total} bytes, got ${bytes.length}`);
  }
  const array = bytes.subarray(0, total);
  const dv = view(array);
  const entries: GptPartitionEntry[] = [];
  for (let slot = 0; slot < h.entryCount; slot++) {
    const at = slot * h.entrySize;
    if (isZero(array, at + E_TYPE_GUID, 16)) continue; // unused entry (section 5.3.3)
    entries.push({
      index: slot + 1,
      typeGuid: decodeGuid(array, at + E_TYPE_GUID),
      guid: decodeGuid(array, at + E_UNIQUE_GUID),
      firstLba: readLba(dv, at + E_FIRST_LBA, `entry ${slot + 1} starting LBA`),
      lastLba: readLba(dv, at + E_LAST_LBA, `entry ${slot + 1} ending LBA`),
      attributes: dv.getBigUint64(at + E_ATTRIBUTES, true),
      name: utf16le(array, at + E_NAME, GPT_NAME_UNITS),
    });
  }
  return { entries, crcValid: crc32(array) === h.entriesCrc };
}

export interface GptTablesSpec {
  /** 512 or 4096 (any power of two >= 512). */
  sectorSize: number;
  /** Disk size in sectors. */
  totalSectors: number;
  diskGuid: string;
  /** Default 128. */
  entryCount?: number;
  /** index defaults to position + 1. */
  partitions: Array<Omit<GptPartitionEntry, 'index'> & { index?: number }>;
}

export interface GptTables {
  /** Primary header as written. */
  header: GptHeader;
  /** Header sector at LBA 1 followed by the entry array sectors (LBA 2..). */
  primary: { lba: number; bytes: Uint8Array };
  /** Backup entry array sectors followed by the backup header sector (last LBA). */
  backup: { lba: number; bytes: Uint8Array };
}

function checkSectorSize(sectorSize: number): void {
  if (!Number.isInteger(sectorSize) || sectorSize < 512 || (sectorSize & (sectorSize - 1)) !== 0) {
    throw fail('gpt', 'INVALID_ARGUMENT', `sector size ${sectorSize} is not a power of two of at least 512`);
  }
}

/** Where partitions may go with an entry array of entryCount 128-byte entries at each end. */
export function gptUsableRange(
  sectorSize: number,
  totalSectors: number,
  entryCount = GPT_DEFAULT_ENTRIES,
): { firstUsableLba: number; lastUsableLba: number; entrySectors: number } {
  checkSectorSize(sectorSize);
  if (!Number.isInteger(entryCount) || entryCount < 1 || entryCount > GPT_MAX_ENTRIES) {
    throw fail('gpt', 'INVALID_ARGUMENT', `entry count ${entryCount} is outside 1..${GPT_MAX_ENTRIES}`);
  }
  if (!Number.isSafeInteger(totalSectors) || totalSectors < 0) throw fail('gpt', 'INVALID_ARGUMENT', `disk size ${totalSectors} sectors is not valid`);
  const entrySectors = Math.ceil((entryCount * GPT_ENTRY_SIZE) / sectorSize);
  // LBA 0 protective MBR, LBA 1 header, then the array; mirrored at the end (section 5.3.1).
  return { firstUsableLba: 2 + entrySectors, lastUsableLba: totalSectors - 2 - entrySectors, entrySectors };
}

function encodeName(name: string, out: Uint8Array, offset: number, index: number): void {
  if (name.length > GPT_NAME_UNITS) throw fail('gpt', 'INVALID_ARGUMENT', `partition ${index} name is ${name.length} UTF-16 code units, at most 36 fit`);
  if (name.includes('\0')) throw fail('gpt', 'INVALID_ARGUMENT', `partition ${index} name contains a NUL character`);
  putUtf16le(out, offset, name);
}

function encodeHeader(
  fields: Omit<GptHeader, 'headerCrc' | 'revision' | 'headerSize' | 'entrySize'>,
  sectorSize: number,
): { header: GptHeader; sector: Uint8Array } {
  const sector = new Uint8Array(sectorSize);
  const dv = view(sector);
  for (let i = 0; i < GPT_SIGNATURE.length; i++) sector[H_SIGNATURE + i] = GPT_SIGNATURE.charCodeAt(i);
  dv.setUint32(H_REVISION, GPT_REVISION, true);
  dv.setUint32(H_HEADER_SIZE, GPT_HEADER_SIZE, true);
  dv.setBigUint64(H_MY_LBA, BigInt(fields.myLba), true);
  dv.setBigUint64(H_ALTERNATE_LBA, BigInt(fields.alternateLba), true);
  dv.setBigUint64(H_FIRST_USABLE, BigInt(fields.firstUsableLba), true);
  dv.setBigUint64(H_LAST_USABLE, BigInt(fields.lastUsableLba), true);
  encodeGuid(fields.diskGuid, sector, H_DISK_GUID);
  dv.setBigUint64(H_ENTRIES_LBA, BigInt(fields.entriesLba), true);
  dv.setUint32(H_ENTRY_COUNT, fields.entryCount, true);
  dv.setUint32(H_ENTRY_SIZE, GPT_ENTRY_SIZE, true);
  dv.setUint32(H_ENTRIES_CRC, fields.entriesCrc, true);
  const headerCrc = computeHeaderCrc(sector, GPT_HEADER_SIZE);
  dv.setUint32(H_HEADER_CRC, headerCrc, true);
  return {
    header: { ...fields, revision: GPT_REVISION, headerSize: GPT_HEADER_SIZE, entrySize: GPT_ENTRY_SIZE, headerCrc },
    sector,
  };
}

/** Build both GPT copies: primary at LBA 1.., backup ending at the last LBA (section 5.3.1). */
export function encodeGptTables(spec: GptTablesSpec): GptTables {
  const { sectorSize, totalSectors } = spec;
  const entryCount = spec.entryCount ?? GPT_DEFAULT_ENTRIES;
  const { firstUsableLba, lastUsableLba, entrySectors } = gptUsableRange(sectorSize, totalSectors, entryCount);
  if (lastUsableLba < firstUsableLba) {
    throw fail('gpt', 'INVALID_ARGUMENT', `a disk of ${totalSectors} sectors is too small for two ${entryCount}-entry GPT copies`);
  }
  if (!isGuid(spec.diskGuid)) throw fail('gpt', 'INVALID_ARGUMENT', `disk GUID "${spec.diskGuid}" is not a GUID`);

  const arrayBytes = new Uint8Array(entrySectors * sectorSize);
  const dv = view(arrayBytes);
  const used = new Map<number, { firstLba: number; lastLba: number }>();
  spec.partitions.forEach((p, position) => {
    const index = p.index ?? position + 1;
    if (!Number.isInteger(index) || index < 1 || index > entryCount) {
      throw fail('gpt', 'INVALID_ARGUMENT', `partition index ${index} is outside 1..${entryCount}`);
    }
    if (used.has(index)) throw fail('gpt', 'INVALID_ARGUMENT', `partition index ${index} is used twice`);
    if (!isGuid(p.typeGuid) || p.typeGuid.toLowerCase() === ZERO_GUID) {
      throw fail('gpt', 'INVALID_ARGUMENT', `partition ${index} type "${p.typeGuid}" is not a non-zero GUID`);
    }
    if (!isGuid(p.guid)) throw fail('gpt', 'INVALID_ARGUMENT', `partition ${index} GUID "${p.guid}" is not a GUID`);
    if (!Number.isSafeInteger(p.firstLba) || !Number.isSafeInteger(p.lastLba) || p.firstLba > p.lastLba) {
      throw fail('gpt', 'INVALID_ARGUMENT', `partition ${index} sectors ${p.firstLba}-${p.lastLba} are not a valid range`);
    }
    if (p.firstLba < firstUsableLba || p.lastLba > lastUsableLba) {
      throw fail(
        'gpt',
        'INVALID_ARGUMENT',
        `partition ${index} (sectors ${p.firstLba}-${p.lastLba}) lies outside the usable area (sectors ${firstUsableLba}-${lastUsableLba})`,
      );
    }
    for (const [other, r] of used) {
      if (p.firstLba <= r.lastLba && r.firstLba <= p.lastLba) {
        throw fail('gpt', 'INVALID_ARGUMENT', `partition ${index} (sectors ${p.firstLba}-${p.lastLba}) overlaps partition ${other}`);
      }
    }
    if (typeof p.attributes !== 'bigint' || p.attributes < 0n || p.attributes >= U64_LIMIT) {
      throw fail('gpt', 'INVALID_ARGUMENT', `partition ${index} attributes are not a 64-bit unsigned value`);
    }
    used.set(index, { firstLba: p.firstLba, lastLba: p.lastLba });
    const at = (index - 1) * GPT_ENTRY_SIZE;
    encodeGuid(p.typeGuid, arrayBytes, at + E_TYPE_GUID);
    encodeGuid(p.guid, arrayBytes, at + E_UNIQUE_GUID);
    dv.setBigUint64(at + E_FIRST_LBA, BigInt(p.firstLba), true);
    dv.setBigUint64(at + E_LAST_LBA, BigInt(p.lastLba), true);
    dv.setBigUint64(at + E_ATTRIBUTES, p.attributes, true);
    encodeName(p.name, arrayBytes, at + E_NAME, index);
  });
  const entriesCrc = crc32(arrayBytes.subarray(0, entryCount * GPT_ENTRY_SIZE));

  const lastLba = totalSectors - 1;
  const backupEntriesLba = lastLba - entrySectors;
  const common = { firstUsableLba, lastUsableLba, diskGuid: spec.diskGuid.toLowerCase(), entryCount, entriesCrc };
  const primary = encodeHeader({ ...common, myLba: 1, alternateLba: lastLba, entriesLba: 2 }, sectorSize);
  const backup = encodeHeader({ ...common, myLba: lastLba, alternateLba: 1, entriesLba: backupEntriesLba }, sectorSize);

  const primaryBytes = new Uint8Array((1 + entrySectors) * sectorSize);
  primaryBytes.set(primary.sector, 0);
  primaryBytes.set(arrayBytes, sectorSize);
  const backupBytes = new Uint8Array((entrySectors + 1) * sectorSize);
  backupBytes.set(arrayBytes, 0);
  backupBytes.set(backup.sector, entrySectors * sectorSize);
  return {
    header: primary.header,
    primary: { lba: 1, bytes: primaryBytes },
    backup: { lba: backupEntriesLba, bytes: backupBytes },
  };
}
