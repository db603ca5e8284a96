import { open, type FileHandle } from 'node:fs/promises';
import { readSync } from 'node:fs';

/**
 * Random access to a disk image's virtual bytes. Containers (qcow2, VMDK, ...) and raw files
 * both appear through this one interface, so inspection and verification never care which.
 * Reads past the end return only the bytes that exist (a short read), never throw.
 */
export interface DiskReader {
  /** Virtual size in bytes. */
  readonly size: number;
  /**
   * Read up to `length` bytes at `offset`; shorter only at the end of the disk. Given `into`
   * (at least that long), a reader may read into it and return a view of it, sparing a buffer
   * and a copy; it may also ignore it. Callers use readInto() rather than look.
   */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

/**
 * Read `into.length` bytes at `offset` into `into` (through the reader's own `into` support
 * when it has it); returns how many bytes the disk had there (fewer only at its end).
 */
export async function readInto(reader: DiskReader, offset: number, into: Uint8Array): Promise<number> {
  const got = await reader.read(offset, into.length, into);
  if (got.buffer !== into.buffer || got.byteOffset !== into.byteOffset) into.set(got);
  return got.length;
}

/** A disk held in memory (tests, small nested images). */
export function memoryDiskReader(bytes: Uint8Array): DiskReader {
  return {
    size: bytes.length,
    async read(offset, length) {
      const start = Math.min(Math.max(0, offset), bytes.length);
      return bytes.slice(start, Math.min(bytes.length, start + Math.max(0, length)));
    },
    async close() {},
  };
}

export interface FileReadOptions {
  /**
   * Read with readSync on this thread rather than on libuv's thread pool. For a loop that waits
   * on every read anyway (compare, as qemu-img compare reads), a read from the page cache is then
   * one copy, without two thread hops and four threads copying at once on a 2-core machine:
   * `compare` of a 4 GiB raw against its qcow2 (1 GiB of data) took 0.19-0.25 s of system time
   * instead of 0.43-0.68 s (qemu-img 0.20-0.26 s). Never where other work should go on meanwhile.
   */
  syncReads?: boolean;
}

/** A raw image file. */
export async function openRawFile(path: string, opts: FileReadOptions = {}): Promise<DiskReader> {
  const handle: FileHandle = await open(path, 'r');
  const { size } = await handle.stat();
  return fileHandleReader(handle, size, () => handle.close(), opts);
}

/** The first `size` bytes of an open file as a disk; `close` is the caller's (the handle's own close by default). */
export function fileHandleReader(handle: FileHandle, size: number, close: () => Promise<void> = () => handle.close(), opts: FileReadOptions = {}): DiskReader {
  const readAt = opts.syncReads
    ? async (buf: Uint8Array, at: number, n: number, position: number) => readSync(handle.fd, buf, at, n, position)
    : async (buf: Uint8Array, at: number, n: number, position: number) => (await handle.read(buf, at, n, position)).bytesRead;
  return {
    size,
    async read(offset, length, into) {
      const start = Math.min(Math.max(0, offset), size);
      const n = Math.min(size - start, Math.max(0, length));
      const buf = into && into.length >= n ? into.subarray(0, n) : new Uint8Array(n);
      let done = 0;
      while (done < n) {
        const bytesRead = await readAt(buf, done, n - done, start + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done === n ? buf : buf.subarray(0, done);
    },
    close,
  };
}

/** A window onto part of another disk (a partition, a slice). */
export function sliceDiskReader(parent: DiskReader, offset: number, size: number): DiskReader {
  const end = Math.min(parent.size, offset + size);
  const length = Math.max(0, end - offset);
  return {
    size: length,
    async read(off, len, into) {
      const start = Math.min(Math.max(0, off), length);
      return parent.read(offset + start, Math.min(len, length - start), into);
    },
    async close() {},
  };
}
