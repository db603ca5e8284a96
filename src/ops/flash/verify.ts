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
import { chunksOf, FLASH_CHUNK, type Chunk, type Meter } from './write.js';

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

/** Read every range back and compare its SHA-256 with `digests`; the first bad offset, or undefined. */
export async function verifyWritten(
  image: DiskReader,
  back: ReadBack,
  plan: readonly FlashRange[],
  digests: readonly string[],
  opts: { signal?: AbortSignal; meter: Meter },
): Promise<number | undefined> {
  const chunks = chunksOf(plan);
  // Every slot but one reads ahead while the oldest read's bytes are hashed.
  const pending: Array<Promise<{ c: Chunk; bytes: Uint8Array }>> = [];
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
  const stop = async () => {
    await Promise.allSettled(pending.splice(0));
  };
  for (let i = 0; i < back.slots - 1; i++) readNext();
  let hash = createHash('sha256');
  let index = 0;
  try {
    while (pending.length) {
      const { c, bytes } = await pending.shift()!;
      readNext(); // its slot is the one whose bytes were hashed last round
      if (opts.signal?.aborted) {
        await stop();
        throw new DiskmintError('IO', 'verification interrupted: the device was written in full but not checked');
      }
      hash.update(bytes);
      opts.meter.advance(c.length);
      if (!c.last) continue;
      if (hash.digest('hex') !== digests[index]) {
        await stop();
        return firstDifference(image, back, plan[index]);
      }
      hash = createHash('sha256');
      index++;
    }
  } finally {
    await stop();
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
    const i = firstUnequalByte(await back.read(at, n), want);
    if (i !== undefined) return at + i;
    opts.meter.advance(n);
  }
  return undefined;
}
