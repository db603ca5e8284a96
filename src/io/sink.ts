/**
 * Where container writers put bytes. A file sink supports positional writes and leaves skipped
 * ranges as holes; a stream sink is forward-only and writes skipped ranges as zeros.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { DiskmintError } from '../model/errors.js';
import { nonZeroSpans } from './zero-blocks.js';
import { writeFully } from './write-fully.js';
import { directWrites } from './sink-direct.js';
import { pageAlignedBuffer } from './aligned-memory.js';

export interface ByteSink {
  /** True when `pwrite` works (a regular file); false for pipes. */
  readonly seekable: boolean;
  /** A file sink's descriptor, for copies the kernel makes straight into the file (copy_file_range). */
  readonly fd?: number;
  /** Bytes emitted so far (the current end for forward writing). */
  readonly position: number;
  /**
   * Append at `position`. A stream sink may keep a reference to `data` until it is flushed: don't
   * reuse it. A file sink (`seekable`) is done with it once this resolves: the caller may reuse it.
   */
  write(data: Uint8Array): Promise<void>;
  /**
   * Append `parts` back to back at `position`, as they are: no zero scan (the caller has left its
   * zero pieces out with `skip`). A file sink writes them with one call (with any small writes
   * pending just before them) and is done with them once this resolves; a stream sink may keep them.
   */
  writeParts(parts: readonly Uint8Array[]): Promise<void>;
  /** Advance `n` bytes: a hole in a file, zeros on a pipe. */
  skip(n: number): Promise<void>;
  /** Write at an absolute position (seekable sinks only); does not move `position` unless it writes past it. */
  pwrite(data: Uint8Array, position: number): Promise<void>;
  /** Make the file exactly `size` bytes (files); pipes: pad with zeros to `size`. */
  finish(size?: number): Promise<void>;
}

/** Sequential small writes are gathered up to this size before they reach the file. */
const COALESCE_BYTES = 4 << 20;
/** Non-zero spans at least this long go to the file straight from the caller's buffer (no copy). */
const DIRECT_BYTES = 256 << 10;

/**
 * A sink over a new (empty) file: zero runs are left as holes, small forward writes are
 * coalesced, and large ones are written from the caller's buffer (resolved once that buffer is
 * no longer needed, so the caller may reuse it then). Large writes go past the page cache
 * (O_DIRECT, sink-direct.ts) where the file system allows, some still on their way when they
 * resolve: `finish` waits for them (and throws their failure). `directBytes` counts them.
 */
export function fileSink(handle: FileHandle): ByteSink & { readonly directBytes: number } {
  let position = 0;
  // Large writes go to the device past the page cache where the file system allows (sink-direct.ts).
  const direct = directWrites(handle.fd);
  const buffered = (parts: readonly Uint8Array[], at: number) => writeAllParts(handle, parts, at);
  let end = 0;
  // Write-behind buffer for small forward writes: many 64 KiB clusters become one 4 MiB write.
  // Page-aligned, so when the batch starts on a page it goes to the device without a staging copy.
  const pending = pageAlignedBuffer(COALESCE_BYTES);
  let pendingAt = 0;
  let pendingLength = 0;
  const flush = async () => {
    if (!pendingLength) return;
    await direct.write([pending.subarray(0, pendingLength)], pendingAt, buffered);
    pendingLength = 0;
  };
  /** Put non-zero `bytes` at file offset `at`. */
  const emit = async (bytes: Uint8Array, at: number) => {
    if (bytes.length >= DIRECT_BYTES) return emitParts([bytes], at);
    if (pendingLength && (pendingAt + pendingLength !== at || pendingLength + bytes.length > COALESCE_BYTES)) await flush();
    if (!pendingLength) pendingAt = at;
    pending.set(bytes, pendingLength);
    pendingLength += bytes.length;
  };
  /** Put `parts` (back to back, at least DIRECT_BYTES in all) at `at`, after the pending bytes when they end there: one call. */
  const emitParts = async (parts: readonly Uint8Array[], at: number) => {
    if (pendingLength && pendingAt + pendingLength === at) {
      const before = pending.subarray(0, pendingLength);
      pendingLength = 0;
      await direct.write([before, ...parts], pendingAt, buffered);
    } else {
      await flush();
      await direct.write(parts, at, buffered);
    }
  };
  return {
    seekable: true,
    fd: handle.fd,
    /** Bytes written past the page cache (O_DIRECT) so far. */
    get directBytes() {
      return direct.directBytes;
    },
    get position() {
      return position;
    },
    async write(data) {
      // The file is new, so all-zero 64 KiB pieces can stay holes: the output is sparse
      // wherever the container stores zeros (fixed VHD, VHDX blocks, flat extents).
      for (const [start, stop] of nonZeroSpans(data, { shortTailIsData: true })) await emit(data.subarray(start, stop), position + start);
      position += data.length;
      end = Math.max(end, position);
    },
    async writeParts(parts) {
      let bytes = 0;
      for (const p of parts) bytes += p.length;
      if (bytes >= DIRECT_BYTES) await emitParts(parts, position);
      else for (let at = position, i = 0; i < parts.length; at += parts[i++].length) if (parts[i].length) await emit(parts[i], at);
      position += bytes;
      end = Math.max(end, position);
    },
    async skip(n) {
      position += n; // pending bytes are flushed when the next write does not follow them
    },
    async pwrite(data, at) {
      await flush();
      // Positioned writes may run concurrently (the raw writer's loops): each large one gets its own staging buffer.
      if (data.length >= DIRECT_BYTES) await direct.write([data], at, buffered);
      else await writeFully(handle, data, at);
      end = Math.max(end, at + data.length);
    },
    async finish(size) {
      await flush();
      await direct.drain();
      await handle.truncate(size ?? Math.max(end, position));
    },
  };
}

/** At most this many buffers per writev (Linux's IOV_MAX is 1024). */
const MAX_PARTS = 1024;

/** pwritev `parts` back to back from `at` until every byte is written (a call may take fewer). */
async function writeAllParts(handle: FileHandle, parts: readonly Uint8Array[], at: number): Promise<void> {
  if (parts.length === 1) return writeFully(handle, parts[0], at);
  let left = parts.filter((p) => p.length);
  while (left.length) {
    const batch = left.slice(0, MAX_PARTS);
    let { bytesWritten } = await handle.writev(batch, at);
    at += bytesWritten;
    // Drop what was written: whole parts, then the front of a part cut short.
    let i = 0;
    for (; i < batch.length && bytesWritten >= batch[i].length; i++) bytesWritten -= batch[i].length;
    left = left.slice(i);
    if (bytesWritten) left[0] = left[0].subarray(bytesWritten);
  }
}

const ZEROS = new Uint8Array(1 << 20);

export function streamSink(out: Writable): ByteSink {
  let position = 0;
  const push = (data: Uint8Array) =>
    new Promise<void>((resolve, reject) => {
      if (out.write(data)) return resolve();
      const onDrain = () => {
        out.off('error', onError);
        resolve();
      };
      const onError = (err: Error) => {
        out.off('drain', onDrain);
        reject(err);
      };
      out.once('drain', onDrain);
      out.once('error', onError);
    });
  const sink: ByteSink = {
    seekable: false,
    get position() {
      return position;
    },
    async write(data) {
      await push(data);
      position += data.length;
    },
    async writeParts(parts) {
      for (const p of parts) await sink.write(p);
    },
    async skip(n) {
      for (let left = n; left > 0;) {
        const k = Math.min(left, ZEROS.length);
        await push(ZEROS.subarray(0, k));
        left -= k;
      }
      position += n;
    },
    async pwrite() {
      throw new DiskmintError('BAD_ARGUMENT', 'this output needs a seekable file, not a pipe');
    },
    async finish(size) {
      if (size !== undefined && size > position) await sink.skip(size - position);
    },
  };
  return sink;
}
