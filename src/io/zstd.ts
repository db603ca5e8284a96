/**
 * Which zstd runs in this process and decoding with it: node:zlib's libzstd where this Node has
 * it (22.15+, 23.8+), else a WebAssembly build. Compression on many cores is containers/compress.ts;
 * readers of zstd clusters (qcow2), frames (seekable .zst) and bundles decode here.
 */
import { createRequire } from 'node:module';
import { DiskmintError } from '../model/errors.js';

/** Which libzstd compresses and decompresses: node:zlib's (`native`) or the WebAssembly build (`wasm`). */
export type ZstdEngine = 'native' | 'wasm';

const require = createRequire(import.meta.url);

/** The part of node:zlib that holds zstd (absent before Node 22.15 and 23.8; not in @types/node 20). */
interface NativeZstd {
  zstdCompressSync(data: Uint8Array, opts: { chunkSize: number; params: Record<number, number> }): Uint8Array;
  zstdDecompressSync(data: Uint8Array, opts: { maxOutputLength: number }): Uint8Array;
  constants: { ZSTD_c_compressionLevel: number };
}

function nativeZstd(): NativeZstd | undefined {
  const zlib = require('node:zlib') as Partial<NativeZstd>;
  return typeof zlib.zstdCompressSync === 'function' && typeof zlib.zstdDecompressSync === 'function' ? (zlib as NativeZstd) : undefined;
}

/**
 * The zstd engine of this process: `DISKMINT_ZSTD` (`native` or `wasm`) when set, else node:zlib's
 * libzstd when this Node has it, else the WebAssembly one. Both write the same frame layout
 * (one frame per block, content size declared, no checksum) at the same levels.
 */
export function zstdEngine(forced: string | undefined = process.env.DISKMINT_ZSTD): ZstdEngine {
  const hasNative = nativeZstd() !== undefined;
  if (forced === undefined || forced === '') return hasNative ? 'native' : 'wasm';
  if (forced === 'wasm') return 'wasm';
  if (forced !== 'native') throw new DiskmintError('BAD_ARGUMENT', `DISKMINT_ZSTD must be native or wasm, not ${JSON.stringify(forced)}`);
  if (!hasNative)
    throw new DiskmintError('BAD_ARGUMENT', `DISKMINT_ZSTD=native needs zstd in node:zlib (Node 22.15+ or 23.8+); this is Node ${process.versions.node}`);
  return 'native';
}

/**
 * The WebAssembly builds of libzstd that compress (in worker threads), fastest first:
 * @cloudpss/zstd (an optional dependency: its build compresses 64 KiB clusters ~1.5x faster, as
 * fast as node:zlib's native libzstd; an ES module, so only a worker loads it), else
 * @bokuweb/zstd-wasm (always installed; it also decompresses in this thread). Both write one frame
 * per block, content size declared, no checksum; their libzstd releases differ, so their bytes may.
 */
export type WasmZstdBuild = '@cloudpss/zstd' | '@bokuweb/zstd-wasm';
const WASM_ZSTD_BUILDS: WasmZstdBuild[] = ['@cloudpss/zstd', '@bokuweb/zstd-wasm'];
/** The module a worker loads for each build. */
export const WASM_ZSTD_ENTRY: Record<WasmZstdBuild, string> = { '@cloudpss/zstd': '@cloudpss/zstd/wasm', '@bokuweb/zstd-wasm': '@bokuweb/zstd-wasm' };

function installed(build: WasmZstdBuild): boolean {
  try {
    require.resolve(WASM_ZSTD_ENTRY[build]);
    return true;
  } catch {
    return false;
  }
}

/** The WebAssembly build that compresses: `DISKMINT_ZSTD_WASM` (a package name) when set, else the fastest installed. */
export function wasmZstdBuild(forced: string | undefined = process.env.DISKMINT_ZSTD_WASM): WasmZstdBuild {
  if (forced === undefined || forced === '') return WASM_ZSTD_BUILDS.find(installed)!;
  const build = WASM_ZSTD_BUILDS.find((b) => b === forced);
  if (!build) throw new DiskmintError('BAD_ARGUMENT', `DISKMINT_ZSTD_WASM must be ${WASM_ZSTD_BUILDS.join(' or ')}, not ${JSON.stringify(forced)}`);
  if (!installed(build)) throw new DiskmintError('BAD_ARGUMENT', `DISKMINT_ZSTD_WASM=${build}, but npm did not install ${build} here`);
  return build;
}

/** What runs zstd, for a report: `node:zlib (libzstd 1.5.7)` or `WebAssembly (@cloudpss/zstd)`. */
export function describeZstdEngine(engine: ZstdEngine): string {
  const versions = process.versions as Record<string, string | undefined>;
  return engine === 'native' ? `node:zlib (libzstd ${versions.zstd ?? 'unknown'})` : `WebAssembly (${wasmZstdBuild()})`;
}

/** Decompress zstd in this thread (readers). `maxBytes` bounds the output. */
export async function zstdDecompress(data: Uint8Array, maxBytes: number, engine: ZstdEngine = zstdEngine()): Promise<Uint8Array> {
  const tooLarge = () => new DiskmintError('INPUT', `zstd data expands past ${maxBytes} bytes`);
  if (engine === 'native') {
    let out: Uint8Array;
    try {
      out = nativeZstd()!.zstdDecompressSync(data, { maxOutputLength: Math.max(1, maxBytes) }); // node:zlib takes no bound under 1
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge();
      throw err;
    }
    if (out.length > maxBytes) throw tooLarge();
    return out;
  }
  const zstdWasm = await loadZstd();
  const out = zstdWasm.decompress(data) as Uint8Array;
  if (out.length > maxBytes) throw tooLarge();
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
