/**
 * zstd through node:zlib (Node 22.15+, 23.8+) or a WebAssembly build (@cloudpss/zstd where npm
 * installed it, else @bokuweb/zstd-wasm): the engine is chosen by what this Node has,
 * DISKMINT_ZSTD and DISKMINT_ZSTD_WASM force one, and all make frames that qemu-img reads as the
 * same disk. The native cases run on a Node that has zstd in node:zlib (.ci/run's second pass,
 * on the current LTS); on an older Node only the WebAssembly ones can. Both WebAssembly builds
 * are tested wherever both are installed (under CI they must be).
 */
import * as zlib from 'node:zlib';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createCompressor } from '../../src/containers/compress.js';
import { describeZstdEngine, wasmZstdBuild, zstdDecompress, zstdEngine, type WasmZstdBuild, type ZstdEngine } from '../../src/io/zstd.js';
import { DiskmintError } from '../../src/model/errors.js';
import { diskmint } from '../helpers/cli.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer, runPeer } from '../helpers/peer.js';

const HAS_NATIVE = typeof (zlib as unknown as Record<string, unknown>).zstdCompressSync === 'function';
const ENGINES: ZstdEngine[] = HAS_NATIVE ? ['native', 'wasm'] : ['wasm'];
const ALL_WASM_BUILDS: WasmZstdBuild[] = ['@cloudpss/zstd', '@bokuweb/zstd-wasm'];
const WASM_BUILDS = ALL_WASM_BUILDS.filter((b) => {
  try {
    return wasmZstdBuild(b) === b;
  } catch {
    return false;
  }
});
/** What compresses: native zstd, or each WebAssembly build installed here. */
type Case = { engine: ZstdEngine; wasmBuild?: WasmZstdBuild };
const CASES: Case[] = [...(HAS_NATIVE ? [{ engine: 'native' as const }] : []), ...WASM_BUILDS.map((wasmBuild) => ({ engine: 'wasm' as const, wasmBuild }))];
const describeCase = (c: Case) => (c.engine === 'native' ? describeZstdEngine('native') : `WebAssembly (${c.wasmBuild})`);

/** Blocks that compress well, badly and not at all, of the given seed. */
function block(length: number, seed: number, kind: 'text' | 'random' | 'runs'): Uint8Array {
  const b = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    if (kind === 'random') b[i] = Math.imul(i + 1, 2654435761 + seed) >>> 24;
    else if (kind === 'text') b[i] = 97 + ((i * 7 + seed + (i >> 5)) % 26);
    else b[i] = (i >> 11) + seed;
  }
  return b;
}

async function compressAll(c: Case, blocks: Uint8Array[], level?: number): Promise<Uint8Array[]> {
  const compressor = createCompressor({ threads: 2, zstd: c.engine, wasmBuild: c.wasmBuild });
  try {
    return await Promise.all(blocks.map((b) => compressor.compress(b, 'zstd', level)));
  } finally {
    await compressor.close();
  }
}

describe('zstdEngine', () => {
  it('is native exactly when node:zlib has zstd, unless DISKMINT_ZSTD says otherwise', () => {
    expect(zstdEngine(undefined)).toBe(HAS_NATIVE ? 'native' : 'wasm');
    expect(zstdEngine('')).toBe(HAS_NATIVE ? 'native' : 'wasm');
    expect(zstdEngine('wasm')).toBe('wasm');
    if (HAS_NATIVE) expect(zstdEngine('native')).toBe('native');
    else expect(() => zstdEngine('native')).toThrow(/DISKMINT_ZSTD=native needs zstd in node:zlib \(Node 22\.15\+ or 23\.8\+\); this is Node /);
  });

  it('refuses any other DISKMINT_ZSTD as a bad argument', () => {
    for (const bad of ['Native', 'zstd', 'auto', 'wasm ']) {
      const err = (() => {
        try {
          zstdEngine(bad);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(DiskmintError);
      expect((err as DiskmintError).code).toBe('BAD_ARGUMENT');
      expect((err as Error).message).toBe(`DISKMINT_ZSTD must be native or wasm, not ${JSON.stringify(bad)}`);
    }
  });

  it('describes what runs', () => {
    expect(describeZstdEngine('wasm')).toBe(`WebAssembly (${WASM_BUILDS[0]})`);
    expect(describeZstdEngine('native')).toMatch(/^node:zlib \(libzstd (\d+\.\d+\.\d+|unknown)\)$/);
  });

  it('compresses with the fastest WebAssembly build installed unless DISKMINT_ZSTD_WASM names one; CI installs both', () => {
    expect(WASM_BUILDS).toContain('@bokuweb/zstd-wasm'); // a dependency, always there
    if (process.env.CI === 'true') expect(WASM_BUILDS).toEqual(ALL_WASM_BUILDS);
    expect(wasmZstdBuild(undefined)).toBe(WASM_BUILDS[0]);
    expect(wasmZstdBuild('')).toBe(WASM_BUILDS[0]);
    for (const build of WASM_BUILDS) expect(wasmZstdBuild(build)).toBe(build);
    for (const bad of ['cloudpss', 'wasm', '@bokuweb/zstd-wasm ']) {
      expect(() => wasmZstdBuild(bad)).toThrow(
        new DiskmintError('BAD_ARGUMENT', `DISKMINT_ZSTD_WASM must be @cloudpss/zstd or @bokuweb/zstd-wasm, not ${JSON.stringify(bad)}`),
      );
    }
  });
});

describe.each(CASES)('zstd through $engine $wasmBuild', (c) => {
  it('round-trips blocks of any size and content, through either decoder (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ length: fc.integer({ min: 0, max: 300_000 }), seed: fc.nat(250), kind: fc.constantFrom('text', 'random', 'runs' as const) }), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.integer({ min: 1, max: 19 }),
        async (specs, level) => {
          const inputs = specs.map(({ length, seed, kind }) => block(length, seed, kind));
          const packed = await compressAll(c, inputs, level);
          for (const [k, p] of packed.entries()) {
            // RFC 8878 section 3.1.1: the frame magic; both engines declare the content size.
            expect(Buffer.from(p.subarray(0, 4)).readUInt32LE(0)).toBe(0xfd2fb528);
            for (const decoder of ENGINES) expect(Buffer.from(await zstdDecompress(p, inputs[k].length, decoder)).equals(Buffer.from(inputs[k]))).toBe(true);
          }
        },
      ),
      { numRuns: 12 },
    );
  });

  it('makes the same bytes twice, whatever the thread count', async () => {
    const inputs = [block(65536, 1, 'text'), block(2 << 20, 2, 'runs'), block(70_000, 3, 'random')];
    const once = await compressAll(c, inputs);
    const compressor = createCompressor({ threads: 1, zstd: c.engine, wasmBuild: c.wasmBuild });
    try {
      for (const [k, b] of inputs.entries()) expect(Buffer.from(await compressor.compress(b, 'zstd')).equals(Buffer.from(once[k]))).toBe(true);
    } finally {
      await compressor.close();
    }
  });

  it('refuses to expand past the bound it is given', async () => {
    const [packed] = await compressAll(c, [block(100_000, 4, 'runs')]);
    await expect(zstdDecompress(packed, 99_999, c.engine)).rejects.toThrow(new DiskmintError('INPUT', 'zstd data expands past 99999 bytes'));
  });

  it('writes a zstd qcow2 (64 KiB and 2 MiB clusters) that qemu-img reads as the raw disk, and says which engine ran', (ctx) => {
    if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
    const dir = tempDir();
    const raw = join(dir, 'disk.raw');
    const parts = [block(3 << 20, 5, 'text'), new Uint8Array(1 << 20), block(2 << 20, 6, 'random'), block(2 << 20, 7, 'runs')];
    writeFileSync(raw, Buffer.concat(parts));
    for (const cluster of [65536, 2 << 20]) {
      const out = join(dir, `${c.engine}-${cluster}.qcow2`);
      const r = diskmint(['convert', raw, out, '-O', 'qcow2', '-o', `cluster_size=${cluster}`, '-c', '--compression', 'zstd', '--verbose', '-q'], {
        env: { DISKMINT_ZSTD: c.engine, DISKMINT_ZSTD_WASM: c.wasmBuild ?? '' },
      });
      expect(r.stderr).toBe(`diskmint: zstd through ${describeCase(c)}\n`);
      expect(r.status).toBe(0);
      expect(runPeer('qemu-img', ['info', out]).out).toMatch(/compression type: zstd/);
      expect(runPeer('qemu-img', ['check', out])).toMatchObject({ status: 0 });
      expect(runPeer('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', raw, out])).toEqual({ status: 0, out: 'Images are identical.\n' });
    }
  });
});

describe("native zstd on libuv's pool", () => {
  it.runIf(HAS_NATIVE)('gives the bytes of zstdCompressSync and of the worker threads, block for block (property)', async () => {
    const { nativeZstdCompressor, PassStreams, zstdCompressBound } = await import('../../src/io/zlib-async.js');
    // One set of streams for every run: later blocks go through streams reset after earlier ones.
    const streams = new PassStreams();
    const onPool = nativeZstdCompressor(streams);
    expect(onPool).toBeDefined(); // every Node with zstd so far has the one-pass entry
    const sync = (zlib as unknown as { zstdCompressSync(d: Uint8Array, o: object): Uint8Array }).zstdCompressSync;
    const LEVEL = (zlib.constants as unknown as Record<string, number>).ZSTD_c_compressionLevel;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ length: fc.integer({ min: 0, max: 3 << 20 }), seed: fc.nat(250), kind: fc.constantFrom('text', 'random', 'runs' as const) }), {
          minLength: 1,
          maxLength: 4,
        }),
        fc.integer({ min: -5, max: 19 }),
        async (specs, level) => {
          const inputs = specs.map(({ length, seed, kind }) => block(length, seed, kind));
          // Twice: the second round reuses the first round's streams (same options, same sizes).
          const pooled = await Promise.all(inputs.map((b) => onPool!(b, level)));
          const again = await Promise.all(inputs.map((b) => onPool!(b, level)));
          process.env.DISKMINT_ZSTD_WORKERS = '1';
          const viaWorkers = await compressAll({ engine: 'native' }, inputs, level).finally(() => delete process.env.DISKMINT_ZSTD_WORKERS);
          for (const [k, b] of inputs.entries()) {
            const one = sync(b, { chunkSize: Math.max(64, zstdCompressBound(b.length)), params: { [LEVEL]: level } });
            expect(Buffer.from(pooled[k]).equals(Buffer.from(one))).toBe(true);
            expect(Buffer.from(again[k]).equals(Buffer.from(one))).toBe(true);
            expect(Buffer.from(viaWorkers[k]).equals(Buffer.from(one))).toBe(true);
          }
        },
      ),
      { numRuns: 10 },
    );
    streams.close();
  });
});

describe('zstd across engines', () => {
  it.runIf(HAS_NATIVE)('native and WebAssembly images hold the same disk (qemu-img compare)', (ctx) => {
    if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
    const dir = tempDir();
    const raw = join(dir, 'disk.raw');
    writeFileSync(raw, Buffer.concat([block(1 << 20, 8, 'text'), block(1 << 20, 9, 'random')]));
    const out = (engine: ZstdEngine) => {
      const path = join(dir, `${engine}.qcow2`);
      expect(diskmint(['convert', raw, path, '-c', '--compression', 'zstd', '-q'], { env: { DISKMINT_ZSTD: engine } }).status).toBe(0);
      return path;
    };
    expect(runPeer('qemu-img', ['compare', out('native'), out('wasm')])).toEqual({ status: 0, out: 'Images are identical.\n' });
  });

  it.runIf(WASM_BUILDS.length > 1)('the two WebAssembly builds write images of the same disk (qemu-img compare)', (ctx) => {
    if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
    const dir = tempDir();
    const raw = join(dir, 'disk.raw');
    writeFileSync(raw, Buffer.concat([block(1 << 20, 11, 'text'), block(1 << 20, 12, 'runs')]));
    const [a, b] = WASM_BUILDS.map((build, i) => {
      const path = join(dir, `${i}.qcow2`);
      expect(diskmint(['convert', raw, path, '-c', '--compression', 'zstd', '-q'], { env: { DISKMINT_ZSTD: 'wasm', DISKMINT_ZSTD_WASM: build } }).status).toBe(
        0,
      );
      return path;
    });
    expect(runPeer('qemu-img', ['compare', a, b])).toEqual({ status: 0, out: 'Images are identical.\n' });
    expect(runPeer('qemu-img', ['compare', raw, a])).toEqual({ status: 0, out: 'Images are identical.\n' });
  });

  it('a DISKMINT_ZSTD the runtime cannot honour fails before any output exists', () => {
    const dir = tempDir();
    const raw = join(dir, 'disk.raw');
    writeFileSync(raw, block(1 << 20, 10, 'text'));
    const bad = HAS_NATIVE ? 'zstd' : 'native';
    const r = diskmint(['convert', raw, join(dir, 'out.qcow2'), '-c', '--compression', 'zstd', '-q'], { env: { DISKMINT_ZSTD: bad } });
    expect(r.stderr).toMatch(/^diskmint: DISKMINT_ZSTD/);
    expect(r.status).toBe(1);
    expect(runPeer('ls', ['-A', dir]).out).toBe('disk.raw\n');
  });
});
