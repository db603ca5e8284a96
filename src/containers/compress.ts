/**
 * Compression on every core, in a deterministic order. Deflate runs on libuv's thread pool
 * (node:zlib's async API); so does zstd where this Node has it in node:zlib (22.15+, 23.8+;
 * zlib-async.ts nativeZstdCompressor), else it runs in worker threads holding a zstd
 * WebAssembly build (wasmZstdBuild; DISKMINT_ZSTD_WORKERS=1 puts native zstd in workers too, for tests).
 * Each block is compressed on its own, so output bytes never depend on the thread count.
 */
import { deflateBlocks, nativeZstdCompressor, PassStreams } from '../io/zlib-async.js';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { DiskmintError } from '../model/errors.js';
import { concurrencyLimit } from '../io/concurrency.js';
import { WASM_ZSTD_ENTRY, wasmZstdBuild, zstdEngine, type WasmZstdBuild, type ZstdEngine } from '../io/zstd.js';

/** deflate-raw: RFC 1951 (qcow2 clusters); zlib: RFC 1950 (VMDK streamOptimized grains); zstd: RFC 8878. */
export type CompressionKind = 'deflate-raw' | 'zlib' | 'gzip' | 'zstd';

export interface Compressor {
  /**
   * Blocks compressed at once: `--threads` when given, else the cores plus one. On Node's thread
   * pool a finished block waits for the main thread before the next starts, so as many blocks as
   * cores kept 1.45 of 2 cores busy (64 KiB deflate blocks on this VM) and one more 1.9. zstd in
   * worker threads runs one block per worker (as many as `--threads`, default the cores). A
   * pipeline keeps at least one more than this waiting (taken the moment a slot frees).
   */
  readonly concurrency: number;
  compress(data: Uint8Array, kind: CompressionKind, level?: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/**
 * zlib's deflateBound (zlib.h) for any windowBits and memLevel, plus gzip's wrapper (18 bytes,
 * RFC 1952 header and trailer, the largest): the most one block's deflate output can take.
 * Capped at 4 MiB (node:zlib allocates it whole for each call): a 2 MiB qcow2 cluster takes one
 * pass, a 4 MiB piece of a raw .gz two.
 */
export function deflateChunkSize(n: number): number {
  return Math.max(64, Math.min(4 << 20, n + ((n + 7) >> 3) + ((n + 63) >> 6) + 5 + 18));
}

/** qcow2 uses a 4 KiB window (QEMU block/qcow2-threads.c: windowBits -12). */
export const QCOW2_DEFLATE_WINDOW_BITS = 12;

/**
 * `zstd`: the engine for zstd blocks (default: zstdEngine(), chosen at the first zstd block);
 * `wasmBuild`: which WebAssembly build that engine uses (default: wasmZstdBuild()).
 */
export function createCompressor(opts: { threads?: number; zstd?: ZstdEngine; wasmBuild?: WasmZstdBuild } = {}): Compressor {
  const threads = Math.max(1, opts.threads ?? availableParallelism());
  const concurrency = opts.threads === undefined ? threads + 1 : threads;
  // Node's thread pool (deflate, native zstd) runs `concurrency` blocks at once; zstd workers
  // one block each (a worker's queue already keeps it busy: an extra block there only cost memory).
  const onPool = concurrencyLimit(concurrency);
  const inWorkers = concurrencyLimit(threads);
  let zstd: ZstdCompressor | undefined;
  const streams = new PassStreams();
  let deflateBlock: ReturnType<typeof deflateBlocks> | undefined;
  const deflateOne = async (data: Uint8Array, kind: Exclude<CompressionKind, 'zstd'>, level = 6): Promise<Uint8Array> => {
    // One pass on the thread pool per block: room for all of its output (else node:zlib returns
    // to this thread after every 16 KiB, and the pool waits on it). The bytes are the same at
    // levels 1-9; level 0's stored blocks are cut to the room given (zlib deflate.c deflate_stored).
    const chunkSize = deflateChunkSize(data.length);
    deflateBlock ??= deflateBlocks(streams);
    // gzip: a whole member: header (MTIME 0), data, CRC-32, ISIZE.
    if (kind !== 'deflate-raw') return deflateBlock(data, kind, { level, chunkSize });
    return deflateBlock(data, 'raw', { level, chunkSize, windowBits: QCOW2_DEFLATE_WINDOW_BITS });
  };
  return {
    concurrency,
    compress(data, kind, level) {
      if (kind !== 'zstd') return onPool(() => deflateOne(data, kind, level));
      const z = (zstd ??= zstdCompressorFor(threads, opts.zstd ?? zstdEngine(), streams, opts.wasmBuild));
      return (z.onPool ? onPool : inWorkers)(() => z.compress(data, level ?? 3));
    },
    async close() {
      streams.close();
      await zstd?.close();
    },
  };
}

export { mapOrdered } from '../io/concurrency.js';

const require = createRequire(import.meta.url);

/**
 * The worker body: plain CommonJS, so it runs the same from TypeScript sources and from dist/.
 * Every engine makes one frame per block in one pass (ZSTD_compress2, or @cloudpss/zstd's
 * ZSTD_compressCCtx into ZSTD_compressBound bytes): node:zlib is given
 * an output buffer of ZSTD_compressBound bytes (zstd.h), since a smaller one sends libzstd down its
 * buffered streaming path, whose frames can differ (measured: 2 MiB blocks of binary data).
 */
const ZSTD_WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const compressBound = (n) => n + (n >>> 8) + (n < 131072 ? (131072 - n) >>> 11 : 0);
let ready;
if (workerData.engine === 'native') {
  const zlib = require('node:zlib');
  const LEVEL = zlib.constants.ZSTD_c_compressionLevel;
  ready = Promise.resolve((data, level) =>
    zlib.zstdCompressSync(data, { chunkSize: Math.max(64, compressBound(data.length)), params: { [LEVEL]: level } }));
} else if (workerData.build === '@cloudpss/zstd') {
  // An ES module (top-level await): imported, not required. Its compress() keeps one context.
  const { pathToFileURL } = require('node:url');
  ready = import(pathToFileURL(workerData.modulePath).href).then((zstd) => (data, level) => zstd.compress(data, level));
} else {
  const zstd = require(workerData.modulePath);
  // One compression context for the worker's life: ZSTD_compress would make and free one per
  // block (~20% of the time for 64 KiB clusters). With no dictionary the frames are the same bytes.
  const NO_DICTIONARY = new Uint8Array(0);
  ready = zstd.init().then(() => zstd.createCCtx()).then((cctx) => (data, level) => zstd.compressUsingDict(cctx, data, NO_DICTIONARY, level));
}
parentPort.on('message', async ({ id, data, level }) => {
  const compress = await ready;
  try {
    const out = compress(data, level);
    // An exact-size buffer is transferred as is (another copy is garbage); a view is copied.
    const own = out.byteOffset === 0 && out.byteLength === out.buffer.byteLength ? out : new Uint8Array(out);
    // The input's memory goes back too, to carry a later block: no fresh buffer per block.
    parentPort.postMessage({ id, out: own, input: data }, [own.buffer, data.buffer]);
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message || err) });
  }
});
`;

interface ZstdCompressor {
  /** On Node's thread pool (native zstd), not in worker threads. */
  readonly onPool: boolean;
  compress(data: Uint8Array, level: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/**
 * Native zstd on libuv's thread pool where node:zlib allows one pass per block (zlib-async.ts),
 * no worker isolates (~45 MB each); else worker threads. The bytes are the same either way.
 */
function zstdCompressorFor(concurrency: number, engine: ZstdEngine, streams: PassStreams, wasmBuild?: WasmZstdBuild): ZstdCompressor {
  const onPool = engine === 'native' && process.env.DISKMINT_ZSTD_WORKERS !== '1' ? nativeZstdCompressor(streams) : undefined;
  return onPool ? { onPool: true, compress: onPool, close: async () => {} } : new ZstdPool(concurrency, engine, wasmBuild);
}

class ZstdPool implements ZstdCompressor {
  readonly onPool = false;
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, { resolve: (u: Uint8Array) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  /** Input buffers back from the workers, reused for later blocks (transferred, never shared). */
  private readonly spare: ArrayBuffer[] = [];
  /** Enough spares for the blocks in flight (callers keep about two per worker busy). */
  private readonly spareLimit: number;

  constructor(size: number, engine: ZstdEngine, wasmBuild?: WasmZstdBuild) {
    this.spareLimit = 2 * size + 2;
    const build = engine === 'wasm' ? (wasmBuild ?? wasmZstdBuild()) : undefined;
    const modulePath = build ? require.resolve(WASM_ZSTD_ENTRY[build]) : undefined;
    for (let i = 0; i < size; i++) {
      const w = new Worker(ZSTD_WORKER_SOURCE, { eval: true, workerData: { engine, build, modulePath } });
      w.on('message', (m: { id: number; out?: Uint8Array; input?: Uint8Array; error?: string }) => {
        if (m.input && this.spare.length < this.spareLimit) this.spare.push(m.input.buffer as ArrayBuffer);
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (this.pending.size === 0) this.setRef(false);
        if (m.error !== undefined) p?.reject(new DiskmintError('IO', `zstd compression failed: ${m.error}`));
        else p?.resolve(m.out!);
      });
      w.on('error', (err) => {
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      });
      w.unref();
      this.workers.push(w);
    }
  }

  compress(data: Uint8Array, level: number): Promise<Uint8Array> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.setRef(true); // keep the process alive only while work is pending
      this.pending.set(id, { resolve, reject });
      // A copy of the block, in a spare buffer when one is big enough, transferred. (Not
      // data.slice(): on a Buffer that is a view, and the transfer would detach the caller's memory.)
      const spare = this.spare.length && this.spare[this.spare.length - 1].byteLength >= data.length ? this.spare.pop() : undefined;
      const own = spare ? new Uint8Array(spare, 0, data.length) : new Uint8Array(data.length);
      own.set(data);
      this.workers[id % this.workers.length].postMessage({ id, data: own, level }, [own.buffer]);
    });
  }

  private setRef(on: boolean): void {
    for (const w of this.workers)
      if (on) w.ref();
      else w.unref();
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
