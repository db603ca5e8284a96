/**
 * A compressed image's decompressed size as the stream itself records it, found without decoding
 * anything: an .xz file's index (The .xz File Format 1.2.1, section 4: every block's uncompressed
 * size) and a zstd file's frame headers (RFC 8878 3.1.1.1.4 Frame_Content_Size, frame after frame
 * by their block headers). gzip records its size only modulo 2^32 and for its last member (RFC
 * 1952 2.3.1 ISIZE) and bzip2 not at all; a zstd frame written from a pipe may leave it out, an
 * .xz may hold several streams. For those the size is undefined: the image must be decoded once to
 * know it (compressed/spool.ts).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { CompressionKind } from '../../../formats/common/compression.js';
import { parseZstdBlockHeader, parseZstdFrameStart, ZSTD_BLOCK_HEADER, ZSTD_MAX_FRAME_HEADER, zstdFrameTrailer } from '../../../formats/common/zstd-frame.js';
import { XZ_HEADER_SIZE, xzIndexSize, xzLayout, type XzLayout } from './xz-blocks.js';

/** Largest xz index read (20 bytes a block at most: 64 MiB of index is ~3 million blocks). */
const MAX_XZ_INDEX = 64 << 20;
/** Header bytes are read through a window of this size (small blocks' headers share one read). */
const WINDOW = 64 << 10;

/** Reads of a file by offset through a small window: most headers of a zstd stream are a few bytes apart. */
function windowedFile(fd: number) {
  const window = new Uint8Array(WINDOW);
  let start = -1;
  let filled = 0;
  return (at: number, n: number): Uint8Array => {
    if (start < 0 || at < start || at + n > start + filled) {
      start = at;
      filled = readSync(fd, window, 0, WINDOW, at);
    }
    return window.subarray(at - start, Math.min(filled, at - start + n));
  };
}

/** The block layout of a one-stream .xz file (header, index and footer agree), else undefined. */
export function readXzLayout(fd: number, fileSize: number): XzLayout | undefined {
  if (fileSize < 3 * XZ_HEADER_SIZE) return undefined;
  const read = (at: number, n: number) => {
    const b = new Uint8Array(n);
    return b.subarray(0, readSync(fd, b, 0, n, at));
  };
  const footer = read(fileSize - XZ_HEADER_SIZE, XZ_HEADER_SIZE);
  const indexSize = xzIndexSize(footer);
  if (indexSize === undefined || indexSize > MAX_XZ_INDEX || indexSize + 2 * XZ_HEADER_SIZE > fileSize) return undefined;
  const index = read(fileSize - XZ_HEADER_SIZE - indexSize, indexSize);
  return xzLayout(read(0, XZ_HEADER_SIZE), index, footer, fileSize);
}

/**
 * Every data frame of a zstd file (skippable frames left out) with its place in the file and in
 * the output, when every frame records its Frame_Content_Size and they fill the file exactly.
 */
export function readZstdFrames(
  fd: number,
  fileSize: number,
): Array<{ fileOffset: number; fileLength: number; outputOffset: number; outputSize: number }> | undefined {
  const at = windowedFile(fd);
  const frames: Array<{ fileOffset: number; fileLength: number; outputOffset: number; outputSize: number }> = [];
  let size = 0;
  let position = 0;
  while (position < fileSize) {
    const frame = parseZstdFrameStart(at(position, ZSTD_MAX_FRAME_HEADER));
    if (!frame) return undefined;
    if (frame.kind === 'skippable') {
      position += frame.size;
      continue;
    }
    if (frame.contentSize === undefined) return undefined;
    const fileOffset = position;
    position += frame.headerSize;
    for (;;) {
      const header = at(position, ZSTD_BLOCK_HEADER);
      const block = header.length === ZSTD_BLOCK_HEADER ? parseZstdBlockHeader(header, 0) : undefined;
      if (!block) return undefined;
      position += ZSTD_BLOCK_HEADER + block.contentBytes;
      if (block.last) break;
    }
    position += zstdFrameTrailer(frame);
    frames.push({ fileOffset, fileLength: position - fileOffset, outputOffset: size, outputSize: frame.contentSize });
    size += frame.contentSize;
  }
  return position === fileSize && Number.isSafeInteger(size) ? frames : undefined;
}

/** What `path`, compressed as `kind`, decompresses to, as the stream records it; undefined when it does not (see above). */
export function recordedDecompressedSize(path: string, kind: CompressionKind): number | undefined {
  if (kind !== 'xz' && kind !== 'zstd') return undefined;
  const fd = openSync(path, 'r');
  try {
    const fileSize = fstatSync(fd).size;
    if (kind === 'xz') return readXzLayout(fd, fileSize)?.size;
    const frames = readZstdFrames(fd, fileSize);
    return frames && (frames.length ? frames[frames.length - 1].outputOffset + frames[frames.length - 1].outputSize : 0);
  } finally {
    closeSync(fd);
  }
}
