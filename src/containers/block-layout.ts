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
import { READ_CHUNK, dataPieces } from './blocks.js';

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

/** Stored bytes are gathered into one write (writev) of about this many bytes... */
const GATHER_BYTES = 4 << 20;
/** ...or of the pieces of this many read units, whichever comes first (the reused read buffers they lie in must stay valid). */
const GATHER_UNITS = 4;

/** Bytes read ahead of the writing: reads from the page cache keep up with 8 MiB in flight, and each MiB of buffer costs 256 first-touch page faults. */
const READ_AHEAD_BYTES = 8 << 20;
/** Read units whose pieces a gatherer may hold: the batch being gathered and the one being written. */
const GATHERER_HELD_UNITS = 2 * GATHER_UNITS + 1;

/**
 * Bytes for ascending positions of `sink`, gathered and written together: neighbouring pieces go
 * out as one writeParts (one system call to a file), gaps are skipped (holes in a file, zeros on
 * a pipe). One batch is written while the next is gathered, so the file is not idle while the
 * next pieces are found; the caller says when a read unit ends, so no piece outlives its buffer
 * (GATHERER_HELD_UNITS), and calls `drain` before using the sink itself.
 */
/** The disk's data pieces read for `out`: reused buffers only where the sink is a file, each unit ended in `out` (then told to `onProgress`). */
function gatheredPieces(disk: VirtualDisk, unit: number, sink: ByteSink, out: ReturnType<typeof gatherer>, onProgress?: (done: number) => void) {
  return dataPieces(disk, unit, {
    reuseBuffers: sink.seekable,
    heldUnits: GATHERER_HELD_UNITS,
    readAheadBytes: READ_AHEAD_BYTES,
    onUnit: async (end) => {
      await out.endOfUnit();
      onProgress?.(end);
    },
  });
}

function gatherer(sink: ByteSink) {
  let parts: Uint8Array[] = [];
  let at = 0;
  let bytes = 0;
  let units = 0;
  let writing: Promise<void> = Promise.resolve();
  let unitsSinceFlush = 0;
  const flush = async () => {
    if (!parts.length) return;
    await writing; // one batch in flight: the sink takes calls one at a time
    const [batch, batchAt] = [parts, at];
    parts = [];
    bytes = 0;
    units = 0;
    unitsSinceFlush = 0;
    writing = (async () => {
      await sink.skip(batchAt - sink.position);
      await sink.writeParts(batch);
    })();
    writing.catch(() => {}); // awaited by the next flush or drain, which see the failure
  };
  return {
    async drain(): Promise<void> {
      await flush();
      await writing;
    },
    /** After a failure: wait for the write in flight (its own failure aside), so none outlives the call. */
    idle: () => writing.catch(() => {}),
    async put(data: Uint8Array, where: number): Promise<void> {
      if (!data.length) return;
      if (parts.length && where !== at + bytes) await flush();
      if (!parts.length) at = where;
      const last = parts[parts.length - 1];
      // Neighbours in memory as on disk (blocks of one read) become one part.
      if (last && last.buffer === data.buffer && last.byteOffset + last.length === data.byteOffset) {
        parts[parts.length - 1] = new Uint8Array(last.buffer, last.byteOffset, last.length + data.length);
      } else parts.push(data);
      bytes += data.length;
      if (bytes >= GATHER_BYTES) await flush();
    },
    async endOfUnit(): Promise<void> {
      // The batch in flight holds buffers of units up to GATHER_UNITS back: past all-zero units
      // (nothing gathered, so no flush waits for it) the reads would come round to them.
      if (++unitsSinceFlush >= GATHER_UNITS) await writing;
      if (parts.length && ++units >= GATHER_UNITS) await flush();
    },
  };
}

/**
 * The non-zero blocks that `keep` accepts (asked once per block, ascending), written from the
 * sink's position on, each after `prefix` when given: the k-th stored block fills the slot
 * `k * (prefix + blockSize)` bytes in, whole (zeros inside it are holes in a file, zeros on a
 * pipe, and a final block that the disk's end cuts short is zero-padded). On return the sink
 * stands after the last slot. Each byte is read and tested for zeros once (dataPieces), and
 * neighbouring pieces go out as one write. To a file the reads go into reused buffers (a file
 * sink is done with each write's bytes when it resolves); to a stream, into fresh ones.
 */
async function storeBlocks(disk: VirtualDisk, sink: ByteSink, blockSize: number, keep: (index: number) => boolean, opts: StoreBlocksOptions): Promise<number> {
  const { prefix, onProgress } = opts;
  const slot = (prefix?.length ?? 0) + blockSize;
  const base = sink.position;
  const out = gatherer(sink);
  let stored = 0;
  let current = -1;
  let currentAt: number | undefined; // where block `current`'s data goes; undefined: not kept
  const dataAt = async (index: number): Promise<number | undefined> => {
    if (index === current) return currentAt;
    current = index;
    currentAt = undefined;
    if (!keep(index)) return undefined;
    const at = base + stored++ * slot;
    if (prefix) await out.put(prefix, at);
    return (currentAt = at + (prefix?.length ?? 0));
  };
  const pieces = gatheredPieces(disk, blockSize, sink, out, onProgress);
  try {
    for await (const { index, within, data } of pieces) {
      // A piece of whole small blocks is one put when nothing comes between them.
      for (let i = 0; i * blockSize < data.length || i === 0; i++) {
        const at = await dataAt(index + i);
        if (at === undefined) continue;
        const part = within === 0 && data.length > blockSize ? data.subarray(i * blockSize, (i + 1) * blockSize) : data;
        await out.put(part, at + within);
        if (part === data) break;
      }
    }
    await out.drain();
  } finally {
    await out.idle();
  }
  await sink.skip(base + stored * slot - sink.position);
  return stored;
}

/** Data first, for files: every non-zero block of `disk` stored (see storeBlocks); returns how many. */
export async function writeNonZeroBlocks(disk: VirtualDisk, sink: ByteSink, blockSize: number, opts: NonZeroBlocksOptions): Promise<number> {
  let stored = 0;
  return storeBlocks(
    disk,
    sink,
    blockSize,
    (index) => {
      opts.onStored(index, stored++);
      return true;
    },
    opts,
  );
}

/** The pre-scan for tables first: ascending indexes of the blocks of `disk` that hold non-zero data. Nothing is written. */
export async function scanNonZeroBlocks(disk: VirtualDisk, blockSize: number, onProgress?: (done: number) => void): Promise<number[]> {
  const found: number[] = [];
  for await (const { index, data } of dataPieces(disk, blockSize, { reuseBuffers: true, onUnit: onProgress })) {
    // only looked at
    const count = Math.max(1, Math.ceil(data.length / blockSize));
    for (let b = found.length && found[found.length - 1] >= index ? found[found.length - 1] + 1 : index; b < index + count; b++) found.push(b);
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
  const out = gatherer(sink);
  const pieces = gatheredPieces(disk, READ_CHUNK, sink, out, onProgress);
  try {
    for await (const { index, within, data } of pieces) {
      const at = index * READ_CHUNK + within;
      await out.put(data.subarray(0, Math.max(0, disk.size - at)), base + at); // nothing past the disk's end
    }
    await out.drain();
  } finally {
    await out.idle();
  }
}
