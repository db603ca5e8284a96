/**
 * The framing of a zstd stream (RFC 8878 section 3.1), read without decoding anything: frame
 * headers, block headers and skippable frames, so that a file's decompressed size can be summed
 * from its headers (the Frame_Content_Size every frame may carry) by walking from frame to frame.
 */

import { u16le, u32le } from './bytes.js';

/** RFC 8878 3.1.1: Magic_Number 0xFD2FB528, little-endian. */
export const ZSTD_MAGIC = 0xfd2fb528;
/** RFC 8878 3.1.2: skippable frames have magic numbers 0x184D2A50 to 0x184D2A5F. */
const SKIPPABLE_MIN = 0x184d2a50;
const SKIPPABLE_MAX = 0x184d2a5f;
/** RFC 8878 3.1.1: the longest frame header (4 magic + 1 descriptor + 1 window + 4 dictionary + 8 size). */
export const ZSTD_MAX_FRAME_HEADER = 18;
/** RFC 8878 3.1.1.2: Block_Header is 3 bytes. */
export const ZSTD_BLOCK_HEADER = 3;
/** RFC 8878 3.1.1: Content_Checksum is 4 bytes when Content_Checksum_Flag is set. */
const CHECKSUM_SIZE = 4;

export type ZstdFrameStart =
  /** A zstd frame: `headerSize` bytes from its magic to its first block header. */
  | { kind: 'frame'; headerSize: number; contentSize?: number; checksum: boolean }
  /** A skippable frame of `size` bytes, its 8-byte header included. */
  | { kind: 'skippable'; size: number };

/**
 * The frame that starts at `b[0]`, or undefined when `b` does not start with a frame's magic, is
 * too short for its header, or sets the reserved bit. `contentSize` is absent when the frame
 * does not record it (a stream compressed from a pipe) or records more than 2^53 - 1.
 */
export function parseZstdFrameStart(b: Uint8Array): ZstdFrameStart | undefined {
  if (b.length < 5) return undefined;
  const magic = u32le(b, 0);
  if (magic >= SKIPPABLE_MIN && magic <= SKIPPABLE_MAX) return b.length >= 8 ? { kind: 'skippable', size: 8 + u32le(b, 4) } : undefined;
  if (magic !== ZSTD_MAGIC) return undefined;
  // RFC 8878 3.1.1.1.1 Frame_Header_Descriptor.
  const descriptor = b[4];
  const fcsFlag = descriptor >> 6;
  const singleSegment = (descriptor & 0x20) !== 0;
  if (descriptor & 0x08) return undefined; // Reserved_Bit must be zero
  const checksum = (descriptor & 0x04) !== 0;
  const dictionaryIdSize = [0, 1, 2, 4][descriptor & 0x03];
  const windowSize = singleSegment ? 0 : 1; // 3.1.1.1.2 Window_Descriptor, absent with Single_Segment_Flag
  const fcsSize = [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag]; // 3.1.1.1.4 FCS_Field_Size
  const headerSize = 5 + windowSize + dictionaryIdSize + fcsSize;
  if (b.length < headerSize) return undefined;
  const at = 5 + windowSize + dictionaryIdSize;
  let contentSize: number | undefined;
  if (fcsSize === 1) contentSize = b[at];
  else if (fcsSize === 2)
    contentSize = u16le(b, at) + 256; // the 2-byte field is offset by 256
  else if (fcsSize === 4) contentSize = u32le(b, at);
  else if (fcsSize === 8) {
    const value = u32le(b, at) + u32le(b, at + 4) * 2 ** 32;
    contentSize = Number.isSafeInteger(value) ? value : undefined;
  }
  return { kind: 'frame', headerSize, checksum, ...(contentSize === undefined ? {} : { contentSize }) };
}

export interface ZstdBlockHeader {
  last: boolean;
  /** Bytes that follow the 3-byte header: Block_Size, or 1 for an RLE block. */
  contentBytes: number;
}

/** RFC 8878 3.1.1.2: the block header at `b[at]`; undefined for the reserved block type. */
export function parseZstdBlockHeader(b: Uint8Array, at: number): ZstdBlockHeader | undefined {
  const header = b[at] | (b[at + 1] << 8) | (b[at + 2] << 16);
  const type = (header >> 1) & 3; // 0 Raw, 1 RLE, 2 Compressed, 3 Reserved
  if (type === 3) return undefined;
  const size = header >>> 3;
  return { last: (header & 1) === 1, contentBytes: type === 1 ? 1 : size };
}

/** Bytes after a frame's last block: its Content_Checksum, when it has one. */
export const zstdFrameTrailer = (frame: { checksum: boolean }): number => (frame.checksum ? CHECKSUM_SIZE : 0);
