/**
 * VHDX on-disk structures ([MS-VHDX] "Virtual Hard Disk v2 (VHDX) File Format", v20240423):
 * file type identifier (2.2.1), headers (2.2.2), region table (2.2.3), log entry headers
 * (2.3.1.1), BAT (2.5) and metadata (2.6). Integers are little-endian; GUIDs are stored with
 * their first three fields little-endian (as formats/common/guid.ts encodes them). Checksums are
 * CRC-32C over the structure with the checksum field zero. Parsers throw only FormatError
 * (format 'vhdx').
 */
import { hasLatin1, putLatin1, putU64, putUtf16le, u64, utf16le, view } from '../common/bytes.js';
import { crc32c } from '../common/crc32c.js';
import { fail } from '../common/errors.js';
import { ZERO_GUID, decodeGuid, encodeGuid } from '../common/guid.js';
import { sha256 } from '@noble/hashes/sha2.js';

export const KIB = 1024;
export const MIB = 1024 * 1024;
/** 2.2: the header section is 1 MiB: identifier at 0, headers at 64/128 KiB, region tables at 192/256 KiB. */
export const VHDX_HEADER_OFFSETS = [64 * KIB, 128 * KIB] as const;
export const VHDX_REGION_OFFSETS = [192 * KIB, 256 * KIB] as const;
export const VHDX_HEADER_SIZE = 4 * KIB;
export const VHDX_REGION_TABLE_SIZE = 64 * KIB;
export const VHDX_METADATA_TABLE_SIZE = 64 * KIB;
/** 2.2.3.1 / 2.6.1: at most 2047 region table and metadata table entries. */
export const VHDX_MAX_ENTRIES = 2047;
/** 2.6.2.2: "the maximum virtual disk size supported is 64 TB". */
export const VHDX_MAX_VIRTUAL_SIZE = 64 * 1024 * 1024 * MIB;

/** 2.2.3.2 region GUIDs. */
export const BAT_REGION = '2dc27766-f623-4200-9d64-115e9bfd4a08';
export const METADATA_REGION = '8b7ca206-4790-4b9a-b8fe-575f050f886e';

/** 2.6.2 metadata item GUIDs. */
export const META = {
  fileParameters: 'caa16737-fa36-4d43-b3b6-33f0aa44e76b',
  virtualDiskSize: '2fa54224-cd1b-4876-b211-5dbed83bf4b8',
  virtualDiskId: 'beca12ab-b2e6-4523-93ef-c309e000c746',
  logicalSectorSize: '8141bf1d-a96f-4709-ba47-f233a8faab5f',
  physicalSectorSize: 'cda348c7-445d-4471-9cc9-e9885251c556',
  parentLocator: 'a8d35f2d-b30b-454d-abf7-d3d84834ab0c',
} as const;

/** 2.5.1.1 payload block states (2.5.1.2: sector bitmap blocks use 0 and 6). */
export const PAYLOAD = {
  notPresent: 0,
  undefined: 1,
  zero: 2,
  unmapped: 3,
  /** Pre-release value of UNMAPPED that QEMU also accepts (block/vhdx.h PAYLOAD_BLOCK_UNMAPPED_v095). */
  unmappedV095: 5,
  fullyPresent: 6,
  partiallyPresent: 7,
} as const;

/** Store the CRC-32C of `b` (checksum field at 4 zero while computing), 2.2.2 / 2.2.3. */
function seal(b: Uint8Array): Uint8Array {
  view(b).setUint32(4, 0, true);
  view(b).setUint32(4, crc32c(b), true);
  return b;
}

function crcOk(b: Uint8Array): { stored: number; computed: number } {
  const copy = new Uint8Array(b);
  const stored = view(copy).getUint32(4, true);
  view(copy).setUint32(4, 0, true);
  return { stored, computed: crc32c(copy) };
}

/** 2.2.1 file type identifier: "vhdxfile" then a UTF-16 creator string (512 bytes). */
export function encodeFileIdentifier(creator: string): Uint8Array {
  const out = new Uint8Array(64 * KIB);
  putLatin1(out, 0, 'vhdxfile');
  putUtf16le(out, 8, creator.slice(0, 255));
  return out;
}

export function isVhdxIdentifier(bytes: Uint8Array): boolean {
  return hasLatin1(bytes, 0, 'vhdxfile');
}

export function decodeCreator(bytes: Uint8Array): string {
  return utf16le(bytes, 8, Math.max(0, Math.floor(Math.min(512, bytes.length - 8) / 2)));
}

export interface VhdxHeader {
  sequenceNumber: bigint;
  fileWriteGuid: string;
  dataWriteGuid: string;
  logGuid: string;
  logVersion: number;
  version: number;
  logLength: number;
  logOffset: number;
}

/** 2.2.2 header: 4 KiB, signature "head", CRC-32C over the 4 KiB. */
export function encodeVhdxHeader(h: VhdxHeader): Uint8Array {
  const out = new Uint8Array(VHDX_HEADER_SIZE);
  const dv = view(out);
  putLatin1(out, 0, 'head');
  dv.setBigUint64(8, h.sequenceNumber, true);
  encodeGuid(h.fileWriteGuid, out, 16);
  encodeGuid(h.dataWriteGuid, out, 32);
  encodeGuid(h.logGuid, out, 48);
  dv.setUint16(64, h.logVersion, true);
  dv.setUint16(66, h.version, true);
  dv.setUint32(68, h.logLength, true);
  putU64(dv, 72, h.logOffset, true);
  return seal(out);
}

export function decodeVhdxHeader(bytes: Uint8Array, which: string): VhdxHeader {
  if (bytes.length < VHDX_HEADER_SIZE) throw fail('vhdx', 'TRUNCATED', `VHDX ${which} runs past the end of the file`);
  const b = bytes.subarray(0, VHDX_HEADER_SIZE);
  if (!hasLatin1(b, 0, 'head')) throw fail('vhdx', 'BAD_MAGIC', `VHDX ${which} has no "head" signature`);
  const { stored, computed } = crcOk(b);
  if (stored !== computed) {
    throw fail('vhdx', 'BAD_CHECKSUM', `VHDX ${which} CRC-32C 0x${stored.toString(16)} should be 0x${computed.toString(16)}`);
  }
  const dv = view(b);
  const h: VhdxHeader = {
    sequenceNumber: dv.getBigUint64(8, true),
    fileWriteGuid: decodeGuid(b, 16),
    dataWriteGuid: decodeGuid(b, 32),
    logGuid: decodeGuid(b, 48),
    logVersion: dv.getUint16(64, true),
    version: dv.getUint16(66, true),
    logLength: dv.getUint32(68, true),
    logOffset: u64(dv, 72, true),
  };
  if (h.version !== 1) throw fail('vhdx', 'BAD_VALUE', `VHDX ${which} version ${h.version} is not 1`);
  return h;
}

/** 16 bytes as a version-4-shaped GUID (RFC 9562 5.4: version nibble 4, variant bits 10). */
function v4Guid(bytes: Uint8Array): string {
  const b = bytes.slice(0, 16);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The header a writer puts into the non-current slot before its first change (2.2.2.1, as qemu's
 * vhdx_user_visible_write): SequenceNumber + 1, a new FileWriteGuid (2.2.2: changed before the
 * file is first written) and DataWriteGuid (changed before user-visible data is), and LogGuid
 * zero (the log is empty: callers refuse files whose log needs replaying). The new GUIDs are not
 * random: they are the SHA-256 of the old ones and the sequence number, so the same edits of the
 * same file give the same bytes, and each edit still gets GUIDs no earlier header had.
 */
export function nextWriteHeader(h: VhdxHeader): VhdxHeader {
  const input = new Uint8Array(24 + 32 + 8);
  input.set(new TextEncoder().encode('diskmint vhdx write guid'), 0);
  encodeGuid(h.fileWriteGuid, input, 24);
  encodeGuid(h.dataWriteGuid, input, 40);
  view(input).setBigUint64(56, h.sequenceNumber, true);
  const d = sha256(input);
  return {
    ...h,
    sequenceNumber: h.sequenceNumber + 1n,
    fileWriteGuid: v4Guid(d.subarray(0, 16)),
    dataWriteGuid: v4Guid(d.subarray(16, 32)),
    logGuid: ZERO_GUID,
  };
}

export interface VhdxRegion {
  guid: string;
  fileOffset: number;
  length: number;
  required: boolean;
}

/** 2.2.3 region table: 64 KiB, signature "regi", CRC-32C over the 64 KiB, 32-byte entries from 16. */
export function encodeRegionTable(regions: readonly VhdxRegion[]): Uint8Array {
  const out = new Uint8Array(VHDX_REGION_TABLE_SIZE);
  const dv = view(out);
  putLatin1(out, 0, 'regi');
  dv.setUint32(8, regions.length, true);
  regions.forEach((r, i) => {
    const at = 16 + i * 32;
    encodeGuid(r.guid, out, at);
    putU64(dv, at + 16, r.fileOffset, true);
    dv.setUint32(at + 24, r.length, true);
    dv.setUint32(at + 28, r.required ? 1 : 0, true);
  });
  return seal(out);
}

export function decodeRegionTable(bytes: Uint8Array, which: string): VhdxRegion[] {
  if (bytes.length < VHDX_REGION_TABLE_SIZE) throw fail('vhdx', 'TRUNCATED', `VHDX ${which} runs past the end of the file`);
  const b = bytes.subarray(0, VHDX_REGION_TABLE_SIZE);
  if (!hasLatin1(b, 0, 'regi')) throw fail('vhdx', 'BAD_MAGIC', `VHDX ${which} has no "regi" signature`);
  const { stored, computed } = crcOk(b);
  if (stored !== computed) {
    throw fail('vhdx', 'BAD_CHECKSUM', `VHDX ${which} CRC-32C 0x${stored.toString(16)} should be 0x${computed.toString(16)}`);
  }
  const dv = view(b);
  const count = dv.getUint32(8, true);
  if (count > VHDX_MAX_ENTRIES) throw fail('vhdx', 'TOO_LARGE', `VHDX ${which} claims ${count} entries (at most 2047)`);
  const out: VhdxRegion[] = [];
  for (let i = 0; i < count; i++) {
    const at = 16 + i * 32;
    out.push({
      guid: decodeGuid(b, at),
      fileOffset: u64(dv, at + 16, true),
      length: dv.getUint32(at + 24, true),
      required: (dv.getUint32(at + 28, true) & 1) === 1,
    });
  }
  return out;
}

export interface VhdxMetadataEntry {
  itemId: string;
  /** Offset from the start of the metadata region. */
  offset: number;
  length: number;
  isUser: boolean;
  isVirtualDisk: boolean;
  isRequired: boolean;
}

/** 2.6.1 metadata table header: "metadata", entry count at 10, 32-byte entries from 32. */
export function encodeMetadataTable(entries: readonly VhdxMetadataEntry[]): Uint8Array {
  const out = new Uint8Array(VHDX_METADATA_TABLE_SIZE);
  const dv = view(out);
  putLatin1(out, 0, 'metadata');
  dv.setUint16(10, entries.length, true);
  entries.forEach((e, i) => {
    const at = 32 + i * 32;
    encodeGuid(e.itemId, out, at);
    dv.setUint32(at + 16, e.offset, true);
    dv.setUint32(at + 20, e.length, true);
    dv.setUint32(at + 24, (e.isUser ? 1 : 0) | (e.isVirtualDisk ? 2 : 0) | (e.isRequired ? 4 : 0), true);
  });
  return out;
}

export function decodeMetadataTable(bytes: Uint8Array): VhdxMetadataEntry[] {
  if (bytes.length < VHDX_METADATA_TABLE_SIZE) throw fail('vhdx', 'TRUNCATED', 'VHDX metadata table runs past the end of the file');
  if (!hasLatin1(bytes, 0, 'metadata')) throw fail('vhdx', 'BAD_MAGIC', 'VHDX metadata table has no "metadata" signature');
  const dv = view(bytes);
  const count = dv.getUint16(10, true);
  if (count > VHDX_MAX_ENTRIES) throw fail('vhdx', 'TOO_LARGE', `VHDX metadata table claims ${count} entries (at most 2047)`);
  const out: VhdxMetadataEntry[] = [];
  for (let i = 0; i < count; i++) {
    const at = 32 + i * 32;
    const flags = dv.getUint32(at + 24, true);
    out.push({
      itemId: decodeGuid(bytes, at),
      offset: dv.getUint32(at + 16, true),
      length: dv.getUint32(at + 20, true),
      isUser: (flags & 1) !== 0,
      isVirtualDisk: (flags & 2) !== 0,
      isRequired: (flags & 4) !== 0,
    });
  }
  return out;
}

/**
 * The 1 MiB metadata region a writer stores: the table, then (2.6.2) File Parameters, Virtual
 * Disk Size, Virtual Disk ID, Logical and Physical Sector Size, packed after the 64 KiB table.
 */
export function encodeMetadataRegion(m: {
  blockSize: number;
  leaveBlocksAllocated: boolean;
  virtualSize: number;
  diskId: string;
  logicalSectorSize: number;
  physicalSectorSize: number;
}): Uint8Array {
  const T = VHDX_METADATA_TABLE_SIZE;
  const out = new Uint8Array(MIB);
  const item = (itemId: string, offset: number, length: number, isVirtualDisk: boolean): VhdxMetadataEntry => ({
    itemId,
    offset: T + offset,
    length,
    isUser: false,
    isVirtualDisk,
    isRequired: true,
  });
  out.set(
    encodeMetadataTable([
      item(META.fileParameters, 0, 8, false),
      item(META.virtualDiskSize, 8, 8, true),
      item(META.virtualDiskId, 16, 16, true),
      item(META.logicalSectorSize, 32, 4, true),
      item(META.physicalSectorSize, 36, 4, true),
    ]),
  );
  const dv = view(out);
  dv.setUint32(T, m.blockSize, true);
  dv.setUint32(T + 4, m.leaveBlocksAllocated ? 1 : 0, true); // bit 0 LeaveBlockAllocated, bit 1 HasParent
  putU64(dv, T + 8, m.virtualSize, true);
  encodeGuid(m.diskId, out, T + 16); // 2.6.2.3: page 83 data
  dv.setUint32(T + 32, m.logicalSectorSize, true);
  dv.setUint32(T + 36, m.physicalSectorSize, true);
  return out;
}

/** 2.5 chunk ratio: payload blocks described by one sector bitmap block. */
export function chunkRatio(logicalSectorSize: number, blockSize: number): number {
  return (2 ** 23 * logicalSectorSize) / blockSize;
}

/** 2.5: BAT geometry of a disk without a parent. */
export function batGeometry(virtualSize: number, blockSize: number, logicalSectorSize: number) {
  const ratio = chunkRatio(logicalSectorSize, blockSize);
  const dataBlocks = Math.ceil(virtualSize / blockSize);
  const totalEntries = dataBlocks === 0 ? 0 : dataBlocks + Math.floor((dataBlocks - 1) / ratio);
  return { ratio, dataBlocks, totalEntries };
}

/** 2.5: BAT index of payload block `i` (a sector bitmap entry follows every `ratio` payload entries). */
export function payloadEntryIndex(i: number, ratio: number): number {
  return i + Math.floor(i / ratio);
}

/** 2.5.1 BAT entry: state in bits 0-2, file offset in MiB in bits 20-63. */
export function encodeBatEntry(dv: DataView, at: number, state: number, fileOffset: number): void {
  const mb = fileOffset / MIB;
  dv.setUint32(at, (state & 7) | ((mb % 4096) << 20), true);
  dv.setUint32(at + 4, Math.floor(mb / 4096), true);
}

export function decodeBatEntry(dv: DataView, at: number): { state: number; fileOffset: number } {
  const lo = dv.getUint32(at, true);
  const hi = dv.getUint32(at + 4, true);
  return { state: lo & 7, fileOffset: ((lo >>> 20) + hi * 4096) * MIB };
}

/** 2.3: the log is a ring of 4 KiB sectors. */
export const VHDX_LOG_SECTOR = 4 * KIB;

/** 2.3.1.1: a log entry header starts "loge"; its LogGuid (offset 32) must match the header's. */
export function isLogEntryFor(bytes: Uint8Array, at: number, logGuid: string): boolean {
  return hasLatin1(bytes, at, 'loge') && bytes.length >= at + 48 && decodeGuid(bytes, at + 32) === logGuid;
}

/** 2.3.1.1 log entry header (64 bytes), then DescriptorCount 32-byte descriptors from byte 64. */
export interface VhdxLogEntryHeader {
  checksum: number;
  entryLength: number;
  /** Byte offset in the log of the oldest entry still to be applied (the sequence's tail). */
  tail: number;
  sequenceNumber: bigint;
  descriptorCount: number;
  logGuid: string;
  flushedFileOffset: number;
  lastFileOffset: number;
}

export function decodeLogEntryHeader(b: Uint8Array): VhdxLogEntryHeader {
  const dv = view(b);
  return {
    checksum: dv.getUint32(4, true),
    entryLength: dv.getUint32(8, true),
    tail: dv.getUint32(12, true),
    sequenceNumber: dv.getBigUint64(16, true),
    descriptorCount: dv.getUint32(24, true),
    logGuid: decodeGuid(b, 32),
    flushedFileOffset: u64(dv, 48, true),
    lastFileOffset: u64(dv, 56, true),
  };
}

/** Sectors the header and `count` descriptors take (the header counts as two descriptors). */
export function logDescriptorSectors(count: number): number {
  return Math.ceil((64 + 32 * count) / VHDX_LOG_SECTOR);
}

/** One write a log entry describes (2.3.1.2 zero descriptor, 2.3.1.3 data descriptor with its 2.3.1.4 data sector). */
export type VhdxLogWrite = { fileOffset: number; length: number; data: Uint8Array } | { fileOffset: number; length: number; data?: undefined };

/**
 * Decode and check one whole log entry (`entry` is its EntryLength bytes, already unwrapped from
 * the ring): 2.3.1 says an entry is valid when its signature, LogGuid and CRC-32C (over the whole
 * entry, checksum field zero) hold, every descriptor is "zero" or "desc" with the entry's sequence
 * number and 4 KiB aligned offsets and lengths, and every data sector says "data" with the same
 * sequence number. Returns the writes in order, or undefined when the entry is not valid (an
 * invalid entry is not an error: it is simply not part of a sequence to replay).
 */
export function decodeLogEntry(entry: Uint8Array, logGuid: string): { header: VhdxLogEntryHeader; writes: VhdxLogWrite[] } | undefined {
  if (entry.length < 64 || !hasLatin1(entry, 0, 'loge')) return undefined;
  const h = decodeLogEntryHeader(entry);
  if (h.entryLength !== entry.length || h.entryLength % VHDX_LOG_SECTOR !== 0 || h.sequenceNumber === 0n || h.logGuid !== logGuid) return undefined;
  const descSectors = logDescriptorSectors(h.descriptorCount);
  if (descSectors * VHDX_LOG_SECTOR > entry.length) return undefined;
  const { stored, computed } = crcOk(entry);
  if (stored !== computed) return undefined;
  const dv = view(entry);
  const writes: VhdxLogWrite[] = [];
  let dataSector = descSectors;
  for (let i = 0; i < h.descriptorCount; i++) {
    const at = 64 + i * 32;
    const fileOffset = u64(dv, at + 16, true);
    if (dv.getBigUint64(at + 24, true) !== h.sequenceNumber || fileOffset % VHDX_LOG_SECTOR !== 0) return undefined;
    if (fileOffset > Number.MAX_SAFE_INTEGER - VHDX_LOG_SECTOR) return undefined;
    if (hasLatin1(entry, at, 'zero')) {
      const length = u64(dv, at + 8, true);
      if (length % VHDX_LOG_SECTOR !== 0 || fileOffset + length > Number.MAX_SAFE_INTEGER) return undefined;
      writes.push({ fileOffset, length });
    } else if (hasLatin1(entry, at, 'desc')) {
      const ds = dataSector++ * VHDX_LOG_SECTOR;
      if (ds + VHDX_LOG_SECTOR > entry.length || !hasLatin1(entry, ds, 'data')) return undefined;
      const seq = (BigInt(dv.getUint32(ds + 4, true)) << 32n) | BigInt(dv.getUint32(ds + 4092, true));
      if (seq !== h.sequenceNumber) return undefined;
      // The sector's first 8 and last 4 bytes live in the descriptor (LeadingBytes, TrailingBytes).
      const data = new Uint8Array(VHDX_LOG_SECTOR);
      data.set(entry.subarray(at + 8, at + 16), 0);
      data.set(entry.subarray(ds + 8, ds + 4092), 8);
      data.set(entry.subarray(at + 4, at + 8), 4092);
      writes.push({ fileOffset, length: VHDX_LOG_SECTOR, data });
    } else {
      return undefined;
    }
  }
  return { header: h, writes };
}
