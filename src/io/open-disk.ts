/**
 * Open any image diskmint reads as a sparse virtual disk: raw files and every container
 * format, detected by content (never by file name).
 */
import { open, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, normalize, sep } from 'node:path';
import { DiskmintError } from '../model/errors.js';
import { FormatError } from '../../formats/common/errors.js';
import { openRawFile, readInto, type DiskReader } from '../model/disk-reader.js';
import { detectContainer } from '../containers/registry.js';
import type { ContainerFormat, ContainerReader } from '../containers/types.js';
import { nonZeroSpans } from './zero-blocks.js';
import { mapOrdered } from './concurrency.js';

export interface OpenedDisk {
  reader: ContainerReader;
  /** Container format detected from content. */
  format: ContainerFormat;
}

export interface OpenDiskOptions {
  /** Allow qcow2 backing files / VMDK parents (refused by default). */
  allowBacking?: boolean;
  /** Allow qcow2 external data files (refused by default). */
  allowExternalData?: boolean;
}

export async function openDisk(path: string, opts: OpenDiskOptions = {}): Promise<OpenedDisk> {
  let st;
  try {
    st = await stat(path);
  } catch {
    throw new DiskmintError('NOT_A_DISK', `${path}: no such file`);
  }
  if (!st.isFile() && !st.isBlockDevice()) throw new DiskmintError('NOT_A_DISK', `${path} is not a file or block device`);
  let file: DiskReader;
  try {
    file = await openRawFile(path);
  } catch (err) {
    throw new DiskmintError('NOT_A_DISK', `${path} cannot be read: ${(err as Error).message}`);
  }
  if (file.size === 0) {
    await file.close();
    throw new DiskmintError('NOT_A_DISK', `${path} is empty`);
  }
  try {
    const handler = await detectContainer(file);
    if (!handler) return { reader: rawContainer(file, path), format: 'raw' };
    const reader = await handler.open(file, { path, ...opts, openSibling: (name) => openSiblingFile(path, name) });
    return { reader, format: handler.format };
  } catch (err) {
    await file.close();
    if (err instanceof FormatError) throw new DiskmintError('NOT_A_DISK', `${path}: ${err.format}: ${err.message}`);
    throw err;
  }
}

/** A file named by a descriptor, inside the descriptor's own folder only. */
export async function openSiblingFile(imagePath: string, name: string): Promise<DiskReader> {
  const norm = normalize(name);
  if (isAbsolute(name) || norm.split(sep).includes('..') || name.includes('\0')) {
    throw new FormatError('BAD_VALUE', `extent file "${name}" is outside the folder of ${basename(imagePath)}; only files beside it are opened`, 'vmdk');
  }
  const path = join(dirname(imagePath), norm);
  const st = await stat(path).catch(() => undefined);
  if (st && !st.isFile() && !st.isBlockDevice()) {
    throw new FormatError('BAD_VALUE', `extent file "${name}" named by ${basename(imagePath)} is not a file`, 'vmdk');
  }
  try {
    return await openRawFile(path);
  } catch {
    throw new FormatError('BAD_VALUE', `extent file "${name}" named by ${basename(imagePath)} cannot be opened`, 'vmdk');
  }
}

const SCAN_CHUNK = 4 << 20;
const SCAN_DEPTH = 4;

/** A raw file as a container: allocated ranges come from scanning for non-zero 64 KiB blocks (zero-blocks.ts). */
export function rawContainer(file: DiskReader, path?: string): ContainerReader & { sourcePath?: string } {
  return {
    format: 'raw',
    sourcePath: path,
    size: file.size,
    read: (o, n, into) => file.read(o, n, into),
    close: () => file.close(),
    details: () => ({}),
    async *allocatedRanges() {
      let span: { offset: number; length: number } | undefined; // the range found so far, joined across chunks
      const handle = path ? await open(path, 'r') : undefined;
      // Scan with a few reads in flight (holes still have to be read: Node has no SEEK_DATA).
      const offsets = function* () {
        for (let at = 0; at < file.size; at += SCAN_CHUNK) yield at;
      };
      // Reused buffers: a chunk is released before the read SCAN_DEPTH chunks later starts
      // (mapOrdered starts it when the next chunk is asked for), so one spare is plenty. Fresh
      // memory costs a page fault per 4 KiB, more than the read itself on some VMs.
      const ring: Uint8Array[] = [];
      let chunkNumber = 0;
      const readChunk = async (at: number) => {
        const n = Math.min(SCAN_CHUNK, file.size - at);
        const slot = chunkNumber++ % (SCAN_DEPTH + 1);
        const buf = (ring[slot] ??= new Uint8Array(SCAN_CHUNK)).subarray(0, n);
        if (!handle) return { at, chunk: buf.subarray(0, await readInto(file, at, buf)) };
        const { bytesRead } = await handle.read(buf, 0, n, at);
        return { at, chunk: buf.subarray(0, bytesRead) };
      };
      try {
        for await (const { at, chunk } of mapOrdered(offsets(), SCAN_DEPTH, readChunk)) {
          for (const [start, end] of nonZeroSpans(chunk)) {
            if (span && span.offset + span.length === at + start) span.length += end - start;
            else {
              if (span) yield span;
              span = { offset: at + start, length: end - start };
            }
          }
        }
      } finally {
        await handle?.close();
      }
      if (span) yield span;
    },
  };
}
