/**
 * A raw image read as a container: its bytes are the virtual disk. Where data may be comes from
 * the kernel (lseek SEEK_DATA / SEEK_HOLE through io/kernel/, when it can answer: `dataMap`
 * 'kernel-seek-data'), or is the whole file ('scan'). Allocated ranges are the non-zero 64 KiB
 * blocks inside those (io/zero-blocks.ts): the same ranges on both paths, since the kernel's are
 * widened to whole blocks and a block outside them is a hole, all zeros.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { readInto, type DiskReader } from '../../model/disk-reader.js';
import type { ContainerReader } from '../types.js';
import { ZERO_BLOCK, nonZeroSpans } from '../../io/zero-blocks.js';
import { mapOrdered } from '../../io/concurrency.js';
import { piecesOf } from '../blocks.js';
import { seekDataIo, seekDataRanges, type Range } from '../../io/kernel/data-ranges.js';
import { kernelIo, type KernelIo } from '../../io/kernel/ffi.js';

const SCAN_CHUNK = 4 << 20; // a multiple of ZERO_BLOCK: chunks keep the blocks' grid
const SCAN_DEPTH = 4;

/** How a raw input's data is found: the kernel's map of the file, or reading all of it. */
export type DataMap = 'kernel-seek-data' | 'scan';

export interface RawContainer extends ContainerReader {
  /** The file's path, when it was opened from one (convert copies from it directly). */
  sourcePath?: string;
  dataMap: DataMap;
  /**
   * Ranges that may hold data, found without reading a byte: the kernel's data ranges widened to
   * whole 64 KiB blocks (the blocks' grid starts at byte 0), or the whole file on the 'scan' path.
   */
  dataRanges(): AsyncIterable<Range>;
}

/**
 * A raw file as a container; `path` (when given) is opened once more, for the kernel's map and the
 * scan. `io` overrides the kernel calls (undefined: the pure path), for tests.
 */
export async function rawContainer(file: DiskReader, path?: string, opts: { io?: KernelIo } = {}): Promise<RawContainer> {
  const handle = path === undefined ? undefined : await open(path, 'r');
  const io = handle && seekDataIo(handle.fd, 'io' in opts ? opts.io : kernelIo());
  const size = file.size;
  const dataRanges = async function* (): AsyncGenerator<Range> {
    if (!io || !handle) {
      if (size) yield { offset: 0, length: size };
      return;
    }
    yield* wholeBlocks(seekDataRanges(io, handle.fd, 0, size, path!), size);
  };
  return {
    format: 'raw',
    sourcePath: path,
    dataMap: io ? 'kernel-seek-data' : 'scan',
    size,
    read: (o, n, into) => file.read(o, n, into),
    close: async () => {
      await handle?.close();
      await file.close();
    },
    details: () => ({}),
    dataRanges,
    allocatedRanges: () => nonZeroRanges(file, handle, dataRanges()),
  };
}

/** `ranges` widened to whole ZERO_BLOCKs (clipped to `size`), neighbours joined. */
function* wholeBlocks(ranges: Iterable<Range>, size: number): Generator<Range> {
  let pending: { start: number; end: number } | undefined;
  for (const r of ranges) {
    const start = Math.floor(r.offset / ZERO_BLOCK) * ZERO_BLOCK;
    const end = Math.min(size, Math.ceil((r.offset + r.length) / ZERO_BLOCK) * ZERO_BLOCK);
    if (pending && start <= pending.end) pending.end = Math.max(pending.end, end);
    else {
      if (pending) yield { offset: pending.start, length: pending.end - pending.start };
      pending = { start, end };
    }
  }
  if (pending) yield { offset: pending.start, length: pending.end - pending.start };
}

/**
 * The non-zero ZERO_BLOCKs inside `ranges` (block-aligned), neighbours joined, read a few chunks
 * ahead through `handle` (or `file` without one).
 */
async function* nonZeroRanges(file: DiskReader, handle: FileHandle | undefined, ranges: AsyncIterable<Range>): AsyncGenerator<Range> {
  let span: Range | undefined; // the range found so far, joined across chunks
  // Reused buffers: a chunk is released before the read SCAN_DEPTH chunks later starts
  // (mapOrdered starts it when the next chunk is asked for), so one spare is plenty. Fresh
  // memory costs a page fault per 4 KiB, more than the read itself on some VMs.
  const ring: Uint8Array[] = [];
  let chunkNumber = 0;
  const readChunk = async ({ offset: at, length: n }: Range) => {
    const slot = chunkNumber++ % (SCAN_DEPTH + 1);
    const buf = (ring[slot] ??= new Uint8Array(SCAN_CHUNK)).subarray(0, n);
    if (!handle) return { at, chunk: buf.subarray(0, await readInto(file, at, buf)) };
    const { bytesRead } = await handle.read(buf, 0, n, at);
    return { at, chunk: buf.subarray(0, bytesRead) };
  };
  for await (const { at, chunk } of mapOrdered(piecesOf(ranges, SCAN_CHUNK), SCAN_DEPTH, readChunk)) {
    for (const [start, end] of nonZeroSpans(chunk)) {
      if (span && span.offset + span.length === at + start) span.length += end - start;
      else {
        if (span) yield span;
        span = { offset: at + start, length: end - start };
      }
    }
  }
  if (span) yield span;
}
