/**
 * Craft VHDX log entries from [MS-VHDX] 2.3.1, byte by byte (independently of the reader's
 * codec), to make files whose log needs replaying: Hyper-V and qemu write such a log before
 * every metadata update and flush it at once, so a dirty log is what a crash between the two
 * leaves.
 */
import { crc32c } from '../../formats/common/crc32c.js';
import { encodeGuid } from '../../formats/common/guid.js';

const SECTOR = 4096;
export const LOG_GUID = '5a4c11d5-0b0e-4c9e-9f5a-1d2c3b4a5968';

/** One write: a 4 KiB data sector, or `zeroLength` bytes of zeros. */
export type LogWriteSpec = { fileOffset: number; data: Uint8Array } | { fileOffset: number; zeroLength: number };

export interface LogEntrySpec {
  sequence: bigint;
  /** Byte offset in the log of the sequence's tail (the oldest entry to apply). */
  tail: number;
  writes: LogWriteSpec[];
  flushedFileOffset: number;
  lastFileOffset: number;
  logGuid?: string;
}

/** 2.3.1.1-2.3.1.4: header, descriptors (64 + 32 each, in whole sectors), then one data sector per data descriptor. */
export function vhdxLogEntry(spec: LogEntrySpec): Buffer {
  const descSectors = Math.ceil((64 + 32 * spec.writes.length) / SECTOR);
  const dataCount = spec.writes.filter((w) => 'data' in w).length;
  const b = Buffer.alloc((descSectors + dataCount) * SECTOR);
  b.write('loge', 0, 'latin1');
  b.writeUInt32LE(b.length, 8);
  b.writeUInt32LE(spec.tail, 12);
  b.writeBigUInt64LE(spec.sequence, 16);
  b.writeUInt32LE(spec.writes.length, 24);
  encodeGuid(spec.logGuid ?? LOG_GUID, b, 32);
  b.writeBigUInt64LE(BigInt(spec.flushedFileOffset), 48);
  b.writeBigUInt64LE(BigInt(spec.lastFileOffset), 56);
  let data = descSectors * SECTOR;
  spec.writes.forEach((w, i) => {
    const d = 64 + i * 32;
    if ('data' in w) {
      b.write('desc', d, 'latin1');
      Buffer.from(w.data.subarray(4092, 4096)).copy(b, d + 4); // TrailingBytes
      Buffer.from(w.data.subarray(0, 8)).copy(b, d + 8); // LeadingBytes
      b.writeBigUInt64LE(BigInt(w.fileOffset), d + 16);
      b.writeBigUInt64LE(spec.sequence, d + 24);
      b.write('data', data, 'latin1');
      b.writeUInt32LE(Number(spec.sequence >> 32n), data + 4);
      Buffer.from(w.data.subarray(8, 4092)).copy(b, data + 8);
      b.writeUInt32LE(Number(spec.sequence & 0xffffffffn), data + 4092);
      data += SECTOR;
    } else {
      b.write('zero', d, 'latin1');
      b.writeBigUInt64LE(BigInt(w.zeroLength), d + 8);
      b.writeBigUInt64LE(BigInt(w.fileOffset), d + 16);
      b.writeBigUInt64LE(spec.sequence, d + 24);
    }
  });
  b.writeUInt32LE(crc32c(b), 4);
  return b;
}

/** The current header's slot (0 at 64 KiB, 1 at 128 KiB): the higher sequence number. */
function currentSlot(img: Buffer): number {
  return img.readBigUInt64LE(128 * 1024 + 8) > img.readBigUInt64LE(64 * 1024 + 8) ? 1 : 0;
}

/**
 * Put `entries` into the log of `img` (each at its byte offset in the log, wrapping at the log's
 * end) and the LogGuid into the current header (resealed), as a writer does before its first entry.
 */
export function withVhdxLog(img: Buffer, entries: Array<{ at: number; entry: Buffer }>, logGuid = LOG_GUID): Buffer {
  const out = Buffer.from(img);
  const h = (currentSlot(out) + 1) * 64 * 1024;
  const logLength = out.readUInt32LE(h + 68);
  const logOffset = Number(out.readBigUInt64LE(h + 72));
  for (const { at, entry } of entries) {
    for (let i = 0; i < entry.length; i += SECTOR) entry.copy(out, logOffset + ((at + i) % logLength), i, i + SECTOR);
  }
  encodeGuid(logGuid, out, h + 48);
  out.writeUInt32LE(0, h + 4);
  out.writeUInt32LE(crc32c(out.subarray(h, h + 4096)), h + 4);
  return out;
}

export function logOffsetOf(img: Buffer): number {
  return Number(img.readBigUInt64LE((currentSlot(img) + 1) * 64 * 1024 + 72));
}
