/**
 * Compression on every core, in a deterministic order. Deflate runs on libuv's thread pool
 * (node:zlib's async API); zstd runs in worker threads holding the zstd WebAssembly module.
 * Each block is compressed on its own, so output bytes never depend on the thread count.
 */
import { deflateAsync, deflateRawAsync } from '../io/zlib-async.js';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { DiskmintError } from '../model/errors.js';

/** deflate-raw: RFC 1951 (qcow2 clusters); zlib: RFC 1950 (VMDK streamOptimized grains); zstd: RFC 8878. */
export type CompressionKind = 'deflate-raw' | 'zlib' | 'zstd';

export interface Compressor {
  /** Blocks compressed at once (the `--threads` setting). */
  readonly concurrency: number;
  compress(data: Uint8Array, kind: CompressionKind, level?: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** qcow2 uses a 4 KiB window (QEMU block/qcow2-threads.c: windowBits -12). */
export const QCOW2_DEFLATE_WINDOW_BITS = 12;

export function createCompressor(opts: { threads?: number } = {}): Compressor {
  const concurrency = Math.max(1, opts.threads ?? availableParallelism());
  let zstd: ZstdPool | undefined;
  return {
    concurrency,
    async compress(data, kind, level) {
      if (kind === 'deflate-raw') return new Uint8Array(await deflateRawAsync(data, { level: level ?? 6, windowBits: QCOW2_DEFLATE_WINDOW_BITS }));
      if (kind === 'zlib') return new Uint8Array(await deflateAsync(data, { level: level ?? 6 }));
      zstd ??= new ZstdPool(concurrency);
      return zstd.compress(data, level ?? 3);
    },
    async close() {
      await zstd?.close();
    },
  };
}

export { mapOrdered } from '../io/concurrency.js';

const require = createRequire(import.meta.url);

/** Decompress zstd in this thread (readers). `maxBytes` bounds the output. */
export async function zstdDecompress(data: Uint8Array, maxBytes: number): Promise<Uint8Array> {
  const zstdWasm = await loadZstd();
  const out = zstdWasm.decompress(data) as Uint8Array;
  if (out.length > maxBytes) throw new DiskmintError('INPUT', `zstd data expands past ${maxBytes} bytes`);
  return out;
}

interface ZstdModule {
  init(): Promise<void>;
  decompress(data: Uint8Array): Uint8Array;
}

let zstdLoaded: Promise<ZstdModule> | undefined;
function loadZstd(): Promise<ZstdModule> {
  zstdLoaded ??= (async () => {
    const mod = require('@bokuweb/zstd-wasm') as ZstdModule;
    await mod.init();
    return mod;
  })();
  return zstdLoaded;
}

/** The worker body: plain CommonJS, so it runs the same from TypeScript sources and from dist/. */
const ZSTD_WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const zstd = require(workerData.modulePath);
// One compression context for the worker's life: ZSTD_compress would make and free one per block
// (~20% of the time for 64 KiB clusters). With no dictionary the frames are the same bytes.
const ready = zstd.init().then(() => zstd.createCCtx());
const NO_DICTIONARY = new Uint8Array(0);
parentPort.on('message', async ({ id, data, level }) => {
  const cctx = await ready;
  try {
    const out = zstd.compressUsingDict(cctx, data, NO_DICTIONARY, level);
    // The package returns a fresh exact-size copy: transfer it as is (another copy is garbage).
    const own = out.byteOffset === 0 && out.byteLength === out.buffer.byteLength ? out : new Uint8Array(out);
    // The input's memory goes back too, to carry a later block: no fresh buffer per block.
    parentPort.postMessage({ id, out: own, input: data }, [own.buffer, data.buffer]);
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message || err) });
  }
});
`;

class ZstdPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, { resolve: (u: Uint8Array) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  /** Input buffers back from the workers, reused for later blocks (transferred, never shared). */
  private readonly spare: ArrayBuffer[] = [];
  /** Enough spares for the blocks in flight (callers keep about two per worker busy). */
  private readonly spareLimit: number;

  constructor(size: number) {
    this.spareLimit = 2 * size + 2;
    const modulePath = require.resolve('@bokuweb/zstd-wasm');
    for (let i = 0; i < size; i++) {
      const w = new Worker(ZSTD_WORKER_SOURCE, { eval: true, workerData: { modulePath } });
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
