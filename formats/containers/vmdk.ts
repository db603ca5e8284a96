/**
 * VMDK hosted sparse extents (VMware "Virtual Disk Format 1.1", section "Hosted Sparse Extent
 * Header"), their grain directory / grain table math, and the stream-optimized markers
 * (section "Stream-Optimized Compressed Sparse Extents"). All fields are little-endian; all
 * offsets and sizes in the header are in 512-byte sectors.
 *
 * Pure codecs: no I/O. Hostile bytes raise FormatError (format 'vmdk') only.
 */
import { fail } from '../common/errors.js';

export const SECTOR = 512;
/** "KDMV" read as bytes: the u32 0x564d444b stored little-endian (spec: SPARSE_MAGICNUMBER). */
export const SPARSE_MAGIC = 0x564d444b;
/** Spec: gdOffset of a stream-optimized header is GD_AT_END; the footer holds the real one. */
export const GD_AT_END = 0xffffffffffffffffn;

/** Header flag bits (spec "Hosted Sparse Extent Header", flags). */
export const FLAG_VALID_NEWLINE_TEST = 1 << 0;
export const FLAG_REDUNDANT_GT = 1 << 1;
/** QEMU's zeroed-grain GTE (block/vmdk.c VMDK4_FLAG_ZERO_GRAIN): GTE value 1 reads as zeros. */
export const FLAG_ZEROED_GRAIN_GTE = 1 << 2;
export const FLAG_COMPRESSED = 1 << 16;
export const FLAG_MARKERS = 1 << 17;

/** compressAlgorithm: 0 none, 1 COMPRESSION_DEFLATE (RFC 1950 zlib streams per grain). */
export const COMPRESSION_NONE = 0;
export const COMPRESSION_DEFLATE = 1;

/** Stream marker types (spec "Stream-Optimized ... Markers"): MARKER_EOS .. MARKER_FOOTER. */
export const MARKER_EOS = 0;
export const MARKER_GT = 1;
export const MARKER_GD = 2;
export const MARKER_FOOTER = 3;
/** A grain marker: lba u64 + size u32, compressed data follows at byte 12. */
export const GRAIN_MARKER_SIZE = 12;

/** Bounds for hostile input. QEMU refuses grains over 1 GiB and GTs over 512 entries. */
export const MAX_GRAIN_SECTORS = 16384; // 8 MiB
export const MAX_GTES_PER_GT = 4096;
export const MAX_GD_ENTRIES = 16 * 1024 * 1024; // 64 MiB of grain directory
/** 2^53 bytes would overflow JavaScript numbers; 2^44 sectors (8 PiB) is plenty. */
export const MAX_CAPACITY_SECTORS = 2 ** 44;

export interface SparseHeader {
  version: number;
  flags: number;
  /** Virtual size of the extent, in sectors. */
  capacity: number;
  /** Sectors per grain (power of two). */
  grainSize: number;
  descriptorOffset: number;
  descriptorSize: number;
  numGTEsPerGT: number;
  rgdOffset: number;
  /** Sector of the grain directory; 'end' for GD_AT_END (stream-optimized header). */
  gdOffset: number | 'end';
  /** Sectors of metadata before the first grain (spec: overHead). */
  overHead: number;
  uncleanShutdown: boolean;
  compressAlgorithm: number;
}

function u64(dv: DataView, at: number, name: string): number {
  const v = dv.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw fail('vmdk', 'TOO_LARGE', `header field ${name} (${v}) is too large`);
  return Number(v);
}

/** True when the first bytes carry the sparse extent magic. */
export function hasSparseMagic(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true) === SPARSE_MAGIC;
}

/** Parse and bound-check the 512-byte sparse extent header. */
export function decodeSparseHeader(bytes: Uint8Array): SparseHeader {
  if (bytes.length < SECTOR) throw fail('vmdk', 'TRUNCATED', `sparse extent header needs ${SECTOR} bytes, got ${bytes.length}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, SECTOR);
  if (dv.getUint32(0, true) !== SPARSE_MAGIC) throw fail('vmdk', 'BAD_MAGIC', 'sparse extent header lacks the KDMV magic');
  const version = dv.getUint32(4, true);
  if (version < 1 || version > 3) throw fail('vmdk', 'BAD_VALUE', `unsupported sparse extent version ${version}`);
  const flags = dv.getUint32(8, true);
  const capacity = u64(dv, 12, 'capacity');
  const grainSize = u64(dv, 20, 'grainSize');
  const descriptorOffset = u64(dv, 28, 'descriptorOffset');
  const descriptorSize = u64(dv, 36, 'descriptorSize');
  const numGTEsPerGT = dv.getUint32(44, true);
  const rgdOffset = u64(dv, 48, 'rgdOffset');
  const gdRaw = dv.getBigUint64(56, true);
  const gdOffset = gdRaw === GD_AT_END ? 'end' : u64(dv, 56, 'gdOffset');
  const overHead = u64(dv, 64, 'overHead');
  const compressAlgorithm = dv.getUint16(77, true);
  if (capacity > MAX_CAPACITY_SECTORS) throw fail('vmdk', 'TOO_LARGE', `capacity of ${capacity} sectors is absurd`);
  if (grainSize === 0 || (grainSize & (grainSize - 1)) !== 0) throw fail('vmdk', 'BAD_VALUE', `grain size ${grainSize} sectors is not a power of two`);
  if (grainSize > MAX_GRAIN_SECTORS) throw fail('vmdk', 'TOO_LARGE', `grain size ${grainSize} sectors exceeds ${MAX_GRAIN_SECTORS}`);
  if (numGTEsPerGT === 0 || numGTEsPerGT > MAX_GTES_PER_GT)
    throw fail('vmdk', 'BAD_VALUE', `numGTEsPerGT ${numGTEsPerGT} is out of range (1..${MAX_GTES_PER_GT})`);
  // Spec: bytes 73..76 hold '\n', ' ', '\r', '\n' so a text-mode transfer shows up.
  if (flags & FLAG_VALID_NEWLINE_TEST) {
    if (bytes[73] !== 0x0a || bytes[74] !== 0x20 || bytes[75] !== 0x0d || bytes[76] !== 0x0a) {
      throw fail('vmdk', 'BAD_VALUE', 'newline check bytes are damaged (file went through a text-mode transfer?)');
    }
  }
  if (compressAlgorithm !== COMPRESSION_NONE && compressAlgorithm !== COMPRESSION_DEFLATE) {
    throw fail('vmdk', 'BAD_VALUE', `unknown compressAlgorithm ${compressAlgorithm}`);
  }
  if (flags & FLAG_COMPRESSED && compressAlgorithm !== COMPRESSION_DEFLATE) {
    throw fail('vmdk', 'BAD_VALUE', 'compressed-grains flag set without compressAlgorithm deflate');
  }
  const h: SparseHeader = {
    version,
    flags,
    capacity,
    grainSize,
    descriptorOffset,
    descriptorSize,
    numGTEsPerGT,
    rgdOffset,
    gdOffset,
    overHead,
    uncleanShutdown: bytes[72] !== 0,
    compressAlgorithm,
  };
  if (gdEntryCount(h) > MAX_GD_ENTRIES) throw fail('vmdk', 'TOO_LARGE', `grain directory of ${gdEntryCount(h)} entries is too large`);
  return h;
}

export function encodeSparseHeader(h: SparseHeader): Uint8Array {
  const out = new Uint8Array(SECTOR);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, SPARSE_MAGIC, true);
  dv.setUint32(4, h.version, true);
  dv.setUint32(8, h.flags, true);
  dv.setBigUint64(12, BigInt(h.capacity), true);
  dv.setBigUint64(20, BigInt(h.grainSize), true);
  dv.setBigUint64(28, BigInt(h.descriptorOffset), true);
  dv.setBigUint64(36, BigInt(h.descriptorSize), true);
  dv.setUint32(44, h.numGTEsPerGT, true);
  dv.setBigUint64(48, BigInt(h.rgdOffset), true);
  dv.setBigUint64(56, h.gdOffset === 'end' ? GD_AT_END : BigInt(h.gdOffset), true);
  dv.setBigUint64(64, BigInt(h.overHead), true);
  out[72] = h.uncleanShutdown ? 1 : 0;
  out.set([0x0a, 0x20, 0x0d, 0x0a], 73); // singleEndLineChar, nonEndLineChar, doubleEndLineChar1/2
  dv.setUint16(77, h.compressAlgorithm, true);
  return out;
}

export function isCompressed(h: SparseHeader): boolean {
  return h.compressAlgorithm === COMPRESSION_DEFLATE;
}

/** Grains in the extent (the last may be partly beyond capacity). */
export function grainCount(h: Pick<SparseHeader, 'capacity' | 'grainSize'>): number {
  return Math.ceil(h.capacity / h.grainSize);
}

/** Spec: numGDEntries = CEILING(capacity, grainSize * numGTEsPerGT). */
export function gdEntryCount(h: Pick<SparseHeader, 'capacity' | 'grainSize' | 'numGTEsPerGT'>): number {
  return Math.ceil(h.capacity / (h.grainSize * h.numGTEsPerGT));
}

/** Sectors one grain table occupies (tables are sector aligned). */
export function gtSectors(numGTEsPerGT: number): number {
  return Math.ceil((numGTEsPerGT * 4) / SECTOR);
}

export function gdSectors(h: Pick<SparseHeader, 'capacity' | 'grainSize' | 'numGTEsPerGT'>): number {
  return Math.ceil((gdEntryCount(h) * 4) / SECTOR);
}

/** Decode little-endian u32 entries (a GD or a GT). */
export function decodeU32Table(bytes: Uint8Array, count: number): Uint32Array {
  if (bytes.length < count * 4) throw fail('vmdk', 'TRUNCATED', `table of ${count} entries needs ${count * 4} bytes, got ${bytes.length}`);
  const out = new Uint32Array(count);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, count * 4);
  for (let i = 0; i < count; i++) out[i] = dv.getUint32(i * 4, true);
  return out;
}

/** Encode entries padded to whole sectors. */
export function encodeU32Table(entries: ArrayLike<number>, sectors: number): Uint8Array {
  const out = new Uint8Array(sectors * SECTOR);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < entries.length; i++) dv.setUint32(i * 4, entries[i], true);
  return out;
}

/** A metadata marker sector: numSectors u64, size u32 = 0, type u32, padding to 512. */
export function encodeMetadataMarker(type: number, numSectors: number): Uint8Array {
  const out = new Uint8Array(SECTOR);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(numSectors), true);
  dv.setUint32(8, 0, true);
  dv.setUint32(12, type, true);
  return out;
}

/** Zeros that pad a grain marker to whole sectors (shared, never written to). */
const GRAIN_PAD = new Uint8Array(SECTOR);

/**
 * A grain marker (lba u64, size u32) and its compressed bytes, padded to whole sectors, as the
 * pieces to write back to back: the 12-byte head, `compressed` itself (not copied) and the zeros
 * after it (none when it ends on a sector).
 */
export function grainMarkerParts(lba: number, compressed: Uint8Array): Uint8Array[] {
  const head = new Uint8Array(GRAIN_MARKER_SIZE);
  const dv = new DataView(head.buffer);
  dv.setBigUint64(0, BigInt(lba), true);
  dv.setUint32(8, compressed.length, true);
  const pad = (SECTOR - ((GRAIN_MARKER_SIZE + compressed.length) % SECTOR)) % SECTOR;
  return pad ? [head, compressed, GRAIN_PAD.subarray(0, pad)] : [head, compressed];
}

export type Marker = { kind: 'grain'; lba: number; size: number } | { kind: 'meta'; type: number; numSectors: number };

/** Decode the first 16 bytes of a marker: size != 0 means a grain marker. */
export function decodeMarker(bytes: Uint8Array): Marker {
  if (bytes.length < 16) throw fail('vmdk', 'TRUNCATED', 'stream marker is truncated');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 16);
  const val = dv.getBigUint64(0, true);
  const size = dv.getUint32(8, true);
  if (val > BigInt(Number.MAX_SAFE_INTEGER)) throw fail('vmdk', 'TOO_LARGE', `stream marker value ${val} is too large`);
  if (size !== 0) return { kind: 'grain', lba: Number(val), size };
  return { kind: 'meta', type: dv.getUint32(12, true), numSectors: Number(val) };
}

/**
 * The tail of a stream-optimized extent: footer marker, footer (a header copy holding the
 * real gdOffset), end-of-stream marker, in the last three sectors (spec "The Footer").
 */
export function decodeStreamFooter(last3: Uint8Array): SparseHeader {
  if (last3.length < 3 * SECTOR) throw fail('vmdk', 'TRUNCATED', 'file too short for a stream footer');
  const fm = decodeMarker(last3.subarray(0, 16));
  if (fm.kind !== 'meta' || fm.type !== MARKER_FOOTER) throw fail('vmdk', 'BAD_VALUE', 'footer marker missing at end of stream (gdOffset is GD_AT_END)');
  const eos = decodeMarker(last3.subarray(2 * SECTOR, 2 * SECTOR + 16));
  if (eos.kind !== 'meta' || eos.type !== MARKER_EOS || eos.numSectors !== 0) throw fail('vmdk', 'BAD_VALUE', 'end-of-stream marker missing after the footer');
  const footer = decodeSparseHeader(last3.subarray(SECTOR, 2 * SECTOR));
  if (footer.gdOffset === 'end') throw fail('vmdk', 'BAD_VALUE', 'stream footer still says GD_AT_END');
  return footer;
}

/** GTEs and GD entries are u32 sector numbers (spec "Grain Table and Grain Directory"): 128 per sector. */
export const ENTRIES_PER_SECTOR = SECTOR / 4;
/** The largest sector a u32 grain table or directory entry can name. */
export const MAX_ENTRY_SECTOR = 0xffffffff;

/**
 * The entries of a grain table or directory that live in its `sector`-th sector (128 of them,
 * fewer in a last partial sector), encoded little-endian: the bytes one in-place table update
 * writes at the table's offset + `sector` * 512, leaving any padding after the last entry alone.
 */
export function encodeTableSector(entries: ArrayLike<number>, sector: number): Uint8Array {
  const first = sector * ENTRIES_PER_SECTOR;
  const count = Math.min(ENTRIES_PER_SECTOR, entries.length - first);
  if (first < 0 || count <= 0) throw fail('vmdk', 'BAD_VALUE', `table of ${entries.length} entries has no sector ${sector}`);
  const out = new Uint8Array(count * 4);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < count; i++) dv.setUint32(i * 4, entries[first + i], true);
  return out;
}

/**
 * Where the content ID's hex digits sit in an embedded descriptor (spec "The Descriptor File":
 * `CID=<8 hex digits>`, the line before `parentCID`): byte range and value, or undefined when
 * the text (up to its first NUL) has no CID line. Only a line whose key is exactly `CID` counts.
 */
export function locateDescriptorCid(bytes: Uint8Array): { start: number; end: number; value: number } | undefined {
  const nul = bytes.indexOf(0);
  const end = nul < 0 ? bytes.length : nul;
  for (let line = 0; line < end;) {
    let eol = bytes.indexOf(0x0a, line);
    if (eol < 0 || eol > end) eol = end;
    let at = line;
    const skipBlanks = () => {
      while (at < eol && (bytes[at] === 0x20 || bytes[at] === 0x09)) at++;
    };
    skipBlanks();
    if (bytes[at] === 0x43 && bytes[at + 1] === 0x49 && bytes[at + 2] === 0x44) {
      at += 3; // "CID"
      skipBlanks();
      if (at < eol && bytes[at] === 0x3d) {
        at++; // "="
        skipBlanks();
        if (bytes[at] === 0x22) at++; // an optional opening quote
        const start = at;
        while (at < eol && at - start < 9 && isHexDigit(bytes[at])) at++;
        const digits = at - start;
        if (digits >= 1 && digits <= 8) {
          let value = 0;
          for (let i = start; i < at; i++) value = value * 16 + hexValue(bytes[i]);
          return { start, end: at, value };
        }
      }
    }
    line = eol + 1;
  }
  return undefined;
}

/** `cid` as exactly `width` lower-case hex digits (zero padded), the bytes written over the old ones. */
export function encodeCidDigits(cid: number, width: number): Uint8Array {
  if (width < 1 || width > 8 || cid < 0 || cid >= 16 ** width) throw fail('vmdk', 'BAD_VALUE', `CID ${cid} does not fit ${width} hex digits`);
  const text = cid.toString(16).padStart(width, '0');
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

function isHexDigit(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
}

function hexValue(b: number): number {
  return b <= 0x39 ? b - 0x30 : (b | 0x20) - 0x61 + 10;
}
