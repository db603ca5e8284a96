/**
 * The second pass of `flash`: reading the written ranges back from the medium (read-back.ts),
 * several reads in flight while the oldest one's bytes are hashed, and comparing each range's
 * SHA-256 with the one taken while writing; `--verify=full` compares every byte of the image.
 */
import { createHash } from 'node:crypto';
import { DiskmintError } from '../../model/errors.js';
import { readInto, type DiskReader } from '../../model/disk-reader.js';
import type { FlashRange } from './plan.js';
import { firstUnequalByte } from '../../io/byte-compare.js';
import type { ReadBack } from './read-back.js';
import { chunksOf, FLASH_CHUNK, type Meter } from './write.js';

/** The first offset in [offset, offset + length) where the device differs from the plan's bytes. */
async function firstDifference(image: DiskReader, back: ReadBack, range: FlashRange): Promise<number> {
  const expected = new Uint8Array(FLASH_CHUNK);
  for (const c of chunksOf([range])) {
    const want = expected.subarray(0, c.length);
    if (range.kind === 'data') want.fill(0, await readInto(image, c.offset, want));
    else want.fill(0);
    const i = firstUnequalByte(await back.read(c.offset, c.length), want);
    if (i !== undefined) return c.offset + i;
  }
  return range.offset; // the hashes differed: the device changed between the two reads
}

const INTERRUPTED = 'verification interrupted: the device was written in full but not checked';

/**
 * `chunks` read back from the device in order, every slot of `back` but one reading ahead while
 * `use` takes the oldest read's bytes (valid until it returns). Stops at the first value `use`
 * returns, after every read in flight has settled (so the caller may read `back` again).
 */
async function readBackInOrder<C extends { offset: number; length: number }, T>(
  back: ReadBack,
  chunks: Iterator<C>,
  signal: AbortSignal | undefined,
  use: (c: C, bytes: Uint8Array) => Promise<T | undefined> | T | undefined,
): Promise<T | undefined> {
  const pending: Array<Promise<{ c: C; bytes: Uint8Array }>> = [];
  let slot = 0;
  const readNext = () => {
    const next = chunks.next();
    if (next.done) return;
    const c = next.value;
    const read = back.read(c.offset, c.length, slot).then((bytes) => ({ c, bytes }));
    read.catch(() => undefined); // awaited in turn; an error is not left unhandled meanwhile
    pending.push(read);
    slot = (slot + 1) % back.slots;
  };
  for (let i = 0; i < back.slots - 1; i++) readNext();
  try {
    while (pending.length) {
      const { c, bytes } = await pending.shift()!;
      readNext(); // its slot is the one whose bytes were used last round
      if (signal?.aborted) throw new DiskmintError('IO', INTERRUPTED);
      const result = await use(c, bytes);
      if (result !== undefined) return result;
    }
  } finally {
    await Promise.allSettled(pending.splice(0));
  }
  return undefined;
}

/** Read every range back and compare its SHA-256 with `digests`; the first bad offset, or undefined. */
export async function verifyWritten(
  image: DiskReader,
  back: ReadBack,
  plan: readonly FlashRange[],
  digests: readonly string[],
  opts: { signal?: AbortSignal; meter: Meter },
): Promise<number | undefined> {
  let hash = createHash('sha256');
  let index = 0;
  const badRange = await readBackInOrder(back, chunksOf(plan), opts.signal, (c, bytes) => {
    hash.update(bytes);
    opts.meter.advance(c.length);
    if (!c.last) return undefined;
    if (hash.digest('hex') !== digests[index]) return index;
    hash = createHash('sha256');
    index++;
    return undefined;
  });
  return badRange === undefined ? undefined : firstDifference(image, back, plan[badRange]);
}

/** `--verify=full`: the device's first image-size bytes against the image, holes as zeros. */
export async function verifyFull(image: DiskReader, back: ReadBack, opts: { signal?: AbortSignal; meter: Meter }): Promise<number | undefined> {
  const expected = new Uint8Array(FLASH_CHUNK);
  const wholeImage = chunksOf([{ offset: 0, length: image.size, kind: 'data' }]);
  return readBackInOrder(back, wholeImage, opts.signal, async ({ offset, length }, bytes) => {
    const want = expected.subarray(0, length);
    want.fill(0, await readInto(image, offset, want));
    const i = firstUnequalByte(bytes, want);
    if (i !== undefined) return offset + i;
    opts.meter.advance(length);
    return undefined;
  });
}
