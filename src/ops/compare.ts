/**
 * `diskmint compare A B`: do two images (or partitions of them, `IMG:N`) hold the same disk,
 * whatever their formats (qemu-img compare's question)? Only ranges that either image has allocated are read; what neither has
 * is zeros in both. Images of different sizes match when the larger one holds only zeros past
 * the smaller one's end, unless `strict`.
 */
import type { OpenDiskOptions } from '../io/open-disk.js';
import { openImageSpec } from './image-spec.js';
import { readInto } from '../model/disk-reader.js';
import { unionOfRanges } from '../containers/blocks.js';
import { mapOrdered } from '../io/concurrency.js';
import { firstUnequalByte } from '../io/byte-compare.js';
import type { ContainerReader } from '../containers/types.js';

type Range = { offset: number; length: number };

/**
 * What comparing needs of a disk: an image's reader, or a virtual disk's (virtualDiskReader). A raw
 * image's `dataRanges` are compared as they are: its data is read once, not scanned for zeros first.
 */
export type ComparableDisk = Pick<ContainerReader, 'size' | 'read' | 'allocatedRanges' | 'dataRanges' | 'close'>;

/** How firstDifference reads the two disks: bytes per read of each, and chunks read ahead of the comparison. */
export interface CompareReads {
  chunk: number;
  readAhead: number;
}

/**
 * Readers whose reads run on libuv's threads: both images read a few chunks ahead. The ring of
 * buffers in flight (2 x (readAhead + 1) chunks, 10 MiB) stays in the CPU's cache, so the kernel's
 * copy and the comparison after it do not go out to memory: 1 MiB chunks took 0.19 s where 4 MiB
 * ones took 0.24 s (40 MiB ring) on a 2 GiB raw against its qcow2 with 512 MiB of data.
 */
export const POOLED_READS: CompareReads = { chunk: 1 << 20, readAhead: 4 };
/**
 * Readers that read on this thread (disk-reader.ts syncReads): nothing overlaps, so nothing is
 * read ahead, and two 256 KiB buffers, reused, stay in the core's own cache from the kernel's copy
 * to the comparison: compare of a 4 GiB raw holding 1 GiB against its qcow2 0.50-0.54 -> 0.42-0.45 s
 * (1 MiB chunks 4 ahead; qemu-img compare 0.53-0.63 s, bench/README.md).
 */
export const SYNC_READS: CompareReads = { chunk: 256 << 10, readAhead: 0 };
/** qemu-img compare reports a mismatch at the start of its 512-byte sector. */
const SECTOR = 512;

export interface CompareOptions extends OpenDiskOptions {
  /** Images of different sizes differ, even when the larger one's extra bytes are zeros. */
  strict?: boolean;
}

export interface CompareResult {
  identical: boolean;
  a: { path: string; format: string; size: number };
  b: { path: string; format: string; size: number };
  /** The first byte at which the disks differ (a size difference under `strict`: the smaller size). */
  firstDifference?: number;
  /** That byte's 512-byte sector start, where qemu-img compare reports the mismatch. */
  firstDifferenceSector?: number;
  /** Why they differ: 'content', or 'size' (strict). */
  reason?: 'content' | 'size';
}

/**
 * Compare the disks two images hold (any formats diskmint reads); `IMG:N` compares partition N
 * of an image (a slot against the file written into it, say).
 */
export async function compareImages(specA: string, specB: string, opts: CompareOptions = {}): Promise<CompareResult> {
  // Read on this thread (disk-reader.ts syncReads), compared with SYNC_READS.
  const open = (spec: string) => openImageSpec(spec, { syncReads: true, ...opts });
  const a = await open(specA);
  try {
    const b = await open(specB);
    try {
      const describe = (path: string, opened: { reader: ContainerReader; format: string }) => ({ path, format: opened.format, size: opened.reader.size });
      const base = { a: describe(specA, a), b: describe(specB, b) };
      const differs = (at: number, reason: 'content' | 'size'): CompareResult => ({
        ...base,
        identical: false,
        firstDifference: at,
        firstDifferenceSector: Math.floor(at / SECTOR) * SECTOR,
        reason,
      });
      const common = Math.min(a.reader.size, b.reader.size);
      if (opts.strict && a.reader.size !== b.reader.size) return differs(common, 'size');
      const at = await firstDifference(a.reader, b.reader, SYNC_READS);
      return at === undefined ? { ...base, identical: true } : differs(at, 'content');
    } finally {
      await b.reader.close();
    }
  } finally {
    await a.reader.close();
  }
}

/**
 * The first byte where the two disks differ, reading only where either has data: where both
 * have, their bytes are compared; where one has, its bytes with zeros (the other is not read).
 * Past the smaller disk's end, the larger one's bytes are compared with zeros. Undefined when none.
 * `reads` suits the readers: POOLED_READS, or SYNC_READS for readers opened with syncReads.
 */
export async function firstDifference(a: ComparableDisk, b: ComparableDisk, reads: CompareReads = POOLED_READS): Promise<number | undefined> {
  const { chunk, readAhead } = reads;
  const zeros = new Uint8Array(chunk);
  // Reads run readAhead chunks ahead of the comparison, into a ring of reused buffers: a slot
  // is refilled readAhead + 1 chunks later, after its chunk was compared (mapOrdered starts a
  // read when the next result is asked for).
  const ring = Array.from({ length: readAhead + 1 }, () => ({ a: new Uint8Array(0), b: new Uint8Array(0) }));
  let chunkNumber = 0;
  const readChunk = async ({ at, n, inA, inB }: Chunk) => {
    const slot = ring[chunkNumber++ % ring.length];
    if (inA && slot.a.length === 0) slot.a = new Uint8Array(chunk);
    if (inB && slot.b.length === 0) slot.b = new Uint8Array(chunk);
    const [x, y] = await Promise.all([
      inA ? readPadded(a, at, slot.a.subarray(0, n)) : zeros.subarray(0, n),
      inB ? readPadded(b, at, slot.b.subarray(0, n)) : zeros.subarray(0, n),
    ]);
    return { at, x, y };
  };
  for await (const { at, x, y } of mapOrdered(chunksToCompare(a, b, chunk), readAhead, readChunk)) {
    const i = firstUnequalByte(x, y);
    if (i !== undefined) return at + i;
  }
  return undefined;
}

interface Chunk {
  at: number;
  n: number;
  inA: boolean;
  inB: boolean;
}

/** `chunk`-byte pieces of every range either disk has data in, up to the larger disk's end. */
async function* chunksToCompare(a: ComparableDisk, b: ComparableDisk, chunk: number): AsyncGenerator<Chunk> {
  const ranges = (d: ComparableDisk) => d.dataRanges?.() ?? d.allocatedRanges();
  for await (const s of coverage(ranges(a), ranges(b))) {
    const end = Math.min(s.end, Math.max(a.size, b.size));
    for (let at = s.offset; at < end; at += chunk) yield { at, n: Math.min(chunk, end - at), inA: s.inA, inB: s.inB };
  }
}

/** The union of two ascending range streams, cut where either starts or ends, each piece saying whose it is. */
async function* coverage(
  rangesA: AsyncIterable<Range>,
  rangesB: AsyncIterable<Range>,
): AsyncGenerator<{ offset: number; end: number; inA: boolean; inB: boolean }> {
  const ia = unionOfRanges(rangesA); // each stream's own neighbours joined
  const ib = unionOfRanges(rangesB);
  let ra = (await ia.next()).value as Range | undefined;
  let rb = (await ib.next()).value as Range | undefined;
  let pos = 0;
  while (ra || rb) {
    const startA = ra ? Math.max(ra.offset, pos) : Infinity;
    const startB = rb ? Math.max(rb.offset, pos) : Infinity;
    const endA = ra ? ra.offset + ra.length : Infinity;
    const endB = rb ? rb.offset + rb.length : Infinity;
    const offset = Math.min(startA, startB);
    const inA = startA === offset;
    const inB = startB === offset;
    const end = Math.min(inA ? endA : startA, inB ? endB : startB);
    if (end > offset) yield { offset, end, inA, inB };
    pos = Math.max(pos, end);
    if (ra && endA <= pos) ra = (await ia.next()).value as Range | undefined;
    if (rb && endB <= pos) rb = (await ib.next()).value as Range | undefined;
  }
}

/** `into` filled from `offset`, zeros past the disk's end (how a smaller image compares). */
async function readPadded(disk: ComparableDisk, offset: number, into: Uint8Array): Promise<Uint8Array> {
  const n = offset < disk.size ? await readInto(disk, offset, into.subarray(0, Math.min(into.length, disk.size - offset))) : 0;
  return into.fill(0, n);
}
