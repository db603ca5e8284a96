/**
 * `diskmint bmap`: bmaptool's block map (formats/bmap/bmap.ts) of any image diskmint reads, and
 * reading the maps `bmaptool create` writes. The mapped blocks are the container's allocated
 * ranges (ContainerReader.allocatedRanges: a qcow2's clusters, a raw file's data) in 4 KiB
 * blocks, as bmaptool maps a file's extents (Filemap.get_mapped_ranges).
 */
import { createHash, type Hash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { parseBmap, writeBmap, MAX_BMAP_TEXT, type BlockMap, type BmapChecksumType, type BmapRange } from '../../formats/bmap/bmap.js';
import { DiskmintError, FormatError } from '../model/errors.js';
import { readInto, type DiskReader } from '../model/disk-reader.js';
import { openDisk, type OpenDiskOptions } from '../io/open-disk.js';
import { writeAtomically } from '../io/atomic-output.js';
import { writeFully } from '../io/write-fully.js';
import type { ContainerReader } from '../containers/types.js';
import { piecesOf } from '../containers/blocks.js';
import { openDecodedStream, type DecodedStream } from '../io/compressed/decoded-stream.js';
import { nonZeroSpans } from '../io/zero-blocks.js';

/** bmaptool create's block size (BmapCreate: the file system's block size, 4096 on every Linux one). */
export const BMAP_BLOCK_SIZE = 4096;
/**
 * Bytes read at a time while hashing (one reused buffer, a multiple of the 64 KiB zero-block
 * grid): 1 MiB stays in the core's cache from the kernel's copy to the hash; 4 MiB took 0.91-0.96 s
 * where 1 MiB takes 0.89-0.90 s for the bmap of a 4 GiB raw holding 1 GiB (bmaptool create 0.82-0.85 s).
 */
const CHUNK = 1 << 20;

/** The image's allocated ranges as ascending, merged block ranges of `blockSize`. */
export async function* mappedBlockRanges(reader: ContainerReader, blockSize = BMAP_BLOCK_SIZE): AsyncGenerator<{ first: number; last: number }> {
  let open: { first: number; last: number } | undefined;
  for await (const { offset, length } of reader.allocatedRanges()) {
    const end = Math.min(reader.size, offset + length);
    if (end <= offset) continue;
    const first = Math.floor(offset / blockSize);
    const last = Math.ceil(end / blockSize) - 1;
    if (open && first <= open.last + 1) open.last = Math.max(open.last, last);
    else {
      if (open) yield open;
      open = { first, last };
    }
  }
  if (open) yield open;
}

/** The bytes blocks `first` to `last` cover, cut at the image's end. */
export function rangeBytes(r: { first: number; last: number }, blockSize: number, imageSize: number): { offset: number; length: number } {
  const offset = r.first * blockSize;
  return { offset, length: Math.min(imageSize, (r.last + 1) * blockSize) - offset };
}

/** Hex digest of `length` bytes of `reader` at `offset`, read through `buffer`. */
export async function hashReaderRange(reader: DiskReader, offset: number, length: number, type: BmapChecksumType, buffer: Uint8Array): Promise<string> {
  const hash = createHash(type);
  for (let done = 0; done < length;) {
    const n = Math.min(buffer.length, length - done);
    const got = await readInto(reader, offset + done, buffer.subarray(0, n));
    if (got < n) buffer.fill(0, got, n);
    hash.update(buffer.subarray(0, n));
    done += n;
  }
  return hash.digest('hex');
}

/**
 * The version 2.0 block map of an open image: its allocated blocks, SHA-256 per range. A raw
 * image's allocated ranges are the non-zero 64 KiB blocks of its data ranges, found by reading
 * them: its map is made in that one pass (blockMapOfChunks), the data hashed as it is found, not
 * read a second time (`diskmint bmap` of a 4 GiB raw holding 1 GiB: 0.98-1.03 -> 0.87-0.91 s;
 * bmaptool create 0.74-0.75 s).
 * Other containers say what they allocated without a read; those ranges are then read and hashed.
 */
export async function blockMapOf(reader: ContainerReader, onProgress?: (done: number, total: number) => void): Promise<BlockMap> {
  if (reader.dataRanges) return blockMapOfChunks(reader.size, rangeChunks(reader, reader.dataRanges()), onProgress);
  const buffer = new Uint8Array(CHUNK);
  const ranges: BmapRange[] = [];
  let mapped = 0;
  for await (const r of mappedBlockRanges(reader)) {
    const { offset, length } = rangeBytes(r, BMAP_BLOCK_SIZE, reader.size);
    ranges.push({ ...r, checksum: await hashReaderRange(reader, offset, length, 'sha256', buffer) });
    mapped += r.last - r.first + 1;
    onProgress?.(offset + length, reader.size);
  }
  const blocksCount = Math.ceil(reader.size / BMAP_BLOCK_SIZE);
  return { version: '2.0', imageSize: reader.size, blockSize: BMAP_BLOCK_SIZE, blocksCount, mappedBlocksCount: mapped, checksumType: 'sha256', ranges };
}

/** `ranges` of `reader` (starting on the 64 KiB grid, as a raw image's data ranges do) read CHUNK bytes at a time into one reused buffer. */
async function* rangeChunks(reader: DiskReader, ranges: AsyncIterable<{ offset: number; length: number }>): AsyncGenerator<{ at: number; bytes: Uint8Array }> {
  const buffer = new Uint8Array(CHUNK);
  for await (const { offset: at, length } of piecesOf(ranges, CHUNK, reader.size)) {
    const view = buffer.subarray(0, length);
    yield { at, bytes: view.subarray(0, await readInto(reader, at, view)) };
  }
}

/**
 * The same map of a compressed raw image read once as it decodes (decoded-stream.ts): its data
 * spans (zero-blocks.ts' blocks, as the spooled path notes them) found chunk by chunk, each
 * range hashed as it passes, so nothing is read twice and no temp file is made.
 */
export async function blockMapOfStream(stream: DecodedStream, onProgress?: (done: number, total: number) => void): Promise<BlockMap> {
  const chunks = async function* () {
    for (let at = 0; at < stream.size; at += CHUNK) yield { at, bytes: await stream.view(at, Math.min(CHUNK, stream.size - at)) };
  };
  return blockMapOfChunks(stream.size, chunks(), onProgress);
}

/**
 * The block map of a disk of `size` bytes whose possibly non-zero bytes come as `chunks` (in
 * ascending order, each starting on the 64 KiB grid; what no chunk covers is zeros): the
 * non-zero 64 KiB spans (zero-blocks.ts) joined into ranges, each hashed as it passes.
 */
async function blockMapOfChunks(
  size: number,
  chunks: AsyncIterable<{ at: number; bytes: Uint8Array }>,
  onProgress?: (done: number, total: number) => void,
): Promise<BlockMap> {
  const ranges: BmapRange[] = [];
  let mapped = 0;
  let open: { first: number; end: number; hash: Hash } | undefined; // a range whose data may go on
  const close = () => {
    if (!open) return;
    const last = Math.ceil(open.end / BMAP_BLOCK_SIZE) - 1;
    ranges.push({ first: open.first, last, checksum: open.hash.digest('hex') });
    mapped += last - open.first + 1;
    open = undefined;
  };
  for await (const { at, bytes } of chunks) {
    // Spans start on zero-block (64 KiB) boundaries, so each range's bytes are exactly its spans'.
    for (const [s, e] of nonZeroSpans(bytes)) {
      if (open && open.end !== at + s) close();
      open ??= { first: (at + s) / BMAP_BLOCK_SIZE, end: at + s, hash: createHash('sha256') };
      open.hash.update(bytes.subarray(s, e));
      open.end = at + e;
    }
    onProgress?.(at + bytes.length, size);
  }
  close();
  const blocksCount = Math.ceil(size / BMAP_BLOCK_SIZE);
  return { version: '2.0', imageSize: size, blockSize: BMAP_BLOCK_SIZE, blocksCount, mappedBlocksCount: mapped, checksumType: 'sha256', ranges };
}

export interface CreateBmapOptions extends OpenDiskOptions {
  /** Where the map goes (written atomically: a temp file renamed over it). */
  output: string;
  onProgress?: (done: number, total: number) => void;
}

export interface CreateBmapResult {
  image: string;
  output: string;
  format: string;
  imageSize: number;
  blockSize: number;
  blocksCount: number;
  mappedBlocksCount: number;
  ranges: number;
}

/** `diskmint bmap IMAGE -o MAP`: the map `bmaptool copy --bmap MAP IMAGE DEV` takes. */
export async function createBmap(image: string, opts: CreateBmapOptions): Promise<CreateBmapResult> {
  if (!opts.output) throw new DiskmintError('BAD_ARGUMENT', 'bmap needs an output file (-o FILE.bmap)');
  // A compressed raw image that records its size is mapped as it decodes; any other is opened whole.
  const stream = await openDecodedStream(image, CHUNK);
  // One read at a time, each awaited before it is hashed: read on this thread (disk-reader.ts syncReads).
  const { reader, format } = stream ? { reader: stream, format: 'raw' } : await openDisk(image, { syncReads: true, ...opts });
  try {
    const map = stream ? await blockMapOfStream(stream, opts.onProgress) : await blockMapOf(reader as ContainerReader, opts.onProgress);
    const text = new TextEncoder().encode(writeBmap(map));
    await writeAtomically(opts.output, (handle) => writeFully(handle, text, 0));
    return {
      image,
      output: opts.output,
      format,
      imageSize: map.imageSize,
      blockSize: map.blockSize,
      blocksCount: map.blocksCount,
      mappedBlocksCount: map.mappedBlocksCount,
      ranges: map.ranges.length,
    };
  } finally {
    await reader.close();
  }
}

/** Where a block map goes beside an image: `fw.img.zst` -> `fw.img.bmap` (bmaptool looks there for a compressed image's map). */
export function bmapPathBeside(image: string): string {
  return `${image.replace(/\.(gz|zst|xz|bz2)$/i, '')}.bmap`;
}

/** `build --bmap`, `convert --bmap`: refused before anything is written when the output is a pipe. */
export function refuseBmapToPipe(output: string, bmap: boolean | undefined): void {
  if (bmap && output === '-') throw new DiskmintError('BAD_ARGUMENT', '--bmap writes a file beside the output; an output to a pipe has no place for it');
}

/** The block map of the image just written at `output`, beside it (bmapPathBeside), read back from the file as any reader would. */
export async function writeBmapBeside(output: string): Promise<string> {
  const path = bmapPathBeside(output);
  await createBmap(output, { output: path });
  return path;
}

/** Read and check a bmap file (bmaptool create's 1.x or 2.0, or ours): a DiskmintError naming it when it is not sound. */
export async function readBmapFile(path: string): Promise<BlockMap> {
  let text: string;
  try {
    const st = await stat(path);
    if (st.size > MAX_BMAP_TEXT) throw new DiskmintError('INPUT', `${path}: a bmap file of ${st.size} bytes is too large`);
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (err instanceof DiskmintError) throw err;
    throw new DiskmintError('INPUT', `${path} cannot be read: ${(err as Error).message}`);
  }
  try {
    return parseBmap(text);
  } catch (err) {
    if (err instanceof FormatError) throw new DiskmintError('INPUT', `${path}: ${err.message}`);
    throw err;
  }
}
