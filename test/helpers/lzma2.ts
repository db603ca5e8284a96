/**
 * LZMA2 data made without an encoder, for tests of the .xz container: `data` stored as it is, in
 * uncompressed chunks. The chunk headers are those of liblzma's lzma2_decoder.c (and
 * xz-embedded's xz_dec_lzma2.c): control byte 0x01 (uncompressed, dictionary reset: the first
 * chunk must reset it) or 0x02 (uncompressed, no reset), then the chunk's size - 1 in two bytes,
 * big-endian, then the bytes, at most 64 KiB a chunk; a 0x00 control byte ends the data.
 */
const CHUNK = 64 << 10;

export function lzma2Stored(data: Uint8Array): Uint8Array {
  const chunks = Math.ceil(data.length / CHUNK);
  const out = new Uint8Array(data.length + 3 * chunks + 1);
  let at = 0;
  for (let i = 0; i < chunks; i++) {
    const piece = data.subarray(i * CHUNK, (i + 1) * CHUNK);
    out[at] = i === 0 ? 0x01 : 0x02;
    out[at + 1] = (piece.length - 1) >> 8;
    out[at + 2] = (piece.length - 1) & 0xff;
    out.set(piece, at + 3);
    at += 3 + piece.length;
  }
  out[at] = 0x00;
  return out;
}
