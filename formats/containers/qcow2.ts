/**
 * qcow2 on-disk structures (QEMU docs/interop/qcow2.txt, hereafter "qcow2 spec"): the header
 * (versions 2 and 3, section "Header"), header extensions ("Header extensions", "Feature name
 * table") and the table sizes the header implies. L1/L2 entries are in qcow2-tables.ts, refcounts
 * in qcow2-refcounts.ts. All integers are big-endian ("General").
 * 64-bit entries are handled as two 32-bit halves (hi, lo) so no value ever passes 2^53.
 * Parsers throw only FormatError (format 'qcow2').
 */
import { putU64, safeU64 } from '../common/bytes.js';
import { fail } from '../common/errors.js';

/** "QFI\xfb" (qcow2 spec, "Header", bytes 0-3). */
export const QCOW2_MAGIC = 0x514649fb;
/** "For version 2, the header is exactly 72 bytes in length" (qcow2 spec, "Header"). */
export const QCOW2_V2_HEADER_LENGTH = 72;
/** "For version 3 or higher, the header length is at least 104 bytes" (qcow2 spec, "Header"). */
export const QCOW2_V3_MIN_HEADER_LENGTH = 104;
/** What we write for v3: 104 bytes plus the compression_type byte at 104, padded to 8 ("Header padding"). */
export const QCOW2_V3_HEADER_LENGTH = 112;
/** cluster_bits "Must not be less than 9"; qemu's implementation limit is 2 MB (qcow2 spec, bytes 20-23). */
export const QCOW2_MIN_CLUSTER_BITS = 9;
export const QCOW2_MAX_CLUSTER_BITS = 21;
/** "qemu has an implementation limit of 32 MB as the maximum L1 table size" (qcow2 spec, bytes 24-31). */
export const QCOW2_MAX_L1_BYTES = 32 * 1024 * 1024;
/** "qemu has an implementation limit of 8 MB as the maximum refcount table size" ("Host cluster management"). */
export const QCOW2_MAX_REFCOUNT_TABLE_BYTES = 8 * 1024 * 1024;
/** Backing file name "Must not be longer than 1023 bytes" (qcow2 spec, bytes 16-19). */
export const QCOW2_MAX_BACKING_NAME = 1023;
/** Compressed sizes count 512-byte sectors ("Compressed Clusters Descriptor"). */
export const QCOW2_COMPRESSED_SECTOR = 512;

/** incompatible_features bits (qcow2 spec, bytes 72-79). */
export const QCOW2_INCOMPAT = { dirty: 0, corrupt: 1, externalData: 2, compressionType: 3, extendedL2: 4 } as const;
export const QCOW2_KNOWN_INCOMPAT_BITS = 5;
/** compression_type values (qcow2 spec, byte 104). */
export const QCOW2_COMPRESSION = { zlib: 0, zstd: 1 } as const;

/** Header extension types (qcow2 spec, "Header extensions"). */
export const QCOW2_EXT = {
  end: 0x00000000,
  backingFormat: 0xe2792aca,
  featureTable: 0x6803f857,
  bitmaps: 0x23852875,
  encryption: 0x0537be77,
  externalDataFile: 0x44415441,
} as const;

export interface Qcow2FeatureName {
  /** 0 incompatible, 1 compatible, 2 autoclear ("Feature name table", byte 0). */
  type: number;
  bit: number;
  name: string;
}

export interface Qcow2Header {
  version: 2 | 3;
  backingFileOffset: number;
  backingFileSize: number;
  clusterBits: number;
  size: number;
  cryptMethod: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  /** Bits of the 64-bit feature masks, as a set of bit numbers (v3 only; empty for v2). */
  incompatibleFeatures: number[];
  compatibleFeatures: number[];
  autoclearFeatures: number[];
  refcountOrder: number;
  headerLength: number;
  compressionType: number;
}

export interface Qcow2Extensions {
  backingFormat?: string;
  externalDataFile?: string;
  featureNames: Qcow2FeatureName[];
  /** Types seen that we ignore ("other - Unknown header extension, can be safely ignored"). */
  ignored: number[];
}

/** A big-endian u64 read as a JS number; throws when it passes 2^53 (no offset or size here may). */
function u64(view: DataView, at: number, what: string): number {
  const v = safeU64(view, at, false);
  if (v === undefined) throw fail('qcow2', 'TOO_LARGE', `${what} ${view.getBigUint64(at).toString(16)}h is past 2^53`);
  return v;
}

function bitsOf(view: DataView, at: number): number[] {
  const out: number[] = [];
  for (let half = 0; half < 2; half++) {
    const word = view.getUint32(at + (1 - half) * 4);
    for (let b = 0; b < 32; b++) if (word & (1 << b)) out.push(half * 32 + b);
  }
  return out;
}

function putBits(view: DataView, at: number, bits: readonly number[]): void {
  let hi = 0;
  let lo = 0;
  for (const b of bits) {
    if (b < 32) lo |= 1 << b;
    else hi |= 1 << (b - 32);
  }
  view.setUint32(at, hi >>> 0);
  view.setUint32(at + 4, lo >>> 0);
}

/** Bytes needed to parse the fixed header of either version. */
export const QCOW2_HEADER_PROBE_BYTES = QCOW2_V3_HEADER_LENGTH;

/** Parse and sanity-check the fixed header fields (qcow2 spec, "Header"). Offsets against the file are checked by validateQcow2Layout. */
export function decodeQcow2Header(bytes: Uint8Array): Qcow2Header {
  if (bytes.length < QCOW2_V2_HEADER_LENGTH) throw fail('qcow2', 'TRUNCATED', `header needs ${QCOW2_V2_HEADER_LENGTH} bytes, file has ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (view.getUint32(0) !== QCOW2_MAGIC) throw fail('qcow2', 'BAD_MAGIC', 'magic is not "QFI\\xfb"');
  const version = view.getUint32(4);
  if (version !== 2 && version !== 3) throw fail('qcow2', 'BAD_VALUE', `version ${version} is not supported (only 2 and 3)`);
  const clusterBits = view.getUint32(20);
  if (clusterBits < QCOW2_MIN_CLUSTER_BITS || clusterBits > QCOW2_MAX_CLUSTER_BITS) {
    throw fail('qcow2', 'BAD_VALUE', `cluster_bits ${clusterBits} is outside ${QCOW2_MIN_CLUSTER_BITS}..${QCOW2_MAX_CLUSTER_BITS}`);
  }
  const header: Qcow2Header = {
    version,
    backingFileOffset: u64(view, 8, 'backing_file_offset'),
    backingFileSize: view.getUint32(16),
    clusterBits,
    size: u64(view, 24, 'virtual size'),
    cryptMethod: view.getUint32(32),
    l1Size: view.getUint32(36),
    l1TableOffset: u64(view, 40, 'l1_table_offset'),
    refcountTableOffset: u64(view, 48, 'refcount_table_offset'),
    refcountTableClusters: view.getUint32(56),
    nbSnapshots: view.getUint32(60),
    // Snapshots are never read, so their offset is kept as is (inexact past 2^53) rather than refused.
    snapshotsOffset: view.getUint32(64) * 0x100000000 + view.getUint32(68),
    incompatibleFeatures: [],
    compatibleFeatures: [],
    autoclearFeatures: [],
    refcountOrder: 4, // "For version 2 images, the order is always assumed to be 4"
    headerLength: QCOW2_V2_HEADER_LENGTH,
    compressionType: QCOW2_COMPRESSION.zlib,
  };
  if (version === 3) {
    if (bytes.length < QCOW2_V3_MIN_HEADER_LENGTH)
      throw fail('qcow2', 'TRUNCATED', `version 3 header needs ${QCOW2_V3_MIN_HEADER_LENGTH} bytes, file has ${bytes.length}`);
    header.incompatibleFeatures = bitsOf(view, 72);
    header.compatibleFeatures = bitsOf(view, 80);
    header.autoclearFeatures = bitsOf(view, 88);
    header.refcountOrder = view.getUint32(96);
    header.headerLength = view.getUint32(100);
    if (header.refcountOrder > 6) throw fail('qcow2', 'BAD_VALUE', `refcount_order ${header.refcountOrder} is above 6`);
    if (header.headerLength < QCOW2_V3_MIN_HEADER_LENGTH || header.headerLength % 8 !== 0) {
      throw fail('qcow2', 'BAD_VALUE', `header_length ${header.headerLength} is below ${QCOW2_V3_MIN_HEADER_LENGTH} or not a multiple of 8`);
    }
    if (header.headerLength > 1 << clusterBits) throw fail('qcow2', 'BAD_VALUE', `header_length ${header.headerLength} is larger than the cluster size`);
    // compression_type is present only when header_length covers byte 104 ("Additional fields").
    if (header.headerLength > 104) {
      if (bytes.length <= 104) throw fail('qcow2', 'TRUNCATED', 'header ends before compression_type');
      header.compressionType = bytes[104];
    }
    const typeBit = header.incompatibleFeatures.includes(QCOW2_INCOMPAT.compressionType);
    if (typeBit !== (header.compressionType !== QCOW2_COMPRESSION.zlib)) {
      throw fail('qcow2', 'BAD_VALUE', `compression_type ${header.compressionType} disagrees with incompatible feature bit 3`);
    }
  }
  if (header.compressionType !== QCOW2_COMPRESSION.zlib && header.compressionType !== QCOW2_COMPRESSION.zstd) {
    throw fail('qcow2', 'BAD_VALUE', `compression_type ${header.compressionType} is unknown (0 zlib, 1 zstd)`);
  }
  if (header.size > Number.MAX_SAFE_INTEGER) throw fail('qcow2', 'TOO_LARGE', `virtual size ${header.size} is past 2^53`);
  return header;
}

/** Entries in one L2 table (qcow2 spec, "Cluster mapping": cluster_size / sizeof(uint64_t)). */
export function l2EntriesPerTable(clusterBits: number): number {
  return 2 ** (clusterBits - 3);
}

/** L1 entries needed to map `size` bytes. */
export function l1EntriesFor(size: number, clusterBits: number): number {
  return Math.ceil(size / 2 ** (clusterBits + clusterBits - 3));
}

/**
 * Check every offset and length of the header against the file size and our bounds (L1 table,
 * refcount table, backing file name), before anything is allocated from them.
 */
export function validateQcow2Layout(h: Qcow2Header, fileSize: number): void {
  const cs = 2 ** h.clusterBits;
  const needed = l1EntriesFor(h.size, h.clusterBits);
  if (h.l1Size < needed) throw fail('qcow2', 'BAD_VALUE', `L1 table of ${h.l1Size} entries is too small for virtual size ${h.size} (needs ${needed})`);
  if (h.l1Size * 8 > QCOW2_MAX_L1_BYTES) throw fail('qcow2', 'TOO_LARGE', `L1 table of ${h.l1Size} entries exceeds the ${QCOW2_MAX_L1_BYTES}-byte limit`);
  if (h.l1Size > 0) {
    if (h.l1TableOffset % cs !== 0) throw fail('qcow2', 'BAD_VALUE', `L1 table offset ${h.l1TableOffset} is not cluster aligned`);
    if (h.l1TableOffset < cs) throw fail('qcow2', 'BAD_VALUE', `L1 table offset ${h.l1TableOffset} points into the header cluster`);
    if (h.l1TableOffset + h.l1Size * 8 > fileSize)
      throw fail('qcow2', 'TRUNCATED', `L1 table at ${h.l1TableOffset} (${h.l1Size} entries) runs past the end of the file (${fileSize} bytes)`);
  }
  if (h.refcountTableOffset % cs !== 0) throw fail('qcow2', 'BAD_VALUE', `refcount table offset ${h.refcountTableOffset} is not cluster aligned`);
  if (h.refcountTableOffset < cs) throw fail('qcow2', 'BAD_VALUE', `refcount table offset ${h.refcountTableOffset} points into the header cluster`);
  if (h.refcountTableClusters * cs > QCOW2_MAX_REFCOUNT_TABLE_BYTES) {
    throw fail('qcow2', 'TOO_LARGE', `refcount table of ${h.refcountTableClusters} clusters exceeds the ${QCOW2_MAX_REFCOUNT_TABLE_BYTES}-byte limit`);
  }
  if (h.refcountTableOffset + h.refcountTableClusters * cs > fileSize) {
    throw fail(
      'qcow2',
      'TRUNCATED',
      `refcount table at ${h.refcountTableOffset} (${h.refcountTableClusters} clusters) runs past the end of the file (${fileSize} bytes)`,
    );
  }
  if (h.backingFileOffset !== 0) {
    if (h.backingFileSize > QCOW2_MAX_BACKING_NAME)
      throw fail('qcow2', 'TOO_LARGE', `backing file name of ${h.backingFileSize} bytes is longer than ${QCOW2_MAX_BACKING_NAME}`);
    if (h.backingFileOffset + h.backingFileSize > Math.min(cs, fileSize))
      throw fail('qcow2', 'BAD_VALUE', `backing file name at ${h.backingFileOffset} lies outside the header cluster`);
  }
}

/** Walk the header extensions after `headerLength` in the first cluster (qcow2 spec, "Header extensions"). */
export function decodeQcow2Extensions(cluster0: Uint8Array, headerLength: number): Qcow2Extensions {
  const out: Qcow2Extensions = { featureNames: [], ignored: [] };
  const view = new DataView(cluster0.buffer, cluster0.byteOffset, cluster0.length);
  const text = (at: number, n: number) => new TextDecoder('utf-8', { fatal: false }).decode(cluster0.subarray(at, at + n));
  // Extensions are 8-byte aligned ("Padding to round up the header extension size to the next multiple of 8").
  for (let at = Math.ceil(headerLength / 8) * 8; at + 8 <= cluster0.length;) {
    const type = view.getUint32(at);
    const length = view.getUint32(at + 4);
    if (type === QCOW2_EXT.end) break;
    const data = at + 8;
    if (length > cluster0.length - data)
      throw fail('qcow2', 'TRUNCATED', `header extension ${type.toString(16)}h of ${length} bytes runs past the first cluster`);
    if (type === QCOW2_EXT.backingFormat) out.backingFormat = text(data, length);
    else if (type === QCOW2_EXT.externalDataFile) out.externalDataFile = text(data, length);
    else if (type === QCOW2_EXT.featureTable) {
      // 48-byte entries: type, bit, 46-byte name ("Feature name table").
      for (let e = data; e + 48 <= data + length; e += 48) {
        const raw = cluster0.subarray(e + 2, e + 48);
        const nul = raw.indexOf(0);
        out.featureNames.push({ type: cluster0[e], bit: cluster0[e + 1], name: text(e + 2, nul < 0 ? 46 : nul) });
      }
    } else out.ignored.push(type);
    at = data + Math.ceil(length / 8) * 8;
  }
  return out;
}

export interface Qcow2HeaderSpec {
  version: 2 | 3;
  clusterBits: number;
  size: number;
  l1Size: number;
  l1TableOffset: number;
  refcountTableOffset: number;
  refcountTableClusters: number;
  compressionType: number;
  /** Written as a feature name table extension (v3). */
  featureNames?: readonly Qcow2FeatureName[];
}

/** The feature names qemu puts in its table; we write those of the bits we know. */
export const QCOW2_FEATURE_NAMES: readonly Qcow2FeatureName[] = [
  { type: 0, bit: QCOW2_INCOMPAT.dirty, name: 'dirty bit' },
  { type: 0, bit: QCOW2_INCOMPAT.corrupt, name: 'corrupt bit' },
  { type: 0, bit: QCOW2_INCOMPAT.externalData, name: 'external data file' },
  { type: 0, bit: QCOW2_INCOMPAT.compressionType, name: 'compression type' },
  { type: 0, bit: QCOW2_INCOMPAT.extendedL2, name: 'extended L2 entries' },
  { type: 1, bit: 0, name: 'lazy refcounts' },
];

/** Header plus extensions, exactly one cluster long (qcow2 spec, "Header" and "Header extensions"). */
export function encodeQcow2Header(spec: Qcow2HeaderSpec): Uint8Array {
  const cs = 2 ** spec.clusterBits;
  const out = new Uint8Array(cs);
  const view = new DataView(out.buffer);
  view.setUint32(0, QCOW2_MAGIC);
  view.setUint32(4, spec.version);
  view.setUint32(20, spec.clusterBits);
  putU64(view, 24, spec.size, false);
  view.setUint32(36, spec.l1Size);
  putU64(view, 40, spec.l1TableOffset, false);
  putU64(view, 48, spec.refcountTableOffset, false);
  view.setUint32(56, spec.refcountTableClusters);
  if (spec.version === 3) {
    putBits(view, 72, spec.compressionType !== QCOW2_COMPRESSION.zlib ? [QCOW2_INCOMPAT.compressionType] : []);
    view.setUint32(96, 4); // refcount_order 4: 16-bit refcounts
    view.setUint32(100, QCOW2_V3_HEADER_LENGTH);
    out[104] = spec.compressionType;
    let at = QCOW2_V3_HEADER_LENGTH;
    const names = spec.featureNames ?? [];
    if (names.length) {
      if (at + 8 + names.length * 48 + 8 > cs) throw fail('qcow2', 'INVALID_ARGUMENT', 'feature name table does not fit in the header cluster');
      view.setUint32(at, QCOW2_EXT.featureTable);
      view.setUint32(at + 4, names.length * 48);
      at += 8;
      for (const f of names) {
        out[at] = f.type;
        out[at + 1] = f.bit;
        out.set(new TextEncoder().encode(f.name).subarray(0, 46), at + 2);
        at += 48;
      }
    }
  }
  // The end-of-extensions marker is the zeroed 8 bytes that follow (type 0).
  return out;
}
