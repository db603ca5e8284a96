/**
 * VHDX on-disk structures ([MS-VHDX] "Virtual Hard Disk v2 (VHDX) File Format", v20240423):
 * constants, file type identifier (2.2.1), headers (2.2.2) and region table (2.2.3). The log
 * (2.3) is in vhdx-log.ts, the BAT (2.5) in vhdx-bat.ts, metadata (2.6) in vhdx-metadata.ts.
 * Integers are little-endian; GUIDs are stored with their first three fields little-endian (as
 * formats/common/guid.ts encodes them). Checksums are CRC-32C over the structure with the
 * checksum field zero (vhdx-checksum.ts). Parsers throw only FormatError (format 'vhdx').
 */
import { hasLatin1, putLatin1, putU64, putUtf16le, u64, utf16le, view } from '../common/bytes.js';
import { fail } from '../common/errors.js';
import { ZERO_GUID, decodeGuid, encodeGuid } from '../common/guid.js';
import { crcOk, seal } from './vhdx-checksum.js';
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
