/**
 * Open an update bundle (.dmb, layout in ./format.ts) and check it before anything is written:
 * the header and its bounds, the exact file size, the Ed25519 signature (RFC 8032) over the
 * manifest bytes, the manifest's fields, and the sha256 of the stored payload. Only then is
 * the payload streamed out, record by record, decompressed (zstd, RFC 8878; zlib, RFC 1950)
 * with bounded memory and re-checked while it streams.
 */
import { inflateAsync } from '../../io/zlib-async.js';
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { DiskmintError } from '../../model/errors.js';
import { FormatError } from '../../../formats/common/errors.js';
import { zstdDecompress } from '../../io/zstd.js';
import { loadPublicKey, verifyBytes } from '../sign-keys.js';
import { formatBytes } from '../../model/size.js';
import {
  HEADER_BYTES,
  RECORD_HEADER_BYTES,
  bundleExtents,
  decodeHeader,
  decodeManifest,
  decodeRecordHeader,
  zstdContentSize,
  type BundleHeader,
  type BundleManifest,
  type RecordHeader,
} from './format.js';

export interface OpenBundleOptions {
  /** Path of the Ed25519 public key (PEM). When given, the bundle must be signed by it. */
  pubkey?: string;
  /** Refuse unsigned bundles (needs `pubkey`: a signature no one checks proves nothing). */
  requireSignature?: boolean;
  /** Hash the stored payload against the manifest before returning (default true). */
  checkPayload?: boolean;
}

export interface PayloadChunk {
  /** Byte offset in the new image. */
  offset: number;
  data: Uint8Array;
}

export interface OpenedBundle {
  path: string;
  manifest: BundleManifest;
  /** The exact signed manifest bytes (manifest.json for openssl). */
  manifestBytes: Uint8Array;
  /** The raw 64-byte Ed25519 signature (manifest.sig for openssl); empty when unsigned. */
  signature: Uint8Array;
  signed: boolean;
  /** True only when a public key was given and the signature verifies with it. */
  verified: boolean;
  fileSize: number;
  /**
   * The payload, decompressed: full bundles cover [0, payloadSize) in order; deltas only the
   * changed ranges. Throws DiskmintError('INPUT') on a truncated or corrupt record, and after
   * the last record when the stream's (or, for full bundles, the image's) sha256 differs.
   */
  payload(): AsyncIterable<PayloadChunk>;
}

const refuse = (path: string, message: string) => new DiskmintError('INPUT', `${path}: ${message}`);

/** Turn codec errors into messages naming the bundle. */
function wrap<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof FormatError) throw refuse(path, err.message);
    throw err;
  }
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === length ? buf : buf.subarray(0, done);
}

const WINDOW = 4 << 20;

/** Sequential reads through a window, so small record headers cost no system call each. */
class Cursor {
  private buf: Uint8Array = new Uint8Array(0);
  private bufAt = 0;
  constructor(
    private readonly fh: FileHandle,
    public pos: number,
    private readonly end: number,
  ) {}

  async take(n: number): Promise<Uint8Array> {
    if (this.pos < this.bufAt || this.pos + n > this.bufAt + this.buf.length) {
      this.bufAt = this.pos;
      this.buf = await readAt(this.fh, this.pos, Math.max(0, Math.min(Math.max(n, WINDOW), this.end - this.pos)));
    }
    const out = this.buf.subarray(this.pos - this.bufAt, Math.min(this.buf.length, this.pos - this.bufAt + n));
    this.pos += out.length;
    return out;
  }
}

async function fileSizeOf(fh: FileHandle): Promise<number> {
  return (await fh.stat()).size;
}

function checkSize(path: string, header: BundleHeader, size: number): void {
  const want = bundleExtents(header).fileSize;
  if (size < want) throw refuse(path, `truncated: the bundle is ${size} bytes, its header says ${want}`);
  if (size > want) throw refuse(path, `${size - want} unexpected bytes after the payload (the header says the bundle is ${want} bytes)`);
}

async function hashStored(fh: FileHandle, from: number, to: number): Promise<string> {
  const h = createHash('sha256');
  for (let at = from; at < to;) {
    const chunk = await readAt(fh, at, Math.min(WINDOW, to - at));
    if (!chunk.length) break;
    h.update(chunk);
    at += chunk.length;
  }
  return h.digest('hex');
}

export async function openBundle(path: string, opts: OpenBundleOptions = {}): Promise<OpenedBundle> {
  if (opts.requireSignature && !opts.pubkey)
    throw new DiskmintError('BAD_ARGUMENT', 'a signature is required but no public key was given to check it (--pubkey KEY.pub)');
  const key = opts.pubkey ? await loadPublicKey(opts.pubkey) : undefined;
  const fh = await openFile(path);
  try {
    const size = await fileSizeOf(fh);
    const headBytes = await readAt(fh, 0, HEADER_BYTES);
    const header = wrap(path, () => decodeHeader(headBytes));
    checkSize(path, header, size);
    const ext = bundleExtents(header);
    const manifestBytes = await readAt(fh, ext.manifest, header.manifestLength);
    const signature = await readAt(fh, ext.signature, header.signatureLength);
    const signed = signature.length > 0;
    if (key) {
      if (!signed) throw refuse(path, `the bundle is unsigned; refusing it, since only bundles signed by ${opts.pubkey} are accepted`);
      if (!verifyBytes(manifestBytes, signature, key)) {
        throw refuse(path, `the signature does not verify with ${opts.pubkey}: the manifest or the signature was changed, or another key signed it`);
      }
    }
    const manifest = wrap(path, () => decodeManifest(manifestBytes));
    if (manifest.storedSize !== header.storedLength)
      throw refuse(path, `the header says the payload is ${header.storedLength} bytes, the manifest ${manifest.storedSize}`);
    if (opts.checkPayload !== false) {
      const got = await hashStored(fh, ext.stored, ext.fileSize);
      if (got !== manifest.storedSha256) {
        throw refuse(
          path,
          `the payload is corrupt: its sha256 is ${got.slice(0, 12)}, the ${key ? 'signed ' : ''}manifest says ${manifest.storedSha256.slice(0, 12)}`,
        );
      }
    }
    return {
      path,
      manifest,
      manifestBytes,
      signature,
      signed,
      verified: key !== undefined,
      fileSize: size,
      payload: () => streamPayload(path, header, manifest),
    };
  } finally {
    await fh.close();
  }
}

async function openFile(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch {
    throw new DiskmintError('INPUT', `${path} cannot be read`);
  }
}

async function* streamPayload(path: string, header: BundleHeader, m: BundleManifest): AsyncGenerator<PayloadChunk> {
  const fh = await openFile(path);
  try {
    checkSize(path, header, await fileSizeOf(fh));
    const ext = bundleExtents(header);
    const cursor = new Cursor(fh, ext.stored, ext.fileSize);
    const stored = createHash('sha256');
    const image = m.kind === 'full' ? createHash('sha256') : undefined;
    let prevEnd = 0;
    for (let n = 0; n < m.records; n++) {
      const head = await cursor.take(RECORD_HEADER_BYTES);
      const rec = wrap(path, () => decodeRecordHeader(head, m, prevEnd, n));
      stored.update(head);
      const z = await cursor.take(rec.storedLength);
      if (z.length !== rec.storedLength) throw refuse(path, `truncated: record ${n} ends after ${z.length} of its ${rec.storedLength} stored bytes`);
      stored.update(z);
      const data = await decompressRecord(path, m, rec, z, n);
      image?.update(data);
      prevEnd = rec.offset + rec.length;
      yield { offset: rec.offset, data };
    }
    if (cursor.pos !== ext.fileSize) throw refuse(path, `${ext.fileSize - cursor.pos} bytes follow the last of the payload's ${m.records} records`);
    if (stored.digest('hex') !== m.storedSha256) throw refuse(path, 'the payload changed while it was read: its sha256 no longer matches the manifest');
    if (m.kind === 'full' && prevEnd !== m.payloadSize) throw refuse(path, `the records end at byte ${prevEnd} of a ${m.payloadSize}-byte image`);
    if (image && image.digest('hex') !== m.payloadSha256) throw refuse(path, "the decompressed image does not hash to the manifest's payloadSha256");
  } finally {
    await fh.close();
  }
}

/** One record's bytes, decompressed into exactly `length` bytes and never more. */
async function decompressRecord(path: string, m: BundleManifest, rec: RecordHeader, z: Uint8Array, n: number): Promise<Uint8Array> {
  const what = `record ${n} (offset ${rec.offset})`;
  let out: Uint8Array;
  try {
    if (m.compression === 'zstd') {
      // The frame must declare its size (RFC 8878 section 3.1.1.1.4), so the output buffer is bounded.
      const declared = zstdContentSize(z);
      if (declared !== rec.length) throw refuse(path, `${what}: its zstd frame declares ${declared ?? 'no'} content size, the record ${rec.length} bytes`);
      out = await zstdDecompress(z, rec.length);
    } else {
      out = new Uint8Array(await inflateAsync(z, { maxOutputLength: rec.length }));
    }
  } catch (err) {
    if (err instanceof DiskmintError) throw err;
    throw refuse(path, `${what}: corrupt ${m.compression} data (${(err as Error).message})`);
  }
  if (out.length !== rec.length) throw refuse(path, `${what}: decompressed to ${out.length} bytes, the record says ${rec.length}`);
  return out;
}

/**
 * Whether a slot can take this bundle: a reason to refuse it, or undefined. `currentBaseSha256`
 * is the sha256 of the slot's first manifest.baseSize bytes (deltas only).
 */
export function bundleTargetCheck(m: BundleManifest, slotSizeBytes: number, currentBaseSha256?: string): string | undefined {
  if (slotSizeBytes < m.targetSlotSize) {
    return `the update needs a slot of at least ${formatBytes(m.targetSlotSize)} (${m.targetSlotSize} bytes); this slot is ${formatBytes(slotSizeBytes)} (${slotSizeBytes} bytes)`;
  }
  if (m.kind !== 'delta') return undefined;
  const baseSize = m.baseSize ?? 0;
  if (baseSize > slotSizeBytes)
    return `this delta update applies to a ${formatBytes(baseSize)} base image, larger than the slot (${formatBytes(slotSizeBytes)}): the slot cannot hold its base`;
  if (currentBaseSha256 === undefined)
    return `this is a delta update: the slot's first ${baseSize} bytes must be hashed and compared with its base before it applies`;
  if (currentBaseSha256.toLowerCase() !== m.baseSha256) {
    return `this delta update applies only to the base image with sha256 ${m.baseSha256?.slice(0, 12)} (${baseSize} bytes), but the slot's first ${baseSize} bytes hash to ${currentBaseSha256.slice(0, 12)}: write a full bundle instead, or the delta made from this slot's image`;
  }
  return undefined;
}
