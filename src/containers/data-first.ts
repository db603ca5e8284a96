/**
 * The data pass of a container written data first to a file (qcow2, dynamic VHD and VHDX,
 * sparse VMDK): the writer skips its table area, this writes the disk's non-zero blocks back to
 * back, and the writer then fills its tables from where each block went and writes them with
 * pwrite. One read of the source, and all-zero blocks are found while copying and left out
 * (as qemu-img does), which a table written first, from the extent map alone, cannot do.
 */
import type { VirtualDisk } from '../model/extents.js';
import { isAllZero, readBlocks } from './blocks.js';
import type { ByteSink } from '../io/sink.js';

/** Blocks smaller than this are read this many bytes at a time, and neighbours written together. */
const READ_CHUNK = 1 << 20;

export interface NonZeroBlocksOptions {
  /** Bytes written before each stored block (a dynamic VHD's sector bitmap). */
  prefix?: Uint8Array;
  /** The k-th stored block (from 0) is disk block `index`: the caller records where it went. */
  onStored(index: number, k: number): void;
  /** Bytes of the disk done so far, after each read chunk. */
  onProgress?(done: number): void;
}

/**
 * Every non-zero block of `disk` in ascending order, written at the sink's position and on, each
 * after `prefix` when given: the k-th stored block starts `k * (prefix + blockSize)` bytes in.
 * A final block that the disk's end cuts short is stored whole, zero-padded. Returns how many
 * blocks were stored. The sink must be a file sink (done with each write's bytes when it
 * resolves): reads go into reused buffers.
 */
export async function writeNonZeroBlocks(disk: VirtualDisk, sink: ByteSink, blockSize: number, opts: NonZeroBlocksOptions): Promise<number> {
  const chunk = Math.max(blockSize, Math.floor(READ_CHUNK / blockSize) * blockSize);
  const perChunk = chunk / blockSize;
  const lastBlock = Math.ceil(disk.size / blockSize) - 1;
  let stored = 0;
  for await (const { index, data } of readBlocks(disk, chunk, { reuseBuffers: true })) {
    // Neighbouring stored blocks of one chunk go out as one write (no prefix between them).
    let runStart = -1;
    const flush = async (end: number) => {
      if (runStart >= 0) await sink.write(data.subarray(runStart * blockSize, end * blockSize));
      runStart = -1;
    };
    const first = index * perChunk;
    for (let i = 0; i < perChunk && first + i <= lastBlock; i++) {
      const block = data.subarray(i * blockSize, (i + 1) * blockSize);
      if (isAllZero(block)) {
        await flush(i);
        continue;
      }
      opts.onStored(first + i, stored++);
      if (opts.prefix) {
        await sink.write(opts.prefix);
        await sink.write(block);
      } else if (runStart < 0) runStart = i;
    }
    await flush(Math.min(perChunk, lastBlock - first + 1));
    opts.onProgress?.(Math.min(disk.size, (first + perChunk) * blockSize));
  }
  return stored;
}
