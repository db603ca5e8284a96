/**
 * Editing an image in place. Raw images are written where they lie, one ordered write at a
 * time (so callers control crash safety). Containers (qcow2, VMDK, VHD, VHDX) are written in
 * place too, through their format's edit session (container-in-place.ts), so the file stays the
 * user's (symlink, hard links, owner, mode). A container that cannot take an edit in place is
 * rewritten to a temp file and renamed, keeping mode and owner (container-rewrite.ts), or the
 * edit is refused where a rewrite would lose something. Read-only files are refused, whatever
 * the format, and whoever runs diskmint (root too).
 */
import { open, realpath, stat, type FileHandle } from 'node:fs/promises';
import { DiskmintError } from '../model/errors.js';
import type { DiskReader } from '../model/disk-reader.js';
import { openDisk } from './open-disk.js';
import { writeFully } from './write-fully.js';
import type { ContainerFormat } from '../containers/types.js';
import { handlerFor } from '../containers/registry.js';
import { COMPRESSION_MAGIC_BYTES, detectCompression } from '../../formats/common/compression.js';
import { lockImage, type ImageLock, type LockOptions } from './image-lock.js';
import { copyFileChunks, editableFile, namingPath } from './editable-file.js';
import { inPlaceEditor } from './container-in-place.js';
import { rewritingEditor } from './container-rewrite.js';

export interface ImageEditor {
  readonly path: string;
  readonly format: ContainerFormat;
  /**
   * Writes land in the image's own file as they are issued (raw images, containers edited in
   * place): a failure part-way leaves what was written, so callers check before the first write.
   * false: the edits are pending until commit rewrites the container (rollback drops them).
   */
  readonly inPlace: boolean;
  /** The image as it stands, pending edits included. */
  readonly disk: DiskReader;
  writeBytes(offset: number, data: Uint8Array): Promise<void>;
  /** Copy `length` bytes of `file` (from `fileOffset`, default 0) to `offset`, streaming. */
  writeFile(offset: number, file: string, length: number, fileOffset?: number): Promise<void>;
  /**
   * A write barrier: the writes issued so far reach the disk before any later one is issued
   * (raw: fdatasync of the handle; containers in place: the session's flush, tables after data,
   * then fdatasync; rewritten containers: nothing, since the commit replaces the whole file at
   * once). Callers put one between the writes whose order matters for crash safety.
   */
  barrier(): Promise<void>;
  /**
   * Make the edits durable (raw and in place: fsync; rewritten containers: rewrite and rename).
   * `check` reads the result before it counts: in place after the fsync, for a rewrite on the
   * complete temp file before the rename (a check that throws leaves the old file as it was).
   */
  commit(check?: (disk: DiskReader) => Promise<void>): Promise<void>;
  /** The edits pending so far, for `rollback` (raw images write at once: always 0). */
  mark(): number;
  /** Drop the edits pending since `mark` (rewritten containers; in-place writes stay written). */
  rollback(mark: number): void;
  close(): Promise<void>;
}

export interface EditorOptions extends LockOptions {
  /** Called before each write with its 1-based number; tests throw here to stop an edit midway. */
  beforeWrite?: (n: number) => void;
  /** Called at each barrier with the number of writes issued before it (tests record the groups). */
  onBarrier?: (writes: number) => void;
  /**
   * An editor its owner commits and closes (an `Image` handle's): edits and reads go through it,
   * so several edits are committed once. Without it each edit opens, commits and closes its own.
   */
  editor?: ImageEditor;
}

export async function openImageEditor(path: string, opts: EditorOptions = {}): Promise<ImageEditor> {
  if (opts.editor) return borrowed(opts.editor);
  const lock = await lockImage(path, opts); // held until close (src/io/image-lock.ts)
  try {
    return releasingOnClose(await openLocked(path, opts), lock);
  } catch (err) {
    lock.release();
    throw err;
  }
}

async function openLocked(path: string, opts: EditorOptions): Promise<ImageEditor> {
  await refuseReadOnly(path);
  await refuseCompressed(path);
  const { reader, format } = await openDisk(path);
  if (format === 'raw') {
    await reader.close();
    return rawEditor(path, await open(path, 'r+'), opts);
  }
  const editing = handlerFor(format).editing;
  let handle: FileHandle | undefined;
  try {
    if (!editing) return await rewritingEditor(path, await realpath(path), reader, format, `${format} has no in-place edits`, opts);
    handle = await open(path, 'r+'); // follows a symlink: the target is edited, the link stays
    const file = await editableFile(handle, opts, path);
    const session = await editing.openForEdit(file, reader);
    if ('write' in session) return inPlaceEditor(path, format, handle, file, session, reader);
    await handle.close();
    if (!session.rewriteKeepsEverything) throw new DiskmintError('BAD_ARGUMENT', `${path} cannot be edited: ${session.refused}; nothing was changed`);
    return await rewritingEditor(path, await realpath(path), reader, format, session.refused, opts); // awaited: a refusal closes the reader below
  } catch (err) {
    await handle?.close().catch(() => {});
    await reader.close();
    throw err;
  }
}

/** A compressed image (a card image as it ships) has no place to write into: say how to make one. */
async function refuseCompressed(path: string): Promise<void> {
  const head = new Uint8Array(COMPRESSION_MAGIC_BYTES);
  const handle = await open(path, 'r').catch(() => undefined);
  if (!handle) return; // openDisk says why
  try {
    await handle.read(head, 0, head.length, 0);
  } finally {
    await handle.close();
  }
  const kind = detectCompression(head);
  if (!kind) return;
  const editable = path.replace(/\.(gz|xz|zst|bz2|zip)$/i, '') === path ? `${path}.img` : path.replace(/\.(gz|xz|zst|bz2|zip)$/i, '');
  throw new DiskmintError(
    'BAD_ARGUMENT',
    `${path} is ${kind}-compressed, and an edit needs to write into the image: make an editable copy with \`diskmint convert ${path} ${editable}\` and edit that; nothing was changed`,
  );
}

/**
 * A file no one may write (no write bit: 0444) is not edited, even by root, whom the kernel
 * would let: the mode says the user wants it kept as it is.
 */
async function refuseReadOnly(path: string): Promise<void> {
  const st = await stat(path).catch(() => undefined);
  if (st && st.isFile() && (st.mode & 0o222) === 0) {
    throw new DiskmintError('BAD_ARGUMENT', `${path} is read-only (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); nothing was changed`);
  }
}

/** `e`, whose close also releases the image's lock. */
function releasingOnClose(e: ImageEditor, lock: ImageLock): ImageEditor {
  return { ...borrowed(e), commit: (check) => e.commit(check), close: () => e.close().finally(() => lock.release()) };
}

/** The owner's editor, whose commit and close are the owner's. */
function borrowed(e: ImageEditor): ImageEditor {
  return {
    path: e.path,
    format: e.format,
    inPlace: e.inPlace,
    disk: e.disk,
    writeBytes: (o, d) => e.writeBytes(o, d),
    writeFile: (o, f, l, fo) => e.writeFile(o, f, l, fo),
    barrier: () => e.barrier(),
    commit: async (check) => check?.(e.disk), // the owner commits; a check reads what the owner holds
    mark: () => e.mark(),
    rollback: (m) => e.rollback(m),
    close: async () => {},
  };
}

/** The image to read: the owner's editor (pending edits included), else the file. */
export async function openForReading(path: string, opts: EditorOptions = {}): Promise<{ reader: DiskReader; format: ContainerFormat }> {
  if (opts.editor)
    return {
      reader: { size: opts.editor.disk.size, read: (o, l, into) => opts.editor!.disk.read(o, l, into), close: async () => {} },
      format: opts.editor.format,
    };
  return openDisk(path);
}

function rawEditor(path: string, handle: FileHandle, opts: EditorOptions): Promise<ImageEditor> {
  let writes = 0;
  return handle.stat().then(({ size }) => {
    const disk: DiskReader = {
      size,
      async read(offset, length) {
        const n = Math.max(0, Math.min(length, size - offset));
        const buf = new Uint8Array(n);
        for (let done = 0; done < n;) {
          const { bytesRead } = await handle.read(buf, done, n - done, offset + done);
          if (!bytesRead) break;
          done += bytesRead;
        }
        return buf;
      },
      close: async () => {},
    };
    const pwrite = async (data: Uint8Array, at: number) => {
      if (at < 0 || at + data.length > size) throw new DiskmintError('BAD_ARGUMENT', `write at ${at} of ${data.length} bytes is outside the image`);
      opts.beforeWrite?.(++writes);
      await namingPath(path, 'writing', () => writeFully(handle, data, at));
    };
    return {
      path,
      format: 'raw' as const,
      inPlace: true,
      disk,
      writeBytes: (offset, data) => pwrite(data, offset),
      writeFile: (offset, file, length, fileOffset = 0) => copyFileChunks(file, length, fileOffset, (done, chunk) => pwrite(chunk, offset + done)),
      async barrier() {
        opts.onBarrier?.(writes);
        await namingPath(path, 'syncing', () => handle.datasync());
      },
      async commit(check) {
        await namingPath(path, 'syncing', () => handle.sync());
        await check?.(disk);
      },
      mark: () => 0,
      rollback: () => {},
      close: () => handle.close(),
    };
  });
}
