/**
 * `.xz` raw images, as `xz -T` writes them: one stream of 8 MiB blocks, each compressed on its
 * own (so the bytes do not depend on `--threads`, and readers, ours included, decode the blocks
 * on every core by the index), the container written by formats/common/xz-container.ts around
 * raw LZMA2 from @napi-rs/lzma (pure-Rust lzma-rust2, prebuilt per platform). That package is an
 * optional dependency: npm installs it only on the Node versions it declares (22.20+, 24.12+,
 * 25+), so it is loaded here, on the first .xz output, and its absence is a refusal before
 * anything is read or written.
 *
 * Its `lzma2.compressStream` runs the encoder on a thread of its own (napi's blocking pool), off
 * the JS thread, with an explicit preset and dictionary. It is fed in 64 KiB pieces: the
 * package's allocator (mimalloc) kept, measured, about the size of every larger piece that one
 * thread allocated and another freed (~9 MB more RSS per 8 MiB block fed whole); with small
 * pieces the RSS stays flat. An encoder's own memory is, measured, about 16 times its dictionary
 * with the binary-tree match finder (presets 4-9; the package's backend.rs says 11.5) and 8 times
 * with the hash chain (0-3): ~130-170 MB at preset 6. Unless `--threads` says how many, blocks
 * compress at once as xz -T0 runs threads: one a core, as many as a quarter of the memory holds
 * (xz(1), --memlimit-mt's default), the cgroup's limit where that is lower.
 */
import { createRequire } from 'node:module';
import { availableParallelism, totalmem } from 'node:os';
import { lzma2DictionaryProperty, xzBlock, xzStreamEnd, xzStreamHeader, type XzIndexRecord } from '../../../formats/common/xz-container.js';
import { concatBytes } from '../../../formats/common/bytes.js';
import { DiskmintError } from '../../model/errors.js';
import { crc32 } from '../../model/crc32.js';
import type { VirtualDisk } from '../../model/extents.js';
import type { ByteSink } from '../../io/sink.js';
import { concurrencyLimit, mapOrdered } from '../../io/concurrency.js';
import { FileCache, readRunInto } from '../../io/run-reader.js';
import { isAllZero } from '../../io/zero-blocks.js';

/** Uncompressed bytes a block (xz -T's blocks are 3 dictionaries; 8 MiB keeps two cores busy on small images). */
export const XZ_BLOCK = 8 << 20;
/** The input handed to the encoder in pieces of this size (see above). */
const FEED = 64 << 10;
/** xz's presets' dictionaries (liblzma's lzma_lzma_preset; lzma-rust2 uses the same), capped at a block. */
const PRESET_DICTIONARY = [256 << 10, 1 << 20, 2 << 20, 4 << 20, 4 << 20, 8 << 20, 8 << 20, 16 << 20, 32 << 20, 64 << 20];
/** xz's default preset. */
export const XZ_DEFAULT_LEVEL = 6;

const PACKAGE = '@napi-rs/lzma';
/** The one sentence that refuses .xz output where the encoder is not installed or does not load. */
export const XZ_ENCODER_MISSING =
  `xz output needs the optional encoder ${PACKAGE}, which npm installs on Node 22.20+, 24.12+ or 25+ (this is Node ${process.versions.node}); ` +
  'write .zst or .gz instead, or pipe `-O raw -` into `xz -T0`';

/** The part of @napi-rs/lzma used here (index.d.ts of 1.5.3). */
interface LzmaPackage {
  lzma2: {
    compressStream(input: ReadableStream<Uint8Array>, options: { preset: number; dictSize: number }): ReadableStream<Uint8Array>;
  };
}

let encoder: LzmaPackage | null | undefined;

/** The package, loaded on first use; undefined when it is absent or does not load (another Node, another platform). */
function loadEncoder(): LzmaPackage | undefined {
  if (encoder === undefined) {
    try {
      const pkg = createRequire(import.meta.url)(PACKAGE) as Partial<LzmaPackage>;
      encoder = typeof pkg.lzma2?.compressStream === 'function' ? (pkg as LzmaPackage) : null;
    } catch {
      encoder = null;
    }
  }
  return encoder ?? undefined;
}

/** Whether .xz output can be written here. */
export function xzEncoderAvailable(): boolean {
  return loadEncoder() !== undefined;
}

/** The encoder, or the refusal where .xz output cannot be written here. */
function requireEncoder(): LzmaPackage {
  const lzma = loadEncoder();
  if (!lzma) throw new DiskmintError('BAD_ARGUMENT', XZ_ENCODER_MISSING);
  return lzma;
}

/** Throws the refusal unless .xz output can be written here. */
export function refuseWithoutXzEncoder(): void {
  requireEncoder();
}

/** The LZMA2 settings of `level` (0-9): xz's preset, its dictionary capped at a block. */
export function xzSettings(level = XZ_DEFAULT_LEVEL): { preset: number; dictSize: number; property: number; memory: number } {
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new DiskmintError('BAD_ARGUMENT', `xz levels go from 0 to 9, not ${level}`);
  const dictSize = Math.min(PRESET_DICTIONARY[level], XZ_BLOCK);
  // Measured with lzma-rust2 0.17 (peak RSS, Node 26, 256 MiB of a UFS file system): preset 6
  // (8 MiB) 130 MB for one encoder, 170 MB more for a second; preset 3 (4 MiB) ~38 MB.
  const memory = (level >= 4 ? 16 : 8) * dictSize + (6 << 20);
  return { preset: level, dictSize, property: lzma2DictionaryProperty(dictSize), memory };
}

/**
 * What xz's threads may use between them when no limit is given (xz(1), --memlimit-mt: a quarter
 * of the total memory): a quarter of this machine's memory, or of the cgroup's limit where that
 * is lower (process.constrainedMemory: 0, undefined or a huge number when there is none).
 */
export function threadMemoryBudget(): number {
  const limit = process.constrainedMemory?.() ?? 0;
  return Math.floor(Math.min(totalmem(), limit > 0 ? limit : Infinity) / 4);
}

/**
 * How many blocks compress at once at `level`: `threads` when given (each encoder costs its
 * memory), else as xz -T0 decides: one a core, as many as `machine.memory` holds, at least one.
 */
export function xzConcurrency(
  level: number,
  threads?: number,
  machine: { cores: number; memory: number } = { cores: availableParallelism(), memory: threadMemoryBudget() },
): number {
  if (threads !== undefined) return Math.max(1, threads);
  return Math.max(1, Math.min(machine.cores, Math.floor(machine.memory / xzSettings(level).memory)));
}

/** Write `disk` into `sink` as one .xz stream of XZ_BLOCK blocks at `level` (0-9, default 6). */
export async function writeXzRaw(disk: VirtualDisk, sink: ByteSink, opts: { threads?: number; level?: number } = {}): Promise<void> {
  const lzma = requireEncoder();
  const settings = xzSettings(opts.level);
  const encoders = xzConcurrency(settings.preset, opts.threads);
  const withEncoderSlot = concurrencyLimit(encoders);
  // Input buffers, reused: at most encoders + 1 blocks are read at once (mapOrdered's window).
  const spare: Uint8Array[] = [];
  const files = new FileCache();
  let zeroBlock: Promise<Uint8Array[]> | undefined;
  const compress = (data: Uint8Array): Promise<Uint8Array[]> => withEncoderSlot(() => compressBlock(lzma, data, settings));
  const records: XzIndexRecord[] = [];
  try {
    await sink.write(xzStreamHeader());
    const offsets = function* () {
      for (let at = 0; at < disk.size; at += XZ_BLOCK) yield at;
    };
    const blocks = mapOrdered(offsets(), encoders + 1, async (at) => {
      const n = Math.min(XZ_BLOCK, disk.size - at);
      const data = spare.pop()?.fill(0).subarray(0, n) ?? new Uint8Array(XZ_BLOCK).subarray(0, n);
      try {
        for (const run of disk.runs(at, at + n)) await readRunInto(run, 0, data.subarray(run.offset - at, run.offset - at + run.length), files);
        const check = crc32(data);
        // A block of zeros is compressed once: same bytes in, same bytes out.
        const compressed = n === XZ_BLOCK && isAllZero(data) ? await (zeroBlock ??= compress(data)) : await compress(data);
        return { compressed, uncompressedSize: n, crc32: check, dictionaryProperty: settings.property };
      } finally {
        spare.push(new Uint8Array(data.buffer));
      }
    });
    for await (const block of blocks) {
      const { parts, record } = xzBlock(block);
      await sink.writeParts(parts);
      records.push(record);
    }
    await sink.write(xzStreamEnd(records));
  } finally {
    await files.closeAll();
  }
}

/** `data` as raw LZMA2 (end marker included) at `level`, the way each block is compressed (tests). */
export async function lzma2Compress(data: Uint8Array, level = XZ_DEFAULT_LEVEL): Promise<Uint8Array> {
  return concatBytes(await compressBlock(requireEncoder(), data, xzSettings(level)));
}

/** One block's raw LZMA2 data (end marker included), compressed off the JS thread, in the pieces it came in. */
async function compressBlock(lzma: LzmaPackage, data: Uint8Array, settings: { preset: number; dictSize: number }): Promise<Uint8Array[]> {
  let fed = 0;
  const input = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (fed >= data.length) return controller.close();
      controller.enqueue(data.subarray(fed, fed + FEED));
      fed += FEED;
    },
  });
  const parts: Uint8Array[] = [];
  try {
    const reader = lzma.lzma2.compressStream(input, { preset: settings.preset, dictSize: settings.dictSize }).getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) parts.push(r.value);
  } catch (err) {
    throw new DiskmintError('IO', `xz compression failed: ${(err as Error).message}`);
  }
  return parts;
}
