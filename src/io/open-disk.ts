/**
 * Open any image diskmint reads as a sparse virtual disk: raw files and every container
 * format, detected by content (never by file name).
 */
import { stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, normalize, sep } from 'node:path';
import { DiskmintError, isSystemError } from '../model/errors.js';
import { FormatError } from '../../formats/common/errors.js';
import { openRawFile, type DiskReader } from '../model/disk-reader.js';
import { detectContainer } from '../containers/registry.js';
import type { ContainerFormat, ContainerReader } from '../containers/types.js';

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
    const handler = await detectContainer(file); // raw when no other format's magic is there
    const reader = await handler.open(file, { path, ...opts, openSibling: (name) => openSiblingFile(path, name) });
    return { reader: failingReadsNamePath(reader, path), format: handler.format };
  } catch (err) {
    await file.close();
    if (err instanceof FormatError) throw new DiskmintError('NOT_A_DISK', `${path}: ${err.format}: ${err.message}`);
    throw err;
  }
}

/**
 * A container whose headers were sound at open can still fail a later read: a grain, cluster or
 * block past the end of a truncated file, a table the open did not read. That is the image being
 * unusable, as at open (DiskmintError 'NOT_A_DISK', exit 2, naming the file), never a FormatError
 * that a partition-table or file-system probe would take for its own and report as a finding of
 * the disk's contents. An operating-system error (EIO) names the file too.
 */
function failingReadsNamePath(reader: ContainerReader, path: string): ContainerReader {
  const relabel = (err: unknown): unknown => {
    if (err instanceof FormatError) return new DiskmintError('NOT_A_DISK', `${path}: ${err.format}: ${err.message}`);
    if (isSystemError(err)) return new DiskmintError('IO', `reading ${path} failed: ${err.message}`);
    return err;
  };
  // Patched in place: the reader keeps whatever else it carries (a raw file's sourcePath, which
  // convert copies from directly).
  const read = reader.read.bind(reader);
  const allocatedRanges = reader.allocatedRanges.bind(reader);
  reader.read = async (offset, length, into) => {
    try {
      return await read(offset, length, into);
    } catch (err) {
      throw relabel(err);
    }
  };
  reader.allocatedRanges = async function* () {
    try {
      yield* allocatedRanges();
    } catch (err) {
      throw relabel(err);
    }
  };
  return reader;
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
