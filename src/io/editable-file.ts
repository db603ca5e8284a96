/**
 * A container's own file opened for writing in place (containers/types.ts `EditableFile`):
 * positional reads and writes, and fdatasync barriers. Every write passes the hooks, so tests
 * count writes, stop an edit at write N, and record the groups between barriers.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { EditableFile } from '../containers/types.js';
import { fileHandleReader } from '../model/disk-reader.js';
import { writeFully } from './write-fully.js';
import { DiskmintError, isSystemError } from '../model/errors.js';

export interface EditHooks {
  /** Called before each write with its 1-based number; tests throw here to stop an edit midway. */
  beforeWrite?: (n: number) => void;
  /** Called at each barrier with the number of writes issued before it (tests record the groups). */
  onBarrier?: (writes: number) => void;
}

/**
 * `handle` (opened r+) as an EditableFile; closing the handle stays the caller's. A system error
 * (EIO, ENOSPC) comes out as DiskmintError 'IO' naming `path`.
 */
export async function editableFile(handle: FileHandle, hooks: EditHooks = {}, path = 'the image'): Promise<EditableFile & { writes(): number }> {
  let size = (await handle.stat()).size;
  let writes = 0;
  return {
    get size() {
      return size;
    },
    read: (offset, length, into) => fileHandleReader(handle, size).read(offset, length, into),
    async write(offset, data) {
      hooks.beforeWrite?.(++writes);
      await namingPath(path, 'writing', () => writeFully(handle, data, offset));
      size = Math.max(size, offset + data.length);
    },
    async barrier() {
      hooks.onBarrier?.(writes);
      await namingPath(path, 'syncing', () => handle.datasync());
    },
    close: async () => {},
    writes: () => writes,
  };
}

const COPY_CHUNK = 4 << 20;

/**
 * `length` bytes of `file` from `fileOffset`, handed to `write` 4 MiB at a time with their offset
 * from the start (one reused buffer: `write` is done with it when it resolves). A file shorter
 * than that is an INPUT error naming it.
 */
export async function copyFileChunks(
  file: string,
  length: number,
  fileOffset: number,
  write: (done: number, chunk: Uint8Array) => Promise<void>,
): Promise<void> {
  const src = await open(file, 'r');
  try {
    const buf = new Uint8Array(Math.min(COPY_CHUNK, length));
    for (let done = 0; done < length;) {
      const n = Math.min(buf.length, length - done);
      const { bytesRead } = await src.read(buf, 0, n, fileOffset + done);
      if (bytesRead !== n) throw new DiskmintError('INPUT', `${file} is shorter than expected`);
      await write(done, buf.subarray(0, n));
      done += n;
    }
  } finally {
    await src.close();
  }
}

/** Run `io`; a system error from it becomes DiskmintError 'IO' "writing PATH failed: ...". */
export async function namingPath<T>(path: string, doing: string, io: () => Promise<T>): Promise<T> {
  try {
    return await io();
  } catch (err) {
    if (isSystemError(err)) throw new DiskmintError('IO', `${doing} ${path} failed: ${err.message}`);
    throw err;
  }
}

/** Open `path` for in-place edits (tests and tools; the image editor passes its own handle). */
export async function openEditableFile(path: string, hooks: EditHooks = {}): Promise<{ file: EditableFile; close: () => Promise<void> }> {
  const handle = await open(path, 'r+');
  return { file: await editableFile(handle, hooks, path), close: () => handle.close() };
}
