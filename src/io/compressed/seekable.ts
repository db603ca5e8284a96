/**
 * A compressed image read where it is asked, nothing else decoded: an .xz file of many blocks
 * (xz -T, and xz 5.6 by default; its index, The .xz File Format 1.2.1 section 4, gives every
 * block's place and size) or a zstd file of many frames that each record their size (RFC 8878
 * 3.1.1.1.4 Frame_Content_Size; diskmint's own .zst output, pzstd) is a list of units, each
 * decodable alone. A read decodes the units it covers; the latest are kept (UNIT_CACHE bytes),
 * so reads that go forward decode each unit once. `info` on a card image reads its tables from
 * the first unit instead of decoding the whole image into a temp file first.
 *
 * Only the layout is trusted here, not the data: a unit whose data is damaged fails the read
 * that needs it, naming the unit; the rest of the image still reads.
 *
 * Reads all over the image (a file system check) would decode units again and again once they
 * leave the cache: past spoolAfter() bytes decoded, the image is decoded whole into a temp file
 * once (spool.ts), which serves every read from then on; so does asking for its data spans.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { closeSync, fstatSync, openSync } from 'node:fs';
import type { CompressionKind } from '../../../formats/common/compression.js';
import { DiskmintError } from '../../model/errors.js';
import type { DiskReader } from '../../model/disk-reader.js';
import { xzBlocksStream, type XzLayout } from './xz-blocks.js';
import { readXzLayout, readZstdFrames } from './recorded-size.js';
import { spoolDecompressed, type SpooledImage } from './spool.js';
import { zstdDecompress } from '../zstd.js';

/** Decoded units kept for later reads (the latest first to stay; at least one whatever its size). */
const UNIT_CACHE = 64 << 20;
/** Largest unit decoded whole; a file of larger ones is decoded front to back instead (xz -9 -T cuts 192 MiB blocks). */
const MAX_UNIT = 64 << 20;
/** Bytes decoded unit by unit before the image is decoded whole instead: twice the cache, or a quarter of the image if more. */
const spoolAfter = (size: number, cacheBytes: number) => Math.max(2 * cacheBytes, size / 4);

/** The cache's size (default UNIT_CACHE; tests make it small to see the spool take over). */
export interface SeekableOptions {
  cacheBytes?: number;
}

/** One independently decodable piece of the file. */
export interface CompressedUnit {
  fileOffset: number;
  fileLength: number;
  /** Where its bytes go in the decompressed image, and how many. */
  outputOffset: number;
  outputSize: number;
}

export interface SeekableCompressed extends DiskReader {
  readonly kind: CompressionKind;
  /** How many units the file holds. */
  readonly units: number;
  /** The image decoded whole into a temp file (once; reads go there from then on), with its data spans. */
  spooled(): Promise<SpooledImage>;
}

/**
 * `path` (compressed as `kind`) read by unit, when it is an .xz of several blocks or a zstd of
 * several frames, every one within MAX_UNIT; undefined otherwise (open it by decoding it whole).
 */
export async function openSeekableCompressed(path: string, kind: CompressionKind, opts: SeekableOptions = {}): Promise<SeekableCompressed | undefined> {
  const layout = kind === 'xz' || kind === 'zstd' ? unitLayout(path, kind) : undefined;
  if (!layout || layout.units.length < 2 || layout.units.some((u) => u.outputSize > MAX_UNIT)) return undefined;
  const file = await open(path, 'r');
  return seekableReader(path, kind, file, layout.units, kind === 'xz' ? xzUnitDecoder(layout.xz!) : zstdUnitDecoder(), opts.cacheBytes ?? UNIT_CACHE);
}

function unitLayout(path: string, kind: 'xz' | 'zstd'): { units: CompressedUnit[]; xz?: XzLayout } | undefined {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (kind === 'zstd') {
      const frames = readZstdFrames(fd, size);
      return frames && { units: frames };
    }
    const xz = readXzLayout(fd, size);
    const units = xz?.blocks.map((b) => ({ fileOffset: b.fileOffset, fileLength: b.totalSize, outputOffset: b.outputOffset, outputSize: b.outputSize }));
    return units && { units, xz };
  } finally {
    closeSync(fd);
  }
}

/** Turns unit `index`'s bytes (as stored) into its decompressed bytes, exactly `outputSize` of them. */
type UnitDecoder = (bytes: Uint8Array, unit: CompressedUnit, index: number) => Promise<Uint8Array>;

function seekableReader(
  path: string,
  kind: CompressionKind,
  file: FileHandle,
  units: CompressedUnit[],
  decode: UnitDecoder,
  cacheBytes: number,
): SeekableCompressed {
  const last = units[units.length - 1];
  const size = last.outputOffset + last.outputSize;
  /** Decoded units, least recently used first; a unit being decoded is there as its promise. */
  const cache = new Map<number, Promise<Uint8Array>>();
  let cached = 0;
  let decoded = 0;
  let whole: Promise<SpooledImage> | undefined;
  let wholeFile: DiskReader | undefined;
  const spooled = () =>
    (whole ??= spoolDecompressed(path, kind).then((s) => {
      wholeFile = s.file;
      cache.clear();
      cached = 0;
      return s;
    }));
  const unitBytes = (i: number): Promise<Uint8Array> => {
    let got = cache.get(i);
    if (got) {
      cache.delete(i);
      cache.set(i, got); // most recently used last
      return got;
    }
    const u = units[i];
    got = (async () => {
      const stored = new Uint8Array(u.fileLength);
      const { bytesRead } = await file.read(stored, 0, u.fileLength, u.fileOffset);
      if (bytesRead !== u.fileLength) throw new DiskmintError('INPUT', `${path} ends inside ${unitName(kind, i, units.length)} (it changed while being read?)`);
      let out: Uint8Array;
      try {
        out = await decode(stored, u, i);
      } catch (err) {
        throw new DiskmintError('NOT_A_DISK', `${path}: ${unitName(kind, i, units.length)} is damaged (${(err as Error).message})`);
      }
      if (out.length !== u.outputSize)
        throw new DiskmintError(
          'NOT_A_DISK',
          `${path}: ${unitName(kind, i, units.length)} holds ${out.length} bytes, not the ${u.outputSize} its ${kind === 'xz' ? 'index' : 'header'} records`,
        );
      return out;
    })();
    const settled = got;
    // A failed unit is not kept (the next read tries again), nor counted as held.
    settled.catch(() => {
      if (cache.get(i) !== settled) return; // already evicted
      cache.delete(i);
      cached -= u.outputSize;
    });
    cache.set(i, got);
    cached += u.outputSize;
    decoded += u.outputSize;
    for (const [j] of cache) {
      if (cached <= cacheBytes || cache.size <= 1) break;
      cache.delete(j);
      cached -= units[j].outputSize;
    }
    return got;
  };
  /** The unit holding byte `at` (0 <= at < size): a binary search on the output offsets. */
  const unitAt = (at: number): number => {
    let [lo, hi] = [0, units.length - 1];
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (units[mid].outputOffset <= at) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  return {
    kind,
    size,
    units: units.length,
    spooled,
    async read(offset, length, into) {
      if (!wholeFile && decoded > spoolAfter(size, cacheBytes)) await spooled();
      if (wholeFile) return wholeFile.read(offset, length, into);
      const start = Math.min(Math.max(0, offset), size);
      const n = Math.min(size - start, Math.max(0, length));
      const out = into && into.length >= n ? into.subarray(0, n) : new Uint8Array(n);
      for (let at = start, i = n ? unitAt(start) : 0; at < start + n; i++) {
        const u = units[i];
        const from = at - u.outputOffset;
        const k = Math.min(u.outputSize - from, start + n - at);
        out.set((await unitBytes(i)).subarray(from, from + k), at - start);
        at += k;
      }
      return out;
    },
    async close() {
      cache.clear();
      const s = await whole?.catch(() => undefined);
      await s?.file.close(); // removes the temp file
      await file.close();
    },
  };
}

const unitName = (kind: CompressionKind, i: number, count: number) => `${kind === 'xz' ? 'block' : 'frame'} ${i + 1} of ${count}`;

/** An .xz block decoded as a stream of its own (xz-blocks.ts) by the streaming decoder (xz-decompress, WebAssembly). */
function xzUnitDecoder(layout: XzLayout): UnitDecoder {
  return async (bytes, unit, index) => {
    const { XzReadableStream } = await import('xz-decompress');
    const parts = xzBlocksStream(layout, [layout.blocks[index]], bytes);
    const source = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const p of parts) controller.enqueue(p);
        controller.close();
      },
    });
    const out = new Uint8Array(unit.outputSize);
    let at = 0;
    for await (const chunk of new XzReadableStream(source) as unknown as AsyncIterable<Uint8Array>) {
      if (at + chunk.length > out.length) throw new Error('it holds more than the index records');
      out.set(chunk, at);
      at += chunk.length;
    }
    return at === out.length ? out : out.subarray(0, at);
  };
}

/** A zstd frame decoded by this process's zstd engine (io/zstd.ts: node:zlib's libzstd, else WebAssembly). */
function zstdUnitDecoder(): UnitDecoder {
  return (bytes, unit) => zstdDecompress(bytes, unit.outputSize);
}
