/**
 * node:zlib's one-shot calls as promises, looked up at call time (not a module-level
 * `promisify(zlib.inflate)`), so loading a module that imports these does not load zlib: the
 * bundled CLI loads node:zlib on first use (scripts/bundle.mjs).
 */
import { deflate, deflateRaw, gzip, inflate, type ZlibOptions } from 'node:zlib';

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
