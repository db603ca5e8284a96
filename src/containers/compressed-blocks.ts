/**
 * The compressed-block pipeline of the writers that compress (qcow2 with `-c`, VMDK
 * streamOptimized): the disk's non-zero blocks read ahead, packed on every core
 * (`compressor.concurrency` blocks at once) and handed out in ascending order, all-zero blocks
 * left out. The policy is the handler's: its `pack` picks the algorithm and level and says
 * whether a compressed block is worth keeping; this file only runs it. Each block is packed on
 * its own, so what comes out never depends on the thread count.
 */
import type { VirtualDisk } from '../model/extents.js';
import { mapOrdered } from '../io/concurrency.js';
import { blockOf, isAllZero, readBlockGroups } from './blocks.js';
import { createCompressor, type Compressor } from './compress.js';

/** Read-ahead while compressing: compression is far slower than reading, so less keeps it fed. */
const COMPRESSED_READ_AHEAD = 2 << 20;

/** A non-zero block and what the handler's `pack` made of it (`P`: e.g. the compressed bytes, or undefined to store the block whole). */
export interface PackedBlock<P> {
  /** Disk block number. */
  index: number;
  /** The block's bytes (a whole block, zero tail past the disk's end). Valid until the next block is asked for. */
  data: Uint8Array;
  packed: P;
}

export interface CompressedBlocksOptions<P> {
  /**
   * The compressor to pack with, left open; without one, the pipeline makes its own with
   * `threads` (default: every core) and closes it when the blocks end (or the consumer stops).
   */
  compressor?: Compressor;
  threads?: number;
  /** The handler's policy for one non-zero block: its stored form. `data` stays valid until the returned promise settles. */
  pack(data: Uint8Array, compressor: Compressor): Promise<P>;
  /** Bytes of the disk done so far, ascending (zero blocks included). */
  onProgress?(done: number): void;
}

/**
 * Every non-zero block of `disk`, ascending, with its packed form. Blocks are read into reused
 * buffers: a block's `data` is overwritten once the consumer asks for the next one, so a consumer
 * writing to a stream sink (which may keep what it is given) copies it first.
 */
export async function* compressedBlocks<P>(disk: VirtualDisk, blockSize: number, opts: CompressedBlocksOptions<P>): AsyncGenerator<PackedBlock<P>> {
  if (opts.compressor) return yield* packedBlocks(disk, blockSize, opts, opts.compressor);
  const compressor = createCompressor({ threads: opts.threads });
  try {
    yield* packedBlocks(disk, blockSize, opts, compressor);
  } finally {
    await compressor.close();
  }
}

async function* packedBlocks<P>(
  disk: VirtualDisk,
  blockSize: number,
  opts: CompressedBlocksOptions<P>,
  compressor: Compressor,
): AsyncGenerator<PackedBlock<P>> {
  // `concurrency` blocks are being packed, one more waits for a free slot, and the consumer holds
  // one more; read buffers are reused only after that (deflate reads its input on the thread
  // pool until it resolves).
  const inFlight = Math.max(1, compressor.concurrency) + 1;
  const groups = readBlockGroups(disk, blockSize, { reuseBuffers: true, heldBlocks: inFlight + 1, readAheadBytes: COMPRESSED_READ_AHEAD });
  async function* blocks(): AsyncGenerator<{ index: number; data: Uint8Array }> {
    for await (const g of groups) for (let i = 0; i < g.count; i++) yield { index: g.first + i, data: blockOf(g, i) };
  }
  const packed = mapOrdered(blocks(), inFlight, async (b): Promise<{ index: number; block?: PackedBlock<P> }> => {
    if (isAllZero(b.data)) return { index: b.index };
    return { index: b.index, block: { index: b.index, data: b.data, packed: await opts.pack(b.data, compressor) } };
  });
  for await (const { index, block } of packed) {
    if (block) yield block;
    opts.onProgress?.(Math.min(disk.size, (index + 1) * blockSize));
  }
}
