/**
 * The .dmb update bundle: pure encoding and decoding, strict bounds, no I/O.
 *
 * Byte layout (all integers little-endian):
 *
 *   0    64        header
 *          0  8    magic "DMBUNDLE"
 *          8  u32  container version (1)
 *         12  u32  header length (64)
 *         16  u32  manifest length M (1 .. 65536)
 *         20  u32  signature length S (0 = unsigned, or 64 = Ed25519, RFC 8032)
 *         24  u64  stored payload length P (equals manifest.storedSize)
 *         32  32   reserved, zero
 *   64   M         manifest: canonical JSON (src/ops/canonical-json.ts), UTF-8; the signed bytes
 *   64+M S         Ed25519 signature over exactly the M manifest bytes
 *   64+M+S P       payload: records, in increasing offset order
 *                    u64 offset in the new image, u32 length, u32 stored length,
 *                    then `stored length` bytes: one zstd frame (RFC 8878) or one zlib
 *                    stream (RFC 1950 around RFC 1951 deflate) of `length` bytes
 *
 * The file is exactly 64 + M + S + P bytes. The header is not signed, but every field in it
 * is bound by the signature: M and S by the signature check itself, P by manifest.storedSize,
 * and the payload bytes by manifest.storedSha256.
 *
 * Shell extraction (no Node; little-endian host for od):
 *   M=$(od -An -tu4 -j16 -N4 UPDATE.dmb | tr -d ' '); S=$(od -An -tu4 -j20 -N4 UPDATE.dmb | tr -d ' ')
 *   tail -c +65 UPDATE.dmb | head -c "$M" > manifest.json
 *   tail -c +$((65 + M)) UPDATE.dmb | head -c "$S" > manifest.sig
 */
import { fail } from '../../../formats/common/errors.js';
import { canonicalJson } from '../canonical-json.js';

export const BUNDLE_MAGIC = 'DMBUNDLE';
export const BUNDLE_CONTAINER_VERSION = 1;
export const HEADER_BYTES = 64;
export const MAX_MANIFEST_BYTES = 64 << 10;
export const SIGNATURE_BYTES = 64;
export const RECORD_HEADER_BYTES = 16;
/** The largest record (uncompressed). Records never span more than this, so memory stays bounded. */
export const MAX_RECORD_BYTES = 1 << 20;
export const MIN_BLOCK_SIZE = 4096;

/** Worst-case stored size of a record: zstd's and zlib's expansion bounds with room to spare. */
export const maxStoredBytes = (length: number): number => length + (length >> 6) + 1024;

export type BundleCompression = 'zstd' | 'zlib';

export interface BundleManifest {
  format: 'diskmint-bundle';
  formatVersion: 1;
  /** full: records cover [0, payloadSize); delta: only blocks that differ from the base. */
  kind: 'full' | 'delta';
  /** Free-form release name (`--version`); "" when none. */
  version: string;
  /** Seconds since 1970 (SOURCE_DATE_EPOCH, else 0): bundles are reproducible. */
  created: number;
  /** The new image: its size and sha256. A slot holds it when its first payloadSize bytes hash to payloadSha256. */
  payloadSize: number;
  payloadSha256: string;
  /** The smallest slot (bytes) the image fits: payloadSize rounded up to 512-byte sectors. */
  targetSlotSize: number;
  /** Delta only: the slot must hold this before the records apply (its first baseSize bytes). */
  baseSize?: number;
  baseSha256?: string;
  compression: BundleCompression;
  /** Record offsets are multiples of it; delta compares the images in blocks of this size. */
  blockSize: number;
  /** Number of records in the payload. */
  records: number;
  /** The payload as stored in the file (framed, compressed). */
  storedSize: number;
  storedSha256: string;
}

export interface BundleHeader {
  manifestLength: number;
  signatureLength: number;
  storedLength: number;
}

export function encodeHeader(h: BundleHeader): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES);
  const view = new DataView(out.buffer);
  out.set(new TextEncoder().encode(BUNDLE_MAGIC), 0);
  view.setUint32(8, BUNDLE_CONTAINER_VERSION, true);
  view.setUint32(12, HEADER_BYTES, true);
  view.setUint32(16, h.manifestLength, true);
  view.setUint32(20, h.signatureLength, true);
  view.setBigUint64(24, BigInt(h.storedLength), true);
  return out;
}

export function decodeHeader(bytes: Uint8Array): BundleHeader {
  if (bytes.length < HEADER_BYTES) throw fail('dmb', 'TRUNCATED', `bundle is ${bytes.length} bytes, shorter than its ${HEADER_BYTES}-byte header`);
  if (new TextDecoder('latin1').decode(bytes.subarray(0, 8)) !== BUNDLE_MAGIC)
    throw fail('dmb', 'BAD_MAGIC', `not a diskmint update bundle (no "${BUNDLE_MAGIC}" magic)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const version = view.getUint32(8, true);
  if (version !== BUNDLE_CONTAINER_VERSION)
    throw fail('dmb', 'BAD_VALUE', `bundle container version ${version}; this diskmint reads version ${BUNDLE_CONTAINER_VERSION}`);
  if (view.getUint32(12, true) !== HEADER_BYTES) throw fail('dmb', 'BAD_VALUE', `bundle header length ${view.getUint32(12, true)}, expected ${HEADER_BYTES}`);
  const manifestLength = view.getUint32(16, true);
  if (manifestLength < 2 || manifestLength > MAX_MANIFEST_BYTES)
    throw fail('dmb', 'TOO_LARGE', `bundle manifest length ${manifestLength} is outside 2..${MAX_MANIFEST_BYTES}`);
  const signatureLength = view.getUint32(20, true);
  if (signatureLength !== 0 && signatureLength !== SIGNATURE_BYTES)
    throw fail('dmb', 'BAD_VALUE', `bundle signature length ${signatureLength}; an Ed25519 signature is ${SIGNATURE_BYTES} bytes`);
  const stored = view.getBigUint64(24, true);
  if (stored > BigInt(Number.MAX_SAFE_INTEGER)) throw fail('dmb', 'TOO_LARGE', `bundle payload length ${stored} is too large`);
  for (let i = 32; i < HEADER_BYTES; i++) if (bytes[i] !== 0) throw fail('dmb', 'BAD_VALUE', `bundle header byte ${i} is reserved and must be zero`);
  return { manifestLength, signatureLength, storedLength: Number(stored) };
}

/** Where each part of a bundle starts, and the file size the header implies. */
export function bundleExtents(h: BundleHeader): { manifest: number; signature: number; stored: number; fileSize: number } {
  const signature = HEADER_BYTES + h.manifestLength;
  const stored = signature + h.signatureLength;
  return { manifest: HEADER_BYTES, signature, stored, fileSize: stored + h.storedLength };
}

export function encodeManifest(m: BundleManifest): Uint8Array {
  return new TextEncoder().encode(canonicalJson(m));
}

const HEX64 = /^[0-9a-f]{64}$/;
const KEYS = new Set([
  'format',
  'formatVersion',
  'kind',
  'version',
  'created',
  'payloadSize',
  'payloadSha256',
  'targetSlotSize',
  'baseSize',
  'baseSha256',
  'compression',
  'blockSize',
  'records',
  'storedSize',
  'storedSha256',
]);

/** Parse and check a manifest: every field, its bounds, and that the bytes are canonical. */
export function decodeManifest(bytes: Uint8Array): BundleManifest {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as Record<string, unknown>;
  } catch {
    throw fail('dmb', 'BAD_VALUE', 'bundle manifest is not UTF-8 JSON');
  }
  if (!m || typeof m !== 'object' || Array.isArray(m)) throw fail('dmb', 'BAD_VALUE', 'bundle manifest is not a JSON object');
  if (m.format !== 'diskmint-bundle') throw fail('dmb', 'BAD_VALUE', 'bundle manifest is not a diskmint-bundle manifest');
  if (m.formatVersion !== 1) throw fail('dmb', 'BAD_VALUE', `bundle manifest version ${String(m.formatVersion)}; this diskmint reads version 1`);
  for (const k of Object.keys(m)) if (!KEYS.has(k)) throw fail('dmb', 'BAD_VALUE', `bundle manifest has an unknown field "${k}"`);
  const int = (k: string, min = 0, max = Number.MAX_SAFE_INTEGER): number => {
    const v = m[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
      throw fail('dmb', 'BAD_VALUE', `bundle manifest field ${k} must be an integer in ${min}..${max}`);
    return v;
  };
  const hex = (k: string): string => {
    if (typeof m[k] !== 'string' || !HEX64.test(m[k] as string)) throw fail('dmb', 'BAD_VALUE', `bundle manifest field ${k} must be a lowercase hex sha256`);
    return m[k] as string;
  };
  if (m.kind !== 'full' && m.kind !== 'delta') throw fail('dmb', 'BAD_VALUE', `bundle kind ${JSON.stringify(m.kind)}; expected full or delta`);
  if (m.compression !== 'zstd' && m.compression !== 'zlib')
    throw fail('dmb', 'BAD_VALUE', `bundle compression ${JSON.stringify(m.compression)}; expected zstd or zlib`);
  if (typeof m.version !== 'string' || m.version.length > 256)
    throw fail('dmb', 'BAD_VALUE', 'bundle manifest version must be a string of at most 256 characters');
  const blockSize = int('blockSize', MIN_BLOCK_SIZE, MAX_RECORD_BYTES);
  if (blockSize & (blockSize - 1)) throw fail('dmb', 'BAD_VALUE', `bundle block size ${blockSize} is not a power of two`);
  const out: BundleManifest = {
    format: 'diskmint-bundle',
    formatVersion: 1,
    kind: m.kind,
    version: m.version,
    created: int('created'),
    payloadSize: int('payloadSize', 1),
    payloadSha256: hex('payloadSha256'),
    targetSlotSize: int('targetSlotSize', 1),
    compression: m.compression,
    blockSize,
    records: int('records'),
    storedSize: int('storedSize'),
    storedSha256: hex('storedSha256'),
  };
  if (out.targetSlotSize < out.payloadSize)
    throw fail('dmb', 'BAD_VALUE', `bundle target slot size ${out.targetSlotSize} is smaller than its image (${out.payloadSize})`);
  if (out.kind === 'delta') {
    out.baseSize = int('baseSize', 1);
    out.baseSha256 = hex('baseSha256');
  } else if (m.baseSize !== undefined || m.baseSha256 !== undefined) {
    throw fail('dmb', 'BAD_VALUE', 'a full bundle manifest has no base');
  }
  const maxRecords = Math.ceil(out.payloadSize / blockSize);
  if (out.records > maxRecords || (out.kind === 'full' && out.records < Math.ceil(out.payloadSize / MAX_RECORD_BYTES))) {
    throw fail('dmb', 'BAD_VALUE', `bundle claims ${out.records} records for a ${out.payloadSize}-byte image`);
  }
  if (out.storedSize < out.records * RECORD_HEADER_BYTES)
    throw fail('dmb', 'BAD_VALUE', `bundle payload of ${out.storedSize} bytes cannot hold ${out.records} records`);
  const canonical = canonicalJson(out);
  if (canonical !== new TextDecoder().decode(bytes)) throw fail('dmb', 'BAD_VALUE', 'bundle manifest is not in canonical form (sorted keys, no whitespace)');
  return out;
}

export interface RecordHeader {
  offset: number;
  length: number;
  storedLength: number;
}

export function encodeRecordHeader(r: RecordHeader): Uint8Array {
  const out = new Uint8Array(RECORD_HEADER_BYTES);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(r.offset), true);
  view.setUint32(8, r.length, true);
  view.setUint32(12, r.storedLength, true);
  return out;
}

/**
 * Decode a record header and check it against the manifest and the previous record's end:
 * offsets increase and sit on block boundaries; a record is at most MAX_RECORD_BYTES, a whole
 * number of blocks unless it ends the image; full bundles leave no gaps.
 */
export function decodeRecordHeader(bytes: Uint8Array, m: BundleManifest, prevEnd: number, n: number): RecordHeader {
  if (bytes.length < RECORD_HEADER_BYTES) throw fail('dmb', 'TRUNCATED', `bundle payload ends inside record ${n}'s header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, RECORD_HEADER_BYTES);
  const big = view.getBigUint64(0, true);
  const offset = big > BigInt(m.payloadSize) ? Number.MAX_SAFE_INTEGER : Number(big);
  const length = view.getUint32(8, true);
  const storedLength = view.getUint32(12, true);
  const where = `bundle record ${n} (offset ${big})`;
  if (big >= BigInt(m.payloadSize)) throw fail('dmb', 'BAD_VALUE', `${where} starts past the end of the ${m.payloadSize}-byte image`);
  if (offset < prevEnd) throw fail('dmb', 'BAD_VALUE', `${where} overlaps or precedes the previous record`);
  if (m.kind === 'full' && offset !== prevEnd) throw fail('dmb', 'BAD_VALUE', `${where} leaves a gap: a full bundle covers the image without gaps`);
  if (offset % m.blockSize) throw fail('dmb', 'BAD_VALUE', `${where} is not on a ${m.blockSize}-byte block boundary`);
  if (length === 0 || length > MAX_RECORD_BYTES) throw fail('dmb', 'TOO_LARGE', `${where} has length ${length}; records hold 1..${MAX_RECORD_BYTES} bytes`);
  if (offset + length > m.payloadSize) throw fail('dmb', 'BAD_VALUE', `${where} runs past the end of the ${m.payloadSize}-byte image`);
  if (length % m.blockSize && offset + length !== m.payloadSize) throw fail('dmb', 'BAD_VALUE', `${where} is not a whole number of blocks`);
  if (storedLength === 0 || storedLength > maxStoredBytes(length)) throw fail('dmb', 'TOO_LARGE', `${where} stores ${storedLength} bytes for ${length}`);
  return { offset, length, storedLength };
}

/**
 * Frame_Content_Size of the zstd frame at the start of `frame` (RFC 8878 section 3.1.1.1), or
 * undefined when the frame does not declare it or is not a zstd frame.
 */
export function zstdContentSize(frame: Uint8Array): number | undefined {
  if (frame.length < 6) return undefined;
  const view = new DataView(frame.buffer, frame.byteOffset, frame.length);
  if (view.getUint32(0, true) !== 0xfd2fb528) return undefined; // Magic_Number
  const fhd = frame[4]; // Frame_Header_Descriptor
  const singleSegment = (fhd >> 5) & 1;
  const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][fhd >> 6];
  const at = 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][fhd & 3];
  if (fcsBytes === 0 || at + fcsBytes > frame.length) return undefined;
  if (fcsBytes === 1) return frame[at];
  if (fcsBytes === 2) return view.getUint16(at, true) + 256;
  if (fcsBytes === 4) return view.getUint32(at, true);
  const hi = view.getUint32(at + 4, true);
  return hi >= 0x200000 ? undefined : hi * 0x100000000 + view.getUint32(at, true);
}
