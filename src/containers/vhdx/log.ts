/**
 * The VHDX log ([MS-VHDX] 2.3): finding the sequence of entries that must be replayed before the
 * file is consistent, and replaying it in memory, as an overlay over the file's bytes, so reading
 * commands see what Hyper-V or `qemu-img check -r all` would leave without the input ever being
 * written. replay.ts applies the same writes in place, on explicit request only.
 *
 * Which log needs replaying (2.3.3, and what qemu's block/vhdx-log.c accepts): only a valid one.
 * The header's LogGuid is not zero; entries carry that LogGuid, a valid CRC-32C over the whole
 * entry and valid descriptors (formats/containers/vhdx-log.ts decodeLogEntry); a sequence is entries
 * one after another in the ring with sequence numbers one apart; the active sequence is the one
 * whose last (head) entry has the highest sequence number, replayed from the entry its head's Tail
 * names. A sequence whose head's Tail is not one of its own entries is incomplete and not
 * replayed (qemu does not look at Tail; for the logs Hyper-V and qemu write, where Tail names an
 * entry of the sequence, both replay the same writes). Anything else in the log (a bad checksum,
 * another LogGuid, stale entries) is not a log to replay: the file opens as it is, as in qemu.
 */
import type { DiskReader } from '../../model/disk-reader.js';
import { fail } from '../../../formats/common/errors.js';
import { ZERO_GUID } from '../../../formats/common/guid.js';
import { MIB, VHDX_HEADER_OFFSETS, VHDX_HEADER_SIZE, decodeVhdxHeader, type VhdxHeader } from '../../../formats/containers/vhdx.js';
import {
  VHDX_LOG_SECTOR,
  decodeLogEntry,
  decodeLogEntryHeader,
  isLogEntryFor,
  type VhdxLogEntryHeader,
  type VhdxLogWrite,
} from '../../../formats/containers/vhdx-log.js';

export async function readExact(file: DiskReader, offset: number, length: number, what: string): Promise<Uint8Array> {
  if (offset + length > file.size) throw fail('vhdx', 'TRUNCATED', `VHDX ${what} at ${offset} (${length} bytes) runs past the end of the file`);
  const b = await file.read(offset, length);
  if (b.length !== length) throw fail('vhdx', 'TRUNCATED', `VHDX ${what} at ${offset} is cut short`);
  return b;
}

/** 2.2.2.1: use the valid header with the higher sequence number; `slot` is 0 or 1 (at 64 or 128 KiB). */
export async function currentHeader(file: DiskReader): Promise<{ header: VhdxHeader; slot: number }> {
  const found: Array<{ header: VhdxHeader; slot: number }> = [];
  const errors: unknown[] = [];
  for (const [i, at] of VHDX_HEADER_OFFSETS.entries()) {
    try {
      found.push({ header: decodeVhdxHeader(await readExact(file, at, VHDX_HEADER_SIZE, `header ${i + 1}`), `header ${i + 1}`), slot: i });
    } catch (e) {
      errors.push(e);
    }
  }
  if (found.length === 0) throw errors[0];
  return found.reduce((a, b) => (b.header.sequenceNumber > a.header.sequenceNumber ? b : a));
}

/** The active sequence: its entries from the tail to the head, and their writes in order. */
export interface VhdxLogReplay {
  entries: VhdxLogEntryHeader[];
  writes: VhdxLogWrite[];
  /** The file's size once replayed: at least the head's LastFileOffset and the end of every write. */
  fileSize: number;
}

/**
 * The log sequence that needs replaying, or undefined when there is none (LogGuid zero, an empty
 * log, or no valid sequence in it). Throws FormatError when the log itself is misplaced or the
 * active sequence says the file was truncated (the head's FlushedFileOffset past its end, which
 * qemu refuses too).
 */
export async function findLogToReplay(file: DiskReader, h: VhdxHeader): Promise<VhdxLogReplay | undefined> {
  if (h.logGuid === ZERO_GUID || h.logLength === 0) return undefined;
  if (h.logLength > 1024 * MIB) throw fail('vhdx', 'TOO_LARGE', `VHDX log of ${h.logLength} bytes is larger than 1 GiB`);
  if (h.logOffset % MIB !== 0 || h.logLength % MIB !== 0 || h.logOffset < MIB || h.logOffset + h.logLength > file.size) {
    throw fail('vhdx', 'BAD_VALUE', `VHDX log at ${h.logOffset} (${h.logLength} bytes) is misplaced or outside the file`);
  }
  if (h.logVersion !== 0) throw fail('vhdx', 'BAD_VALUE', `VHDX log version ${h.logVersion} is not 0 (2.2.2)`);
  const L = h.logLength;
  const sectors = L / VHDX_LOG_SECTOR;
  // Where an entry for this LogGuid may start: one pass over the log, 1 MiB at a time.
  const starts = new Set<number>();
  for (let at = 0; at < L; at += MIB) {
    const chunk = await readExact(file, h.logOffset + at, MIB, 'log');
    for (let e = 0; e < MIB; e += VHDX_LOG_SECTOR) if (isLogEntryFor(chunk, e, h.logGuid)) starts.add((at + e) / VHDX_LOG_SECTOR);
  }
  if (starts.size === 0) return undefined;

  /** The log is a ring: an entry may run past its end and go on at its start. */
  const readRing = async (at: number, length: number): Promise<Uint8Array> => {
    const first = Math.min(length, L - at);
    const a = await readExact(file, h.logOffset + at, first, 'log entry');
    if (first === length) return a;
    const out = new Uint8Array(length);
    out.set(a);
    out.set(await readExact(file, h.logOffset, length - first, 'log entry'), first);
    return out;
  };
  type Entry = NonNullable<ReturnType<typeof decodeLogEntry>> & { sector: number; sectors: number };
  const cache = new Map<number, Entry | undefined>();
  // Entries of one log do not overlap, so checking them reads about the log once; headers that
  // claim long, overlapping entries could make it read the log once per sector. Bounded.
  let budget = 4 * L;
  const entryAt = async (sector: number): Promise<Entry | undefined> => {
    if (!starts.has(sector)) return undefined;
    if (cache.has(sector)) return cache.get(sector);
    const head = decodeLogEntryHeader(await readRing(sector * VHDX_LOG_SECTOR, 64));
    let entry: Entry | undefined;
    if (head.entryLength > 0 && head.entryLength <= L && head.entryLength % VHDX_LOG_SECTOR === 0) {
      budget -= head.entryLength;
      if (budget < 0) throw fail('vhdx', 'TOO_LARGE', 'VHDX log entries overlap one another (their lengths add up to more than 4 times the log)');
      const decoded = decodeLogEntry(await readRing(sector * VHDX_LOG_SECTOR, head.entryLength), h.logGuid);
      if (decoded) entry = { ...decoded, sector, sectors: head.entryLength / VHDX_LOG_SECTOR };
    }
    cache.set(sector, entry);
    return entry;
  };

  let best: Entry[] | undefined;
  for (let pos = 0; pos < sectors;) {
    const first = await entryAt(pos);
    if (!first) {
      pos++;
      continue;
    }
    const chain = [first];
    let used = first.sectors;
    while (used < sectors) {
      const next = await entryAt((pos + used) % sectors);
      if (!next || next.header.sequenceNumber !== chain[chain.length - 1].header.sequenceNumber + 1n || used + next.sectors > sectors) break;
      chain.push(next);
      used += next.sectors;
    }
    const head = chain[chain.length - 1];
    const from = chain.findIndex((e) => e.sector * VHDX_LOG_SECTOR === head.header.tail);
    if (from >= 0 && (!best || head.header.sequenceNumber > best[best.length - 1].header.sequenceNumber)) best = chain.slice(from);
    pos += used;
  }
  if (!best) return undefined;
  const head = best[best.length - 1].header;
  if (head.flushedFileOffset > file.size) {
    throw fail(
      'vhdx',
      'TRUNCATED',
      `VHDX log entry ${head.sequenceNumber} says the file was ${head.flushedFileOffset} bytes when it was written, but it is ${file.size}: the file was cut short`,
    );
  }
  if (head.lastFileOffset > Number.MAX_SAFE_INTEGER) throw fail('vhdx', 'TOO_LARGE', `VHDX log entry ${head.sequenceNumber} LastFileOffset is too large`);
  const writes = best.flatMap((e) => e.writes);
  const fileSize = writes.reduce((size, w) => Math.max(size, w.fileOffset + w.length), Math.max(file.size, head.lastFileOffset));
  return { entries: best.map((e) => e.header), writes, fileSize };
}

/**
 * The file as the replayed log leaves it, read-only: reads come from `file`, then each write of
 * the log that touches them is laid over, in log order (zeros past the file's end up to the
 * replayed size). The input is never written.
 */
export function replayedFile(file: DiskReader, replay: VhdxLogReplay): DiskReader {
  // An index by MiB so a read looks only at the writes near it; very long zero writes go to `wide`.
  const BUCKET = MIB;
  const buckets = new Map<number, number[]>();
  const wide: number[] = [];
  replay.writes.forEach((w, i) => {
    if (w.length === 0) return;
    const first = Math.floor(w.fileOffset / BUCKET);
    const last = Math.floor((w.fileOffset + w.length - 1) / BUCKET);
    if (last - first > 64) return void wide.push(i);
    for (let b = first; b <= last; b++) {
      const list = buckets.get(b);
      if (list) list.push(i);
      else buckets.set(b, [i]);
    }
  });
  const size = replay.fileSize;
  return {
    size,
    async read(offset, length) {
      const start = Math.min(Math.max(0, offset), size);
      const end = Math.min(size, start + Math.max(0, length));
      const out = new Uint8Array(end - start);
      if (start < file.size) out.set(await file.read(start, Math.min(end, file.size) - start));
      if (out.length === 0) return out;
      const hits = new Set<number>(wide);
      for (let b = Math.floor(start / BUCKET); b <= Math.floor((end - 1) / BUCKET); b++) for (const i of buckets.get(b) ?? []) hits.add(i);
      for (const i of [...hits].sort((a, b) => a - b)) {
        const w = replay.writes[i];
        const from = Math.max(start, w.fileOffset);
        const to = Math.min(end, w.fileOffset + w.length);
        if (from >= to) continue;
        if (w.data) out.set(w.data.subarray(from - w.fileOffset, to - w.fileOffset), from - start);
        else out.fill(0, from - start, to - start);
      }
      return out;
    },
    close: () => file.close(),
  };
}
