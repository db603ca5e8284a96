/**
 * Sparse raw inputs: diskmint's two ways of finding data (the kernel's map through koffi, and the
 * pure scan with DISKMINT_PURE_IO=1) against qemu-img (not a test: timings never go into tests).
 *
 *   npm run build && npm run bench:sparse      # node dist/bench/sparse-bench.js [--json] [--runs N] [--pure-runs N]
 *
 * Inputs: 1 GiB of pseudo-random data in 8 runs of 128 MiB, spread evenly over a 4 GiB sparse raw
 * file and over a 64 GiB one; a 142 GiB sparse raw file holding 32 KiB (four 8 KiB pieces, one at
 * the very end). Cases, for each input: `convert` raw -> qcow2 and `compare` raw vs that qcow2,
 * diskmint (kernel path, then pure path) against `qemu-img convert -O qcow2` / `qemu-img compare`.
 * Every command is a child process (start-up included); one untimed run each, then `--runs`
 * (default 3) alternating runs, medians, the largest peak RSS (`/usr/bin/time -f %M`). The pure
 * path reads every hole (minutes for the large files): `--pure-runs` (default 1) of it, unwarmed.
 * Both conversions must hold the input's disk (`qemu-img compare`), both compares say identical.
 * Targets (kernel path): 64 GiB within 1.1x of our 4 GiB time and 1.0x of qemu-img's; 142 GiB
 * under 0.5 s.
 */
import { GiB, MiB, QEMU_CONVERT_DURABLE, benchTempDir, caCertsNote, maxOf, measure, median, writeRandomFile, benchEnv, type Measurement } from './lib.js';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Row {
  input: string;
  op: 'convert' | 'compare';
  tool: 'diskmint (kernel)' | 'diskmint (pure)' | 'qemu-img';
  seconds: number;
  rssMB?: number;
  runs: number[];
}

const benchDir = dirname(fileURLToPath(import.meta.url));
const CLI = benchDir.endsWith(join('dist', 'bench')) ? join(benchDir, '..', 'diskmint.cjs') : join(benchDir, '..', 'dist', 'diskmint.cjs');

function parseArgs(argv: string[]): { json: boolean; runs: number; pureRuns: number } {
  const opts = { json: false, runs: 3, pureRuns: 1 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--json') opts.json = true;
    else if (argv[i] === '--runs') opts.runs = Math.max(1, Number(argv[++i]) | 0);
    else if (argv[i] === '--pure-runs') opts.pureRuns = Math.max(0, Number(argv[++i]) | 0);
    else {
      process.stderr.write('usage: sparse-bench [--json] [--runs N] [--pure-runs N]\n');
      process.exit(2);
    }
  }
  return opts;
}

function run(argv: string[], env?: NodeJS.ProcessEnv): void {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
}

/** A sparse raw file of `size` bytes holding `pieces` (offset, length) of `data`'s bytes, in order. */
function sparseInput(path: string, size: number, data: string, pieces: { at: number; length: number }[]): void {
  const src = openSync(data, 'r');
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, size);
    const buf = Buffer.allocUnsafe(4 * MiB);
    let from = 0;
    for (const { at, length } of pieces) {
      for (let done = 0; done < length;) {
        const n = readSync(src, buf, 0, Math.min(buf.length, length - done), from);
        for (let off = 0; off < n;) off += writeSync(fd, buf, off, n - off, at + done + off);
        done += n;
        from += n;
      }
    }
  } finally {
    closeSync(fd);
    closeSync(src);
  }
}

/**
 * Time each tool's command alternately (`runs` each, `pureRuns` for the pure path), after one
 * untimed run each except the pure path's (minutes on the large inputs, and bound by reading).
 */
function timeCase(
  input: string,
  op: Row['op'],
  commands: { tool: Row['tool']; argv: string[]; env?: NodeJS.ProcessEnv; output?: string; runs: number }[],
  timeFile: string,
): Row[] {
  const got = new Map<Row['tool'], Measurement[]>();
  const fresh = (path?: string) => path !== undefined && rmSync(path, { force: true });
  for (const c of commands) {
    if (!c.runs) continue;
    got.set(c.tool, []);
    if (c.tool === 'diskmint (pure)') continue;
    fresh(c.output);
    run(c.argv, c.env);
  }
  const most = Math.max(...commands.map((c) => c.runs));
  for (let i = 0; i < most; i++) {
    for (const c of commands) {
      if (i >= c.runs) continue;
      fresh(c.output);
      got.get(c.tool)!.push(measure(c.argv, timeFile, c.env).m);
    }
  }
  return [...got].map(([tool, ms]) => {
    const kib = maxOf(ms.map((m) => m.maxRssKiB));
    return {
      input,
      op,
      tool,
      seconds: median(ms.map((m) => m.wallMs)) / 1000,
      rssMB: kib === undefined ? undefined : kib / 1024,
      runs: ms.map((m) => m.wallMs / 1000),
    };
  });
}

function main(): void {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing; run \`npm run build\` first`);
  const dir = benchTempDir('sparse-bench', 6 * GiB);
  const timeFile = join(dir, 'time.txt');
  const data = join(dir, 'data.bin');
  writeRandomFile(data, GiB, 'sparse-bench');
  const eight = (size: number) => Array.from({ length: 8 }, (_, i) => ({ at: (i * size) / 8 + 3 * MiB, length: 128 * MiB }));
  const huge = 142 * GiB;
  const inputs = [
    { name: '4 GiB, 1 GiB data', size: 4 * GiB, dataBytes: GiB, pieces: eight(4 * GiB) },
    { name: '64 GiB, 1 GiB data', size: 64 * GiB, dataBytes: GiB, pieces: eight(64 * GiB) },
    {
      name: '142 GiB, 32 KiB data',
      size: huge,
      dataBytes: 32 << 10,
      pieces: [0, 17 * GiB + 4321, 99 * GiB, huge - 8192].map((at) => ({ at, length: 8192 })),
    },
  ];
  const rows: Row[] = [];
  const pure = benchEnv({ DISKMINT_PURE_IO: '1' });
  for (const input of inputs) {
    const raw = join(dir, 'in.raw');
    sparseInput(raw, input.size, data, input.pieces);
    const ours = join(dir, 'ours.qcow2');
    const theirs = join(dir, 'theirs.qcow2');
    const pureOut = join(dir, 'pure.qcow2');
    const dm = (...args: string[]) => [process.execPath, CLI, ...args];
    rows.push(
      ...timeCase(
        input.name,
        'convert',
        [
          { tool: 'diskmint (kernel)', argv: dm('convert', raw, ours, '-q'), output: ours, runs: opts.runs },
          { tool: 'diskmint (pure)', argv: dm('convert', raw, pureOut, '-q'), env: pure, output: pureOut, runs: opts.pureRuns },
          { tool: 'qemu-img', argv: ['qemu-img', ...QEMU_CONVERT_DURABLE, '-O', 'qcow2', raw, theirs], output: theirs, runs: opts.runs },
        ],
        timeFile,
      ),
    );
    run(['qemu-img', 'compare', raw, ours]); // the conversion holds the input's disk
    if (opts.pureRuns) run(['cmp', ours, pureOut]); // and both paths wrote the same bytes
    rows.push(
      ...timeCase(
        input.name,
        'compare',
        [
          { tool: 'diskmint (kernel)', argv: dm('compare', raw, ours), runs: opts.runs },
          { tool: 'diskmint (pure)', argv: dm('compare', raw, ours), env: pure, runs: opts.pureRuns },
          { tool: 'qemu-img', argv: ['qemu-img', 'compare', raw, ours], runs: opts.runs },
        ],
        timeFile,
      ),
    );
    for (const f of [raw, ours, theirs, pureOut]) rmSync(f, { force: true });
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ rows, machine: machine() }, null, 2)}\n`);
    return;
  }
  process.stdout.write(`${report(rows, inputs).join('\n')}\n`);
}

function report(rows: Row[], inputs: { name: string; dataBytes: number }[]): string[] {
  const find = (input: string, op: string, tool: string) => rows.find((r) => r.input === input && r.op === op && r.tool === tool);
  const fmt = (x?: number, digits = 1) => (x === undefined ? '-' : x.toFixed(digits));
  const lines = [
    '| input | op | tool | seconds (median) | MB/s of data | peak RSS MB | ratio to qemu-img | target | result |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of rows) {
    const peer = find(r.input, r.op, 'qemu-img');
    const dataBytes = inputs.find((i) => i.name === r.input)!.dataBytes;
    let target = '';
    let result = '';
    if (r.tool === 'diskmint (kernel)' && r.input.startsWith('64 GiB')) {
      const small = find(inputs[0].name, r.op, r.tool)!;
      const vsSmall = r.seconds / small.seconds;
      target = `<= 1.1x of 4 GiB (${vsSmall.toFixed(2)}x), <= 1.0x qemu-img`;
      result = vsSmall <= 1.1 && peer && r.seconds <= peer.seconds ? 'PASS' : 'MISS';
    } else if (r.tool === 'diskmint (kernel)' && r.input.startsWith('142 GiB')) {
      target = '< 0.5 s';
      result = r.seconds < 0.5 ? 'PASS' : 'MISS';
    }
    const ratio = peer && r.tool !== 'qemu-img' ? `${(r.seconds / peer.seconds).toFixed(2)}x` : '';
    lines.push(
      `| ${r.input} | ${r.op} | ${r.tool} | ${r.seconds.toFixed(3)} | ${fmt(dataBytes / 1e6 / r.seconds)} | ${fmt(r.rssMB)} | ${ratio} | ${target} | ${result} |`,
    );
  }
  lines.push('', 'note: conversions checked with qemu-img compare (and cmp between the two paths); compares all said identical');
  for (const r of rows) lines.push(`note: ${r.input} ${r.op} ${r.tool} runs (s): ${r.runs.map((x) => x.toFixed(3)).join(', ')}`);
  lines.push(...caCertsNote(), `machine: ${machine()}`);
  return lines;
}

function machine(): string {
  const q = spawnSync('qemu-img', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0];
  return `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, ${q}, ${new Date().toISOString()}`;
}

main();
