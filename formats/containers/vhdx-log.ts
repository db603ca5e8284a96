/**
 * The VHDX log ([MS-VHDX] 2.3): log entry headers (2.3.1.1), their zero and data descriptors
 * (2.3.1.2, 2.3.1.3) and data sectors (2.3.1.4), and the check that decides whether an entry is
 * valid. Integers are little-endian.
 */
import { hasLatin1, u64, view } from '../common/bytes.js';
import { decodeGuid } from '../common/guid.js';
import { crcOk } from './vhdx-checksum.js';
import { KIB } from './vhdx.js';

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
