/**
 * Editing an image in place. Raw images are written where they lie, one ordered write at a
 * time (so callers control crash safety). Containers (qcow2, VMDK, VHD, VHDX) collect the
 * edits as an overlay and are rewritten whole to a temp file that replaces the original only
 * when complete, with the same format and options: a crash leaves the old image untouched.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { DiskmintError } from '../model/errors.js';
import type { DiskReader } from '../model/disk-reader.js';
import { openDisk } from './open-disk.js';
import { VirtualDisk, type ExtentSource } from '../model/extents.js';
import { FileCache, readRunInto } from './run-reader.js';
import { writeImage } from './write-image.js';
import { writeFully } from './write-fully.js';
import type { ContainerFormat, ContainerReader } from '../containers/types.js';
import { lockImage, type ImageLock, type LockOptions } from './image-lock.js';

export interface ImageEditor {
  readonly path: string;
  readonly format: ContainerFormat;
  /** The image as it stands, pending edits included. */
  readonly disk: DiskReader;
  writeBytes(offset: number, data: Uint8Array): Promise<void>;
  /** Copy `length` bytes of `file` (from `fileOffset`, default 0) to `offset`, streaming. */
  writeFile(offset: number, file: string, length: number, fileOffset?: number): Promise<void>;
  /**
   * A write barrier: the writes issued so far reach the disk before any later one is issued
   * (raw: fdatasync of the handle; containers: nothing, since the commit rewrites the whole
   * image to a temp file that replaces the original only when complete, so no half of an edit
   * can ever be seen). Callers put one between the writes whose order matters for crash safety.
   */
  barrier(): Promise<void>;
  /** Make the edits durable (raw: fsync; containers: rewrite and rename). */
  commit(): Promise<void>;
  /** The edits pending so far, for `rollback` (raw images write at once: always 0). */
  mark(): number;
  /** Drop the edits pending since `mark` (containers; a raw image keeps what was written, as always). */
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

const COPY_CHUNK = 4 << 20;

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
  const { reader, format } = await openDisk(path);
  if (format === 'raw') {
    await reader.close();
    return rawEditor(path, await open(path, 'r+'), opts);
  }
  return containerEditor(path, reader, format, opts);
}

/** `e`, whose close also releases the image's lock. */
function releasingOnClose(e: ImageEditor, lock: ImageLock): ImageEditor {
  return { ...borrowed(e), commit: () => e.commit(), close: () => e.close().finally(() => lock.release()) };
}

/** The owner's editor, whose commit and close are the owner's. */
function borrowed(e: ImageEditor): ImageEditor {
  return {
    path: e.path,
    format: e.format,
    disk: e.disk,
    writeBytes: (o, d) => e.writeBytes(o, d),
    writeFile: (o, f, l, fo) => e.writeFile(o, f, l, fo),
    barrier: () => e.barrier(),
    commit: async () => {},
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
      await writeFully(handle, data, at);
    };
    return {
      path,
      format: 'raw' as const,
      disk,
      writeBytes: (offset, data) => pwrite(data, offset),
      async writeFile(offset, file, length, fileOffset = 0) {
        const src = await open(file, 'r');
        try {
          const buf = new Uint8Array(Math.min(COPY_CHUNK, length));
          for (let done = 0; done < length;) {
            const n = Math.min(buf.length, length - done);
            const { bytesRead } = await src.read(buf, 0, n, fileOffset + done);
            if (bytesRead !== n) throw new DiskmintError('INPUT', `${file} is shorter than expected`);
            await pwrite(buf.subarray(0, n), offset + done);
            done += n;
          }
        } finally {
          await src.close();
        }
      },
      async barrier() {
        opts.onBarrier?.(writes);
        await handle.datasync();
      },
      commit: () => handle.sync(),
      mark: () => 0,
      rollback: () => {},
      close: () => handle.close(),
    };
  });
}

interface Edit {
  offset: number;
  length: number;
  source: ExtentSource;
}

function containerEditor(path: string, base: ContainerReader, format: ContainerFormat, opts: EditorOptions): ImageEditor {
  const edits: Edit[] = [];
  const files = new FileCache();
  let writes = 0;
  const addEdit = (e: Edit) => {
    if (e.offset < 0 || e.offset + e.length > base.size)
      throw new DiskmintError('BAD_ARGUMENT', `write at ${e.offset} of ${e.length} bytes is outside the image`);
    opts.beforeWrite?.(++writes);
    edits.push(e);
  };
  const disk: DiskReader = {
    size: base.size,
    async read(offset, length) {
      const out = new Uint8Array(await base.read(offset, length));
      for (const e of edits) {
        const from = Math.max(offset, e.offset);
        const to = Math.min(offset + out.length, e.offset + e.length);
        if (from >= to) continue;
        const overlay = await overlayBytes(e, from - e.offset, to - from, files);
        out.set(overlay, from - offset);
      }
      return out;
    },
    close: async () => {},
  };
  return {
    path,
    format,
    disk,
    async writeBytes(offset, data) {
      addEdit({ offset, length: data.length, source: { kind: 'bytes', data: new Uint8Array(data) } });
    },
    async writeFile(offset, file, length, fileOffset = 0) {
      addEdit({ offset, length, source: { kind: 'file', path: file, offset: fileOffset } });
    },
    async barrier() {
      opts.onBarrier?.(writes);
    },
    async commit() {
      if (!edits.length) return;
      const merged = await mergeEdits(base, edits);
      await writeImage(merged, path, { format, options: rewriteOptions(base) });
      edits.length = 0;
    },
    mark: () => edits.length,
    rollback(mark) {
      edits.length = Math.min(edits.length, mark);
    },
    async close() {
      await files.closeAll();
      await base.close();
    },
  };
}

async function overlayBytes(e: Edit, skip: number, length: number, files: FileCache): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  const s = e.source;
  if (s.kind === 'bytes') out.set(s.data.subarray(skip, skip + length));
  else if (s.kind === 'file') await readRunInto({ offset: 0, length: e.length, kind: 'file', path: s.path, fileOffset: s.offset }, skip, out, files);
  return out;
}

/** The base image's data with the edits laid over it (later edits win). */
async function mergeEdits(base: ContainerReader, edits: Edit[]): Promise<VirtualDisk> {
  // Flatten edits into disjoint pieces, later edits covering earlier ones.
  let pieces: Edit[] = [];
  for (const e of edits) pieces = [...subtract(pieces, e.offset, e.offset + e.length), e];
  const disk = new VirtualDisk(base.size);
  for await (const r of base.allocatedRanges()) {
    const whole: Edit = { offset: r.offset, length: Math.min(r.length, base.size - r.offset), source: { kind: 'reader', reader: base, offset: r.offset } };
    const kept = pieces.reduce<Edit[]>((acc, p) => subtract(acc, p.offset, p.offset + p.length), [whole]);
    for (const part of kept) disk.place(part.offset, part.length, part.source);
  }
  for (const p of pieces) disk.place(p.offset, p.length, p.source);
  return disk;
}

/** Remove [from, to) from each piece, splitting pieces and shifting their sources. */
function subtract(pieces: Edit[], from: number, to: number): Edit[] {
  const out: Edit[] = [];
  for (const p of pieces) {
    const end = p.offset + p.length;
    if (to <= p.offset || from >= end) {
      out.push(p);
      continue;
    }
    if (from > p.offset) out.push(slice(p, p.offset, from));
    if (to < end) out.push(slice(p, to, end));
  }
  return out;
}

function slice(p: Edit, from: number, to: number): Edit {
  const skip = from - p.offset;
  const s = p.source;
  const source: ExtentSource = s.kind === 'bytes' ? { kind: 'bytes', data: s.data.subarray(skip, skip + (to - from)) } : { ...s, offset: s.offset + skip };
  return { offset: from, length: to - from, source };
}

/** Options that reproduce the container's own format choices when it is rewritten. */
function rewriteOptions(r: ContainerReader): Record<string, string> {
  const d = r.details();
  switch (r.format) {
    case 'qcow2':
      return { compat: String(d.compat ?? '1.1'), cluster_size: String(d.cluster_size ?? 65536) };
    case 'vmdk': {
      const sub = r.subformat ?? 'monolithicSparse';
      if (!['monolithicSparse', 'streamOptimized', 'monolithicFlat'].includes(sub)) {
        throw new DiskmintError('BAD_ARGUMENT', `editing a ${sub} VMDK in place is not supported; convert it to monolithicSparse first`);
      }
      return { subformat: sub, ...(d.adapterType ? { adapter_type: String(d.adapterType) } : {}) };
    }
    case 'vhd':
      return { subformat: r.subformat ?? 'dynamic', force_size: 'on' };
    case 'vhdx':
      return { subformat: r.subformat ?? 'dynamic', ...(d.blockSize ? { block_size: String(d.blockSize) } : {}) };
    default:
      return {};
  }
}
