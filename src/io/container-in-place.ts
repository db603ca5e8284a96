/**
 * Containers edited in place: each write goes into the container's own file through the
 * format's edit session (containers/types.ts `ContainerEditSession`: qcow2 clusters and
 * refcounts, VMDK grain tables, VHD/VHDX BAT). The file stays the user's: same inode, so a
 * symlink, hard links, owner, mode and anything else the file carries are kept.
 *
 * Crash order: a write puts data where the format allows at once; the table updates that make
 * it visible wait for the session's flush, which issues them after a barrier (data and new
 * tables, barrier, table entries, barrier, headers, barrier: each format's edit.ts writes its
 * order down). The editor's barrier() is such a flush, so the caller's own order (a GPT's
 * non-good copy, barrier, good copy) holds in a container exactly as in a raw image.
 */
import type { FileHandle } from 'node:fs/promises';
import { DiskmintError } from '../model/errors.js';
import type { DiskReader } from '../model/disk-reader.js';
import type { ContainerEditSession, ContainerFormat, ContainerReader, EditableFile } from '../containers/types.js';
import { openDisk } from './open-disk.js';
import { copyFileChunks, namingPath } from './editable-file.js';
import type { ImageEditor } from './image-editor.js';

/**
 * An editor over `session`, which writes into `file` (the file `handle` holds open); `reader`
 * reads the container as it was opened.
 */
export function inPlaceEditor(
  path: string,
  format: ContainerFormat,
  handle: FileHandle,
  file: EditableFile,
  session: ContainerEditSession,
  reader: ContainerReader,
): ImageEditor {
  const size = reader.size;
  let current: ContainerReader = reader;
  let unflushed = false;
  /** Make every write visible, then read through a fresh reader (the old one caches tables). */
  const flush = async () => {
    if (!unflushed) return;
    await session.flush();
    unflushed = false;
    const reopened = await openDisk(path);
    await current.close();
    current = reopened.reader;
  };
  const write = async (offset: number, data: Uint8Array) => {
    if (offset < 0 || offset + data.length > size) throw new DiskmintError('BAD_ARGUMENT', `write at ${offset} of ${data.length} bytes is outside the image`);
    unflushed = true;
    await session.write(offset, data);
  };
  const disk: DiskReader = {
    size,
    async read(offset, length, into) {
      await flush(); // a read sees every write, from the file itself (read-back reads the medium)
      return current.read(offset, length, into);
    },
    close: async () => {},
  };
  return {
    path,
    format,
    inPlace: true,
    disk,
    writeBytes: write,
    writeFile: (offset, file, length, fileOffset = 0) => copyFileChunks(file, length, fileOffset, (done, chunk) => write(offset + done, chunk)),
    async barrier() {
      await flush();
      await file.barrier(); // writes into already-allocated space have no tables to flush: still ordered
    },
    async commit(check) {
      await flush();
      await namingPath(path, 'syncing', () => handle.sync());
      await check?.(disk);
    },
    mark: () => 0,
    rollback: () => {}, // written in place, as a raw image is: callers check before the first write
    async close() {
      await current.close();
      await handle.close();
    },
  };
}
