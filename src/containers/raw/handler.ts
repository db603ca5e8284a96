/**
 * Raw images: the disk's bytes as they are (mkimg's raw.c). Raw is the fallback format: any file
 * no other handler claims is read as raw, so it is detected last. Written sparse to a file (all
 * zero blocks left as holes), or every byte, in order, to a pipe; or compressed, as card images
 * ship (`-o compression=zstd|gzip`, or an output named `.zst`/`.gz`: compressed-writer.ts).
 * Compressed inputs are found by content before any handler (io/open-disk.ts).
 */
import { DiskmintError } from '../../model/errors.js';
import type { ContainerHandler } from '../types.js';
import { rawContainer } from './reader.js';
import { writeRaw } from './writer.js';
import { rawCompressionFor, writeCompressedRaw } from './compressed-writer.js';

export const rawHandler: ContainerHandler = {
  format: 'raw',
  extensions: ['.raw', '.img', '.zst', '.gz', '.xz'],
  optionKeys: ['compression'],
  compresses: false,
  detect: async () => true,
  open: async (file, ctx) => rawContainer(file, ctx.path),
  async write(disk, sink, ctx) {
    const keys = Object.keys(ctx.options).filter((k) => k !== 'compression');
    if (keys.length) throw new DiskmintError('BAD_ARGUMENT', `raw output takes only -o compression=zstd|gzip|none (got ${keys.join(', ')})`);
    const compression = rawCompressionFor(ctx.options.compression, ctx.outputPath);
    if (compression) await writeCompressedRaw(disk, sink, compression, { threads: ctx.threads, level: ctx.compress?.level });
    else await writeRaw(disk, sink);
  },
};
