/**
 * Replay a VHDX log in place ([MS-VHDX] 2.3.3), as Hyper-V does on open and `qemu-img check -r
 * all` does: the library's replayVhdxLog. Reading commands never call it (they replay in memory,
 * log.ts); it writes the user's file, so it runs only when asked.
 *
 * Order, with a barrier (fsync) between the steps whose order matters, so a stop anywhere leaves
 * a file that a re-run finishes (replaying the same writes again gives the same bytes):
 *   1. every write of the active sequence, in log order; the file grown to the head entry's
 *      LastFileOffset (rounded up to 1 MiB, as qemu) when shorter; fsync;
 *   2. the non-current header, sequence number + 1, LogGuid zero (an empty log) and a new
 *      FileWriteGuid (2.2.2: the file was changed; derived from the old one and the sequence
 *      number, so the same file replays to the same bytes); fsync;
 *   3. the other header, sequence number + 2, the same; fsync.
 * Until step 2 lands the current header still names the log, and the log is unchanged, so the
 * replay is simply done again.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { fileHandleReader } from '../../model/disk-reader.js';
import { DiskmintError } from '../../model/errors.js';
import { writeFully } from '../../io/write-fully.js';
import { withImageLock, type LockOptions } from '../../io/image-lock.js';
import { FormatError } from '../../../formats/common/errors.js';
import { ZERO_GUID } from '../../../formats/common/guid.js';
import { MIB, VHDX_HEADER_OFFSETS, encodeVhdxHeader, isVhdxIdentifier, nextWriteHeader } from '../../../formats/containers/vhdx.js';
import { currentHeader, findLogToReplay, readExact } from './log.js';

export interface VhdxLogReplayResult {
  /** False when the file had no log to replay (it is left untouched). */
  replayed: boolean;
  /** Log entries applied, and the writes they held. */
  entries: number;
  writes: number;
}

/**
 * Replay the log of the VHDX at `path` into the file itself and mark the log empty. Returns
 * `replayed: false` (writing nothing) when there is no valid log to replay. Throws a
 * DiskmintError naming the file when it is not a VHDX, cannot be opened for writing, or its log
 * cannot be replayed (a FormatError's message, e.g. a truncated file). Holds the image lock.
 */
export async function replayVhdxLog(path: string, opts: LockOptions = {}): Promise<VhdxLogReplayResult> {
  return withImageLock(path, opts, () => replayLocked(path)); // one writer at a time (src/io/image-lock.ts)
}

async function replayLocked(path: string): Promise<VhdxLogReplayResult> {
  let h: FileHandle;
  try {
    h = await open(path, 'r+');
  } catch (e) {
    throw new DiskmintError('NOT_A_DISK', `${path} cannot be opened for writing: ${(e as Error).message}`);
  }
  try {
    const file = fileHandleReader(h, (await h.stat()).size, async () => {}); // h is closed below
    if (!isVhdxIdentifier(await readExact(file, 0, 8, 'file identifier'))) throw new FormatError('BAD_MAGIC', 'no VHDX file identifier "vhdxfile"', 'vhdx');
    const { header, slot } = await currentHeader(file);
    const replay = await findLogToReplay(file, header);
    if (!replay) return { replayed: false, entries: 0, writes: 0 };
    // 1. The writes, in order; zeros a MiB at a time.
    const zeros = new Uint8Array(MIB);
    for (const w of replay.writes) {
      if (w.data) await writeFully(h, w.data, w.fileOffset);
      else for (let done = 0; done < w.length; done += MIB) await writeFully(h, zeros.subarray(0, Math.min(MIB, w.length - done)), w.fileOffset + done);
    }
    const head = replay.entries[replay.entries.length - 1];
    if ((await h.stat()).size < head.lastFileOffset) await h.truncate(Math.ceil(head.lastFileOffset / MIB) * MIB);
    await h.sync();
    // 2 and 3. Both headers say the log is empty, the other slot first.
    const { fileWriteGuid } = nextWriteHeader(header); // the writers' one derivation (only FileWriteGuid changes here)
    for (const [k, s] of [1 - slot, slot].entries()) {
      const next = encodeVhdxHeader({ ...header, sequenceNumber: header.sequenceNumber + BigInt(k + 1), logGuid: ZERO_GUID, fileWriteGuid });
      await writeFully(h, next, VHDX_HEADER_OFFSETS[s]);
      await h.sync();
    }
    return { replayed: true, entries: replay.entries.length, writes: replay.writes.length };
  } catch (e) {
    if (e instanceof FormatError) throw new DiskmintError('NOT_A_DISK', `${path}: vhdx: ${e.message}`);
    throw e;
  } finally {
    await h.close();
  }
}
