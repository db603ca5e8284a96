/**
 * The bundled CLI (dist/diskmint.cjs, what `npx diskmint` runs) works as the sources do:
 * `npm test` builds it first (and `npm ci` through the prepare script), so it is never stale. It loads the
 * bundle through a V8 code cache made at build time, which this Node must accept.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/golden.js';
import { whenInFolder } from '../helpers/when-in-folder.js';

import { BUNDLE, requireFreshBundle, ROOT } from '../helpers/cli.js';

function run(args: string[]): { status: number; out: string } {
  const r = spawnSync(process.execPath, [BUNDLE, ...args], { encoding: 'utf8' });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

describe('dist/diskmint.cjs', () => {
  beforeAll(requireFreshBundle); // npm test builds first

  it('builds the demo, converts it with zstd (worker threads from the bundle) and verifies it', () => {
    const dir = tempDir();
    const img = join(dir, 'demo.img');
    expect(run(['build', join(ROOT, 'fixtures/demo/layout.json'), '-o', img, '-q']).status).toBe(0);
    const q = join(dir, 'demo.qcow2');
    const c = run(['convert', img, q, '-c', '--compression', 'zstd', '-q']);
    expect(c.out).toContain('qcow2');
    expect(c.status).toBe(0);
    // deflate through node:zlib, which the bundle loads only on first use
    const z = join(dir, 'demo-deflate.qcow2');
    expect(run(['convert', img, z, '-c', '--compression', 'deflate', '-q']).status).toBe(0);
    expect(run(['verify', z]).status).toBe(0);
    const v = run(['verify', q, '--expect', join(ROOT, 'fixtures/demo/layout.json')]);
    expect(v.out).toMatch(/OK \(0 errors, 0 warnings\)/);
    expect(v.status).toBe(0);
    expect(run(['--version']).out.trim()).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  });

  it('loads the bundle through its code cache, which this Node accepts; zod only for a layout', () => {
    const loader = join(ROOT, 'dist', 'cli-loader.cjs');
    const probe = `const { loadCli, codeCacheOf, scripts } = require(${JSON.stringify(loader)});
      const { basename } = require('node:path');
      const loadedFiles = () => Object.fromEntries([...scripts].map(([f, s]) => [basename(f), { cache: require('node:fs').existsSync(codeCacheOf(f)), rejected: s.cachedDataRejected }]));
      const { cli } = loadCli();
      const before = loadedFiles();
      cli.main(['node', 'diskmint', 'schema']).then((code) => {
        console.log(JSON.stringify({ main: typeof cli.main, before, after: loadedFiles(), code }));
      });`;
    const r = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const lastLine = r.stdout.trim().split('\n').at(-1)!;
    const accepted = { cache: true, rejected: false };
    expect(JSON.parse(lastLine)).toEqual({
      main: 'function',
      before: { 'diskmint-cli.cjs': accepted },
      after: { 'diskmint-cli.cjs': accepted, 'diskmint-engine.cjs': accepted, 'diskmint-zod.cjs': accepted },
      code: 0,
    });
  });

  it('bundles only ASCII, which Node reads as a one-byte string', () => {
    for (const file of ['diskmint-cli.cjs', 'diskmint-zod.cjs']) {
      expect(readFileSync(join(ROOT, 'dist', file)).every((byte) => byte < 0x80)).toBe(true);
    }
  });

  it('starts without loading zlib, crypto, worker threads, os, streams or tty (loaded on first use)', () => {
    const loader = join(ROOT, 'dist', 'cli-loader.cjs');
    const dir = tempDir();
    const probe = `const { loadCli } = require(${JSON.stringify(loader)});
      process.on('exit', () => {
        const loaded = process.moduleLoadList.filter((m) => /^NativeModule (zlib|crypto|worker_threads|os|stream|net|tty)$/.test(m));
        require('node:fs').writeSync(2, JSON.stringify(loaded));
      });
      loadCli().cli.main(['node', 'diskmint', ...process.argv.slice(2)]);`;
    const file = join(dir, 'probe.cjs'); // a file: \`node -e\` itself loads crypto for its globals
    writeFileSync(file, probe);
    const version = spawnSync(process.execPath, [file, '--version'], { encoding: 'utf8' });
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(JSON.parse(version.stderr)).toEqual([]);
    // The command the FAT benchmark times: its report goes out without process.stdout (streams,
    // net), its seeded serial without node:crypto. Standard output and error are pipes here.
    const esp = join(ROOT, 'fixtures', 'demo', 'esp');
    const fat = spawnSync(process.execPath, [file, 'fat', 'create', join(dir, 'esp.img'), '--from', esp], { encoding: 'utf8' });
    expect(fat.stdout).toMatch(/esp\.img: FAT\d+/);
    // What node:fs/promises, which fat create uses, loads itself on this Node (Node 26: os).
    const fsPromises = join(dir, 'fs-promises.cjs');
    writeFileSync(
      fsPromises,
      `require('node:fs/promises'); process.on('exit', () => require('node:fs').writeSync(2, JSON.stringify(process.moduleLoadList.filter((m) => /^NativeModule (zlib|crypto|worker_threads|os|stream|net|tty)$/.test(m)))));`,
    );
    expect(JSON.parse(fat.stderr)).toEqual(JSON.parse(spawnSync(process.execPath, [fsPromises], { encoding: 'utf8' }).stderr));
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`stopped by ${signal} mid-write, leaves neither the output nor its temp file, and dies of the signal`, async () => {
      const dir = tempDir();
      const input = join(dir, 'random.raw');
      writeFileSync(input, randomBytes(96 << 20)); // incompressible: zstd on one thread takes ~1 s
      const child = spawn(
        process.execPath,
        [BUNDLE, 'convert', input, join(dir, 'out.qcow2'), '-O', 'qcow2', '-c', '--compression', 'zstd', '--threads', '1', '-q'],
        { stdio: 'ignore' },
      );
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.on('exit', (code, sig) => resolve({ code, signal: sig })),
      );
      const others = () => readdirSync(dir).filter((f) => f !== 'random.raw');
      // Interrupt once the temp file holds data: checked at each change in the folder (no clock),
      // failing if the conversion ends first.
      await whenInFolder(
        dir,
        () => others().some((f) => f.endsWith('.tmp') && (statSync(join(dir, f), { throwIfNoEntry: false })?.size ?? 0) > 0),
        exited,
        () => `the conversion ended (or never started) before it could be interrupted: ${others().join(', ')}`,
      );
      child.kill(signal);
      expect(await exited).toEqual({ code: null, signal });
      expect(others()).toEqual([]);
    });
  }

  it('stops quietly with 141 (128 + SIGPIPE) when the reader of its output goes away', async () => {
    const child = spawn(process.execPath, [BUNDLE, 'build', join(ROOT, 'fixtures/demo/layout.json'), '-o', '-', '-q'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.once('data', () => child.stdout.destroy()); // like `| head -c 1000`
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(stderr).toBe('');
    expect(code).toBe(141);
  });
});
