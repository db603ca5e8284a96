/**
 * Where container writers put bytes. A file sink supports positional writes and leaves skipped
 * ranges as holes; a stream sink is forward-only and writes skipped ranges as zeros.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { DiskmintError } from '../errors.js';
import { isAllZero } from './blocks.js';

export interface ByteSink {
  /** True when `pwrite` works (a regular file); false for pipes. */
  readonly seekable: boolean;
  /** Bytes emitted so far (the current end for forward writing). */
  readonly position: number;
  /**
   * Append at `position`. A stream sink may keep a reference to `data` until it is flushed: don't
   * reuse it. A file sink (`seekable`) copies it: the caller may reuse it once this resolves.
   */
  write(data: Uint8Array): Promise<void>;
  /** Advance `n` bytes: a hole in a file, zeros on a pipe. */
  skip(n: number): Promise<void>;
  /** Write at an absolute position (seekable sinks only); does not move `position` unless it writes past it. */
  pwrite(data: Uint8Array, position: number): Promise<void>;
  /** Make the file exactly `size` bytes (files); pipes: pad with zeros to `size`. */
  finish(size?: number): Promise<void>;
}

/** Sequential writes are gathered up to this size before they reach the file. */
const COALESCE_BYTES = 4 << 20;
/** Granularity at which zeros written forward become holes. */
const HOLE_BYTES = 64 << 10;

/** A sink over a new (empty) file: forward writes are coalesced, and zero runs left as holes. */
export function fileSink(handle: FileHandle): ByteSink {
  let position = 0;
  let end = 0;
  // Write-behind buffer for forward writes: many 64 KiB clusters become one 4 MiB write.
  const pending = Buffer.allocUnsafe(COALESCE_BYTES);
  let pendingAt = 0;
  let pendingLength = 0;
  const flush = async () => {
    if (!pendingLength) return;
    await writeFully(handle, pending.subarray(0, pendingLength), pendingAt);
    pendingLength = 0;
  };
  return {
    seekable: true,
    get position() {
      return position;
    },
    async write(data) {
      // The file is new, so all-zero HOLE_BYTES pieces can stay holes: the output is sparse
      // wherever the container stores zeros (fixed VHD, VHDX blocks, flat extents).
      for (let at = 0; at < data.length; at += HOLE_BYTES) {
        const piece = data.subarray(at, Math.min(data.length, at + HOLE_BYTES));
        if (piece.length === HOLE_BYTES && isAllZero(piece)) {
          await flush();
        } else {
          if (pendingLength && (pendingAt + pendingLength !== position || pendingLength + piece.length > COALESCE_BYTES)) await flush();
          if (!pendingLength) pendingAt = position;
          pending.set(piece, pendingLength);
          pendingLength += piece.length;
        }
        position += piece.length;
      }
      end = Math.max(end, position);
    },
    async skip(n) {
      await flush();
      position += n;
    },
    async pwrite(data, at) {
      await flush();
      await writeFully(handle, data, at);
      end = Math.max(end, at + data.length);
    },
    async finish(size) {
      await flush();
      await handle.truncate(size ?? Math.max(end, position));
    },
  };
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
    async skip(n) {
      for (let left = n; left > 0; ) {
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

/** pwrite until every byte is written. */
export async function writeFully(handle: FileHandle, data: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}
