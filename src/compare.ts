/**
 * `diskmint compare A B`: do two images hold the same disk, whatever their formats (qemu-img
 * compare's question)? Only ranges that either image has allocated are read; what neither has
 * is zeros in both. Images of different sizes match when the larger one holds only zeros past
 * the smaller one's end, unless `strict`.
 */
import { openDisk, type OpenDiskOptions } from './open-disk.js';
import { unionOfRanges } from './containers/blocks.js';
import type { ContainerReader } from './containers/types.js';

/** Bytes compared per read of each image. */
const COMPARE_CHUNK = 1 << 20;
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

/** Compare the disks two image files hold (any formats diskmint reads). */
export async function compareImages(pathA: string, pathB: string, opts: CompareOptions = {}): Promise<CompareResult> {
  const a = await openDisk(pathA, opts);
  try {
    const b = await openDisk(pathB, opts);
    try {
      const describe = (path: string, r: ContainerReader) => ({ path, format: r.subformat ? `${r.format} (${r.subformat})` : r.format, size: r.size });
      const base = { a: describe(pathA, a.reader), b: describe(pathB, b.reader) };
      const differs = (at: number, reason: 'content' | 'size'): CompareResult => ({
        ...base,
        identical: false,
        firstDifference: at,
        firstDifferenceSector: Math.floor(at / SECTOR) * SECTOR,
        reason,
      });
      const common = Math.min(a.reader.size, b.reader.size);
      if (opts.strict && a.reader.size !== b.reader.size) return differs(common, 'size');
      const at = await firstDifference(a.reader, b.reader);
      return at === undefined ? { ...base, identical: true } : differs(at, 'content');
    } finally {
      await b.reader.close();
    }
  } finally {
    await a.reader.close();
  }
}

/**
 * The first byte where the two disks differ, reading only where either has data; past the
 * smaller disk's end, the larger one's bytes are compared with zeros. Undefined when none.
 */
async function firstDifference(a: ContainerReader, b: ContainerReader): Promise<number | undefined> {
  for await (const range of unionOfRanges(a.allocatedRanges(), b.allocatedRanges())) {
    const end = Math.min(range.offset + range.length, Math.max(a.size, b.size));
    for (let at = range.offset; at < end; at += COMPARE_CHUNK) {
      const n = Math.min(COMPARE_CHUNK, end - at);
      const [x, y] = await Promise.all([readPadded(a, at, n), readPadded(b, at, n)]);
      if (Buffer.compare(x, y) !== 0) return at + firstUnequalByte(x, y);
    }
  }
  return undefined;
}

/** `n` bytes at `offset`, zeros past the disk's end (how a smaller image compares). */
async function readPadded(disk: ContainerReader, offset: number, n: number): Promise<Uint8Array> {
  const bytes = offset < disk.size ? await disk.read(offset, Math.min(n, disk.size - offset)) : new Uint8Array(0);
  if (bytes.length === n) return bytes;
  const padded = new Uint8Array(n);
  padded.set(bytes);
  return padded;
}

function firstUnequalByte(x: Uint8Array, y: Uint8Array): number {
  let i = 0;
  // Whole 4 KiB blocks first (memcmp), then the bytes of the block that differs.
  while (i + 4096 <= x.length && Buffer.compare(x.subarray(i, i + 4096), y.subarray(i, i + 4096)) === 0) i += 4096;
  while (x[i] === y[i]) i++;
  return i;
}
