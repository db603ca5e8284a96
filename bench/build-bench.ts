/**
 * diskmint build benchmark (not a test: timings never go into tests).
 *
 *   npm run build && npm run bench [-- --json] [-- --runs N]
 *   npx tsx bench/build-bench.ts [--json] [--runs N]
 *
 * Case "1 TiB sparse": a GPT disk of 1 TiB holding a 64 MiB pseudo-random file: cost must
 *   follow the data, not the virtual size. Targets: under 1.5 s and under 150 MB peak RSS.
 * Case "2 GiB with 512 MiB data": a 512 MiB pseudo-random file in a 2 GiB GPT disk, against
 *   `cp --sparse=always` of a raw image holding the same bytes. Target: within 1.5x of cp.
 *
 * Every build runs in a child process (bench/run-build), so peak RSS is diskmint's alone; it
 * comes from `/usr/bin/time -f %M` when present, else from the child's own getrusage. Wall
 * time is the whole child process (start-up included), as a user running a command sees it;
 * cp is timed the same way. Measured commands run `--runs` times (default 5), alternating
 * between tools, and the median is reported. Input files are in the page cache for every run
 * of both tools (they were just written, and the machine has the memory to keep them).
 */
import { GiB, MiB, TIME, benchTempDir, maxOf, caCertsNote, measure, median, writeRandomFile, type Measurement } from './lib.js';
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Options {
  json: boolean;
  runs: number;
}

interface Row {
  case: string;
  tool: string;
  runs: number;
  wallMs: number;
  buildMs?: number;
  dataBytes: number;
  throughputMiBs: number;
  peakRssMB?: number;
  ratio?: number;
  target: string;
  pass?: boolean;
  allWallMs: number[];
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { json: false, runs: 5 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') opts.json = true;
    else if (a === '--runs') opts.runs = Math.max(1, Number(argv[++i]) | 0);
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: build-bench [--json] [--runs N]\n');
      process.exit(0);
    } else {
      process.stderr.write(`build-bench: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  return opts;
}

const benchDir = dirname(fileURLToPath(import.meta.url));
/** The bundled CLI, what a user runs: dist/diskmint.cjs from bench/ (tsx) or dist/bench/ (compiled). */
const CLI = benchDir.endsWith(join('dist', 'bench')) ? join(benchDir, '..', 'diskmint.cjs') : join(benchDir, '..', 'dist', 'diskmint.cjs');

/** How to start the in-process runner: compiled JS beside us, or the .ts through tsx. */
function runnerCommand(): string[] {
  const self = fileURLToPath(import.meta.url);
  if (self.endsWith('.ts')) return [process.execPath, '--import', 'tsx', join(benchDir, 'run-build.ts')];
  return [process.execPath, join(benchDir, 'run-build.js')];
}

/** One timed `diskmint build` through the CLI (wall time and peak RSS, start-up included). */
function diskmintBuild(layout: string, output: string, timeFile: string): Measurement {
  if (existsSync(output)) unlinkSync(output);
  return measure([process.execPath, CLI, 'build', layout, '-o', output, '-q'], timeFile).m;
}

/** buildImage() alone, timed inside its own process: what the work costs without start-up. */
function diskmintBuildInProcess(layout: string, output: string, timeFile: string): { buildMs: number; dataBytes: number } {
  if (existsSync(output)) unlinkSync(output);
  const { stdout } = measure([...runnerCommand(), layout, output], timeFile);
  const line = stdout.trim().split('\n').pop() ?? '{}';
  return JSON.parse(line) as { buildMs: number; dataBytes: number };
}

function cpSparse(from: string, to: string, timeFile: string): Measurement {
  if (existsSync(to)) unlinkSync(to);
  return measure(['cp', '--sparse=always', from, to], timeFile).m;
}

/** Bytes actually allocated on disk (sparse files). */
const allocated = (path: string): number => statSync(path).blocks * 512;

function gptLayout(size: string, dataFile: string, dataSize: string): object {
  return {
    scheme: 'gpt',
    size,
    seed: 'diskmint-bench',
    partitions: [
      { type: 'freebsd-boot', label: 'boot', size: '512K', contents: { zero: true } },
      { type: 'efi', label: 'efi', size: '33M' },
      { type: 'freebsd-ufs', label: 'data', size: dataSize, contents: { file: dataFile } },
      { type: 'freebsd-swap', label: 'swap', size: '1G' },
      { type: 'freebsd-ufs', label: 'rest', size: 'rest' },
    ],
  };
}

interface CaseResult {
  rows: Row[];
  notes: string[];
}

function rowFor(name: string, tool: string, ms: Array<Measurement & { buildMs?: number }>, dataBytes: number, target: string): Row {
  const wall = ms.map((m) => m.wallMs);
  const wallMs = median(wall);
  const rss = maxOf(ms.map((m) => m.maxRssKiB));
  const builds = ms.map((m) => m.buildMs).filter((x): x is number => x !== undefined);
  return {
    case: name,
    tool,
    runs: ms.length,
    wallMs,
    buildMs: builds.length ? median(builds) : undefined,
    dataBytes,
    throughputMiBs: dataBytes / MiB / (wallMs / 1000),
    peakRssMB: rss === undefined ? undefined : (rss * 1024) / 1e6,
    target,
    allWallMs: wall,
  };
}

interface CaseRun {
  out: string;
  copy: string;
  dm: Array<Measurement & { buildMs?: number; dataBytes: number }>;
  cp: Measurement[];
  /** Removes the case's files. */
  cleanup(): void;
}

/**
 * One case: a GPT layout of `diskSize` holding `dataBytes` of random data; an untimed build makes
 * the reference image for cp, then diskmint builds and cp copies alternate `runs` times.
 */
function runCase(dir: string, tag: string, diskSize: string, dataBytes: number, runs: number): CaseRun {
  const input = join(dir, `${tag}.data.bin`);
  writeRandomFile(input, dataBytes, tag);
  const layout = join(dir, `${tag}.layout.json`);
  writeFileSync(layout, JSON.stringify(gptLayout(diskSize, `${tag}.data.bin`, `${dataBytes / MiB}M`), null, 2));
  const out = join(dir, `${tag}.img`);
  const ref = join(dir, `${tag}.ref.img`);
  const copy = join(dir, `${tag}.copy.img`);
  const timeFile = join(dir, 'time.txt');
  diskmintBuild(layout, ref, timeFile);
  const dm: CaseRun['dm'] = [];
  const cp: Measurement[] = [];
  for (let i = 0; i < runs; i++) {
    const m = diskmintBuild(layout, out, timeFile);
    dm.push({ ...m, ...diskmintBuildInProcess(layout, out, timeFile) });
    cp.push(cpSparse(ref, copy, timeFile));
  }
  return { out, copy, dm, cp, cleanup: () => [out, ref, copy, input].forEach((f) => rmSync(f, { force: true })) };
}

function caseSparse1T(dir: string, runs: number): CaseResult {
  const name = '1 TiB sparse, 64 MiB data';
  const { out, dm, cp, cleanup } = runCase(dir, 'sparse-1t', '1T', 64 * MiB, runs);
  const size = statSync(out).size;
  if (size !== 2 ** 40) throw new Error(`1 TiB case: output is ${size} bytes`);
  const notes = [`1 TiB image: ${(allocated(out) / MiB).toFixed(1)} MiB allocated on disk (64 MiB data + tables)`];
  const dataBytes = dm[0].dataBytes;
  const dmRow = rowFor(name, 'diskmint', dm, dataBytes, '< 1.5 s, < 150 MB');
  const cpRow = rowFor(name, 'cp --sparse=always', cp, dataBytes, 'peer');
  dmRow.ratio = dmRow.wallMs / cpRow.wallMs;
  dmRow.pass = dmRow.wallMs < 1500 && dmRow.peakRssMB !== undefined && dmRow.peakRssMB < 150;
  cleanup();
  return { rows: [dmRow, cpRow], notes };
}

function case2G(dir: string, runs: number): CaseResult {
  const name = '2 GiB, 512 MiB data';
  const { out, copy, dm, cp, cleanup } = runCase(dir, 'img-2g', '2G', 512 * MiB, runs);
  const same = spawnSync('cmp', ['-s', out, copy]).status === 0;
  const notes = [`2 GiB image: ${(allocated(out) / MiB).toFixed(1)} MiB allocated; diskmint output ${same ? 'identical to' : 'DIFFERS FROM'} the cp copy`];
  const dataBytes = dm[0].dataBytes;
  const dmRow = rowFor(name, 'diskmint', dm, dataBytes, '<= 1.5x cp');
  const cpRow = rowFor(name, 'cp --sparse=always', cp, dataBytes, 'peer');
  dmRow.ratio = dmRow.wallMs / cpRow.wallMs;
  dmRow.pass = same && dmRow.ratio <= 1.5;
  notes.push(`2 GiB case, buildImage() alone (no Node start-up or module loading) against cp: ${((dmRow.buildMs ?? NaN) / cpRow.wallMs).toFixed(2)}x`);
  cleanup();
  return { rows: [dmRow, cpRow], notes };
}

function formatTable(rows: Row[]): string {
  const header = ['case', 'tool', 'wall (median)', 'in-process', 'MiB/s', 'peak RSS', 'ratio', 'target', 'result'];
  const body = rows.map((r) => [
    r.case,
    r.tool,
    `${(r.wallMs / 1000).toFixed(3)} s`,
    r.buildMs === undefined ? '' : `${(r.buildMs / 1000).toFixed(3)} s`,
    r.throughputMiBs.toFixed(0),
    r.peakRssMB === undefined ? 'n/a' : `${r.peakRssMB.toFixed(1)} MB`,
    r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}x`,
    r.target,
    r.pass === undefined ? '' : r.pass ? 'PASS' : 'MISS',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

function main(): void {
  const opts = parseArgs(process.argv.slice(2));
  const dir = benchTempDir('build-bench', 3 * GiB);
  const log = (s: string) => {
    if (!opts.json) process.stderr.write(`${s}\n`);
  };

  log(`diskmint build benchmark: ${opts.runs} runs each, median; temp dir ${dir}`);
  log('case 1: 1 TiB sparse ...');
  const c1 = caseSparse1T(dir, opts.runs);
  log('case 2: 2 GiB with 512 MiB data ...');
  const c2 = case2G(dir, opts.runs);
  const rows = [...c1.rows, ...c2.rows];
  const notes = [
    ...c1.notes,
    ...c2.notes,
    `peak RSS from ${existsSync(TIME) ? '/usr/bin/time -f %M' : "the child's process.resourceUsage().maxRSS (cp: n/a)"}`,
    'wall time is the whole `node dist/diskmint.cjs build LAYOUT -o OUT -q` process, start-up included (ratio and PASS/MISS use it); in-process is buildImage() alone, timed in a separate run',
    'input files and the reference image are in the page cache for both tools',
    ...caCertsNote(),
  ];
  const machine = { node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', date: new Date().toISOString() };

  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ machine, runs: opts.runs, rows, notes }, null, 2)}\n`);
  } else {
    process.stdout.write(`${formatTable(rows)}\n\n`);
    for (const n of notes) process.stdout.write(`note: ${n}\n`);
    process.stdout.write(`machine: ${machine.cpus} x ${machine.cpu}, Node ${machine.node}, ${machine.date}\n`);
  }
}

main();
