/**
 * Block views of a virtual disk for container writers: which fixed-size blocks (clusters,
 * grains, BAT blocks) hold data, and their bytes in ascending order. Computed from the extent
 * map, so a 1 TiB disk with 64 MiB of data costs what 64 MiB costs.
 */
import type { VirtualDisk } from '../model/extents.js';
import { FileCache, readRunInto } from '../io/run-reader.js';
import { mapOrdered } from '../io/concurrency.js';
import { withoutFileHoles } from '../io/kernel/file-data-runs.js';
import { ZERO_BLOCK, isAllZero, nonZeroSpans } from '../io/zero-blocks.js';

type Range = { offset: number; length: number };

/** Ascending indexes of blocks that any data run touches. */
export function allocatedBlocks(disk: VirtualDisk, blockSize: number): number[] {
  const out: number[] = [];
  for (const run of disk.runs()) {
    const first = Math.floor(run.offset / blockSize);
    const last = Math.floor((run.offset + run.length - 1) / blockSize);
    for (let b = out.length && out[out.length - 1] >= first ? out[out.length - 1] + 1 : first; b <= last; b++) out.push(b);
  }
  return out;
}

/** Bytes of block reads kept in flight ahead of the consumer. */
const READ_AHEAD_BYTES = 16 << 20;
/** Neighbouring blocks are read together, up to this many bytes per read (64 KiB clusters: 16). */
const GROUP_BYTES = 1 << 20;
/** Larger blocks (VHD 2 MiB, VHDX 32 MiB) are read in pieces of this size, all at once. */
const READ_PIECE = 4 << 20;

/** Wait for every promise; then throw the first failure, if any (no read outlives the call). */
async function settleAll(promises: Promise<void>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Ascending block indexes in groups of neighbours, each group at most `max` blocks. */
function* neighbourGroups(blocks: number[], max: number): Generator<{ first: number; count: number }> {
  let group: { first: number; count: number } | undefined;
  for (const b of blocks) {
    if (group && group.first + group.count === b && group.count < max) group.count++;
    else {
      if (group) yield group;
      group = { first: b, count: 1 };
    }
  }
  if (group) yield group;
}

export interface ReadBlocksOptions {
  /**
   * Read into a small ring of buffers instead of a fresh one per read: a block's bytes are then
   * valid only until the next block is asked for, so the consumer must copy or write them first
   * (a file sink is done with them when its write resolves). Saves the kernel mapping and zeroing new memory for every read, which
   * costs more than the read itself.
   */
  reuseBuffers?: boolean;
  /**
   * With `reuseBuffers`: how many blocks the consumer may hold at once (default 1, the current
   * one). A block stays valid until the consumer has asked for `heldBlocks` more; a consumer
   * that keeps blocks in flight (compression) passes how many.
   */
  heldBlocks?: number;
  /** Bytes read ahead of the consumer (default 16 MiB); a slow consumer (compression) needs less. */
  readAheadBytes?: number;
}

/**
 * Every allocated block with its bytes (zeros where no run covers it), ascending. The last
 * block of a disk whose size is not a multiple of blockSize is still blockSize long (zero tail).
 * Neighbouring small blocks are read with one call (a thread-pool round trip per 64 KiB cluster
 * costs more than the copy), and reads run ahead of the consumer (about 16 MiB in flight) so
 * reading overlaps the consumer's work. Unless `reuseBuffers`, each yielded buffer is fresh
 * (neighbours may share one ArrayBuffer): consumers may keep it.
 */
export async function* readBlocks(whole: VirtualDisk, blockSize: number, opts: ReadBlocksOptions = {}): AsyncGenerator<{ index: number; data: Uint8Array }> {
  const disk = await withoutFileHoles(whole); // a large raw file's holes are not read (the kernel's map)
  const files = new FileCache();
  const perGroup = Math.max(1, Math.floor(GROUP_BYTES / blockSize));
  // At least two groups in flight, so even 32 MiB VHDX blocks are read while the last one is written.
  const depth = Math.max(2, Math.floor((opts.readAheadBytes ?? READ_AHEAD_BYTES) / (perGroup * blockSize)));
  // A slot is refilled `ring.length` groups later. By then mapOrdered holds at most `depth`
  // groups (the new one included) and the consumer's held blocks span at most `held` older
  // groups: a group of scattered data may hold a single block, so held blocks cannot be counted
  // as ceil(held / perGroup) + 1 full groups. This many slots never overwrite a live block.
  const held = Math.max(1, opts.heldBlocks ?? 1);
  const ring = opts.reuseBuffers ? new Array<Uint8Array>(depth + held + 1) : undefined;
  let groupNumber = 0;
  const bufferFor = (bytes: number): Uint8Array => {
    if (!ring) return new Uint8Array(bytes);
    const slot = groupNumber++ % ring.length;
    ring[slot] ??= new Uint8Array(perGroup * blockSize); // plain memory: consumers may transfer copies
    return ring[slot].subarray(0, bytes);
  };
  try {
    const groups = mapOrdered(neighbourGroups(allocatedBlocks(disk, blockSize), perGroup), depth, async ({ first, count }) => {
      const data = bufferFor(count * blockSize);
      const start = first * blockSize;
      let zeroFrom = 0; // a reused buffer holds old bytes: zero what no run covers
      const reads: Promise<void>[] = [];
      for (const run of disk.runs(start, Math.min(disk.size, start + data.length))) {
        if (ring) data.fill(0, zeroFrom, run.offset - start);
        zeroFrom = run.offset - start + run.length;
        // Pieces of a large block are read at once, on several of libuv's threads.
        for (let skip = 0; skip < run.length; skip += READ_PIECE) {
          const at = run.offset - start + skip;
          reads.push(readRunInto(run, skip, data.subarray(at, at + Math.min(READ_PIECE, run.length - skip)), files));
        }
      }
      if (ring) data.fill(0, zeroFrom);
      await settleAll(reads);
      return { first, data };
    });
    for await (const { first, data } of groups) {
      for (let i = 0; i * blockSize < data.length; i++) yield { index: first + i, data: data.subarray(i * blockSize, (i + 1) * blockSize) };
    }
  } finally {
    await files.closeAll();
  }
}

/** Blocks smaller than this are read this many bytes at a time (a whole number of blocks). */
export const READ_CHUNK = 1 << 20;

export interface ReadBlockGroupsOptions {
  /** Read chunks into reused buffers (see ReadBlocksOptions): a block is valid only while held. */
  reuseBuffers?: boolean;
  /** With `reuseBuffers`: blocks the consumer holds at once (in flight and the current one; default 1). */
  heldBlocks?: number;
  /** Bytes read ahead of the consumer (readBlocks' default when omitted). */
  readAheadBytes?: number;
}

/** `count` neighbouring blocks from disk block `first` on, back to back in `data`. */
export interface BlockGroup {
  first: number;
  count: number;
  data: Uint8Array;
}

/** Block `i` (from 0) of a group. */
export function blockOf(group: BlockGroup, i: number): Uint8Array {
  const bs = group.data.length / group.count;
  return group.data.subarray(i * bs, (i + 1) * bs);
}

/**
 * The disk's blocks in chunks of about READ_CHUNK (a whole number of blocks, at least one) that
 * hold data, ascending, one group per chunk: a thread-pool round trip per 64 KiB cluster costs
 * more than the copy, and the writers find all-zero blocks per chunk. Blocks past the disk's end
 * are left out; a last block the end cuts short is whole (zero tail). `data` is a view of a fresh
 * chunk (consumers may keep it) unless `reuseBuffers`.
 */
export async function* readBlockGroups(disk: VirtualDisk, blockSize: number, opts: ReadBlockGroupsOptions = {}): AsyncGenerator<BlockGroup> {
  const chunk = Math.max(blockSize, Math.floor(READ_CHUNK / blockSize) * blockSize);
  const perChunk = chunk / blockSize;
  const lastBlock = Math.ceil(disk.size / blockSize) - 1;
  const heldBlocks = Math.ceil(((opts.heldBlocks ?? 1) * blockSize) / chunk) + 1; // they may straddle chunks
  for await (const { index, data } of readBlocks(disk, chunk, { reuseBuffers: opts.reuseBuffers, heldBlocks, readAheadBytes: opts.readAheadBytes })) {
    const first = index * perChunk;
    const count = Math.min(perChunk, lastBlock - first + 1);
    yield { first, count, data: data.subarray(0, count * blockSize) };
  }
}

/** Kept here for the block writers; the one definition is src/io/zero-blocks.ts. */
export { isAllZero } from '../io/zero-blocks.js';

/**
 * How many bytes the block writers read at a time: a whole number of blocks up to READ_CHUNK, or
 * for larger blocks (VHD 2 MiB, VHDX 8-256 MiB) READ_CHUNK of one block, so memory does not
 * grow with the block size (fresh memory costs a page fault per 4 KiB).
 */
export function readUnitFor(blockSize: number): number {
  if (blockSize <= READ_CHUNK) return Math.floor(READ_CHUNK / blockSize) * blockSize;
  return blockSize % READ_CHUNK === 0 ? READ_CHUNK : blockSize;
}

/** Non-zero bytes of the disk: `data` starts `within` bytes into block `index` (and may run on over whole neighbouring blocks). */
export interface DataPiece {
  index: number;
  within: number;
  data: Uint8Array;
}

export interface DataPiecesOptions {
  /** Read into reused buffers (see ReadBlocksOptions): a piece is valid while its unit is held. */
  reuseBuffers?: boolean;
  /** With `reuseBuffers`: read units (readUnitFor) the consumer holds at once, the current one included. */
  heldUnits?: number;
  /** Bytes read ahead of the consumer (readBlocks' default when omitted). */
  readAheadBytes?: number;
  /** After each unit's pieces were taken, with the end of the unit (clipped to the disk): progress, flushing. */
  onUnit?(end: number): Promise<void> | void;
}

/**
 * The non-zero bytes of the disk's blocks, ascending, each zero test done once here: blocks of
 * at most ZERO_BLOCK as runs of whole non-zero neighbours (an all-zero block is left out), larger
 * ones as their non-zero ZERO_BLOCK pieces counted from the block's start (a block with none is
 * all zeros). Read readUnitFor(blockSize) bytes at a time. Bytes past the disk's end are zeros,
 * so a last block the end cuts short may yield a piece running past it.
 */
export async function* dataPieces(disk: VirtualDisk, blockSize: number, opts: DataPiecesOptions = {}): AsyncGenerator<DataPiece> {
  const bs = blockSize;
  const unit = readUnitFor(bs);
  const lastBlock = Math.ceil(disk.size / bs) - 1;
  const spans = function* (index: number, within: number, data: Uint8Array): Generator<DataPiece> {
    for (const [start, end] of nonZeroSpans(data)) yield { index, within: within + start, data: data.subarray(start, end) };
  };
  for await (const { index: u, data } of readBlocks(disk, unit, {
    reuseBuffers: opts.reuseBuffers,
    heldBlocks: opts.heldUnits,
    readAheadBytes: opts.readAheadBytes,
  })) {
    const offset = u * unit;
    if (isAllZero(data)) {
      // One comparison for a unit of zeros (read from a hole of a raw file), not one per block.
    } else if (unit < bs) {
      const index = Math.floor(offset / bs);
      yield* spans(index, offset - index * bs, data);
    } else {
      const first = offset / bs;
      const count = Math.min(unit / bs, lastBlock - first + 1);
      if (bs > ZERO_BLOCK) for (let i = 0; i < count; i++) yield* spans(first + i, 0, data.subarray(i * bs, (i + 1) * bs));
      else {
        let run = -1;
        for (let i = 0; i <= count; i++) {
          const zero = i === count || isAllZero(data.subarray(i * bs, (i + 1) * bs));
          if (!zero && run < 0) run = i;
          else if (zero && run >= 0) {
            yield { index: first + run, within: 0, data: data.subarray(run * bs, i * bs) };
            run = -1;
          }
        }
      }
    }
    await opts.onUnit?.(Math.min(disk.size, offset + unit));
  }
}

/** Allocated block indexes (ascending) as byte ranges, neighbours merged, clipped to the disk. */
export async function* rangesOfBlocks(
  blocks: Iterable<number> | AsyncIterable<number>,
  blockSize: number,
  diskSize: number,
): AsyncGenerator<{ offset: number; length: number }> {
  let run: { offset: number; length: number } | undefined;
  for await (const i of blocks) {
    const offset = i * blockSize;
    const length = Math.min(blockSize, diskSize - offset);
    if (length <= 0) continue;
    if (run && run.offset + run.length === offset) run.length += length;
    else {
      if (run) yield run;
      run = { offset, length };
    }
  }
  if (run) yield run;
}

/** `ranges` cut into pieces of at most `chunk` bytes, clipped to `end`. */
export async function* piecesOf(ranges: AsyncIterable<Range>, chunk: number, end = Infinity): AsyncGenerator<Range> {
  for await (const r of ranges) {
    const stop = Math.min(end, r.offset + r.length);
    for (let offset = r.offset; offset < stop; offset += chunk) yield { offset, length: Math.min(chunk, stop - offset) };
  }
}

/** Union of two ascending range streams, adjacent and overlapping ranges joined. */
export async function* unionOfRanges(a: AsyncIterable<Range>, b?: AsyncIterable<Range>): AsyncGenerator<Range> {
  const ia = a[Symbol.asyncIterator]();
  const ib = b?.[Symbol.asyncIterator]();
  let ra = await ia.next();
  let rb: IteratorResult<Range> = ib ? await ib.next() : { done: true, value: undefined };
  let pending: Range | undefined;
  while (!ra.done || !rb.done) {
    let r: Range;
    if (rb.done || (!ra.done && ra.value.offset <= rb.value.offset)) {
      r = ra.value as Range;
      ra = await ia.next();
    } else {
      r = rb.value;
      rb = await ib!.next();
    }
    if (pending && r.offset <= pending.offset + pending.length) pending.length = Math.max(pending.length, r.offset + r.length - pending.offset);
    else {
      if (pending) yield pending;
      pending = { ...r };
    }
  }
  if (pending) yield pending;
}

/**
 * A read of [offset, offset+len) of a disk stored in fixed-size blocks: the result is clipped to
 * the disk and starts zeroed (in `into` when that is long enough); `fillPiece` fills the part of
 * each block the read touches.
 */
export async function readThroughBlocks(
  size: number,
  blockSize: number,
  offset: number,
  len: number,
  fillPiece: (block: number, within: number, into: Uint8Array) => Promise<void>,
  into?: Uint8Array,
): Promise<Uint8Array> {
  const start = Math.min(Math.max(0, offset), size);
  const end = Math.min(size, start + Math.max(0, len));
  const out = into && into.length >= end - start ? into.subarray(0, end - start).fill(0) : new Uint8Array(end - start);
  for (let at = start; at < end;) {
    const block = Math.floor(at / blockSize);
    const within = at - block * blockSize;
    const n = Math.min(blockSize - within, end - at);
    await fillPiece(block, within, out.subarray(at - start, at - start + n));
    at += n;
  }
  return out;
}
