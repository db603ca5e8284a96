/**
 * Zero detection in 64 KiB blocks: where a new file may keep a hole (the raw writer, the file
 * sink) and where a raw image holds data (open-disk's scan). One block size, so the three agree
 * on what counts as zero.
 */

/** The granularity of holes and of the allocation scan of raw images. */
export const ZERO_BLOCK = 64 << 10;

const ZERO_MIB = Buffer.alloc(1 << 20);

/** True when every byte is zero (memcmp against a zero buffer, 1 MiB at a time). */
export function isAllZero(data: Uint8Array): boolean {
  if (data.length && data[0] | data[data.length - 1]) return false; // most data blocks end here
  for (let at = 0; at < data.length; at += ZERO_MIB.length) {
    const n = Math.min(ZERO_MIB.length, data.length - at);
    if (!Buffer.from(data.buffer, data.byteOffset + at, n).equals(ZERO_MIB.subarray(0, n))) return false;
  }
  return true;
}

/**
 * The spans of `data` that are not zero, as [start, end) offsets into it in ascending order,
 * neighbours joined: `data` is cut into ZERO_BLOCK pieces from its start, and a piece counts as
 * zero when all its bytes are. A short last piece counts as data with `shortTailIsData` (for a
 * writer that keeps whole blocks as holes only).
 */
export function* nonZeroSpans(data: Uint8Array, opts: { shortTailIsData?: boolean } = {}): Generator<[start: number, end: number]> {
  let start = -1;
  for (let at = 0; at < data.length; at += ZERO_BLOCK) {
    const end = Math.min(data.length, at + ZERO_BLOCK);
    const zero = (end - at === ZERO_BLOCK || !opts.shortTailIsData) && isAllZero(data.subarray(at, end));
    if (!zero && start < 0) start = at;
    if (zero && start >= 0) {
      yield [start, at];
      start = -1;
    }
  }
  if (start >= 0) yield [start, data.length];
}
