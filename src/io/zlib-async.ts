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

/**
 * The parts of a node:zlib stream that a pass uses: `_processChunk` is the entry zlib's own sync
 * calls use; `_outBuffer`/`_outOffset` are where its output goes (a pass starts at offset 0 of the
 * stream's buffer, which has room for the whole block).
 */
interface PassStream {
  _processChunk?(chunk: Uint8Array, flushFlag: number, done: (err?: Error | null) => void): void;
  _outBuffer?: unknown;
  _outOffset?: unknown;
  readonly destroyed: boolean;
  reset(): void;
  read(): Buffer | null;
  on(event: 'error', listener: (err: Error) => void): void;
  once(event: 'error', listener: (err: Error) => void): void;
  off(event: 'error', listener: (err: Error) => void): void;
  close(): void;
}
interface ZlibWithZstd {
  createZstdCompress?(opts: { chunkSize: number; params: Record<number, number> }): PassStream;
  constants: { ZSTD_c_compressionLevel?: number; ZSTD_e_end?: number };
}

/** True when this Node's zlib streams have what a pass uses (checked on a throw-away stream). */
function hasOnePass(probe: PassStream): boolean {
  const ok = typeof probe._processChunk === 'function' && typeof probe._outOffset === 'number' && Buffer.isBuffer(probe._outBuffer);
  probe.close();
  return ok;
}

/**
 * node:zlib streams for one-pass blocks, kept from block to block: one for each pass running at
 * once and each set of options, reset before each block (deflateReset, ZSTD_CCtx_reset with the
 * session only: the bytes of a new stream). A new stream per block (its JavaScript objects, its
 * output buffer, its native context) left garbage that Node 26 collected late: 2 GiB with 512 MiB
 * of random data to a zstd qcow2 peaked at 168-171 MB, with the streams kept 107-108 MB (deflate
 * 160 -> 105 MB, VMDK streamOptimized 165 -> 110 MB; the time within the noise). Closed with the
 * compressor that owns them.
 */
export class PassStreams {
  private readonly idle = new Map<string, PassStream[]>();
  private closed = false;

  /**
   * `data` through a stream of `key` (`open` makes one: with room for the whole block's output)
   * in one pass on libuv's thread pool, ended with `endFlag`. The output is copied out (the
   * stream's buffer takes its next block).
   */
  async pass(key: string, open: () => PassStream, data: Uint8Array, endFlag: number): Promise<Uint8Array> {
    let list = this.idle.get(key);
    if (!list) this.idle.set(key, (list = []));
    let stream = list.pop();
    while (stream?.destroyed) stream = list.pop(); // failed after its pass: never used again
    if (!stream) {
      stream = open();
      // An error after a pass ended (none is known to come) would otherwise be thrown with no
      // one to catch it; the stream, destroyed by it, is passed over above.
      stream.on('error', () => {});
    }
    const out = await onePass(stream, data, endFlag); // a failed pass closed its stream
    if (this.closed) stream.close();
    else list.push(stream);
    return out;
  }

  close(): void {
    this.closed = true;
    for (const list of this.idle.values()) for (const stream of list) stream.close();
    this.idle.clear();
  }
}

/** One pass of all of `data` through `stream`, from the start of its output buffer; a copy of the output. */
function onePass(stream: PassStream, data: Uint8Array, endFlag: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const failed = (err: Error) => {
      stream.close();
      reject(err);
    };
    stream.once('error', failed); // a failed pass destroys the stream instead of calling back
    stream.reset();
    stream._outOffset = 0;
    stream._processChunk!(data, endFlag, (err) => {
      stream.off('error', failed);
      if (err) return failed(err);
      // An ended block always has output (deflate's last block, zstd's frame header); none means
      // the stream was closed under the pass.
      const out = stream.read();
      if (!out) return failed(new Error('the compression stream gave no output for a whole block'));
      resolve(new Uint8Array(out));
    });
  });
}

/** RFC 1951 raw deflate, RFC 1950 zlib, or a whole RFC 1952 gzip member. */
export type DeflateWrapper = 'raw' | 'zlib' | 'gzip';

/**
 * Deflate of a whole block in one pass through one of `streams`, with `chunkSize` bytes of output
 * room: the same bytes as the one-shot calls above given that room. The one-shot calls go through
 * the stream's Writable and Readable machinery and its events on this thread for every block;
 * this does not: 512 MiB of a UFS file system to a deflate qcow2 took 3.70 s instead of 3.95 s
 * (Node 26; 3.86 s instead of 4.07 s on Node 20). Undefined where the entry is missing: then the
 * one-shot calls.
 */
export function deflateOnePass(
  streams: PassStreams,
): ((data: Uint8Array, wrapper: DeflateWrapper, opts: ZlibOptions & { chunkSize: number }) => Promise<Uint8Array>) | undefined {
  const zlib = require('node:zlib') as typeof import('node:zlib');
  const open = (wrapper: DeflateWrapper, opts: ZlibOptions): PassStream =>
    (wrapper === 'raw' ? zlib.createDeflateRaw(opts) : wrapper === 'zlib' ? zlib.createDeflate(opts) : zlib.createGzip(opts)) as unknown as PassStream;
  if (!hasOnePass(open('raw', { level: 1 }))) return undefined;
  return (data, wrapper, opts) => {
    const key = JSON.stringify([wrapper, opts.level, opts.windowBits, opts.memLevel, opts.strategy, opts.chunkSize]);
    return streams.pass(key, () => open(wrapper, opts), data, zlib.constants.Z_FINISH);
  };
}

/**
 * `data` deflated whole (`wrapper`) with `chunkSize` bytes of output room, on libuv's thread
 * pool: deflateOnePass where this Node has its entry, else the one-shot call (the same bytes).
 */
export function deflateBlocks(
  streams: PassStreams,
): (data: Uint8Array, wrapper: DeflateWrapper, opts: ZlibOptions & { chunkSize: number }) => Promise<Uint8Array> {
  const onePassDeflate = deflateOnePass(streams);
  if (onePassDeflate) return onePassDeflate;
  return (data, wrapper, opts) => promised(wrapper === 'raw' ? deflateRaw : wrapper === 'zlib' ? deflate : gzip, data, opts);
}

/**
 * node:zlib's libzstd on libuv's thread pool, one block at a time, as one ZSTD_e_end pass
 * through one of `streams` over the whole block with ZSTD_compressBound bytes of room: the same bytes
 * zstdCompressSync gives (the one-shot `zstdCompress` instead writes the block, then ends the
 * frame with an extra empty block). Undefined when this Node has no zstd or no single-pass
 * entry: then worker threads compress (compress.ts).
 */
export function nativeZstdCompressor(streams: PassStreams): ((data: Uint8Array, level: number) => Promise<Uint8Array>) | undefined {
  const zlib = require('node:zlib') as ZlibWithZstd;
  const { ZSTD_c_compressionLevel: LEVEL, ZSTD_e_end: END } = zlib.constants;
  if (typeof zlib.createZstdCompress !== 'function' || LEVEL === undefined || END === undefined) return undefined;
  const open = (data: Uint8Array, level: number) =>
    zlib.createZstdCompress!({ chunkSize: Math.max(64, zstdCompressBound(data.length)), params: { [LEVEL]: level } });
  if (!hasOnePass(open(new Uint8Array(0), 3))) return undefined;
  return (data, level) => streams.pass(JSON.stringify([level, data.length]), () => open(data, level), data, END);
}
