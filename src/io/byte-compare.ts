/**
 * Where two byte runs first differ: one memcmp of the whole when they are equal (the usual
 * case), else whole 4 KiB blocks by memcmp and then the bytes of the block that differs. Used by
 * `compare` and by `flash`'s read-back, which report the first differing offset.
 */

/** The index of the first byte where `x` and `y` (of equal length) differ; undefined when they are equal. */
export function firstUnequalByte(x: Uint8Array, y: Uint8Array): number | undefined {
  const bx = Buffer.from(x.buffer, x.byteOffset, x.length);
  const by = Buffer.from(y.buffer, y.byteOffset, y.length);
  if (bx.equals(by)) return undefined;
  let i = 0;
  while (i + 4096 <= x.length && bx.subarray(i, i + 4096).equals(by.subarray(i, i + 4096))) i += 4096;
  while (i < x.length && x[i] === y[i]) i++;
  return i;
}
