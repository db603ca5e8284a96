/**
 * An .xz file of many blocks (xz-blocks.ts) decoded on every core: each block, as a stream of
 * its own (batches of consecutive blocks), goes to a worker thread running the same WebAssembly
 * decoder (xz-decompress) as the streaming path; the output comes back in order. A file of one block, or of blocks too large to
 * hold a few of in memory, is left to the streaming decoder (undefined).
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { xzBlocksStream, type XzBlock, type XzLayout } from './xz-blocks.js';
import { readXzLayout } from './recorded-size.js';

/** Largest block decoded whole (xz -9 -T cuts 192 MiB blocks; -6, the default, 24 MiB). */
const MAX_BLOCK = 32 << 20;
/**
 * Blocks go to a worker in batches of about this much output, as one stream: a decoder context
 * per batch, not per block (making one costs about as much as decoding a 1 MiB block).
 */
const BATCH = 4 << 20;

/**
 * The worker: plain CommonJS (eval), so it runs the same from the sources and from dist/. It
 * drives the package's decoder (xz-embedded compiled to WebAssembly) through its exports in one
 * synchronous loop, output copied straight from the module's memory into the batch's buffer:
 * the package's own stream copies every 64 KiB into a fresh array, garbage that piles up (about
 * 90 MB a worker) before the collector runs. The exports and their context layout (buffer size,
 * input start, position and size, output start and position, as 32-bit words) are those the
 * package's XzContext class reads; the layout check below (the package is pinned) guards them.
 */
const XZ_WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { XzReadableStream } = require(workerData.modulePath);
let ready;
const spare = []; // output buffers handed back by the reader, reused
parentPort.on('message', async ({ id, parts, size, recycled }) => {
  if (recycled) return void spare.push(recycled);
  try {
    ready ??= XzReadableStream._getModuleInstance().then(() => XzReadableStream._moduleInstance.exports);
    const ex = await ready;
    const ptr = ex.create_context();
    try {
      let m32, m8;
      const refresh = () => { if (m8?.buffer !== ex.memory.buffer) { m32 = new Uint32Array(ex.memory.buffer, ptr, 6); m8 = new Uint8Array(ex.memory.buffer, ptr); } };
      refresh();
      const bufSize = m32[0], inStart = m32[1] - ptr, outStart = m32[4] - ptr;
      if (!(bufSize > 0 && inStart > 0 && outStart > 0)) throw new Error('xz-decompress is not laid out as expected');
      const reuse = spare.findIndex((b) => b.byteLength >= size);
      const out = reuse >= 0 ? new Uint8Array(spare.splice(reuse, 1)[0], 0, size) : new Uint8Array(size);
      let at = 0, part = 0, used = 0, idle = 0;
      for (;;) {
        let supplied = false;
        if (m32[2] === m32[3] && part < parts.length) {
          const n = Math.min(bufSize, parts[part].length - used);
          m8.set(parts[part].subarray(used, used + n), inStart);
          ex.supply_input(ptr, n);
          refresh();
          used += n;
          if (used === parts[part].length) [part, used] = [part + 1, 0];
          supplied = true;
        } else if (m32[2] === m32[3]) {
          ex.supply_input(ptr, 0); // no input left: the package's stream says so with an empty supply
          refresh();
        }
        const r = ex.get_next_output(ptr);
        refresh();
        if (r !== 0 && r !== 1) throw new Error('the stream is damaged (decoder error ' + r + ')');
        const n = m32[5];
        if (at + n > size) throw new Error('a block holds more than the index says');
        out.set(m8.subarray(outStart, outStart + n), at);
        at += n;
        m32[5] = 0;
        if (r === 1) break;
        idle = !supplied && n === 0 && m32[2] === m32[3] ? idle + 1 : 0;
        if (idle > 2) throw new Error('the stream ends early');
      }
      if (at !== size) throw new Error('a block holds less than the index says');
      // The input goes back too, to carry a later batch.
      parentPort.postMessage({ id, out, input: parts[1] }, [out.buffer, parts[1].buffer]);
    } finally {
      ex.destroy_context(ptr);
    }
  } catch (err) {
    parentPort.postMessage({ id, error: String((err && err.message) || err) });
  }
});
`;

/** The file's block layout when it can be decoded in parallel, else undefined. */
export function parallelXzLayout(path: string): XzLayout | undefined {
  const fd = openSync(path, 'r');
  let layout: XzLayout | undefined;
  try {
    layout = readXzLayout(fd, fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
  if (!layout || layout.blocks.length < 2 || layout.blocks.some((b) => b.outputSize > MAX_BLOCK)) return undefined;
  // The package's decoder as the worker drives it (see XZ_WORKER_SOURCE); else stream.
  const { XzReadableStream } = createRequire(import.meta.url)('xz-decompress') as { XzReadableStream: { _getModuleInstance?: unknown } };
  return typeof XzReadableStream._getModuleInstance === 'function' ? layout : undefined;
}

/** The decompressed bytes of `path` (laid out as `layout`), block by block, in order. */
export async function* parallelXzChunks(path: string, layout: XzLayout): AsyncGenerator<Uint8Array> {
  const modulePath = createRequire(import.meta.url).resolve('xz-decompress');
  const count = Math.max(1, Math.min(availableParallelism(), 2));
  /** Input buffers back from the workers, reused for later batches (transferred, never shared). */
  const spareInputs: ArrayBuffer[] = [];
  const waiting = new Map<number, { resolve: (b: Uint8Array) => void; reject: (e: Error) => void }>();
  const workers = Array.from({ length: count }, () => {
    const w = new Worker(XZ_WORKER_SOURCE, { eval: true, workerData: { modulePath } });
    w.on('message', (m: { id: number; out?: Uint8Array; input?: Uint8Array; error?: string }) => {
      if (m.input) spareInputs.push(m.input.buffer as ArrayBuffer);
      const p = waiting.get(m.id);
      waiting.delete(m.id);
      if (m.error !== undefined) p?.reject(new Error(m.error));
      else p?.resolve(m.out!);
    });
    w.on('error', (err) => {
      for (const p of waiting.values()) p.reject(err);
      waiting.clear();
    });
    return w;
  });
  const handle = await open(path, 'r');
  const batches = batchesOf(layout.blocks);
  const inFlight: Array<Promise<Uint8Array>> = [];
  let next = 0;
  const submit = async () => {
    const id = next++;
    const blocks = batches[id];
    const first = blocks[0];
    const last = blocks[blocks.length - 1];
    const length = last.fileOffset + last.totalSize - first.fileOffset;
    const reuse = spareInputs.findIndex((b) => b.byteLength >= length);
    const bytes = reuse >= 0 ? new Uint8Array(spareInputs.splice(reuse, 1)[0], 0, length) : new Uint8Array(length);
    const { bytesRead } = await handle.read(bytes, 0, length, first.fileOffset);
    if (bytesRead !== length) throw new Error(`the file ends early, at block ${layout.blocks.indexOf(first) + 1}`);
    const size = last.outputOffset + last.outputSize - first.outputOffset;
    const parts = xzBlocksStream(layout, blocks, bytes);
    const done = new Promise<Uint8Array>((resolve, reject) => waiting.set(id, { resolve, reject }));
    done.catch(() => undefined); // awaited in turn
    workers[id % count].postMessage({ id, parts, size }, [bytes.buffer]);
    inFlight.push(done);
  };
  try {
    // One batch per worker and one more ready: both busy, and the memory a streamed flash holds beside its own buffers bounded (~150 MB peak RSS).
    while (next < batches.length && inFlight.length < count + 1) await submit();
    for (let id = 0; inFlight.length; id++) {
      const out = await inFlight.shift()!;
      if (next < batches.length) await submit();
      yield out;
      // The reader is done with it (a chunk is valid until the next is asked for): back to a worker.
      workers[id % count].postMessage({ recycled: out.buffer }, [out.buffer as ArrayBuffer]);
    }
  } finally {
    await handle.close();
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** Consecutive blocks grouped up to BATCH bytes of output (a larger block alone). */
function batchesOf(blocks: readonly XzBlock[]): XzBlock[][] {
  const out: XzBlock[][] = [];
  let batch: XzBlock[] = [];
  let size = 0;
  for (const b of blocks) {
    if (batch.length && size + b.outputSize > BATCH) {
      out.push(batch);
      [batch, size] = [[], 0];
    }
    batch.push(b);
    size += b.outputSize;
  }
  if (batch.length) out.push(batch);
  return out;
}
