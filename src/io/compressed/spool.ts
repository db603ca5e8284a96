/**
 * A compressed image, read as it comes: decompressed once, front to back, into a sparse temp
 * file (all-zero 64 KiB blocks left as holes, the data spans noted on the way), which then
 * serves reads of any kind. Cost follows the data: a 4 GiB card image holding 600 MiB writes
 * 600 MiB, and its allocated ranges need no second scan. The temp file lives in the system's
 * temp folder, is removed at close and on signals (temp-files.ts), and nothing is ever written
 * beside the input.
 */
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CompressionKind } from '../../../formats/common/compression.js';
import { DiskmintError, isSystemError } from '../../model/errors.js';
import { fileHandleReader, type DiskReader } from '../../model/disk-reader.js';
import { nonZeroSpans } from '../zero-blocks.js';
import { tempPathBeside, trackTempFile, untrackTempFile } from '../temp-files.js';
import { writeFully } from '../write-fully.js';
import { DecodeError, decompressedChunks } from './decode.js';

const BATCH = 4 << 20; // a multiple of zero-blocks.ts' ZERO_BLOCK: blocks are judged whole

export interface SpooledImage {
  /** The decompressed bytes; closing it removes the temp file. */
  file: DiskReader;
  /** Data spans (everything else is zero), ascending, joined. */
  spans: Array<{ offset: number; length: number }>;
  kind: CompressionKind;
}

export async function spoolDecompressed(path: string, kind: CompressionKind): Promise<SpooledImage> {
  const temp = tempPathBeside(join(tmpdir(), 'diskmint-decompressed.img'));
  trackTempFile(temp);
  let handle: FileHandle | undefined;
  const remove = async () => {
    await handle?.close().catch(() => {});
    await unlink(temp).catch(() => {});
    untrackTempFile(temp);
  };
  try {
    handle = await open(temp, 'wx+', 0o600);
    const spans = await decompressInto(path, kind, handle);
    const size = spans.size;
    const h = handle;
    return { file: fileHandleReader(h, size, remove), spans: spans.list, kind };
  } catch (err) {
    await remove();
    if (err instanceof DecodeError)
      throw new DiskmintError('NOT_A_DISK', `${path}: the ${kind} stream is damaged or truncated (${err.message}); nothing was written`);
    if (isSystemError(err)) throw new DiskmintError('IO', `decompressing ${path} (into ${tmpdir()}) failed: ${err.message}`);
    throw err;
  }
}

async function decompressInto(
  path: string,
  kind: CompressionKind,
  out: FileHandle,
): Promise<{ size: number; list: Array<{ offset: number; length: number }> }> {
  const list: Array<{ offset: number; length: number }> = [];
  const batch = new Uint8Array(BATCH);
  let fill = 0;
  let at = 0; // decompressed bytes before `batch`
  const flush = async () => {
    const data = batch.subarray(0, fill);
    for (const [start, end] of nonZeroSpans(data)) {
      await writeFully(out, data.subarray(start, end), at + start);
      const last = list[list.length - 1];
      if (last && last.offset + last.length === at + start) last.length += end - start;
      else list.push({ offset: at + start, length: end - start });
    }
    at += fill;
    fill = 0;
  };
  for await (const chunk of decompressedChunks(path, kind)) {
    for (let used = 0; used < chunk.length;) {
      const n = Math.min(chunk.length - used, BATCH - fill);
      batch.set(chunk.subarray(used, used + n), fill);
      fill += n;
      used += n;
      if (fill === BATCH) await flush();
    }
  }
  await flush();
  await out.truncate(at); // holes up to the end
  if (at === 0) throw new DiskmintError('NOT_A_DISK', `${path}: the ${kind} stream holds no data`);
  return { size: at, list };
}
