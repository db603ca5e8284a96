/**
 * Start-up: what `diskmint --version` (dist/diskmint.cjs, the bundle users run) costs beyond
 * Node's own start, `node -e 1`.
 *
 *   npm run build && npm run bench:startup [-- --runs N] [-- --json]
 *
 * The two commands run in turn (A B A B ...), `--runs` times each (default 40) after two untimed
 * warm-ups, so a machine that slows down or speeds up during the call moves both alike; the
 * ratio is the median of the pair-by-pair ratios. Wall time of the whole child process, from
 * spawn to exit. Both run without NODE_EXTRA_CA_CERTS (benchEnv). A bare `--version` is answered
 * before the CLI loads (scripts/bin.cjs); `info --help` times the program's own start (the core
 * bundle through its code cache, commander, main.ts's commands). Also timed, for the record:
 * `--help` (which loads every command group) and `fat ls` of a small FAT volume (a command
 * that loads the engine).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { benchEnv, benchTempDir, caCertsNote, median } from './lib.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const BUNDLE = join(ROOT, 'dist', 'diskmint.cjs');

interface Options {
  runs: number;
  json: boolean;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { runs: 40, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') opts.json = true;
    else if (a === '--runs') opts.runs = Math.max(1, Number(argv[++i]) | 0);
    else {
      process.stdout.write('usage: startup-bench [--runs N] [--json]\n');
      process.exit(a === '--help' ? 0 : 2);
    }
  }
  return opts;
}

/** Wall milliseconds of one run of `node ARGS`; throws when it fails. */
function timeNode(args: string[]): number {
  const env = benchEnv();
  const start = performance.now();
  const r = spawnSync(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = performance.now() - start;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} failed (${r.status}): ${r.stderr.toString()}`);
  return ms;
}

interface Row {
  command: string;
  medianMs: number;
  /** Median of the pair-by-pair ratios to `node -e 1`. */
  ratio: number;
}

/** `args` and `node -e 1` in turn, `runs` pairs after two warm-up pairs. */
function paired(command: string, args: string[], runs: number): Row {
  const baseline = ['-e', '1'];
  for (let i = 0; i < 2; i++) {
    timeNode(args);
    timeNode(baseline);
  }
  const ms: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < runs; i++) {
    const a = timeNode(args);
    const b = timeNode(baseline);
    ms.push(a);
    ratios.push(a / b);
  }
  return { command, medianMs: median(ms), ratio: median(ratios) };
}

function main(): void {
  const opts = parseArgs(process.argv.slice(2));
  const dir = benchTempDir('startup', 64 << 20);
  const esp = join(dir, 'esp.img');
  const made = spawnSync(process.execPath, [BUNDLE, 'fat', 'create', esp, '--from', join(ROOT, 'fixtures', 'demo', 'esp')], { env: benchEnv() });
  if (made.status !== 0) throw new Error(`fat create failed: ${made.stderr.toString()}`);

  const baseline: number[] = [];
  for (let i = 0; i < opts.runs; i++) baseline.push(timeNode(['-e', '1']));
  const rows = [
    paired('diskmint --version', [BUNDLE, '--version'], opts.runs),
    // The program itself (core bundle, commander, main.ts's commands), which a bare --version skips.
    paired('diskmint info --help', [BUNDLE, 'info', '--help'], opts.runs),
    paired('diskmint --help', [BUNDLE, '--help'], opts.runs),
    paired('diskmint fat ls ESP', [BUNDLE, 'fat', 'ls', esp], opts.runs),
  ];
  const machine = { node: process.version, date: new Date().toISOString(), nodeE1MedianMs: median(baseline) };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ machine, runs: opts.runs, rows, notes: caCertsNote() }, null, 2)}\n`);
    return;
  }
  const lines = [
    `diskmint start-up, Node ${process.version}, ${opts.runs} pairs each (median); node -e 1: ${median(baseline).toFixed(1)} ms`,
    ...rows.map((r) => `${r.command.padEnd(22)} ${r.medianMs.toFixed(1).padStart(7)} ms  ${r.ratio.toFixed(2)}x node -e 1`),
    ...caCertsNote(),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main();
