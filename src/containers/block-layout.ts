/**
 * The one block-layout strategy of the container writers (qcow2, dynamic VHD and VHDX, sparse
 * VMDK): only blocks that hold non-zero data are stored (all-zero blocks are left out, as
 * qemu-img does), back to back in ascending order, and tables say where each went.
 *
 * - To a file, data first: the writer skips its table area, writeNonZeroBlocks copies the
 *   non-zero blocks (one read of the source, zeros found while copying), and the tables are
 *   written last with pwrite.
 * - To a pipe, tables first: scanNonZeroBlocks reads the data once to find the non-zero blocks,
 *   the writer computes and writes its tables from that list, then writeListedBlocks writes
 *   exactly those blocks (a second read).
 *
 * So a pipe holds the same blocks as a file in every format. Formats whose tables sit at a fixed
 * place before the data (VHD, VHDX, sparse VMDK) get the same bytes either way through
 * writeTablesAndBlocks; qcow2's file layout puts its tables after the data. Fixed and flat
 * containers store every block at its own place instead (writeInPlace).
 */
import type { VirtualDisk } from '../model/extents.js';
import { DiskmintError } from '../model/errors.js';
import type { ByteSink } from '../io/sink.js';
import { READ_CHUNK, blockOf, isAllZero, readBlockGroups, readBlocks } from './blocks.js';

export interface StoreBlocksOptions {
  /** Bytes written before each stored block (a dynamic VHD's sector bitmap). Never modified: a stream sink may keep it. */
  prefix?: Uint8Array;
  /** Bytes of the disk done so far, after each read chunk. */
  onProgress?(done: number): void;
}

export interface NonZeroBlocksOptions extends StoreBlocksOptions {
  /** The k-th stored block (from 0) is disk block `index`: the caller records where it went. */
  onStored(index: number, k: number): void;
}

/**
 * The blocks `keep` accepts, ascending, written at the sink's position and on, each after
 * `prefix` when given: the k-th stored block starts `k * (prefix + blockSize)` bytes in, and
 * neighbouring stored blocks of one read chunk go out as one write. A final block that the disk's
 * end cuts short is stored whole, zero-padded. To a file the reads go into reused buffers (a file
 * sink is done with each write's bytes when it resolves); to a stream, into fresh ones.
 */
async function storeBlocks(
  disk: VirtualDisk,
  sink: ByteSink,
  blockSize: number,
  keep: (index: number, block: Uint8Array) => boolean,
  opts: StoreBlocksOptions,
): Promise<void> {
  for await (const group of readBlockGroups(disk, blockSize, { reuseBuffers: sink.seekable })) {
    let runStart = -1;
    const flush = async (end: number) => {
      if (runStart >= 0) await sink.write(group.data.subarray(runStart * blockSize, end * blockSize));
      runStart = -1;
    };
    for (let i = 0; i < group.count; i++) {
      const block = blockOf(group, i);
      if (!keep(group.first + i, block)) {
        await flush(i);
        continue;
      }
      if (opts.prefix) {
        await sink.write(opts.prefix);
        await sink.write(block);
      } else if (runStart < 0) runStart = i;
    }
    await flush(group.count);
    opts.onProgress?.(Math.min(disk.size, (group.first + group.count) * blockSize));
  }
}

/** Data first, for files: every non-zero block of `disk` stored (see storeBlocks); returns how many. */
export async function writeNonZeroBlocks(disk: VirtualDisk, sink: ByteSink, blockSize: number, opts: NonZeroBlocksOptions): Promise<number> {
  let stored = 0;
  await storeBlocks(
    disk,
    sink,
    blockSize,
    (index, block) => {
      if (isAllZero(block)) return false;
      opts.onStored(index, stored++);
      return true;
    },
    opts,
  );
  return stored;
}

/** The pre-scan for tables first: ascending indexes of the blocks of `disk` that hold non-zero data. Nothing is written. */
export async function scanNonZeroBlocks(disk: VirtualDisk, blockSize: number, onProgress?: (done: number) => void): Promise<number[]> {
  const found: number[] = [];
  for await (const group of readBlockGroups(disk, blockSize, { reuseBuffers: true })) {
    // only looked at
    for (let i = 0; i < group.count; i++) if (!isAllZero(blockOf(group, i))) found.push(group.first + i);
    onProgress?.(Math.min(disk.size, (group.first + group.count) * blockSize));
  }
  return found;
}

/** After the tables: exactly the `listed` blocks (scanNonZeroBlocks' answer), stored as writeNonZeroBlocks stores. */
export async function writeListedBlocks(
  disk: VirtualDisk,
  sink: ByteSink,
  blockSize: number,
  listed: readonly number[],
  opts: StoreBlocksOptions = {},
): Promise<void> {
  let next = 0;
  await storeBlocks(
    disk,
    sink,
    blockSize,
    (index) => {
      if (next >= listed.length || listed[next] !== index) return false;
      next++;
      return true;
    },
    opts,
  );
  if (next !== listed.length) throw new DiskmintError('IO', 'source data changed while the image was written');
}

export interface TablesThenBlocks extends StoreBlocksOptions {
  blockSize: number;
  /** Absolute sink position of the first stored block; every table lies before it. */
  dataStart: number;
  /**
   * Write the tables for the `stored` blocks (ascending; the k-th at `dataStart + k * (prefix +
   * blockSize)`) with `put`, in ascending positions, after the sink's position on entry.
   */
  writeTables(stored: readonly number[], put: (bytes: Uint8Array, at: number) => Promise<void>): Promise<void>;
}

/**
 * A container whose tables sit at fixed places before its data (dynamic VHD and VHDX, sparse
 * VMDK): the same bytes to a file (data first, tables by pwrite) and to a pipe (pre-scan, tables,
 * data); on return the sink stands after the last stored block. Returns the stored blocks.
 */
export async function writeTablesAndBlocks(disk: VirtualDisk, sink: ByteSink, layout: TablesThenBlocks): Promise<readonly number[]> {
  const { blockSize, dataStart, prefix, onProgress } = layout;
  if (sink.seekable) {
    const stored: number[] = [];
    await sink.skip(dataStart - sink.position);
    await writeNonZeroBlocks(disk, sink, blockSize, { prefix, onProgress, onStored: (index) => stored.push(index) });
    await layout.writeTables(stored, (bytes, at) => sink.pwrite(bytes, at));
    return stored;
  }
  const progress = twoPassProgress(disk.size, onProgress);
  const stored = await scanNonZeroBlocks(disk, blockSize, progress.scan);
  await layout.writeTables(stored, (bytes, at) => putForward(sink, bytes, at));
  await sink.skip(dataStart - sink.position);
  await writeListedBlocks(disk, sink, blockSize, stored, { prefix, onProgress: progress.write });
  return stored;
}

/** Progress of tables first as one bar: the pre-scan is its first half, the write the second. */
export function twoPassProgress(diskSize: number, onProgress?: (done: number) => void): { scan?: (done: number) => void; write?: (done: number) => void } {
  if (!onProgress) return {};
  return { scan: (done) => onProgress(Math.floor(done / 2)), write: (done) => onProgress(Math.floor((diskSize + done) / 2)) };
}

/** Write `bytes` at `at` on a forward-only sink: zeros up to it, then the bytes. */
async function putForward(sink: ByteSink, bytes: Uint8Array, at: number): Promise<void> {
  if (at < sink.position) throw new Error(`a table at ${at} comes after byte ${sink.position} was written`);
  await sink.skip(at - sink.position);
  await sink.write(bytes);
}

/**
 * The other layout, for fixed and flat containers (fixed VHD and VHDX, flat VMDK extents): every
 * byte of `disk` at `base` + its own offset, read and written 1 MiB at a time; what no data run
 * covers is skipped (a hole in a file, zeros on a pipe). Ends after the last data; the caller
 * pads to the container's size.
 */
export async function writeInPlace(disk: VirtualDisk, sink: ByteSink, base: number, onProgress?: (done: number) => void): Promise<void> {
  for await (const { index, data } of readBlocks(disk, READ_CHUNK, { reuseBuffers: sink.seekable })) {
    const at = index * READ_CHUNK;
    await sink.skip(base + at - sink.position);
    await sink.write(data.subarray(0, Math.min(READ_CHUNK, disk.size - at)));
    onProgress?.(Math.min(disk.size, at + READ_CHUNK));
  }
}
