/**
 * The bundled CLI (dist/diskmint.mjs, what `npx diskmint` runs) works as the sources do:
 * `npm ci` builds it through the prepare script, so CI always has a fresh one.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers/golden.js';

const ROOT = new URL('..', import.meta.url).pathname;
const BUNDLE = join(ROOT, 'dist', 'diskmint.mjs');
const SOURCES = ['src', 'formats'].map((d) => join(ROOT, d));

function run(args: string[]): { status: number; out: string } {
  const r = spawnSync(process.execPath, [BUNDLE, ...args], { encoding: 'utf8' });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

describe('dist/diskmint.mjs', () => {
  it('builds the demo, converts it with zstd (worker threads from the bundle) and verifies it', (ctx) => {
    if (!existsSync(BUNDLE)) {
      if (process.env.CI === 'true') throw new Error('dist/diskmint.mjs is missing: npm ci runs the build (prepare)');
      return ctx.skip();
    }
    if (process.env.CI !== 'true' && SOURCES.some((d) => statSync(d).mtimeMs > statSync(BUNDLE).mtimeMs)) {
      console.warn('skipping: dist/diskmint.mjs is older than the sources (npm run build)');
      return ctx.skip();
    }
    const dir = tempDir();
    const img = join(dir, 'demo.img');
    expect(run(['build', join(ROOT, 'fixtures/demo/layout.json'), '-o', img, '-q']).status).toBe(0);
    const q = join(dir, 'demo.qcow2');
    const c = run(['convert', img, q, '-c', '--compression', 'zstd', '-q']);
    expect(c.out).toContain('qcow2');
    expect(c.status).toBe(0);
    const v = run(['verify', q, '--expect', join(ROOT, 'fixtures/demo/layout.json')]);
    expect(v.out).toMatch(/OK \(0 errors, 0 warnings\)/);
    expect(v.status).toBe(0);
    expect(run(['--version']).out.trim()).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  });
});
