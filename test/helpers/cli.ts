/**
 * Runs the built CLI (dist/diskmint.cjs, what `npx diskmint` runs) as a user does. `npm test`
 * builds first; a bundle older than any source file is refused with a message, so a test never
 * judges stale code.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const BUNDLE = join(ROOT, 'dist', 'diskmint.cjs');
const BUNDLED = join(ROOT, 'dist', 'diskmint-cli.cjs');

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (!e.name.endsWith('.md')) newest = Math.max(newest, statSync(p).mtimeMs); // a README is not built
  }
  return newest;
}

let checked = false;
/** Throws unless dist/ holds a bundle at least as new as src/, formats/ and bootcode/. */
export function requireFreshBundle(): void {
  if (checked) return;
  if (!existsSync(BUNDLE) || !existsSync(BUNDLED)) throw new Error('dist/diskmint.cjs is missing: run `npm run build` (npm test does)');
  const built = statSync(BUNDLED).mtimeMs;
  const stale = ['src', 'formats', 'bootcode'].some((d) => newestSource(join(ROOT, d)) > built);
  if (stale) throw new Error('dist/diskmint.cjs is older than the sources: run `npm run build` (npm test does)');
  checked = true;
}

export interface CliRun {
  status: number;
  stdout: Buffer;
  stderr: string;
}

/** `diskmint ARGS...` through the bundle. */
export function diskmint(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): CliRun {
  requireFreshBundle();
  const options: SpawnSyncOptions = { cwd: opts.cwd, maxBuffer: 1 << 28, env: opts.env ? { ...process.env, ...opts.env } : process.env };
  const r = spawnSync(process.execPath, [BUNDLE, ...args], options);
  return { status: r.status ?? -1, stdout: r.stdout as Buffer, stderr: (r.stderr as Buffer).toString() };
}
