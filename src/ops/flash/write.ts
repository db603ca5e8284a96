/**
 * The two passes of `flash`: writing the plan's ranges (large aligned writes from two reused
 * buffers, the next chunk read from the image while the last one is written) and reading them
 * back from the medium (read-back.ts) to compare their SHA-256 with what was written.
 */
import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { DiskmintError } from '../../model/errors.js';
import { readInto, type DiskReader } from '../../model/disk-reader.js';
import { writeFully } from '../../io/write-fully.js';
import type { FlashRange } from './plan.js';
import type { ReadBack } from './read-back.js';

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

interface Chunk {
  range: FlashRange;
  offset: number;
  length: number;
  /** The range's last chunk. */
  last: boolean;
}

/** The plan cut into chunks that end on multiples of FLASH_CHUNK (aligned writes). */
function* chunksOf(plan: readonly FlashRange[]): Generator<Chunk> {
  for (const range of plan) {
    const end = range.offset + range.length;
    for (let at = range.offset; at < end;) {
      const next = Math.min(end, (Math.floor(at / FLASH_CHUNK) + 1) * FLASH_CHUNK);
      yield { range, offset: at, length: next - at, last: next === end };
      at = next;
    }
  }
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

/**
 * Write every range of `plan` from `image` to `device`; returns each range's SHA-256 (hex) in
 * plan order. A bmap range whose checksum differs stops the write before its last chunk.
 */
export async function writePlan(
  image: DiskReader,
  device: FileHandle,
  plan: readonly FlashRange[],
  opts: {
    devicePath: string;
    imagePath: string;
    signal?: AbortSignal;
    meter: Meter;
    /** Make a range read as zeros in the kernel (BLKZEROOUT on a block device): true when done, false to write the zeros. */
    zeroOut?: (offset: number, length: number) => Promise<boolean>;
  },
): Promise<string[]> {
  const total = plan.reduce((n, r) => n + r.length, 0);
  const buffers = [new Uint8Array(FLASH_CHUNK), new Uint8Array(FLASH_CHUNK)];
  const zeros = new Uint8Array(FLASH_CHUNK);
  let turn = 0;
  const fetch = async (c: Chunk): Promise<{ c: Chunk; bytes: Uint8Array }> => {
    if (c.range.kind === 'zero') return { c, bytes: zeros.subarray(0, c.length) };
    const into = buffers[turn++ % 2].subarray(0, c.length);
    const got = await readInto(image, c.offset, into);
    if (got < c.length) into.fill(0, got);
    return { c, bytes: into };
  };
  const digests: string[] = [];
  let hash: Hash | undefined;
  let check: Hash | undefined;
  let written = 0;
  let zeroedInKernel = false; // the current range was made zeros by opts.zeroOut: its chunks are hashed, not written
  const chunks = chunksOf(plan);
  const first = chunks.next();
  let pending = first.done ? undefined : fetch(first.value);
  while (pending) {
    const { c, bytes } = await pending;
    const next = chunks.next();
    pending = next.done ? undefined : fetch(next.value); // read ahead while this chunk is hashed and written
    if (opts.signal?.aborted) {
      await pending?.catch(() => undefined);
      throw new FlashInterrupted(opts.devicePath, written, total);
    }
    if (c.offset === c.range.offset) {
      zeroedInKernel = c.range.kind === 'zero' && opts.zeroOut !== undefined && (await opts.zeroOut(c.range.offset, c.range.length));
      hash = createHash('sha256');
      // A bmap's SHA-256 is our own digest; another type (1.3's SHA-1) is a second hash.
      check = c.range.expected && c.range.expected.type !== 'sha256' ? createHash(c.range.expected.type) : undefined;
    }
    // The write runs while this chunk is hashed, except a bmap range's last chunk: it is written
    // only once the range's checksum is known to match.
    const checked = c.last && c.range.expected !== undefined;
    const writing = checked || zeroedInKernel ? undefined : writeFully(device, bytes, c.offset);
    writing?.catch(() => undefined); // awaited below; an error is not left unhandled meanwhile
    hash!.update(bytes);
    check?.update(bytes);
    let digest: string | undefined;
    if (c.last) digest = hash!.digest('hex');
    if (checked) {
      const expected = c.range.expected!;
      const got = check ? check.digest('hex') : digest!;
      if (got !== expected.hex) {
        await pending?.catch(() => undefined);
        throw new DiskmintError(
          'INPUT',
          `checksum mismatch for blocks range ${expected.blocks}: calculated ${got}, the bmap says ${expected.hex} (image ${opts.imagePath}); stopped after writing ${written} bytes: the device is incomplete`,
        );
      }
    }
    if (!zeroedInKernel) await (writing ?? writeFully(device, bytes, c.offset));
    written += c.length;
    opts.meter.advance(c.length);
    if (digest !== undefined) digests.push(digest);
  }
  return digests;
}

/** The first offset in [offset, offset + length) where the device differs from the plan's bytes. */
async function firstDifference(image: DiskReader, back: ReadBack, range: FlashRange): Promise<number> {
  const expected = new Uint8Array(FLASH_CHUNK);
  for (const c of chunksOf([range])) {
    const want = expected.subarray(0, c.length);
    if (range.kind === 'data') want.fill(0, await readInto(image, c.offset, want));
    else want.fill(0);
    const got = await back.read(c.offset, c.length);
    for (let i = 0; i < c.length; i++) if (got[i] !== want[i]) return c.offset + i;
  }
  return range.offset; // the hashes differed: the device changed between the two reads
}

/** Read every range back and compare its SHA-256 with `digests`; the first bad offset, or undefined. */
export async function verifyWritten(
  image: DiskReader,
  back: ReadBack,
  plan: readonly FlashRange[],
  digests: readonly string[],
  opts: { signal?: AbortSignal; meter: Meter },
): Promise<number | undefined> {
  const chunks = chunksOf(plan);
  let slot: 0 | 1 = 0;
  const fetch = (c: Chunk) => {
    slot = slot === 0 ? 1 : 0;
    return back.read(c.offset, c.length, slot).then((bytes) => ({ c, bytes }));
  };
  const first = chunks.next();
  let pending = first.done ? undefined : fetch(first.value);
  let hash = createHash('sha256');
  let index = 0;
  while (pending) {
    const { c, bytes } = await pending;
    const next = chunks.next();
    pending = next.done ? undefined : fetch(next.value); // read ahead while this chunk is hashed
    if (opts.signal?.aborted) {
      await pending?.catch(() => undefined);
      throw new DiskmintError('IO', 'verification interrupted: the device was written in full but not checked');
    }
    hash.update(bytes);
    opts.meter.advance(c.length);
    if (!c.last) continue;
    if (hash.digest('hex') !== digests[index]) {
      await pending?.catch(() => undefined);
      return firstDifference(image, back, plan[index]);
    }
    hash = createHash('sha256');
    index++;
  }
  return undefined;
}

/** `--verify=full`: the device's first image-size bytes against the image, holes as zeros. */
export async function verifyFull(image: DiskReader, back: ReadBack, opts: { signal?: AbortSignal; meter: Meter }): Promise<number | undefined> {
  const expected = new Uint8Array(FLASH_CHUNK);
  for (let at = 0; at < image.size; at += FLASH_CHUNK) {
    if (opts.signal?.aborted) throw new DiskmintError('IO', 'verification interrupted: the device was written in full but not checked');
    const n = Math.min(FLASH_CHUNK, image.size - at);
    const want = expected.subarray(0, n);
    want.fill(0, await readInto(image, at, want));
    const got = await back.read(at, n);
    if (Buffer.compare(got, want) !== 0) for (let i = 0; i < n; i++) if (got[i] !== want[i]) return at + i;
    opts.meter.advance(n);
  }
  return undefined;
}
