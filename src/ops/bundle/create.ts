/**
 * `diskmint bundle create`: a signed update bundle (.dmb, layout in ./format.ts) holding a new
 * OS image whole (full) or only the blocks that differ from a base image (delta).
 *
 * Streaming with bounded memory: the images are read one record window (1 MiB) at a time,
 * at most `threads` records are being compressed at once, and the compressed records go to a
 * scratch file beside the output until the manifest (which holds their sha256) is known.
 * Every record is compressed on its own, so the bytes never depend on the thread count, and
 * the creation time comes from SOURCE_DATE_EPOCH (else 0): same inputs, same bundle.
 */
import { createHash, type Hash, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { AtomicOutput, relabelWriteError } from '../../io/atomic-output.js';
import { writeFully } from '../../io/write-fully.js';
import { DiskmintError, isSystemError } from '../../model/errors.js';
import { sourceDateEpoch } from '../../model/source-date.js';
import { openDisk } from '../../io/open-disk.js';
import type { DiskReader } from '../../model/disk-reader.js';
import { createCompressor, mapOrdered, type CompressionKind } from '../../containers/compress.js';
import { loadPrivateKey, signBytes } from '../sign-keys.js';
import {
  MAX_RECORD_BYTES,
  MIN_BLOCK_SIZE,
  bundleExtents,
  decodeManifest,
  encodeHeader,
  encodeManifest,
  encodeRecordHeader,
  type BundleCompression,
  type BundleManifest,
} from './format.js';
import { checkOutputTarget } from '../../io/output-target.js';

export const DEFAULT_DELTA_BLOCK = 64 << 10;
export const DEFAULT_LEVEL: Record<BundleCompression, number> = { zstd: 9, zlib: 9 };

export interface CreateBundleOptions {
  /** The new image (raw, or any container diskmint reads: its virtual bytes). */
  from: string;
  /** With a base, only the blocks that differ from it are stored (a delta bundle). */
  base?: string;
  /** Ed25519 private key: a PEM path or a KeyObject. Without one the bundle is unsigned. */
  key?: string | KeyObject;
  version?: string;
  /** zstd (RFC 8878, default) or zlib (RFC 1950/1951; the CLI's `deflate`). */
  compression?: BundleCompression;
  level?: number;
  threads?: number;
  /** Delta block size (a power of two, 4 KiB .. 1 MiB); default 64 KiB. */
  blockSize?: number;
  /** Seconds since 1970; default SOURCE_DATE_EPOCH, else 0. */
  created?: number;
  output: string;
}

export interface CreateBundleResult {
  path: string;
  manifest: BundleManifest;
  /** Bundle file size. */
  bytes: number;
  signed: boolean;
}

interface PlainRecord {
  offset: number;
  data: Uint8Array;
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));

/**
 * The records to store, in order, read window by window. Full: every window whole. Delta: runs
 * of consecutive blocks that differ from the base (a block past the base's end always differs).
 * Hashes the new image and the base (all of it) on the way. Delta runs are copied out of the
 * window (slice), since posting a view to a zstd worker would clone the whole 1 MiB buffer.
 */
async function* planRecords(
  next: DiskReader,
  base: DiskReader | undefined,
  blockSize: number,
  hashes: { next: Hash; base?: Hash },
): AsyncGenerator<PlainRecord> {
  let baseHashed = 0;
  for (let at = 0; at < next.size; at += MAX_RECORD_BYTES) {
    const want = Math.min(MAX_RECORD_BYTES, next.size - at);
    const data = await next.read(at, want);
    if (data.length !== want) throw new DiskmintError('IO', `short read of the new image at ${at}`);
    hashes.next.update(data);
    if (!base) {
      yield { offset: at, data };
      continue;
    }
    const old = at < base.size ? await base.read(at, Math.min(MAX_RECORD_BYTES, base.size - at)) : new Uint8Array(0);
    hashes.base?.update(old);
    baseHashed = at + old.length;
    let runStart = -1;
    for (let b = 0; b < data.length; b += blockSize) {
      const end = Math.min(b + blockSize, data.length);
      const differs = !sameBytes(data.subarray(b, end), old.subarray(b, Math.min(end, old.length)));
      if (differs && runStart < 0) runStart = b;
      if (!differs && runStart >= 0) {
        yield { offset: at + runStart, data: data.slice(runStart, b) };
        runStart = -1;
      }
    }
    if (runStart >= 0) yield { offset: at + runStart, data: data.slice(runStart) };
  }
  if (base && hashes.base) {
    for (let at = baseHashed; at < base.size; at += MAX_RECORD_BYTES) hashes.base.update(await base.read(at, Math.min(MAX_RECORD_BYTES, base.size - at)));
  }
}

export async function createBundle(opts: CreateBundleOptions): Promise<CreateBundleResult> {
  const compression = opts.compression ?? 'zstd';
  const level = opts.level ?? DEFAULT_LEVEL[compression];
  const blockSize = opts.base ? (opts.blockSize ?? DEFAULT_DELTA_BLOCK) : MAX_RECORD_BYTES;
  if (blockSize < MIN_BLOCK_SIZE || blockSize > MAX_RECORD_BYTES || blockSize & (blockSize - 1)) {
    throw new DiskmintError('BAD_ARGUMENT', `block size ${blockSize} must be a power of two from ${MIN_BLOCK_SIZE} to ${MAX_RECORD_BYTES}`);
  }
  if ((opts.version ?? '').length > 256) throw new DiskmintError('BAD_ARGUMENT', '--version is limited to 256 characters');
  await checkOutputTarget(opts.output, [opts.from, ...(opts.base ? [opts.base] : []), ...(typeof opts.key === 'string' ? [opts.key] : [])]);
  const key = typeof opts.key === 'string' ? await loadPrivateKey(opts.key) : opts.key;
  const created = opts.created ?? sourceDateEpoch() ?? 0;

  const next = (await openDisk(opts.from)).reader;
  const base = opts.base
    ? await openDisk(opts.base).then(
        (d) => d.reader,
        async (err) => {
          await next.close();
          throw err;
        },
      )
    : undefined;
  const compressor = createCompressor({ threads: opts.threads });
  const kind: CompressionKind = compression === 'zstd' ? 'zstd' : 'zlib';
  let output: AtomicOutput | undefined;
  try {
    // The bundle goes to an AtomicOutput (temp file, fsync, rename); the records wait in a
    // scratch file beside it, deleted with the temp file whatever happens. Errors come out as
    // they are (a corrupt input stays a FormatError, an input's read error names the input),
    // except the system's (ENOSPC, EIO writing the bundle or its scratch file): they name the bundle.
    output = await AtomicOutput.create(opts.output);
    const out = output.handle;
    // 1. Compressed records into the scratch file, hashing them as they go.
    const { path: storedPath, handle: fh } = await output.scratch(`${basename(opts.output)}.payload`);
    const hashes = { next: createHash('sha256'), base: base ? createHash('sha256') : undefined };
    const stored = createHash('sha256');
    let storedSize = 0;
    let records = 0;
    const compressed = mapOrdered(planRecords(next, base, blockSize, hashes), compressor.concurrency + 1, async (r) => ({
      r,
      z: await compressor.compress(r.data, kind, level),
    }));
    for await (const { r, z } of compressed) {
      const head = encodeRecordHeader({ offset: r.offset, length: r.data.length, storedLength: z.length });
      stored.update(head).update(z);
      for (const bytes of [head, z]) {
        await writeFully(fh, bytes, storedSize);
        storedSize += bytes.length;
      }
      records++;
    }

    // 2. The manifest, its signature, then header + manifest + signature + records.
    const manifest: BundleManifest = {
      format: 'diskmint-bundle',
      formatVersion: 1,
      kind: base ? 'delta' : 'full',
      version: opts.version ?? '',
      created,
      payloadSize: next.size,
      payloadSha256: hashes.next.digest('hex'),
      targetSlotSize: Math.ceil(next.size / 512) * 512,
      baseSize: base?.size,
      baseSha256: hashes.base?.digest('hex'),
      compression,
      blockSize,
      records,
      storedSize,
      storedSha256: stored.digest('hex'),
    };
    const manifestBytes = encodeManifest(manifest);
    decodeManifest(manifestBytes); // the reader's checks, applied to what we write
    const signature = key ? signBytes(manifestBytes, key) : new Uint8Array(0);
    const header = { manifestLength: manifestBytes.length, signatureLength: signature.length, storedLength: storedSize };
    let at = 0;
    const append = async (bytes: Uint8Array) => {
      await writeFully(out, bytes, at);
      at += bytes.length;
    };
    await append(encodeHeader(header));
    await append(manifestBytes);
    await append(signature);
    for await (const chunk of createReadStream(storedPath, { highWaterMark: 4 << 20 })) await append(chunk as Buffer);
    if (at !== bundleExtents(header).fileSize) throw new DiskmintError('IO', `internal: wrote ${at} bytes, header says ${bundleExtents(header).fileSize}`);
    await output.commit();
    return { path: opts.output, manifest, bytes: bundleExtents(header).fileSize, signed: signature.length > 0 };
  } catch (err) {
    await output?.abort();
    throw isSystemError(err) ? relabelWriteError(err, opts.output) : err;
  } finally {
    await Promise.all([next.close(), base?.close(), compressor.close()]);
  }
}
