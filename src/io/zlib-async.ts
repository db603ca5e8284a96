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

/** ZSTD_compressBound (zstd.h): the most a block of `n` bytes can take compressed. */
export const zstdCompressBound = (n: number): number => n + (n >>> 8) + (n < 131072 ? (131072 - n) >>> 11 : 0);

/** The parts of a node:zlib stream that onePass uses (`_processChunk` is the entry zlib's own sync calls use). */
interface PassStream {
  _processChunk?(chunk: Uint8Array, flushFlag: number, done: (err?: Error | null) => void): void;
  read(): Buffer | null;
  once(event: 'error', listener: (err: Error) => void): void;
  close(): void;
}
interface ZlibWithZstd {
  createZstdCompress?(opts: { chunkSize: number; params: Record<number, number> }): PassStream;
  constants: { ZSTD_c_compressionLevel?: number; ZSTD_e_end?: number };
}

/** True when this Node's zlib streams have the single-pass entry (checked on a throw-away stream). */
function hasOnePass(probe: PassStream): boolean {
  const ok = typeof probe._processChunk === 'function';
  probe.close();
  return ok;
}

/**
 * All of `data` through `stream` (made for this block, with room for its whole output) in one
 * pass on libuv's thread pool, ended with `endFlag`; the stream is closed after. Its output is
 * taken from the stream's buffer: a view, not a copy.
 */
function onePass(stream: PassStream, data: Uint8Array, endFlag: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    stream.once('error', reject); // a failed pass destroys the stream instead of calling back
    stream._processChunk!(data, endFlag, (err) => {
      const out = err ? undefined : stream.read();
      stream.close();
      if (err) reject(err);
      else resolve(out ?? Buffer.alloc(0));
    });
  });
}

/** RFC 1951 raw deflate, RFC 1950 zlib, or a whole RFC 1952 gzip member. */
export type DeflateWrapper = 'raw' | 'zlib' | 'gzip';

/**
 * Deflate of a whole block in one pass (onePass) through a stream made for it, with `chunkSize`
 * bytes of output room: the same bytes as the one-shot calls above given that room. The one-shot
 * calls go through the stream's Writable and Readable machinery and its events on this thread for
 * every block; this does not: 512 MiB of a UFS file system to a deflate qcow2 took 3.70 s instead
 * of 3.95 s (Node 26; 3.86 s instead of 4.07 s on Node 20). Undefined where the entry is missing:
 * then the one-shot calls.
 */
export function deflateOnePass(): ((data: Uint8Array, wrapper: DeflateWrapper, opts: ZlibOptions & { chunkSize: number }) => Promise<Buffer>) | undefined {
  const zlib = require('node:zlib') as typeof import('node:zlib');
  const open = (wrapper: DeflateWrapper, opts: ZlibOptions): PassStream =>
    (wrapper === 'raw' ? zlib.createDeflateRaw(opts) : wrapper === 'zlib' ? zlib.createDeflate(opts) : zlib.createGzip(opts)) as unknown as PassStream;
  if (!hasOnePass(open('raw', { level: 1 }))) return undefined;
  return (data, wrapper, opts) => onePass(open(wrapper, opts), data, zlib.constants.Z_FINISH);
}

/** deflateOnePass of this Node, found on first use; null where it lacks the entry. */
let onePassDeflate: ReturnType<typeof deflateOnePass> | null | undefined;

/**
 * `data` deflated whole (`wrapper`) with `chunkSize` bytes of output room, on libuv's thread
 * pool: deflateOnePass where this Node has its entry, else the one-shot call (the same bytes).
 */
export function deflateBlock(data: Uint8Array, wrapper: DeflateWrapper, opts: ZlibOptions & { chunkSize: number }): Promise<Buffer> {
  if (onePassDeflate === undefined) onePassDeflate = deflateOnePass() ?? null;
  if (onePassDeflate) return onePassDeflate(data, wrapper, opts);
  return promised(wrapper === 'raw' ? deflateRaw : wrapper === 'zlib' ? deflate : gzip, data, opts);
}

/**
 * node:zlib's libzstd on libuv's thread pool, one block at a time, as one ZSTD_e_end pass
 * (onePass) over the whole block with ZSTD_compressBound bytes of room: the same bytes
 * zstdCompressSync gives (the one-shot `zstdCompress` instead writes the block, then ends the
 * frame with an extra empty block). Undefined when this Node has no zstd or no single-pass
 * entry: then worker threads compress (compress.ts).
 */
export function nativeZstdCompressor(): ((data: Uint8Array, level: number) => Promise<Uint8Array>) | undefined {
  const zlib = require('node:zlib') as ZlibWithZstd;
  const { ZSTD_c_compressionLevel: LEVEL, ZSTD_e_end: END } = zlib.constants;
  if (typeof zlib.createZstdCompress !== 'function' || LEVEL === undefined || END === undefined) return undefined;
  const open = (data: Uint8Array, level: number) =>
    zlib.createZstdCompress!({ chunkSize: Math.max(64, zstdCompressBound(data.length)), params: { [LEVEL]: level } });
  if (!hasOnePass(open(new Uint8Array(0), 3))) return undefined;
  return (data, level) => onePass(open(data, level), data, END);
}
