/**
 * Reading the bytes behind data runs: bytes in memory, file ranges (through a cache of open
 * files) and ranges of other disk images. Writers of every format read through here.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { DiskmintError } from './errors.js';
import type { DataRun, VirtualDisk } from './extents.js';

export async function readFully(src: FileHandle, buf: Uint8Array, n: number, position: number, path: string): Promise<void> {
  for (let done = 0; done < n; ) {
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
    await readFully(await files.get(run.path), into, into.length, run.fileOffset + skip, run.path);
  } else {
    const bytes = await run.reader.read(run.readerOffset + skip, into.length);
    if (bytes.length !== into.length) throw new DiskmintError('INPUT', `the source image ended early at byte ${run.readerOffset + skip + bytes.length}`);
    into.set(bytes);
  }
}

/** Input files stay open while their extents are written. */
export class FileCache {
  private readonly handles = new Map<string, Promise<FileHandle>>();
  get(path: string): Promise<FileHandle> {
    let h = this.handles.get(path);
    if (!h) {
      h = open(path, 'r');
      this.handles.set(path, h);
    }
    return h;
  }
  async closeAll(): Promise<void> {
    for (const h of this.handles.values()) await (await h.catch(() => undefined))?.close();
  }
}

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
