/**
 * Decoders for compressed images, each streaming (nothing held whole in memory), each loaded
 * only when such an input is opened: gzip through node:zlib; zstd through node:zlib where the
 * runtime has it (Node 22.15+, 23.8+), else fzstd (pure JS); xz through xz-decompress (liblzma
 * compiled to WebAssembly; the blocks of a multi-block file on every core, xz-parallel.ts); bzip2 through unbzip2-stream (pure JS); a zip's one image through
 * yauzl (deflate or stored entries).
 */
import { createReadStream } from 'node:fs';
import type { CompressionKind } from '../../../formats/common/compression.js';
import { DiskmintError, isSystemError } from '../../model/errors.js';

/** A decoder's complaint: the stream is damaged or truncated (whatever the library threw). */
export class DecodeError extends Error {}

/**
 * The decompressed bytes of the file at `path`, in order, in chunks of any size, each valid
 * until the next is asked for (the parallel xz decoder reuses their memory). A decoder's
 * failure (some throw TypeErrors on a truncated stream) is a DecodeError; a DiskmintError (a zip
 * holding several images) and an error reading the file itself pass as they are.
 */
export async function* decompressedChunks(path: string, kind: CompressionKind): AsyncGenerator<Uint8Array> {
  try {
    yield* decoded(path, kind);
  } catch (err) {
    if (err instanceof DiskmintError || (isSystemError(err) && err.syscall !== undefined)) throw err;
    throw new DecodeError(err instanceof Error ? err.message : String(err));
  }
}

async function* decoded(path: string, kind: CompressionKind): AsyncGenerator<Uint8Array> {
  switch (kind) {
    case 'gzip': {
      const { createGunzip } = await import('node:zlib'); // loaded only for such an input: start-up stays lean
      yield* createReadStream(path).pipe(createGunzip());
      return;
    }
    case 'zstd':
      yield* zstdChunks(path);
      return;
    case 'xz': {
      // A file of many blocks (xz -T) is decoded on every core; any other, as a stream.
      const { parallelXzLayout, parallelXzChunks } = await import('./xz-parallel.js');
      const layout = await parallelXzLayout(path);
      if (layout) {
        yield* parallelXzChunks(path, layout);
        return;
      }
      const { XzReadableStream } = await import('xz-decompress');
      const { Readable } = await import('node:stream');
      const web = Readable.toWeb(createReadStream(path)) as unknown as ReadableStream<Uint8Array>;
      yield* Readable.fromWeb(new XzReadableStream(web) as Parameters<typeof Readable.fromWeb>[0]);
      return;
    }
    case 'bzip2': {
      const { default: bz2 } = await import('unbzip2-stream');
      const { PassThrough } = await import('node:stream');
      // An old-style `through` stream: piped into a stream that iterates, its errors passed on.
      const source = createReadStream(path);
      const decoder = bz2();
      const out = new PassThrough();
      for (const s of [source, decoder]) s.on('error', (e: Error) => out.destroy(e));
      source.pipe(decoder).pipe(out);
      yield* out as AsyncIterable<Buffer>;
      return;
    }
    case 'zip':
      yield* await zipEntryStream(path);
      return;
  }
}

async function* zstdChunks(path: string): AsyncGenerator<Uint8Array> {
  const zlib = await import('node:zlib');
  const native = (zlib as { createZstdDecompress?: () => import('node:zlib').Gunzip }).createZstdDecompress;
  if (native) {
    yield* createReadStream(path).pipe(native()) as AsyncIterable<Buffer>;
    return;
  }
  const { Decompress } = await import('fzstd');
  const out: Uint8Array[] = [];
  const d = new Decompress((chunk) => void out.push(chunk));
  for await (const input of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    d.push(input);
    yield* out.splice(0);
  }
  d.push(new Uint8Array(0), true); // throws on a truncated stream
  yield* out.splice(0);
}

/** Entries that are not images: folders and the resource forks macOS adds to archives. */
const isImageEntry = (name: string) => !name.endsWith('/') && !name.startsWith('__MACOSX/') && !/(^|\/)\.DS_Store$/.test(name);

/** The one image a zip holds, as a stream; a zip of none or several is refused, naming them. */
async function zipEntryStream(path: string): Promise<import('node:stream').Readable> {
  const yauzl = await import('yauzl');
  const zip = await new Promise<import('yauzl').ZipFile>((ok, fail) =>
    yauzl.open(path, { lazyEntries: true, autoClose: false }, (e, z) => (e ? fail(e) : ok(z))),
  );
  const entries: import('yauzl').Entry[] = [];
  await new Promise<void>((ok, fail) => {
    zip.on('entry', (e: import('yauzl').Entry) => {
      if (isImageEntry(e.fileName)) entries.push(e);
      zip.readEntry();
    });
    zip.on('end', ok);
    zip.on('error', fail);
    zip.readEntry();
  });
  if (entries.length !== 1) {
    zip.close();
    const names = entries.map((e) => e.fileName);
    throw new DiskmintError(
      'BAD_ARGUMENT',
      entries.length
        ? `${path} holds ${entries.length} files (${names.slice(0, 8).join(', ')}${names.length > 8 ? ', ...' : ''}); a zip must hold one image: unpack the one you want`
        : `${path} is a zip that holds no file`,
    );
  }
  const stream = await new Promise<import('node:stream').Readable>((ok, fail) => zip.openReadStream(entries[0], (e, s) => (e ? fail(e) : ok(s))));
  stream.on('close', () => zip.close());
  return stream;
}
