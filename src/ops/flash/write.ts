/**
 * The first pass of `flash`: writing the plan's ranges in large aligned chunks from a few reused
 * buffers, the next chunk read from the image and hashed while earlier ones are written. The
 * second pass, reading them back, is verify.ts.
 */
import { createHash, type Hash } from 'node:crypto';
import { DiskmintError } from '../../model/errors.js';
import { readInto, type DiskReader } from '../../model/disk-reader.js';
import type { DeviceWriter } from './device-writer.js';
import type { FlashRange } from './plan.js';

/** Bytes per write and per read-back (4 MiB: bmaptool's and dd's usual, large enough for any device's queue). */
export const FLASH_CHUNK = 4 << 20;

export type FlashPhase = 'write' | 'sync' | 'verify';

export interface FlashProgress {
  phase: FlashPhase;
  doneBytes: number;
  totalBytes: number;
  /** Average since the phase began. */
  bytesPerSecond: number;
}

/** Flash was stopped (its AbortSignal, Ctrl-C in the CLI): the device holds part of the image. */
export class FlashInterrupted extends DiskmintError {
  constructor(
    readonly device: string,
    readonly writtenBytes: number,
    readonly totalBytes: number,
  ) {
    super('IO', `interrupted after writing ${writtenBytes} of ${totalBytes} bytes: ${device} is incomplete and will not boot as the image`);
  }
}

export interface Chunk {
  range: FlashRange;
  offset: number;
  length: number;
  /** The range's last chunk. */
  last: boolean;
}

/** A range cut into chunks that end on multiples of FLASH_CHUNK (aligned writes). */
function* rangeChunks(range: FlashRange): Generator<Chunk> {
  const end = range.offset + range.length;
  for (let at = range.offset; at < end;) {
    const next = Math.min(end, (Math.floor(at / FLASH_CHUNK) + 1) * FLASH_CHUNK);
    yield { range, offset: at, length: next - at, last: next === end };
    at = next;
  }
}

/** The plan cut into chunks that end on multiples of FLASH_CHUNK (aligned writes). */
export function* chunksOf(plan: readonly FlashRange[]): Generator<Chunk> {
  for (const range of plan) yield* rangeChunks(range);
}

export interface Meter {
  phase(phase: FlashPhase, total: number): void;
  advance(bytes: number): void;
}

/** A meter that reports to `onProgress` (rate since the phase began). */
export function meter(onProgress?: (p: FlashProgress) => void): Meter {
  let phase: FlashPhase = 'write';
  let total = 0;
  let done = 0;
  let started = performance.now();
  const emit = () => onProgress?.({ phase, doneBytes: done, totalBytes: total, bytesPerSecond: done / Math.max(1e-3, (performance.now() - started) / 1000) });
  return {
    phase(p, t) {
      [phase, total, done, started] = [p, t, 0, performance.now()];
      emit();
    },
    advance(bytes) {
      done += bytes;
      emit();
    },
  };
}

/** Writes in flight at once (direct I/O: the device's queue kept busy while the next chunk is read and hashed). */
export const WRITES_IN_FLIGHT = 3;

/**
 * Write every range of `plan` from `image` to `device`; returns the ranges written and each
 * one's SHA-256 (hex), in plan order. Each chunk is read into a free buffer and hashed, then its
 * write starts while the next chunk is read: up to WRITES_IN_FLIGHT writes at once. A bmap range
 * whose checksum differs stops the write before its last chunk. `plan` may be a list, or ranges
 * found as the image is read (plan.ts streamedFlashPlan): the next range is asked for only once
 * the last one's bytes have been read, so `image` is read in ascending order.
 */
export async function writePlan(
  image: DiskReader,
  device: DeviceWriter,
  plan: Iterable<FlashRange> | AsyncIterable<FlashRange>,
  opts: {
    devicePath: string;
    imagePath: string;
    /** Bytes the plan writes (for the message of an interruption). */
    total: number;
    signal?: AbortSignal;
    meter: Meter;
    /** False when the caller advances the meter itself (a streamed plan: progress through the image). */
    meterWrites?: boolean;
    /** Make a range read as zeros in the kernel (BLKZEROOUT on a block device): true when done, false to write the zeros. */
    zeroOut?: (offset: number, length: number) => Promise<boolean>;
  },
): Promise<{ ranges: FlashRange[]; digests: string[] }> {
  const { total } = opts;
  const advance = opts.meterWrites === false ? () => {} : (n: number) => opts.meter.advance(n);
  const ranges: FlashRange[] = [];
  const free = [...device.buffers];
  const inFlight: Array<Promise<Uint8Array | undefined>> = [];
  let written = 0;
  /** Wait for the oldest write; its buffer is free again. */
  const settleOldest = async () => {
    const buffer = await inFlight.shift()!;
    if (buffer) free.push(buffer);
  };
  const drain = async () => {
    await Promise.allSettled(inFlight.splice(0));
  };
  const digests: string[] = [];
  let hash: Hash | undefined;
  let check: Hash | undefined;
  let zeroedInKernel = false; // the current range was made zeros by opts.zeroOut: its chunks are hashed, not written
  try {
    for await (const range of plan) {
      ranges.push(range);
      for (const c of rangeChunks(range)) {
        if (opts.signal?.aborted) {
          await drain();
          throw new FlashInterrupted(opts.devicePath, written, total);
        }
        if (c.offset === c.range.offset) {
          zeroedInKernel = c.range.kind === 'zero' && opts.zeroOut !== undefined && (await opts.zeroOut(c.range.offset, c.range.length));
          hash = createHash('sha256');
          // A bmap's SHA-256 is our own digest; another type (1.3's SHA-1) is a second hash.
          check = c.range.expected && c.range.expected.type !== 'sha256' ? createHash(c.range.expected.type) : undefined;
        }
        let buffer: Uint8Array | undefined;
        let bytes: Uint8Array;
        if (c.range.kind === 'zero') bytes = device.zeros.subarray(0, c.length);
        else {
          while (free.length === 0) await settleOldest();
          buffer = free.pop()!;
          bytes = buffer.subarray(0, c.length);
          const got = await readInto(image, c.offset, bytes);
          if (got < c.length) bytes.fill(0, got);
        }
        hash!.update(bytes);
        check?.update(bytes);
        let digest: string | undefined;
        if (c.last) digest = hash!.digest('hex');
        // A bmap range's last chunk is written only once the range's checksum is known to match.
        if (c.last && c.range.expected) {
          const expected = c.range.expected;
          const got = check ? check.digest('hex') : digest!;
          if (got !== expected.hex) {
            await drain();
            throw new DiskmintError(
              'INPUT',
              `checksum mismatch for blocks range ${expected.blocks}: calculated ${got}, the bmap says ${expected.hex} (image ${opts.imagePath}); stopped after writing ${written} bytes: the device is incomplete`,
            );
          }
        }
        if (!zeroedInKernel) {
          const length = c.length;
          const writing = device.write(bytes, c.offset).then(() => {
            written += length;
            advance(length);
            return buffer;
          });
          writing.catch(() => undefined); // awaited in turn below; an error is not left unhandled meanwhile
          inFlight.push(writing);
          while (inFlight.length > WRITES_IN_FLIGHT) await settleOldest(); // zero chunks take no buffer: bound them too
        } else {
          written += c.length;
          advance(c.length);
          if (buffer) free.push(buffer);
        }
        if (digest !== undefined) digests.push(digest);
      }
    }
    while (inFlight.length) await settleOldest();
  } finally {
    await drain();
  }
  return { ranges, digests };
}
