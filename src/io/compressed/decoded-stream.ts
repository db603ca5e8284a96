/**
 * A compressed raw image read as it decodes, front to back, with no temp file: for `flash`,
 * whose writes go in ascending order anyway. It is offered only when the stream records its
 * decompressed size (recorded-size.ts: .xz, zstd), since the size is checked against the device
 * before anything is written; the partition table is read from the first MiB, decoded first and
 * kept. Reads go forward through a window of the latest decoded bytes; a read behind the window
 * (a verification after the write) decodes again from the start.
 *
 * A stream whose framing is sound (it passed the size walk) can still hold damaged data: the
 * decoder fails where the damage is, while writing; a truncated one has no sound framing and
 * takes the spooled path (spool.ts), which decodes it all before any write.
 */
import { open } from 'node:fs/promises';
import { COMPRESSION_MAGIC_BYTES, detectCompression, type CompressionKind } from '../../../formats/common/compression.js';
import { DiskmintError } from '../../model/errors.js';
import { memoryDiskReader, type DiskReader } from '../../model/disk-reader.js';
import { detectContainer } from '../../containers/registry.js';
import { DecodeError, decompressedChunks } from './decode.js';
import { recordedDecompressedSize } from './recorded-size.js';

/** Bytes read ahead of the rest and kept: the tables at the image's start (MBR, GPT and its entries at any sector size). */
export const DECODED_HEAD = 1 << 20;

export interface DecodedStream extends DiskReader {
  readonly kind: CompressionKind;
  /**
   * `length` bytes (at most `maxRead`) at `offset`: a view of the window, valid until the next
   * call. Reads ascend; one behind the window decodes again from the start.
   */
  view(offset: number, length: number): Promise<Uint8Array>;
  /** The first DECODED_HEAD bytes as a disk of the image's size that reads zeros past them (for table probes). */
  readonly head: DiskReader;
}

/**
 * `path` as a DecodedStream, when it is compressed, records its size, and holds a raw disk (its
 * first bytes are no container's); otherwise undefined (open it with openDisk, which spools).
 * `maxRead` bounds a single read.
 */
export async function openDecodedStream(path: string, maxRead: number): Promise<DecodedStream | undefined> {
  const magic = new Uint8Array(COMPRESSION_MAGIC_BYTES);
  const file = await open(path, 'r').catch(() => undefined);
  if (!file) return undefined; // unreadable: openDisk says why
  try {
    const read = await file.read(magic, 0, magic.length, 0).catch(() => undefined);
    if (!read) return undefined; // a folder, say: openDisk says why
  } finally {
    await file.close();
  }
  const kind = detectCompression(magic);
  const size = kind && recordedDecompressedSize(path, kind);
  if (!kind || !size) return undefined;
  const stream = decodedStream(path, kind, size, maxRead);
  let head: DiskReader | undefined;
  try {
    const bytes = new Uint8Array(Math.min(size, DECODED_HEAD));
    await stream.read(0, bytes.length, bytes); // throws where the stream is damaged or shorter than it records
    head = zeroExtended(bytes, size);
    if ((await detectContainer(head)).format !== 'raw') head = undefined; // a container inside: opened whole after spooling
  } catch {
    head = undefined; // damaged within its first MiB: the spooled path decodes it all and says so before any write
  }
  if (!head) {
    await stream.close();
    return undefined;
  }
  return Object.assign(stream, { head });
}

/** `bytes` as the start of a disk of `size` bytes whose other bytes read as zeros. */
function zeroExtended(bytes: Uint8Array, size: number): DiskReader {
  const inner = memoryDiskReader(bytes);
  return {
    size,
    async read(offset, length) {
      const start = Math.min(Math.max(0, offset), size);
      const out = new Uint8Array(Math.min(size - start, Math.max(0, length)));
      if (start < bytes.length) out.set(await inner.read(start, out.length));
      return out;
    },
    close: async () => {},
  };
}

function decodedStream(path: string, kind: CompressionKind, size: number, maxRead: number): Omit<DecodedStream, 'head'> & { head?: DiskReader } {
  const window = new Uint8Array(maxRead);
  let start = 0; // decoded offset of window[0]
  let fill = 0;
  let chunks: AsyncGenerator<Uint8Array> | undefined;
  let pending: Uint8Array = new Uint8Array(0); // the rest of the decoder's latest chunk, not yet in the window
  const damaged = (message: string) => new DiskmintError('NOT_A_DISK', `${path}: the ${kind} stream is damaged (${message}); the device is incomplete`);

  /** Make the window hold [offset, end) (or up to the stream's end), moving it only when it must. */
  const fillTo = async (offset: number, end: number) => {
    if (offset < start) {
      await chunks?.return(undefined);
      [chunks, start, fill, pending] = [undefined, 0, 0, new Uint8Array(0)];
    }
    if (end > start + window.length) {
      // No room for [offset, end): keep only the bytes from `offset` on (a new chunk: none).
      const drop = Math.min(offset - start, fill);
      window.copyWithin(0, drop, fill);
      [start, fill] = [start + drop, fill - drop];
    }
    chunks ??= decompressedChunks(path, kind);
    while (start + fill < end) {
      if (pending.length === 0) {
        let next: IteratorResult<Uint8Array>;
        try {
          next = await chunks.next();
        } catch (err) {
          throw err instanceof DecodeError ? damaged(err.message) : err;
        }
        if (next.done) break;
        pending = next.value;
        continue;
      }
      const at = start + fill; // the decoded offset of pending[0]
      if (fill === 0 && at < offset) {
        const skip = Math.min(pending.length, offset - at); // bytes before the window's start: passed over
        pending = pending.subarray(skip);
        start += skip;
        continue;
      }
      const n = Math.min(pending.length, window.length - fill);
      window.set(pending.subarray(0, n), fill);
      fill += n;
      pending = pending.subarray(n);
    }
  };

  const view = async (offset: number, length: number) => {
    const from = Math.min(Math.max(0, offset), size);
    const n = Math.min(size - from, Math.max(0, length), maxRead);
    await fillTo(from, from + n);
    if (start + fill < from + n) throw damaged(`it ends at ${start + fill} bytes, short of the ${size} it records`);
    return window.subarray(from - start, from - start + n);
  };

  return {
    kind,
    size,
    view,
    async read(offset, length, into) {
      const from = Math.min(Math.max(0, offset), size);
      const n = Math.min(size - from, Math.max(0, length));
      const out = into && into.length >= n ? into.subarray(0, n) : new Uint8Array(n);
      for (let done = 0; done < n;) {
        const bytes = await view(from + done, n - done);
        out.set(bytes, done);
        done += bytes.length;
      }
      return out;
    },
    /** Stops the decoder (its worker threads, its buffers); a later read decodes again from the start. */
    async close() {
      await chunks?.return(undefined);
      [chunks, start, fill, pending] = [undefined, 0, 0, new Uint8Array(0)];
    },
  };
}
