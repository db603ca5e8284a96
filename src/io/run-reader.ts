/**
 * Reading the bytes behind data runs: bytes in memory, file ranges (through a cache of open
 * files) and ranges of other disk images. Writers of every format read through here.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { closeSync, openSync, readSync } from 'node:fs';
import { DiskmintError } from '../model/errors.js';
import type { DataRun, VirtualDisk } from '../model/extents.js';
import { readInto } from '../model/disk-reader.js';

export async function readFully(src: FileHandle, buf: Uint8Array, n: number, position: number, path: string): Promise<void> {
  for (let done = 0; done < n;) {
    const { bytesRead } = await src.read(buf, done, n - done, position + done);
    if (bytesRead === 0) throw new DiskmintError('INPUT', `${path} is shorter than expected (it changed while building?)`);
    done += bytesRead;
  }
}

/** Fill `into` with the run's bytes starting `skip` bytes into the run. */
export async function readRunInto(run: DataRun, skip: number, into: Uint8Array, files: FileCache): Promise<void> {
  if (run.kind === 'bytes') {
    into.set(run.data.subarray(skip, skip + into.length));
  } else if (run.kind === 'file') {
    await files.withFile(run.path, (handle) => readFully(handle, into, into.length, run.fileOffset + skip, run.path));
  } else {
    const n = await readInto(run.reader, run.readerOffset + skip, into);
    if (n !== into.length) throw new DiskmintError('INPUT', `the source image ended early at byte ${run.readerOffset + skip + n}`);
  }
}

/**
 * Open input files, shared by the reads of their extents. At most MAX_IDLE_FILES stay open while
 * unused (the least recently used is closed first), so a tree of many thousand files never runs
 * into the process's open-file limit; a file in use is never closed under its reader.
 */
export class FileCache {
  private readonly entries = new Map<string, { handle: Promise<FileHandle>; users: number }>();

  async withFile<T>(path: string, use: (handle: FileHandle) => Promise<T>): Promise<T> {
    let entry = this.entries.get(path);
    if (entry)
      this.entries.delete(path); // re-inserted below: Map order is least recently used first
    else entry = { handle: open(path, 'r'), users: 0 };
    this.entries.set(path, entry);
    entry.users++;
    try {
      return await use(await entry.handle);
    } finally {
      entry.users--;
      this.closeIdle(MAX_IDLE_FILES);
    }
  }

  /** Descriptors for readSync, least recently used first (at most MAX_IDLE_FILES). */
  private readonly syncFds = new Map<string, number>();

  /**
   * Fill `into` from `position` of `path` with synchronous reads (for small reads, where a trip
   * through libuv's thread pool costs more than the read; the caller decides).
   */
  readSync(path: string, into: Uint8Array, position: number): void {
    let fd = this.syncFds.get(path);
    if (fd === undefined) {
      fd = openSync(path, 'r');
      if (this.syncFds.size >= MAX_IDLE_FILES) {
        const [oldest, oldFd] = this.syncFds.entries().next().value!;
        this.syncFds.delete(oldest);
        closeSync(oldFd);
      }
    } else this.syncFds.delete(path); // re-inserted below: most recently used last
    this.syncFds.set(path, fd);
    for (let done = 0; done < into.length;) {
      const n = readSync(fd, into, done, into.length - done, position + done);
      if (n === 0) throw new DiskmintError('INPUT', `${path} is shorter than expected (it changed while building?)`);
      done += n;
    }
  }

  /** Close unused files, oldest first, until at most `keep` stay open. */
  private closeIdle(keep: number): void {
    let open = this.entries.size;
    for (const [path, entry] of this.entries) {
      if (open <= keep) break;
      if (entry.users > 0) continue;
      this.entries.delete(path);
      open--;
      entry.handle.then((h) => h.close()).catch(() => {}); // a failed open was reported to its reader
    }
  }

  async closeAll(): Promise<void> {
    for (const fd of this.syncFds.values()) closeSync(fd);
    this.syncFds.clear();
    const handles = [...this.entries.values()].map((e) => e.handle);
    this.entries.clear();
    await Promise.all(handles.map((h) => h.then((fh) => fh.close()).catch(() => {})));
  }
}

/** Input files kept open between reads (descriptors are often limited to 1024 per process). */
const MAX_IDLE_FILES = 64;

/** Read a virtual disk's bytes in memory (tests and small images only). */
export async function readVirtualRange(disk: VirtualDisk, offset: number, length: number): Promise<Uint8Array> {
  const end = Math.min(disk.size, offset + length);
  const out = new Uint8Array(Math.max(0, end - offset));
  const files = new FileCache();
  try {
    for (const run of disk.runs(offset, end) as Iterable<DataRun>) {
      const at = run.offset - offset;
      await readRunInto(run, 0, out.subarray(at, at + run.length), files);
    }
  } finally {
    await files.closeAll();
  }
  return out;
}

/** A virtual disk read as a disk: its runs' bytes, zeros elsewhere (what writing it would give). */
export function virtualDiskReader(disk: VirtualDisk): {
  size: number;
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  allocatedRanges(): AsyncIterable<{ offset: number; length: number }>;
  close(): Promise<void>;
} {
  const files = new FileCache();
  return {
    size: disk.size,
    async read(offset, length, into) {
      const start = Math.min(Math.max(0, offset), disk.size);
      const n = Math.min(disk.size - start, Math.max(0, length));
      const out = into && into.length >= n ? into.subarray(0, n).fill(0) : new Uint8Array(n);
      for (const run of disk.runs(start, start + n)) {
        const from = Math.max(run.offset, start);
        const to = Math.min(run.offset + run.length, start + n);
        if (from < to) await readRunInto(run, from - run.offset, out.subarray(from - start, to - start), files);
      }
      return out;
    },
    async *allocatedRanges() {
      for (const run of disk.runs()) yield { offset: run.offset, length: run.length };
    },
    close: () => files.closeAll(),
  };
}
