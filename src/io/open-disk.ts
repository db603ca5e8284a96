/**
 * Open any image diskmint reads as a sparse virtual disk: raw files and every container
 * format, detected by content (never by file name).
 */
import { realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, normalize, sep } from 'node:path';
import { DiskmintError, isSystemError } from '../model/errors.js';
import { FormatError } from '../../formats/common/errors.js';
import { openRawFile, type DiskReader, type FileReadOptions } from '../model/disk-reader.js';
import { detectContainer } from '../containers/registry.js';
import { COMPRESSION_MAGIC_BYTES, detectCompression, type CompressionKind } from '../../formats/common/compression.js';
import { spoolDecompressed, type SpooledImage } from './compressed/spool.js';
import { openSeekableCompressed } from './compressed/seekable.js';
import type { ContainerFormat, ContainerReader } from '../containers/types.js';

export interface OpenedDisk {
  reader: ContainerReader;
  /** Container format detected from content. */
  format: ContainerFormat;
  /** The compression the file came in (decompressed to a temp file to be read), if any. */
  compression?: CompressionKind;
}

export interface OpenDiskOptions extends FileReadOptions {
  /** Allow qcow2 backing files / VMDK parents (refused by default). */
  allowBacking?: boolean;
  /** Allow qcow2 external data files (refused by default). */
  allowExternalData?: boolean;
  /**
   * Decode a compressed image whole before anything reads it (flash: damage is found before the
   * first write), never unit by unit as it is read.
   */
  decodeWhole?: boolean;
}

/** Backing chains deeper than this are refused (qemu has no fixed bound; real chains are a few images). */
export const MAX_BACKING_DEPTH = 16;

export async function openDisk(path: string, opts: OpenDiskOptions = {}): Promise<OpenedDisk> {
  return openInChain(path, opts, []);
}

/** qemu's driver names for backing_format, as diskmint's format names. */
const BACKING_FORMATS: Record<string, ContainerFormat> = { raw: 'raw', qcow2: 'qcow2', vmdk: 'vmdk', vpc: 'vhd', vhdx: 'vhdx' };

/** Open `path`, one image of a backing chain whose images above it are `chain` (real paths, top first). */
async function openInChain(path: string, opts: OpenDiskOptions, chain: readonly string[]): Promise<OpenedDisk> {
  let st;
  try {
    st = await stat(path);
  } catch {
    throw new DiskmintError('NOT_A_DISK', `${path}: no such file`);
  }
  if (!st.isFile() && !st.isBlockDevice()) throw new DiskmintError('NOT_A_DISK', `${path} is not a file or block device`);
  let file: DiskReader;
  try {
    file = await openRawFile(path, { syncReads: opts.syncReads });
  } catch (err) {
    throw new DiskmintError('NOT_A_DISK', `${path} cannot be read: ${(err as Error).message}`);
  }
  if (file.size === 0) {
    await file.close();
    throw new DiskmintError('NOT_A_DISK', `${path} is empty`);
  }
  const compression = detectCompression(await file.read(0, COMPRESSION_MAGIC_BYTES));
  if (compression) {
    // A compressed image (a card image as it ships): read unit by unit where its blocks or frames
    // can be decoded alone (compressed/seekable.ts), else decompressed once into a sparse temp
    // file (compressed/spool.ts); then opened as whatever it holds. Backing files are not followed.
    await file.close();
    if (chain.length) throw new DiskmintError('NOT_A_DISK', `${path}: a ${compression}-compressed image cannot be a backing file`);
    const seekable = opts.decodeWhole ? undefined : await openSeekableCompressed(path, compression);
    if (seekable) return openDecompressed(path, { file: seekable, kind: compression, spans: () => seekable.spooled() }, opts);
    const spooled = await spoolDecompressed(path, compression);
    return openDecompressed(path, { file: spooled.file, kind: compression, spans: async () => spooled }, opts);
  }
  try {
    const handler = await detectContainer(file); // raw when no other format's magic is there
    const real = await realpath(path);
    const reader = await handler.open(file, {
      path,
      ...opts,
      openSibling: (name) => openSiblingFile(path, name, { syncReads: opts.syncReads }),
      openBacking: opts.allowBacking ? (name, format) => openBackingFile(path, name, format, opts, [...chain, real]) : undefined,
    });
    return { reader: failingReadsNamePath(reader, path), format: handler.format };
  } catch (err) {
    await file.close();
    if (err instanceof FormatError) throw new DiskmintError('NOT_A_DISK', `${path}: ${err.format}: ${err.message}`);
    throw err;
  }
}

/**
 * A decompressed image opened as the container it holds. `spans` gives a raw disk's data spans,
 * noted while decoding it whole into a temp file (a spooled image has them already; a seekable
 * one decodes only when they are first asked for, and its reads go to the temp file from then on).
 */
async function openDecompressed(
  path: string,
  image: { file: DiskReader; kind: CompressionKind; spans: () => Promise<SpooledImage> },
  opts: OpenDiskOptions,
): Promise<OpenedDisk> {
  const { file, kind } = image;
  try {
    const handler = await detectContainer(file);
    const inner =
      handler.format === 'raw'
        ? knownSpansRaw(file, image.spans)
        : await handler.open(file, {
            path,
            ...opts,
            allowBacking: false,
            openSibling: async (name) => {
              throw new FormatError('BAD_VALUE', `a ${kind}-compressed image cannot name extent file "${name}"`, handler.format);
            },
          });
    const details = inner.details.bind(inner);
    inner.details = () => ({ ...details(), compression: kind });
    return { reader: failingReadsNamePath(inner, path), format: handler.format, compression: kind };
  } catch (err) {
    await file.close();
    if (err instanceof FormatError) throw new DiskmintError('NOT_A_DISK', `${path}: ${kind}: ${err.format}: ${err.message}`);
    throw err;
  }
}

/**
 * A raw disk whose data spans come from decoding it whole once (`spans`, on the first call: a
 * spooled image has them already; a seekable one spools then, and reads its temp file from
 * then on). No scan of its own.
 */
function knownSpansRaw(file: DiskReader, spans: () => Promise<SpooledImage>): ContainerReader {
  let spooled: Promise<SpooledImage> | undefined;
  return {
    format: 'raw',
    size: file.size,
    read: (o, n, into) => file.read(o, n, into),
    close: () => file.close(),
    details: () => ({}),
    async *allocatedRanges() {
      yield* (await (spooled ??= spans())).spans.map((r) => ({ ...r }));
    },
  };
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

/**
 * The backing file `name` of the image at `imagePath` (relative names against its folder, as
 * qemu-img resolves them), opened as its own image, its own backing chain included.
 */
async function openBackingFile(imagePath: string, name: string, format: string | undefined, opts: OpenDiskOptions, chain: string[]): Promise<ContainerReader> {
  const what = `backing file "${name}" of ${basename(imagePath)}`;
  if (name.includes('\0') || name === '') throw new FormatError('BAD_VALUE', `${what} is not a file name`, 'qcow2');
  const wanted = format === undefined ? undefined : BACKING_FORMATS[format];
  if (format !== undefined && !wanted) throw new FormatError('BAD_VALUE', `${what} has backing format "${format}", which diskmint does not read`, 'qcow2');
  const path = isAbsolute(name) ? name : join(dirname(imagePath), name);
  const real = await realpath(path).catch(() => undefined);
  if (real === undefined) throw new FormatError('BAD_VALUE', `${what} not found (${path})`, 'qcow2');
  if (chain.includes(real)) throw new FormatError('LOOP', `${what} is already in the chain above it: the backing chain loops`, 'qcow2');
  if (chain.length >= MAX_BACKING_DEPTH) throw new FormatError('TOO_LARGE', `backing chain deeper than ${MAX_BACKING_DEPTH} images at ${what}`, 'qcow2');
  const opened = await openInChain(path, opts, chain);
  if (wanted && opened.format !== wanted) {
    await opened.reader.close();
    throw new FormatError('BAD_VALUE', `${what} should be ${format} (backing_format) but holds ${opened.format}`, 'qcow2');
  }
  return opened.reader;
}

/** A file named by a descriptor, inside the descriptor's own folder only. */
export async function openSiblingFile(imagePath: string, name: string, opts: FileReadOptions = {}): Promise<DiskReader> {
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
    return await openRawFile(path, opts);
  } catch {
    throw new FormatError('BAD_VALUE', `extent file "${name}" named by ${basename(imagePath)} cannot be opened`, 'vmdk');
  }
}
