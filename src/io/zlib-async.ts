/**
 * node:zlib's one-shot calls as promises, looked up at call time (not a module-level
 * `promisify(zlib.inflate)`), so loading a module that imports these does not load zlib: the
 * bundled CLI loads node:zlib on first use (scripts/bundle.mjs).
 */
import { deflate, deflateRaw, gzip, inflate, type ZlibOptions } from 'node:zlib';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

type OneShot = (data: Uint8Array, opts: ZlibOptions, done: (err: Error | null, out: Buffer) => void) => void;

function promised(call: OneShot, data: Uint8Array, opts: ZlibOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => call(data, opts, (err, out) => (err ? reject(err) : resolve(out))));
}

export function inflateAsync(data: Uint8Array, opts: ZlibOptions = {}): Promise<Buffer> {
  return promised(inflate, data, opts);
}

export function deflateAsync(data: Uint8Array, opts: ZlibOptions = {}): Promise<Buffer> {
  return promised(deflate, data, opts);
}

export function deflateRawAsync(data: Uint8Array, opts: ZlibOptions = {}): Promise<Buffer> {
  return promised(deflateRaw, data, opts);
}

export function gzipAsync(data: Uint8Array, opts: ZlibOptions = {}): Promise<Buffer> {
  return promised(gzip, data, opts);
}

/** ZSTD_compressBound (zstd.h): the most a block of `n` bytes can take compressed. */
export const zstdCompressBound = (n: number): number => n + (n >>> 8) + (n < 131072 ? (131072 - n) >>> 11 : 0);

/** The parts of node:zlib's zstd stream used here (absent before Node 22.15 and 23.8; not in @types/node 20). */
interface ZstdStream {
  _processChunk?(chunk: Uint8Array, flushFlag: number, done: (err?: Error | null) => void): void;
  read(): Buffer | null;
  once(event: 'error', listener: (err: Error) => void): void;
  close(): void;
}
interface ZlibWithZstd {
  createZstdCompress?(opts: { chunkSize: number; params: Record<number, number> }): ZstdStream;
  constants: { ZSTD_c_compressionLevel?: number; ZSTD_e_end?: number };
}

/**
 * node:zlib's libzstd on libuv's thread pool, one block at a time, as one ZSTD_e_end pass over
 * the whole block with ZSTD_compressBound bytes of room: the same bytes zstdCompressSync gives
 * (the one-shot `zstdCompress` instead writes the block, then ends the frame with an extra
 * empty block). That single pass is the zlib stream's `_processChunk`, the entry zlib's own
 * sync calls use; its output is taken from the stream's buffer when the pass is done. Undefined
 * when this Node has no zstd or no such entry: then worker threads compress (compress.ts).
 */
export function nativeZstdCompressor(): ((data: Uint8Array, level: number) => Promise<Uint8Array>) | undefined {
  const zlib = require('node:zlib') as ZlibWithZstd;
  const { ZSTD_c_compressionLevel: LEVEL, ZSTD_e_end: END } = zlib.constants;
  if (typeof zlib.createZstdCompress !== 'function' || LEVEL === undefined || END === undefined) return undefined;
  const open = (data: Uint8Array, level: number) =>
    zlib.createZstdCompress!({ chunkSize: Math.max(64, zstdCompressBound(data.length)), params: { [LEVEL]: level } });
  const probe = open(new Uint8Array(0), 3);
  const onePass = typeof probe._processChunk === 'function';
  probe.close();
  if (!onePass) return undefined;
  return (data, level) =>
    new Promise((resolve, reject) => {
      const stream = open(data, level);
      stream.once('error', reject); // a failed pass destroys the stream instead of calling back
      stream._processChunk!(data, END, (err) => {
        const out = err ? undefined : stream.read();
        stream.close();
        if (err) reject(err);
        else resolve(out ?? new Uint8Array(0));
      });
    });
}
