/**
 * The blocks of an .xz file, from its index (The .xz File Format 1.2.1, section 4), so that they
 * can be decoded apart and at once: `xz -T`, and xz 5.6 by default, cut a stream into blocks of
 * a few MiB, each decodable alone. Each block is handed to a decoder as a stream of its own (the
 * file's stream header, the block, a one-record index, a footer), which is what the decoders on
 * hand take. Only a file of one stream, every block's sizes in the index, is cut up here; any
 * other (several streams, damage) is left to the streaming decoder, which reports what it finds.
 */
import { crc32 } from '../../../formats/common/crc32.js';
import { u32le } from '../../../formats/common/bytes.js';
import {
  XZ_FOOTER_MAGIC as FOOTER_MAGIC,
  XZ_HEADER_MAGIC as HEADER_MAGIC,
  XZ_STREAM_HEADER_SIZE,
  readXzVarint as readVarint,
  xzStreamEnd,
  type XzIndexRecord,
} from '../../../formats/common/xz-container.js';

/** Section 2.1.1: Stream Header and Stream Footer are 12 bytes each. */
export const XZ_HEADER_SIZE = XZ_STREAM_HEADER_SIZE;

export interface XzBlock {
  /** Where the block starts in the file, and its bytes there (padding and check included). */
  fileOffset: number;
  totalSize: number;
  /** Section 4.3: Block Header + Compressed Data + Check, without the padding. */
  unpaddedSize: number;
  /** Where its output goes in the decompressed image, and how long it is. */
  outputOffset: number;
  outputSize: number;
}

export interface XzLayout {
  /** The file's 12-byte stream header (copied into each block's own stream). */
  header: Uint8Array;
  blocks: XzBlock[];
  /** Bytes once decompressed. */
  size: number;
}

const same = (b: Uint8Array, at: number, want: readonly number[]) => want.every((x, i) => b[at + i] === x);

/**
 * The index's size (Backward Size, section 2.1.2.2: stored as size / 4 - 1) from the stream
 * footer `footer` (the file's last 12 bytes), or undefined when they are no footer.
 */
export function xzIndexSize(footer: Uint8Array): number | undefined {
  if (footer.length !== XZ_HEADER_SIZE || !same(footer, 10, FOOTER_MAGIC)) return undefined;
  if (crc32(footer.subarray(4, 10)) !== u32le(footer, 0)) return undefined;
  return (u32le(footer, 4) + 1) * 4;
}

/**
 * The blocks of a one-stream .xz file of `fileSize` bytes, from its stream header, its index and
 * its footer; undefined when the three do not describe exactly this file (several streams,
 * stream padding, damage).
 */
export function xzLayout(header: Uint8Array, index: Uint8Array, footer: Uint8Array, fileSize: number): XzLayout | undefined {
  if (header.length !== XZ_HEADER_SIZE || !same(header, 0, HEADER_MAGIC)) return undefined;
  if (crc32(header.subarray(6, 8)) !== u32le(header, 8)) return undefined;
  // Section 2.1.2.3: the footer repeats the header's Stream Flags.
  if (footer[8] !== header[6] || footer[9] !== header[7] || xzIndexSize(footer) !== index.length) return undefined;
  // Section 4: Index Indicator 0x00 ... CRC32 of everything before it.
  if (index.length < 8 || index[0] !== 0 || crc32(index.subarray(0, index.length - 4)) !== u32le(index, index.length - 4)) return undefined;
  const count = readVarint(index, 1);
  if (!count) return undefined;
  const blocks: XzBlock[] = [];
  let at = count[1];
  let fileOffset = XZ_HEADER_SIZE;
  let outputOffset = 0;
  for (let i = 0; i < count[0]; i++) {
    const unpadded = readVarint(index, at);
    const output = unpadded && readVarint(index, unpadded[1]);
    if (!unpadded || !output || unpadded[0] < 5) return undefined;
    const totalSize = Math.ceil(unpadded[0] / 4) * 4; // section 3.3: Block Padding to a multiple of four
    blocks.push({ fileOffset, totalSize, unpaddedSize: unpadded[0], outputOffset, outputSize: output[0] });
    fileOffset += totalSize;
    outputOffset += output[0];
    at = output[1];
  }
  // Section 4.4: Index Padding to a multiple of four, then the CRC32.
  if (Math.ceil(at / 4) * 4 + 4 !== index.length) return undefined;
  if (fileOffset + index.length + XZ_HEADER_SIZE !== fileSize) return undefined;
  return { header: header.slice(), blocks, size: outputOffset };
}

/**
 * The parts of a stream holding `blocks` (consecutive blocks of the file, `bytes` their bytes
 * from the first one's start) alone: what a decoder takes.
 */
export function xzBlocksStream(layout: XzLayout, blocks: readonly XzBlock[], bytes: Uint8Array): Uint8Array[] {
  const records: XzIndexRecord[] = blocks.map((b) => ({ unpaddedSize: b.unpaddedSize, uncompressedSize: b.outputSize }));
  const end = xzStreamEnd(records, layout.header[7]); // the footer repeats the header's Stream Flags (section 2.1.2.3)
  return [layout.header, bytes, end.subarray(0, end.length - XZ_HEADER_SIZE), end.subarray(end.length - XZ_HEADER_SIZE)];
}
