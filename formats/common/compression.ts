/**
 * Compressed streams that card images ship in, known by their first bytes (never by name):
 * gzip, xz, zstd, bzip2, and a zip archive holding the image.
 */

export type CompressionKind = 'gzip' | 'xz' | 'zstd' | 'bzip2' | 'zip';

/** The command-line and file-name spelling of each kind. */
export const COMPRESSION_EXTENSIONS: Record<CompressionKind, string> = { gzip: '.gz', xz: '.xz', zstd: '.zst', bzip2: '.bz2', zip: '.zip' };

/** How many leading bytes `detectCompression` needs. */
export const COMPRESSION_MAGIC_BYTES = 10;

/** The compression whose magic `head` starts with, else undefined. Never throws on short input. */
export function detectCompression(head: Uint8Array): CompressionKind | undefined {
  const at = (i: number) => (i < head.length ? head[i] : -1);
  const is = (bytes: number[], from = 0) => bytes.every((b, i) => at(from + i) === b);
  // RFC 1952 2.3.1: ID1 0x1f, ID2 0x8b, CM 8 (deflate, the only method defined).
  if (is([0x1f, 0x8b, 0x08])) return 'gzip';
  // The .xz File Format 1.0.4, 2.1.1.1: Header Magic Bytes FD 37 7A 58 5A 00.
  if (is([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return 'xz';
  // RFC 8878 3.1.1: Magic_Number 0xFD2FB528, little-endian.
  if (is([0x28, 0xb5, 0x2f, 0xfd])) return 'zstd';
  // bzip2: "BZh", a block size '1'..'9', then a block's magic (pi, 0x314159265359) or the
  // end-of-stream magic (sqrt(pi), 0x177245385090) of an empty stream.
  if (is([0x42, 0x5a, 0x68]) && at(3) >= 0x31 && at(3) <= 0x39) {
    if (is([0x31, 0x41, 0x59, 0x26, 0x53, 0x59], 4) || is([0x17, 0x72, 0x45, 0x38, 0x50, 0x90], 4)) return 'bzip2';
  }
  // PKWARE APPNOTE 4.3.7: local file header signature 0x04034b50 ("PK\3\4").
  if (is([0x50, 0x4b, 0x03, 0x04])) return 'zip';
  return undefined;
}
