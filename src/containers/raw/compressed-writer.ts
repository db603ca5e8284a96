/**
 * Compressed raw images, the way card images ship (`fw.img.zst`, `fw.img.gz`): the disk's bytes,
 * zeros included, cut into 4 MiB pieces, each compressed on its own on every core (the one
 * compressor, containers/compress.ts) and written in order: a zstd frame each (RFC 8878 3.1:
 * concatenated frames are one stream) or a gzip member each (RFC 1952 2.2: concatenated members
 * are one file; `gzip -d`, `zcat` and node:zlib read them all). A piece of zeros is compressed
 * once and its bytes reused, so a 4 GiB card with 600 MiB of data costs the data. The bytes do not
 * depend on `--threads`. xz is read but not written: no maintained encoder ships without a
 * compiler, so the writer refuses it and names the two that work.
 */
import { DiskmintError } from '../../model/errors.js';
import type { VirtualDisk } from '../../model/extents.js';
import type { ByteSink } from '../../io/sink.js';
import { mapOrdered } from '../../io/concurrency.js';
import { FileCache, readRunInto } from '../../io/run-reader.js';
import { isAllZero } from '../../io/zero-blocks.js';
import { createCompressor } from '../compress.js';

export type RawCompression = 'gzip' | 'zstd';

const PIECE = 4 << 20;

/** The compression an output asks for: `-o compression=`, else the output name's extension; undefined for plain raw. */
export function rawCompressionFor(option: string | undefined, outputPath: string): RawCompression | undefined {
  const name = option ?? ({ '.gz': 'gzip', '.zst': 'zstd', '.xz': 'xz' } as Record<string, string>)[/\.[a-z]+$/i.exec(outputPath)?.[0].toLowerCase() ?? ''];
  if (name === undefined || name === 'none') return undefined;
  if (name === 'gzip' || name === 'zstd') return name;
  if (name === 'xz')
    throw new DiskmintError(
      'BAD_ARGUMENT',
      'xz output is not written (diskmint reads .xz but ships no xz encoder); write .zst or .gz, or pipe `-O raw -` into xz',
    );
  throw new DiskmintError('BAD_ARGUMENT', `raw compression "${name}" is not one of gzip, zstd, none`);
}

/** Write `disk` into `sink` as one `kind` stream, compressed in pieces on `threads` cores at `level`. */
export async function writeCompressedRaw(
  disk: VirtualDisk,
  sink: ByteSink,
  kind: RawCompression,
  opts: { threads?: number; level?: number } = {},
): Promise<void> {
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
