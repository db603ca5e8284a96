/**
 * Large writes of a new output file straight to the device (O_DIRECT, open(2)), past the page
 * cache: a buffered write copies every byte into freshly allocated cache pages, which is most of
 * a conversion's time (the kernel's copy_folio_from_iter), and those pages are then written out
 * by the fsync anyway. Here each byte is copied once into a small reused staging buffer and the
 * device reads it from there. The bytes that reach the file are the same either way.
 *
 * Direct I/O wants the file offset, the length and the memory address aligned to the device's
 * logical block; the staging buffer is a WebAssembly memory (its base is page aligned) and only
 * the ALIGN-aligned middle of a write goes direct, its ends through the caller's buffered write.
 * A middle copied into a staging buffer is written behind: the call resolves once the copy is
 * made (the caller's memory is free), up to WRITES_BEHIND such writes stay on their way, and
 * `drain` (the sink's finish, before any fsync) waits for them and throws the first failure.
 * Where the file system refuses O_DIRECT (tmpfs, some FUSE), the sink writes buffered as before;
 * DISKMINT_PURE_IO=1 writes buffered too (plain reads and writes only).
 */
import { closeSync, constants, openSync, write } from 'node:fs';
import { promisify } from 'node:util';
import { PAGE_ALIGN, isPageAligned, pageAlignedBuffer } from './aligned-memory.js';

/** Offsets, lengths and the buffer's base aligned to this (aligned-memory.ts). */
export const DIRECT_ALIGN = PAGE_ALIGN;
/** Bytes staged per direct write (a gathered batch is ~4 MiB; the coalesced bytes before it up to 4 MiB more). */
const STAGE_BYTES = 8 << 20;
/** A write whose aligned middle is shorter than this goes buffered whole (not worth a second descriptor). */
const DIRECT_AT_LEAST = 256 << 10;

const pwrite = promisify(write);

/** Buffered write of `parts` back to back from `at` (the caller's own path). */
export type BufferedWrite = (parts: readonly Uint8Array[], at: number) => Promise<void>;

export interface DirectWrites {
  /**
   * Write `parts` back to back from `at`: the aligned middle through O_DIRECT, the ends (and all
   * of it when direct I/O is refused or too short) through `buffered`. Resolves once the caller's
   * memory is no longer needed: a middle copied into a staging buffer may still be on its way to
   * the device (at most WRITES_BEHIND of them); `drain` waits for those.
   */
  write(parts: readonly Uint8Array[], at: number, buffered: BufferedWrite): Promise<void>;
  /** Wait for every write still on its way; throws the first one's failure. */
  drain(): Promise<void>;
  /** Bytes that went direct so far. */
  readonly directBytes: number;
}

/**
 * Staged writes that may still be on their way when `write` resolves. With one, the device sat
 * idle while the next batch was copied into a stage; with two it always has the next write
 * queued (this VM's disk: 512 MiB in 4 MiB direct writes 375 ms one at a time, 337-347 ms two).
 */
const WRITES_BEHIND = 2;

/** Direct writes into the file open as `fd` (reopened through /proc/self/fd with O_DIRECT for each write, so no descriptor outlives one). */
export function directWrites(fd: number | undefined): DirectWrites {
  let usable = fd !== undefined && process.platform === 'linux' && process.env.DISKMINT_PURE_IO !== '1' && constants.O_DIRECT !== undefined;
  // One staging buffer per write in flight (positioned writes run concurrently), reused after.
  const idleStages: Uint8Array[] = [];
  let directBytes = 0;
  const behind: Array<Promise<void>> = []; // staged writes on their way, oldest first
  let failure: unknown; // the first of them that failed, thrown by the next call
  const rethrow = () => {
    if (failure !== undefined) throw failure;
  };
  /** `stage`'s bytes written at `from` through `direct` (closed after) behind the caller; what the kernel refuses, buffered from the stage. */
  const writeBehind = async (direct: number, stage: Uint8Array, from: number, buffered: BufferedWrite) => {
    while (behind.length >= WRITES_BEHIND) await behind[0]; // settles either way (a failure is kept in `failure`)
    const done = (async () => {
      try {
        const written = await writeDirect(direct, stage, from);
        directBytes += written;
        if (written < stage.length) {
          usable = false; // refused partway: buffered from now on
          await buffered([stage.subarray(written)], from + written);
        }
      } finally {
        closeSync(direct);
        idleStages.push(fullStage(stage));
      }
    })();
    const tracked = done.then(
      () => void behind.splice(behind.indexOf(tracked), 1),
      (err: unknown) => {
        behind.splice(behind.indexOf(tracked), 1);
        failure ??= err;
      },
    );
    behind.push(tracked);
  };
  return {
    get directBytes() {
      return directBytes;
    },
    async drain() {
      while (behind.length) await behind[0];
      rethrow();
    },
    async write(parts, at, buffered) {
      rethrow();
      let total = 0;
      for (const p of parts) total += p.length;
      const from = Math.ceil(at / DIRECT_ALIGN) * DIRECT_ALIGN;
      const to = Math.floor((at + total) / DIRECT_ALIGN) * DIRECT_ALIGN;
      if (!usable || to - from < DIRECT_AT_LEAST) return buffered(parts, at);
      let direct: number;
      try {
        direct = openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_DIRECT);
      } catch {
        usable = false; // no /proc, or a file system without O_DIRECT (EINVAL): buffered from now on
        return buffered(parts, at);
      }
      const middle = slice(parts, from - at, to - at);
      if (to - from <= STAGE_BYTES && !(middle.length === 1 && isPageAligned(middle[0]))) {
        // One stage holds the middle: copied, the caller's memory is free, and the device write goes on behind.
        const stage = stageOf(middle, to - from, idleStages);
        try {
          await buffered(slice(parts, 0, from - at), at);
          await buffered(slice(parts, to - at, total), to);
        } catch (err) {
          closeSync(direct);
          idleStages.push(fullStage(stage));
          throw err;
        }
        return writeBehind(direct, stage, from, buffered);
      }
      try {
        const written = await writeAligned(direct, middle, from, to, idleStages);
        directBytes += written;
        if (written < to - from) usable = false; // refused partway: buffered from now on
        await buffered(slice(parts, 0, from - at), at);
        await buffered(slice(parts, from + written - at, total), from + written);
      } finally {
        closeSync(direct);
      }
    },
  };
}

/** `parts` (`n` bytes in all) copied into the front of a staging buffer: the view of them. */
function stageOf(parts: readonly Uint8Array[], n: number, idleStages: Uint8Array[]): Uint8Array {
  const stage = idleStages.pop() ?? pageAlignedBuffer(STAGE_BYTES);
  copyInto(stage, parts);
  return stage.subarray(0, n);
}

/** `parts` copied back to back into the front of `into`. */
function copyInto(into: Uint8Array, parts: readonly Uint8Array[]): void {
  let filled = 0;
  for (const p of parts) {
    into.set(p, filled);
    filled += p.length;
  }
}

/** The whole staging buffer a view of one starts. */
function fullStage(view: Uint8Array): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, STAGE_BYTES);
}

/**
 * Write `middle` (the bytes for [from, to), back to back) with `direct`: straight from the
 * caller's memory when it is one page-aligned view (aligned-memory.ts), else copied into a
 * staging buffer (one of `idleStages`, or a new one) a stage at a time. Returns how many bytes
 * from `from` on were written; fewer than `to - from` when the kernel refused direct I/O for this
 * file (EINVAL), then the caller writes the rest buffered. Other errors (no space, I/O) are thrown.
 */
async function writeAligned(direct: number, middle: readonly Uint8Array[], from: number, to: number, idleStages: Uint8Array[]): Promise<number> {
  if (middle.length === 1 && isPageAligned(middle[0])) return writeDirect(direct, middle[0], from);
  const stage = idleStages.pop() ?? pageAlignedBuffer(STAGE_BYTES);
  try {
    let done = 0;
    while (from + done < to) {
      const n = Math.min(stage.length, to - from - done);
      copyInto(stage, slice(middle, done, done + n));
      const k = await writeDirect(direct, stage.subarray(0, n), from + done);
      if (k < n) return done + k;
      done += n;
    }
    return done;
  } finally {
    idleStages.push(stage);
  }
}

/** Write all of `data` (page-aligned memory) at `from` with `direct`; returns the bytes written, fewer when refused (as writeAligned). */
async function writeDirect(direct: number, data: Uint8Array, from: number): Promise<number> {
  for (let off = 0; off < data.length;) {
    let k: number;
    try {
      k = (await pwrite(direct, data, off, data.length - off, from + off)).bytesWritten;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EINVAL') return off; // alignment this file system wants more of
      throw err;
    }
    if (k <= 0 || k % DIRECT_ALIGN !== 0) return off + Math.max(0, k); // the rest buffered, from wherever it stopped
    off += k;
  }
  return data.length;
}

/** Bytes [start, end) of `parts` taken as one sequence, as views (no copy). */
function slice(parts: readonly Uint8Array[], start: number, end: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let base = 0;
  for (const p of parts) {
    const s = Math.max(start, base);
    const e = Math.min(end, base + p.length);
    if (s < e) out.push(p.subarray(s - base, e - base));
    base += p.length;
    if (base >= end) break;
  }
  return out;
}
