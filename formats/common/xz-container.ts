/**
 * The .xz container (The .xz File Format 1.2.1), written: one stream of many blocks, as
 * `xz -T` writes it, each block one LZMA2 filter over data compressed elsewhere, checked with
 * CRC32. A stream is its header, the blocks (header, compressed data, padding, check), the
 * index (one record a block) and the footer. The compressed data and the CRC32 of each block's
 * uncompressed bytes come from the caller, so the encoder that makes the LZMA2 data (native,
 * WebAssembly, or stored chunks) is its own business. Readers of the index (src/io/compressed/
 * xz-blocks.ts) share the integers and magic bytes defined here.
 */
import { fail } from './errors.js';
import { putU32le } from './bytes.js';
import { crc32 } from './crc32.js';

/** Section 2.1.1 and 2.1.2: Stream Header and Stream Footer are 12 bytes each. */
export const XZ_STREAM_HEADER_SIZE = 12;
/** Section 2.1.1.1: Header Magic Bytes. */
export const XZ_HEADER_MAGIC: readonly number[] = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
/** Section 2.1.2.4: Footer Magic Bytes "YZ". */
export const XZ_FOOTER_MAGIC: readonly number[] = [0x59, 0x5a];
/** Section 2.1.1.2: Check Type 0x01, CRC32 (4 bytes, section 3.4). */
export const XZ_CHECK_CRC32 = 0x01;
const CHECK_SIZE = 4;
/** Section 5.3.1: the LZMA2 Filter ID, whose properties are one byte (the dictionary size). */
export const XZ_FILTER_LZMA2 = 0x21;
/** Section 1.2: a multibyte integer holds at most 63 bits in 9 bytes; here, at most 2^53 - 1. */
const VARINT_MAX_BYTES = 9;

/** What the index records of a block (section 4.3). */
export interface XzIndexRecord {
  /** Section 4.3.1: Block Header + Compressed Data + Check, without Block Padding. */
  unpaddedSize: number;
  /** Section 4.3.2. */
  uncompressedSize: number;
}

/** A block's compressed data, with what its header and check say about it. */
export interface XzBlockInput {
  /** The LZMA2 data, end marker included (section 3.2): one buffer, or pieces written back to back. */
  compressed: Uint8Array | readonly Uint8Array[];
  uncompressedSize: number;
  /** CRC32 of the block's uncompressed bytes (section 3.4, Check Type 0x01). */
  crc32: number;
  /** The LZMA2 dictionary size byte the data was compressed for (lzma2DictionaryProperty). */
  dictionaryProperty: number;
}

/** Section 1.2: a multibyte integer, 7 bits a byte, least significant first, at most 9 bytes. */
export function readXzVarint(b: Uint8Array, at: number): [value: number, next: number] | undefined {
  let value = 0;
  for (let i = 0; i < VARINT_MAX_BYTES && at + i < b.length; i++) {
    value += (b[at + i] & 0x7f) * 2 ** (7 * i);
    if ((b[at + i] & 0x80) === 0) return Number.isSafeInteger(value) && (i === 0 || b[at + i] !== 0) ? [value, at + i + 1] : undefined;
  }
  return undefined;
}

/** Section 1.2, written (the shortest form: no trailing 0x00 byte). */
export function writeXzVarint(value: number, out: number[]): void {
  if (!Number.isSafeInteger(value) || value < 0) throw fail('xz', 'INVALID_ARGUMENT', `${value} is not a size an .xz integer holds`);
  do {
    const low = value % 128;
    value = Math.floor(value / 128);
    out.push(value > 0 ? low | 0x80 : low);
  } while (value > 0);
}

/**
 * Section 5.3.1: the LZMA2 properties byte for a dictionary of `size` bytes, which must be one
 * the byte encodes exactly (2^n or 3 * 2^n, from 4 KiB): bits 0-5 are `b`, the size
 * (2 | (b & 1)) << (b / 2 + 11).
 */
export function lzma2DictionaryProperty(size: number): number {
  for (let b = 0; b < 40; b++) if (lzma2DictionarySize(b) === size) return b;
  throw fail('xz', 'INVALID_ARGUMENT', `an LZMA2 dictionary of ${size} bytes has no exact properties byte (2^n or 3 * 2^n bytes, 4 KiB to 3 GiB)`);
}

/** Section 5.3.1: the dictionary size a properties byte names (40: 4 GiB - 1). */
export function lzma2DictionarySize(property: number): number {
  const b = property & 0x3f;
  if (b > 40) throw fail('xz', 'BAD_VALUE', `LZMA2 properties byte ${property} is over 40`);
  return b === 40 ? 0xffffffff : (2 | (b & 1)) * 2 ** (Math.floor(b / 2) + 11);
}

/** Section 2.1.1: magic, Stream Flags (0x00, the check type), their CRC32. */
export function xzStreamHeader(check = XZ_CHECK_CRC32): Uint8Array {
  const out = new Uint8Array(XZ_STREAM_HEADER_SIZE);
  out.set(XZ_HEADER_MAGIC);
  out[7] = check; // section 2.1.1.2: the first flags byte is 0x00, the check type is the second's low nibble
  putU32le(out, 8, crc32(out.subarray(6, 8))); // section 2.1.1.3
  return out;
}

/**
 * Section 3.1: the Block Header of a block with one filter, LZMA2, and both sizes present
 * (section 3.1.2: Block Flags 0x40 | 0x80, filter count - 1 = 0), padded with zeros to a
 * multiple of four (3.1.6) before its CRC32 (3.1.7).
 */
export function xzBlockHeader(compressedSize: number, uncompressedSize: number, dictionaryProperty: number): Uint8Array {
  if (compressedSize < 1) throw fail('xz', 'INVALID_ARGUMENT', 'an .xz block holds at least one byte of compressed data (section 3.1.3)');
  lzma2DictionarySize(dictionaryProperty); // checks it
  const fields: number[] = [0, 0x40 | 0x80]; // size byte filled in below
  writeXzVarint(compressedSize, fields); // 3.1.3
  writeXzVarint(uncompressedSize, fields); // 3.1.4
  fields.push(XZ_FILTER_LZMA2, 1, dictionaryProperty); // 3.1.5: Filter ID, Size of Properties, Properties
  const size = Math.ceil((fields.length + CHECK_SIZE) / 4) * 4;
  const out = new Uint8Array(size);
  out.set(fields);
  out[0] = size / 4 - 1; // 3.1.1: the real size is (byte + 1) * 4
  putU32le(out, size - 4, crc32(out.subarray(0, size - 4)));
  return out;
}

/**
 * A whole block (section 3): its header, the compressed data, Block Padding to a multiple of
 * four (3.3), the CRC32 check (3.4); and its index record. The parts are written in order.
 */
export function xzBlock(block: XzBlockInput): { parts: Uint8Array[]; record: XzIndexRecord } {
  const data = block.compressed instanceof Uint8Array ? [block.compressed] : block.compressed;
  const size = data.reduce((n, p) => n + p.length, 0);
  const header = xzBlockHeader(size, block.uncompressedSize, block.dictionaryProperty);
  const unpaddedSize = header.length + size + CHECK_SIZE;
  const padding = (4 - ((header.length + size) % 4)) % 4;
  const tail = new Uint8Array(padding + CHECK_SIZE);
  putU32le(tail, padding, block.crc32);
  return { parts: [header, ...data, tail], record: { unpaddedSize, uncompressedSize: block.uncompressedSize } };
}

/** Section 4: Index Indicator 0x00, the number of records, the records, Index Padding, CRC32. */
export function xzIndex(records: readonly XzIndexRecord[]): Uint8Array {
  const fields: number[] = [0x00];
  writeXzVarint(records.length, fields);
  for (const r of records) {
    if (r.unpaddedSize < 5) throw fail('xz', 'INVALID_ARGUMENT', `an unpadded size of ${r.unpaddedSize} is too small for a block (section 4.3.1)`);
    writeXzVarint(r.unpaddedSize, fields);
    writeXzVarint(r.uncompressedSize, fields);
  }
  while (fields.length % 4) fields.push(0); // 4.4
  const out = new Uint8Array(fields.length + 4);
  out.set(fields);
  putU32le(out, fields.length, crc32(out.subarray(0, fields.length))); // 4.5
  return out;
}

/**
 * Section 2.1.2: CRC32 of the next six bytes, Backward Size (the index's size as size / 4 - 1),
 * the header's Stream Flags again, "YZ".
 */
export function xzStreamFooter(indexSize: number, check = XZ_CHECK_CRC32): Uint8Array {
  if (indexSize < 8 || indexSize % 4 !== 0 || indexSize > 2 ** 34)
    throw fail('xz', 'INVALID_ARGUMENT', `an index of ${indexSize} bytes is not one a footer records (section 2.1.2.2)`);
  const out = new Uint8Array(XZ_STREAM_HEADER_SIZE);
  putU32le(out, 4, indexSize / 4 - 1);
  out[9] = check;
  out.set(XZ_FOOTER_MAGIC, 10);
  putU32le(out, 0, crc32(out.subarray(4, 10)));
  return out;
}

/** The end of a stream whose blocks are `records`: the index and the footer (one buffer). */
export function xzStreamEnd(records: readonly XzIndexRecord[], check = XZ_CHECK_CRC32): Uint8Array {
  const index = xzIndex(records);
  const out = new Uint8Array(index.length + XZ_STREAM_HEADER_SIZE);
  out.set(index);
  out.set(xzStreamFooter(index.length, check), index.length);
  return out;
}

/** A whole stream of `blocks`, as its parts in order (tests, small inputs). */
export function xzStream(blocks: readonly XzBlockInput[]): Uint8Array[] {
  const parts = [xzStreamHeader()];
  const records: XzIndexRecord[] = [];
  for (const b of blocks) {
    const block = xzBlock(b);
    parts.push(...block.parts);
    records.push(block.record);
  }
  parts.push(xzStreamEnd(records));
  return parts;
}
