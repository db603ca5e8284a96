/**
 * Compressed raw images, the way card images ship (`fw.img.zst`, `fw.img.gz`, `fw.img.xz`): the
 * disk's bytes, zeros included, cut into pieces, each compressed on its own and written in
 * order. zstd and gzip go through the one compressor (containers/compress.ts), 4 MiB a piece,
 * on every core: a zstd frame each (RFC 8878 3.1: concatenated frames are one stream) or a gzip
 * member each (RFC 1952 2.2: concatenated members are one file; `gzip -d`, `zcat` and node:zlib
 * read them all). xz is one stream of 8 MiB blocks (xz-writer.ts), as `xz -T` writes, through
 * the optional encoder @napi-rs/lzma, as many blocks at once as its memory allows unless
 * `--threads` says: where npm did not install it (Node before 22.20) an .xz output is refused
 * before anything is read, naming the alternatives. A piece of zeros is compressed
 * once and its bytes reused, so a 4 GiB card with 600 MiB of data costs the data. The bytes do
 * not depend on `--threads`. `-o level=N` sets the level (gzip 0-9, zstd 1-22, xz 0-9).
 */
import { DiskmintError } from '../../model/errors.js';
import type { VirtualDisk } from '../../model/extents.js';
import type { ByteSink } from '../../io/sink.js';
import { mapOrdered } from '../../io/concurrency.js';
import { FileCache, readRunInto } from '../../io/run-reader.js';
import { isAllZero } from '../../io/zero-blocks.js';
import { createCompressor } from '../compress.js';
import { refuseWithoutXzEncoder, writeXzRaw } from './xz-writer.js';

export type RawCompression = 'gzip' | 'zstd' | 'xz';

const PIECE = 4 << 20;
const EXTENSIONS: Record<string, RawCompression> = { '.gz': 'gzip', '.zst': 'zstd', '.xz': 'xz' };
const LEVELS: Record<RawCompression, [min: number, max: number]> = { gzip: [0, 9], zstd: [1, 22], xz: [0, 9] };

/**
 * What a raw output asks for: the compression (`-o compression=`, else the output name's
 * extension; undefined for plain raw) and its level (`-o level=`, else `level`). Refuses, before
 * anything is read or written, other keys, an unknown compression or level, and .xz where its
 * encoder is not installed.
 */
export function rawOutputSettings(
  options: Readonly<Record<string, string>>,
  outputPath: string,
  level?: number,
): { compression?: RawCompression; level?: number } {
  const keys = Object.keys(options).filter((k) => k !== 'compression' && k !== 'level');
  if (keys.length) throw new DiskmintError('BAD_ARGUMENT', `raw output takes only -o compression=zstd|gzip|xz|none and level=N (got ${keys.join(', ')})`);
  const name = options.compression ?? EXTENSIONS[/\.[a-z]+$/i.exec(outputPath)?.[0].toLowerCase() ?? ''];
  if (name !== undefined && name !== 'none' && !Object.hasOwn(LEVELS, name))
    throw new DiskmintError('BAD_ARGUMENT', `raw compression "${name}" is not one of gzip, zstd, xz, none`);
  const compression = name === 'none' ? undefined : (name as RawCompression | undefined);
  if (options.level !== undefined) {
    if (!compression) throw new DiskmintError('BAD_ARGUMENT', '-o level=N needs a compressed raw output (.zst, .gz, .xz or -o compression=)');
    const [min, max] = LEVELS[compression];
    if (!/^-?\d+$/.test(options.level) || Number(options.level) < min || Number(options.level) > max)
      throw new DiskmintError('BAD_ARGUMENT', `-o level=${options.level}: ${compression} levels go from ${min} to ${max}`);
    level = Number(options.level);
  }
  if (compression === 'xz') refuseWithoutXzEncoder();
  return { compression, level };
}

/** Write `disk` into `sink` as one `kind` stream, compressed in pieces on `threads` cores at `level`. */
export async function writeCompressedRaw(
  disk: VirtualDisk,
  sink: ByteSink,
  kind: RawCompression,
  opts: { threads?: number; level?: number } = {},
): Promise<void> {
  if (kind === 'xz') return writeXzRaw(disk, sink, opts);
  const compressor = createCompressor({ threads: opts.threads });
  const files = new FileCache();
  let zeroPiece: Promise<Uint8Array> | undefined;
  const pack = (data: Uint8Array) => compressor.compress(data, kind === 'gzip' ? 'gzip' : 'zstd', opts.level);
  try {
    const offsets = function* () {
      for (let at = 0; at < disk.size; at += PIECE) yield at;
    };
    const compressed = mapOrdered(offsets(), compressor.concurrency + 1, async (at) => {
      const n = Math.min(PIECE, disk.size - at);
      const data = await readPiece(disk, at, n, files);
      if (n === PIECE && isAllZero(data)) return (zeroPiece ??= pack(data)); // same bytes in, same bytes out
      return pack(data);
    });
    for await (const bytes of compressed) await sink.write(bytes);
  } finally {
    await files.closeAll();
    await compressor.close();
  }
}

/** The disk's bytes at [at, at + n): its runs, zeros between them. */
async function readPiece(disk: VirtualDisk, at: number, n: number, files: FileCache): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  for (const run of disk.runs(at, at + n)) await readRunInto(run, 0, out.subarray(run.offset - at, run.offset - at + run.length), files); // clipped runs
  return out;
}
