/**
 * Raw images: the disk's bytes as they are (mkimg's raw.c). Raw is the fallback format: any file
 * no other handler claims is read as raw, so it is detected last. Written sparse to a file (all
 * zero blocks left as holes), or every byte, in order, to a pipe; or compressed, as card images
 * ship (`-o compression=zstd|gzip|xz`, or an output named `.zst`/`.gz`/`.xz`, and `-o level=N`:
 * compressed-writer.ts).
 * Compressed inputs are found by content before any handler (io/open-disk.ts).
 */
import type { ContainerHandler } from '../types.js';
import { rawContainer } from './reader.js';
import { writeRaw } from './writer.js';
import { rawOutputSettings, writeCompressedRaw } from './compressed-writer.js';

export const rawHandler: ContainerHandler = {
  format: 'raw',
  extensions: ['.raw', '.img', '.zst', '.gz', '.xz'],
  optionKeys: ['compression', 'level'],
  compresses: false,
  detect: async () => true,
  open: async (file, ctx) => rawContainer(file, ctx.path),
  checkOutput(outputPath, options) {
    rawOutputSettings(options, outputPath);
  },
  async write(disk, sink, ctx) {
    const { compression, level } = rawOutputSettings(ctx.options, ctx.outputPath, ctx.compress?.level);
    if (compression) await writeCompressedRaw(disk, sink, compression, { threads: ctx.threads, level });
    else await writeRaw(disk, sink);
  },
};
