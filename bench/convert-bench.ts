/**
 * diskmint convert benchmark against qemu-img (not a test: timings never go into tests).
 *
 *   npm run build && node dist/bench/convert-bench.js [--json] [--runs N] [--quick] [--dense] [--only TEXT]
 *   npx tsx bench/convert-bench.ts [same options]
 *
 * Inputs (bench/make-inputs.ts): a 2 GiB raw image with 25% pseudo-random data in 4 MiB pieces
 * (holes elsewhere; `--dense` writes the zeros), a 512 MiB FFS file system of system binaries
 * made with `makefs` (a raw image holding a tar when makefs is missing), and a 4 GiB raw disk
 * holding 1 GiB of system files in 8 runs across it (issue 18's case; uncompressed conversions
 * only). `--quick`: 256 MiB inputs, and 1 GiB with 256 MiB in 8 runs.
 *
 * Each conversion runs `node dist/diskmint.cjs convert IN OUT -O fmt ... -q` and
 * `qemu-img convert -f raw -O fmt ... IN OUT` as child processes, `--runs` times each (default 3),
 * alternating which tool goes first; the median wall time is reported, and peak RSS (from
 * `/usr/bin/time -f %M`) is the largest of the runs. Every diskmint output is checked with
 * `qemu-img compare -f FMT -F raw OUT IN` before it is deleted. Outputs are deleted after each
 * measurement, so disk use stays near the inputs plus one output.
 */
import { GiB, MiB, QEMU_CONVERT_DURABLE, TIME, benchTempDir, maxOf, caCertsNote, measure, median, type Measurement } from './lib.js';
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, statSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmtSize, makeFfsImage, makeScatteredRaw, makeSystemRunsRaw, which, type InputImage } from './make-inputs.js';

interface Options {
  json: boolean;
  runs: number;
  quick: boolean;
  dense: boolean;
  only?: string;
}

type TargetKind = 'uncompressed' | 'half' | 'zstd';

interface Conversion {
  name: string;
  /** qemu-img compare -f FMT for the output. */
  fmt: string;
  ext: string;
  diskmint: string[];
  qemu: string[];
  target: TargetKind;
}

const CONVERSIONS: Conversion[] = [
  { name: 'qcow2', fmt: 'qcow2', ext: 'qcow2', diskmint: ['-O', 'qcow2'], qemu: ['-O', 'qcow2'], target: 'uncompressed' },
  { name: 'vmdk (monolithicSparse)', fmt: 'vmdk', ext: 'vmdk', diskmint: ['-O', 'vmdk'], qemu: ['-O', 'vmdk'], target: 'uncompressed' },
  {
    name: 'vmdk streamOptimized',
    fmt: 'vmdk',
    ext: 'vmdk',
    diskmint: ['-O', 'vmdk', '-o', 'subformat=streamOptimized'],
    qemu: ['-O', 'vmdk', '-o', 'subformat=streamOptimized'],
    target: 'half',
  },
  {
    name: 'vhd (vpc, force_size)',
    fmt: 'vpc',
    ext: 'vhd',
    diskmint: ['-O', 'vhd', '-o', 'force_size=on'],
    qemu: ['-O', 'vpc', '-o', 'force_size=on'],
    target: 'uncompressed',
  },
  { name: 'vhdx', fmt: 'vhdx', ext: 'vhdx', diskmint: ['-O', 'vhdx'], qemu: ['-O', 'vhdx'], target: 'uncompressed' },
  { name: 'qcow2 -c zlib', fmt: 'qcow2', ext: 'qcow2', diskmint: ['-O', 'qcow2', '-c'], qemu: ['-O', 'qcow2', '-c'], target: 'half' },
  {
    name: 'qcow2 -c zstd',
    fmt: 'qcow2',
    ext: 'qcow2',
    diskmint: ['-O', 'qcow2', '-c', '--compression', 'zstd'],
    qemu: ['-O', 'qcow2', '-c', '-o', 'compression_type=zstd'],
    target: 'zstd',
  },
];

const TARGET_TEXT: Record<TargetKind, string> = {
  uncompressed: '<= 1.0x',
  half: '<= 0.5x',
  zstd: '<= 1.0x',
};
const TARGET_RATIO: Record<TargetKind, number> = { uncompressed: 1.0, half: 0.5, zstd: 1.0 };
/** Output may be at most this much larger than qemu-img's. */
const SIZE_SLACK = 1.02;

interface ToolResult {
  runs: number;
  wallMs: number;
  allWallMs: number[];
  peakRssMB?: number;
  /** st_size of the output (last run). */
  sizeBytes: number;
  /** Allocated bytes of the output (st_blocks * 512, last run). */
  allocBytes: number;
}

interface Row {
  input: string;
  conversion: string;
  diskmint: ToolResult;
  qemu: ToolResult;
  ratio: number;
  diskmintMBs: number;
  sizeRatio: number;
  allocRatio: number;
  target: string;
  timeOk: boolean;
  sizeOk: boolean;
  /** qemu-img compare of every diskmint output against the input. */
  identical: boolean;
  compareNote?: string;
  pass: boolean;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { json: false, runs: 3, quick: false, dense: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') opts.json = true;
    else if (a === '--runs') opts.runs = Math.max(1, Number(argv[++i]) | 0);
    else if (a === '--quick') opts.quick = true;
    else if (a === '--dense') opts.dense = true;
    else if (a === '--only') opts.only = String(argv[++i] ?? '').toLowerCase();
    else if (a === '-h' || a === '--help') {
      process.stdout.write(
        'usage: convert-bench [--json] [--runs N] [--quick] [--dense] [--only TEXT]\n' +
          '  --runs N     runs per tool and conversion, median reported (default 3)\n' +
          '  --quick      256 MiB inputs (smoke run)\n' +
          '  --dense      write the zeros of the scattered raw input (no holes)\n' +
          '  --only TEXT  only rows whose "input conversion" contains TEXT (e.g. zstd, ffs)\n',
      );
      process.exit(0);
    } else {
      process.stderr.write(`convert-bench: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  return opts;
}

/** The repository root: the nearest folder above us holding package.json (works from bench/ and dist/bench/). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('convert-bench: package.json not found above the script');
    dir = up;
  }
  return dir;
}

/** qemu-img compare: 0 identical, 1 differs, anything else an error. */
function compare(fmt: string, out: string, input: string): { identical: boolean; note?: string } {
  const r = spawnSync('qemu-img', ['compare', '-f', fmt, '-F', 'raw', out, input], { encoding: 'utf8' });
  if (r.status === 0) return { identical: true };
  const msg = `${r.stdout}${r.stderr}`.trim().split('\n')[0];
  return { identical: false, note: r.status === 1 ? `differs: ${msg}` : `compare failed (${r.status}): ${msg}` };
}

function toolResult(ms: Measurement[], size: number, alloc: number): ToolResult {
  const wall = ms.map((m) => m.wallMs);
  const rss = maxOf(ms.map((m) => m.maxRssKiB));
  return {
    runs: ms.length,
    wallMs: median(wall),
    allWallMs: wall,
    peakRssMB: rss === undefined ? undefined : (rss * 1024) / 1e6,
    sizeBytes: size,
    allocBytes: alloc,
  };
}

function runConversion(input: InputImage, label: string, conv: Conversion, dir: string, runs: number, diskmintCli: string, log: (s: string) => void): Row {
  const out = join(dir, `out.${conv.ext}`);
  const timeFile = join(dir, 'time.txt');
  const dm: Measurement[] = [];
  const qm: Measurement[] = [];
  let dmSize = 0;
  let dmAlloc = 0;
  let qSize = 0;
  let qAlloc = 0;
  let identical = true;
  let compareNote: string | undefined;

  const runDiskmint = () => {
    rmSync(out, { force: true });
    dm.push(measure([process.execPath, diskmintCli, 'convert', input.path, out, ...conv.diskmint, '-q'], timeFile).m);
    const st = statSync(out);
    dmSize = st.size;
    dmAlloc = st.blocks * 512;
    const c = compare(conv.fmt, out, input.path);
    if (!c.identical) {
      identical = false;
      compareNote ??= c.note;
    }
    rmSync(out, { force: true });
  };
  const runQemu = () => {
    rmSync(out, { force: true });
    qm.push(measure(['qemu-img', ...QEMU_CONVERT_DURABLE, '-f', 'raw', ...conv.qemu, input.path, out], timeFile).m);
    const st = statSync(out);
    qSize = st.size;
    qAlloc = st.blocks * 512;
    rmSync(out, { force: true });
  };

  for (let i = 0; i < runs; i++) {
    // Alternate which tool goes first, so neither always follows the other's writeback.
    if (i % 2 === 0) {
      runDiskmint();
      runQemu();
    } else {
      runQemu();
      runDiskmint();
    }
  }
  const d = toolResult(dm, dmSize, dmAlloc);
  const q = toolResult(qm, qSize, qAlloc);
  const ratio = d.wallMs / q.wallMs;
  const sizeRatio = d.sizeBytes / q.sizeBytes;
  const allocRatio = q.allocBytes ? d.allocBytes / q.allocBytes : NaN;
  const timeOk = ratio <= TARGET_RATIO[conv.target];
  const sizeOk = sizeRatio <= SIZE_SLACK;
  const row: Row = {
    input: label,
    conversion: conv.name,
    diskmint: d,
    qemu: q,
    ratio,
    diskmintMBs: input.size / 1e6 / (d.wallMs / 1000),
    sizeRatio,
    allocRatio,
    target: `${TARGET_TEXT[conv.target]}, size <= 1.02x`,
    timeOk,
    sizeOk,
    identical,
    compareNote,
    pass: identical && timeOk && sizeOk,
  };
  log(
    `  ${conv.name}: diskmint ${(d.wallMs / 1000).toFixed(2)} s, qemu-img ${(q.wallMs / 1000).toFixed(2)} s (${ratio.toFixed(2)}x), ` +
      `size ${sizeRatio.toFixed(3)}x, ${identical ? 'identical' : 'DIFFERS'}`,
  );
  return row;
}

const fmtMB = (bytes: number): string => (bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`);

function formatTable(rows: Row[]): string {
  const header = [
    'input',
    'conversion',
    'diskmint s',
    'qemu-img s',
    'ratio',
    'diskmint MB/s',
    'diskmint RSS',
    'qemu-img RSS',
    'diskmint size',
    'qemu-img size',
    'size ratio',
    'target',
    'output',
    'result',
  ];
  const body = rows.map((r) => [
    r.input,
    r.conversion,
    (r.diskmint.wallMs / 1000).toFixed(2),
    (r.qemu.wallMs / 1000).toFixed(2),
    `${r.ratio.toFixed(2)}x`,
    r.diskmintMBs.toFixed(0),
    r.diskmint.peakRssMB === undefined ? 'n/a' : `${r.diskmint.peakRssMB.toFixed(0)} MB`,
    r.qemu.peakRssMB === undefined ? 'n/a' : `${r.qemu.peakRssMB.toFixed(0)} MB`,
    fmtMB(r.diskmint.sizeBytes),
    fmtMB(r.qemu.sizeBytes),
    `${r.sizeRatio.toFixed(3)}x`,
    r.target,
    r.identical ? 'identical' : 'DIFFERS',
    r.pass ? 'PASS' : `MISS${r.identical ? '' : ' (output)'}${r.timeOk ? '' : ' (time)'}${r.sizeOk ? '' : ' (size)'}`,
  ]);
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...body.map(line)].join('\n');
}

function main(): void {
  const opts = parseArgs(process.argv.slice(2));
  const root = repoRoot();
  const diskmintCli = join(root, 'dist', 'diskmint.cjs');
  if (!existsSync(diskmintCli)) {
    process.stderr.write(`convert-bench: ${diskmintCli} is missing; run npm run build first\n`);
    process.exit(1);
  }
  if (!which('qemu-img')) {
    process.stderr.write('convert-bench: qemu-img not found (Debian package qemu-utils)\n');
    process.exit(1);
  }
  const rawSize = opts.quick ? 256 * MiB : 2 * GiB;
  const ffsSize = opts.quick ? 256 * MiB : 512 * MiB;
  const ffsData = opts.quick ? 96 * MiB : 350 * MiB;

  // Worst case on disk: one input at a time (2 GiB written with --dense; the 4 GiB one holds 1 GiB), the FFS staging copy, one uncompressed output.
  const dir = benchTempDir('convert-bench', opts.quick ? 2 * GiB : 7 * GiB);
  const log = (s: string) => {
    if (!opts.json) process.stderr.write(`${s}\n`);
  };
  const wanted = (label: string, conv: Conversion) => !opts.only || `${label} ${conv.name}`.toLowerCase().includes(opts.only);

  log(`diskmint convert benchmark: ${opts.runs} runs each, median; temp dir ${dir}`);
  const runsSize = opts.quick ? GiB : 4 * GiB;
  const runsData = runsSize / 4;
  const inputs: Array<{ label: string; make: () => InputImage; uncompressedOnly?: boolean }> = [
    { label: `raw ${fmtSize(rawSize)} 25% random`, make: () => makeScatteredRaw(join(dir, 'scattered.raw'), rawSize, { dense: opts.dense }) },
    { label: `ffs ${fmtSize(ffsSize)} /usr`, make: () => makeFfsImage(join(dir, 'usr.ufs'), dir, ffsSize, ffsData) },
    {
      label: `raw ${fmtSize(runsSize)} ${fmtSize(runsData)} /usr in 8 runs`,
      make: () => makeSystemRunsRaw(join(dir, 'runs.raw'), runsSize, runsData, 8),
      uncompressedOnly: true,
    },
  ];

  const rows: Row[] = [];
  const notes: string[] = [];
  const failures: string[] = [];
  for (const spec of inputs) {
    const convs = CONVERSIONS.filter((c) => wanted(spec.label, c) && (!spec.uncompressedOnly || c.target === 'uncompressed'));
    if (!convs.length) continue;
    log(`input: ${spec.label} (making it) ...`);
    const input = spec.make();
    const label = input.notes.some((n) => n.startsWith('FALLBACK')) ? `raw+tar ${fmtSize(ffsSize)} /usr` : spec.label;
    notes.push(...input.notes);
    for (const conv of convs) {
      try {
        rows.push(runConversion(input, label, conv, dir, opts.runs, diskmintCli, log));
      } catch (err) {
        const msg = (err instanceof Error ? err.message : String(err)).trim().split('\n').slice(0, 3).join(' / ');
        failures.push(`${label} ${conv.name}: ${msg}`);
        log(`  ${conv.name}: FAILED: ${msg}`);
      }
    }
    rmSync(input.path, { force: true });
  }

  // Start-up alone, for reading the small rows: the CLI doing nothing but print its version.
  const startup = Array.from({ length: Math.max(3, opts.runs) }, () => measure([process.execPath, diskmintCli, '--version'], join(dir, 'time.txt')).m);
  const startupMs = median(startup.map((m) => m.wallMs));
  const startupRss = maxOf(startup.map((m) => m.maxRssKiB));
  notes.push(
    `diskmint start-up (\`node dist/diskmint.cjs --version\`): ${(startupMs / 1000).toFixed(2)} s` +
      (startupRss === undefined ? '' : `, ${((startupRss * 1024) / 1e6).toFixed(0)} MB peak RSS`) +
      '; every diskmint time above includes it',
  );
  const qemuVersion = spawnSync('qemu-img', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? 'unknown';
  notes.push(
    `peak RSS from ${existsSync(TIME) ? '/usr/bin/time -f %M' : 'n/a (no /usr/bin/time)'}; the largest of the runs`,
    'times are whole child processes (diskmint includes Node start-up and module loading); median of the runs, tools alternating which goes first',
    'MB/s = input virtual size / diskmint wall time (1 MB = 1e6 bytes); sizes are st_size of the output (allocated bytes are in --json)',
    'inputs are in the page cache for both tools; both make their output durable before exiting (diskmint fsyncs the file and its folder; qemu-img runs with -t writeback and fdatasyncs: its default for convert, cache=unsafe, flushes nothing)',
    'every diskmint output was checked with `qemu-img compare -f FMT -F raw OUT IN` before deletion',
    ...caCertsNote(),
  );
  const machine = {
    node: process.version,
    qemuImg: qemuVersion,
    cpus: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    memGiB: Math.round(totalmem() / GiB),
    date: new Date().toISOString(),
    startupMs,
  };

  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ machine, runs: opts.runs, quick: opts.quick, dense: opts.dense, rows, failures, notes }, null, 2)}\n`);
  } else {
    process.stdout.write(`${formatTable(rows)}\n\n`);
    for (const f of failures) process.stdout.write(`FAILED: ${f}\n`);
    for (const r of rows) if (r.compareNote) process.stdout.write(`DIFFERS: ${r.input} ${r.conversion}: ${r.compareNote}\n`);
    for (const n of notes) process.stdout.write(`note: ${n}\n`);
    process.stdout.write(`machine: ${machine.cpus} x ${machine.cpu}, ${machine.memGiB} GiB, Node ${machine.node}, ${machine.qemuImg}, ${machine.date}\n`);
  }
  if (failures.length || rows.some((r) => !r.identical)) process.exitCode = 1;
}

main();
