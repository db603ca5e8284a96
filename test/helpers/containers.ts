/** Test plumbing shared by the container suites: write a VirtualDisk with a handler, open a file with one. */
import { open } from 'node:fs/promises';
import { dirname, join, basename, isAbsolute, normalize, sep } from 'node:path';
import { openRawFile, type DiskReader } from '../../src/disk-reader.js';
import type { VirtualDisk } from '../../src/extents.js';
import { fileSink, streamSink, type ByteSink } from '../../src/containers/sink.js';
import { createCompressor } from '../../src/containers/compress.js';
import type { ContainerHandler, ContainerReader, WriteContext } from '../../src/containers/types.js';
import { FormatError } from '../../formats/errors.js';
import { PassThrough } from 'node:stream';

export async function writeWithHandler(
  handler: ContainerHandler,
  disk: VirtualDisk,
  path: string,
  opts: { options?: Record<string, string>; compress?: WriteContext['compress']; threads?: number; pipe?: boolean } = {},
): Promise<Buffer | undefined> {
  const compressor = createCompressor({ threads: opts.threads ?? 2 });
  const siblings: Array<{ close(): Promise<void> }> = [];
  const ctx: WriteContext = {
    options: opts.options ?? {},
    compress: opts.compress,
    compressor,
    outputPath: opts.pipe ? '-' : path,
    async createSiblingOutput(name: string): Promise<ByteSink> {
      const h = await open(join(dirname(path), name), 'w');
      siblings.push(h);
      return fileSink(h);
    },
  };
  try {
    if (opts.pipe) {
      const stream = new PassThrough();
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      const sink = streamSink(stream);
      await handler.write(disk, sink, ctx);
      await sink.finish();
      return Buffer.concat(chunks);
    }
    const h = await open(path, 'w');
    try {
      const sink = fileSink(h);
      await handler.write(disk, sink, ctx);
      await sink.finish();
    } finally {
      await h.close();
    }
    return undefined;
  } finally {
    for (const s of siblings) await s.close();
    await compressor.close();
  }
}

/** Open `path` with `handler`; siblings resolve inside the file's folder (absolute and .. refused). */
export async function openWithHandler(handler: ContainerHandler, path: string): Promise<ContainerReader> {
  const file = await openRawFile(path);
  return handler.open(file, {
    path,
    async openSibling(name: string): Promise<DiskReader> {
      if (isAbsolute(name) || normalize(name).split(sep).includes('..')) {
        throw new FormatError('BAD_VALUE', `extent file "${name}" is outside the image's folder`, handler.format);
      }
      return openRawFile(join(dirname(path), basename(normalize(name)) === normalize(name) ? name : normalize(name)));
    },
  });
}

/** Read a whole (small) disk into memory. */
export async function readAll(reader: DiskReader): Promise<Buffer> {
  const out = Buffer.alloc(reader.size);
  for (let at = 0; at < reader.size; at += 1 << 20) {
    const chunk = await reader.read(at, Math.min(1 << 20, reader.size - at));
    out.set(chunk, at);
  }
  return out;
}
