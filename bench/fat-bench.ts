/**
 * diskmint FAT benchmark against mkfs.fat + mcopy (not a test: timings never go into tests).
 *
 *   npm run build && node dist/bench/fat-bench.js [--json] [--runs N] [--keep]
 *   npx tsx bench/fat-bench.ts [same options]
 *
 * Input: a folder of 200 files, 64 MiB in total (deterministic pseudo-random content, sizes from
 * 0 bytes to a few MiB, five subfolders, many long names). Output: a 256 MiB FAT32 volume.
 *
 *   diskmint: node dist/diskmint.cjs fat create out.img --from DIR --size 256M --type 32 --label BENCH
 *   peer:     mkfs.fat -C -F 32 -n BENCH out.img 262144 && mcopy -s -i out.img DIR/* ::/
 *             (MTOOLS_SKIP_CHECK=1; both in one `sh -c`, timed as one command)
 *
 * Both run as child processes; the diskmint command is the bundled CLI in both modes (tsx is only
 * used for this script, never for the measured runs). Wall time is the whole child process, Node
 * start-up included. Each tool runs once untimed (warm-up), then `--runs` times (default 3),
 * alternating diskmint and peer; the median is reported, and peak RSS (from `/usr/bin/time -f %M`,
 * for the peer the larger of mkfs.fat and mcopy) is the largest of the runs. Outputs are deleted
 * before each run. The last output of each tool is checked with `fsck.fat -n`, and its files are
 * copied back out with `mcopy -s` and compared with the input folder (`diff -r`). Target: the
 * diskmint/peer wall-time ratio is at most 1.0.
 */
import { GiB, MiB, TIME, benchEnv, benchTempDir, maxOf, caCertsNote, measure, median, writeRandomFile, type Measurement, prng } from './lib.js';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readSync, rmSync, statSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FILES = 200;
const TOTAL_BYTES = 64 * MiB;
const VOLUME_KIB = 262144; // 256 MiB, mkfs.fat counts 1 KiB blocks

interface Options {
  json: boolean;
  runs: number;
  keep: boolean;
}

interface Row {
  tool: string;
  command: string;
  runs: number;
  wallMs: number;
  allWallMs: number[];
  dataBytes: number;
  throughputMiBs: number;
  peakRssMB?: number;
  ratio?: number;
  target: string;
  pass?: boolean;
  fsck: 'clean' | 'DIRTY';
  contents: 'match' | 'DIFFER';
  volume: string;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { json: false, runs: 3, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') opts.json = true;
    else if (a === '--runs') opts.runs = Math.max(1, Number(argv[++i]) | 0);
    else if (a === '--keep') opts.keep = true;
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: fat-bench [--json] [--runs N] [--keep]\n');
      process.exit(0);
    } else {
      process.stderr.write(`fat-bench: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  return opts;
}

const FOLDERS = ['', '', '', 'docs', 'images', 'src/lib', 'src/lib/deep folder', 'Long Folder Name With Spaces'];
const WORDS = ['alpha', 'Bravo', 'charlie', 'delta', 'Echo', 'foxtrot', 'golf', 'hotel', 'India', 'juliet', 'kilo', 'lima'];
const EXTS = ['bin', 'dat', 'txt', 'img', 'tar.gz', 'jpeg', 'json', 'c', ''];

/** A file name: about a third fit 8.3 (some in lower case), the rest are long (spaces, several dots). */
function fileName(i: number, rnd: () => number): string {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
  const ext = pick(EXTS);
  const dot = ext ? `.${ext}` : '';
  const kind = i % 6;
  if (kind === 0) return `F${String(i).padStart(5, '0')}.${ext && ext.length <= 3 ? ext.toUpperCase() : 'BIN'}`;
  if (kind === 1) return `f${String(i).padStart(4, '0')}${dot.length <= 4 ? dot : '.dat'}`; // lower-case 8.3
  if (kind === 2) return `${pick(WORDS)} ${pick(WORDS)} ${String(i).padStart(3, '0')}${dot}`;
  if (kind === 3) return `${pick(WORDS).toLowerCase()}-${pick(WORDS).toLowerCase()}-${pick(WORDS).toLowerCase()}_${i}${dot}`;
  if (kind === 4) return `A rather long file name that goes on for a while, number ${i}${dot}`;
  return `${pick(WORDS)}.${i}.backup${dot}`;
}

/** 200 files, exactly 64 MiB: sizes log-uniform over ~4 decades, one empty file, scaled to the total. */
function makeInputTree(root: string): { files: number; bytes: number; folders: number; longNames: number; largest: number } {
  const rnd = prng(0x5eed_fa7);
  const weights = Array.from({ length: FILES }, () => Math.exp(rnd() * Math.log(10_000)));
  const sum = weights.reduce((a, b) => a + b, 0);
  const sizes = weights.map((w) => Math.floor((w / sum) * TOTAL_BYTES));
  sizes[7] = 0; // one empty file
  const rest = TOTAL_BYTES - sizes.reduce((a, b) => a + b, 0);
  let big = 0;
  for (let i = 1; i < FILES; i++) if (sizes[i] > sizes[big]) big = i;
  sizes[big] += rest;
  for (const f of FOLDERS) mkdirSync(join(root, f), { recursive: true });
  const seen = new Set<string>();
  let longNames = 0;
  for (let i = 0; i < FILES; i++) {
    const folder = FOLDERS[i % FOLDERS.length];
    const name = fileName(i, rnd);
    const key = join(folder, name).toLowerCase(); // FAT compares names without case
    if (seen.has(key)) throw new Error(`duplicate name ${key}`);
    seen.add(key);
    if (!/^[A-Z0-9_]{1,8}(\.[A-Z0-9_]{1,3})?$/.test(name)) longNames++;
    writeRandomFile(join(root, folder, name), sizes[i], `fat-bench:${i}`);
  }
  return { files: FILES, bytes: TOTAL_BYTES, folders: new Set(FOLDERS.filter(Boolean)).size, longNames, largest: sizes[big] };
}

/** The bundled CLI: dist/diskmint.cjs, from bench/ (tsx) or dist/bench/ (compiled). */
function diskmintCli(): string {
  const self = fileURLToPath(import.meta.url);
  const cli = self.endsWith('.ts') ? join(dirname(self), '..', 'dist', 'diskmint.cjs') : join(dirname(self), '..', 'diskmint.cjs');
  if (!existsSync(cli)) {
    process.stderr.write(`fat-bench: ${cli} is missing; run \`npm run build\` first\n`);
    process.exit(1);
  }
  return cli;
}

const MTOOLS_ENV = benchEnv({ MTOOLS_SKIP_CHECK: '1' });

function diskmintRun(cli: string, input: string, out: string, timeFile: string): Measurement {
  rmSync(out, { force: true });
  return measure([process.execPath, cli, 'fat', 'create', out, '--from', input, '--size', '256M', '--type', '32', '--label', 'BENCH'], timeFile).m;
}

/** mkfs.fat + mcopy as one command; `DIR/*` is expanded here (sorted, as the shell would). */
function peerRun(input: string, out: string, timeFile: string): Measurement {
  rmSync(out, { force: true });
  const entries = readdirSync(input)
    .sort()
    .map((e) => join(input, e));
  const script = 'img="$1"; shift; mkfs.fat -C -F 32 -n BENCH "$img" ' + VOLUME_KIB + ' >/dev/null && mcopy -s -i "$img" "$@" ::/';
  return measure(['sh', '-c', script, 'sh', out, ...entries], timeFile, MTOOLS_ENV).m;
}

function fsckClean(img: string): { clean: boolean; output: string } {
  const r = spawnSync('fsck.fat', ['-n', img], { encoding: 'utf8' });
  const output = `${r.stdout}${r.stderr}`.trim();
  // Clean: exit 0 and nothing but the version banner and the summary line.
  const extra = output.split('\n').filter((l) => l && !/^fsck\.fat \d/.test(l) && !/^\s*$/.test(l) && !/: \d+ files, \d+\/\d+ clusters$/.test(l));
  return { clean: r.status === 0 && extra.length === 0, output };
}

/** Copy the volume's files back out with mtools and compare them with the input folder. */
function contentsMatch(img: string, input: string, scratch: string): boolean {
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch);
  const cp = spawnSync('mcopy', ['-s', '-n', '-i', img, '::/*', scratch], { encoding: 'utf8', env: MTOOLS_ENV, input: '' });
  const same = cp.status === 0 && spawnSync('diff', ['-rq', input, scratch]).status === 0;
  rmSync(scratch, { recursive: true, force: true });
  return same;
}

/** FAT type and cluster size from the boot sector (BPB), to show both tools made the same shape. */
function describeVolume(img: string): string {
  const b = Buffer.alloc(512);
  const fd = openSync(img, 'r');
  try {
    readSync(fd, b, 0, 512, 0);
  } finally {
    closeSync(fd);
  }
  const bps = b.readUInt16LE(11);
  const spc = b.readUInt8(13);
  const fatSectors = b.readUInt16LE(22) || b.readUInt32LE(36);
  const fsType = b.toString('latin1', b.readUInt16LE(22) === 0 ? 82 : 54, b.readUInt16LE(22) === 0 ? 90 : 62).trim();
  return `${fsType}, ${(bps * spc) / 1024} KiB clusters, ${b.readUInt8(16)} FATs of ${fatSectors} sectors, ${(statSync(img).size / MiB).toFixed(0)} MiB file, ${((statSync(img).blocks * 512) / MiB).toFixed(1)} MiB allocated`;
}

function formatTable(rows: Row[]): string {
  const header = ['tool', 'seconds (median)', 'MiB/s', 'peak RSS', 'ratio diskmint/peer', 'target', 'result', 'fsck.fat -n', 'contents'];
  const body = rows.map((r) => [
    r.tool,
    (r.wallMs / 1000).toFixed(3),
    r.throughputMiBs.toFixed(0),
    r.peakRssMB === undefined ? 'n/a' : `${r.peakRssMB.toFixed(1)} MB`,
    r.ratio === undefined ? '' : r.ratio.toFixed(2),
    r.target,
    r.pass === undefined ? '' : r.pass ? 'PASS' : 'MISS',
    r.fsck,
    r.contents,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

function main(): void {
  const opts = parseArgs(process.argv.slice(2));
  for (const tool of ['mkfs.fat', 'mcopy', 'fsck.fat', 'diff']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
      process.stderr.write(`fat-bench: ${tool} not found (dosfstools, mtools, diffutils)\n`);
      process.exit(1);
    }
  }
  const cli = diskmintCli();
  const dir = benchTempDir('fat-bench', GiB, { keep: opts.keep });
  const log = (s: string) => {
    if (!opts.json) process.stderr.write(`${s}\n`);
  };

  log(`diskmint FAT benchmark: ${opts.runs} runs each, median; temp dir ${dir}`);
  const input = join(dir, 'in');
  mkdirSync(input);
  const tree = makeInputTree(input);
  log(`input: ${tree.files} files, ${tree.bytes / MiB} MiB, ${tree.folders} subfolders, ${tree.longNames} names needing long entries`);
  const dmOut = join(dir, 'diskmint.img');
  const peerOut = join(dir, 'peer.img');
  const timeFile = join(dir, 'time.txt');

  log('warm-up (untimed) ...');
  diskmintRun(cli, input, dmOut, timeFile);
  peerRun(input, peerOut, timeFile);
  const dm: Measurement[] = [];
  const peer: Measurement[] = [];
  for (let i = 0; i < opts.runs; i++) {
    log(`run ${i + 1}/${opts.runs} ...`);
    dm.push(diskmintRun(cli, input, dmOut, timeFile));
    peer.push(peerRun(input, peerOut, timeFile));
  }

  const startup = [0, 1, 2].map(() => measure([process.execPath, cli, '--version'], timeFile).m.wallMs);

  const row = (tool: string, command: string, ms: Measurement[], img: string): Row => {
    const wall = ms.map((m) => m.wallMs);
    const wallMs = median(wall);
    const rss = maxOf(ms.map((m) => m.maxRssKiB));
    const fsck = fsckClean(img);
    if (!fsck.clean) log(`${tool}: fsck.fat -n reports:\n${fsck.output}`);
    return {
      tool,
      command,
      runs: ms.length,
      wallMs,
      allWallMs: wall,
      dataBytes: tree.bytes,
      throughputMiBs: tree.bytes / MiB / (wallMs / 1000),
      peakRssMB: rss === undefined ? undefined : (rss * 1024) / 1e6,
      target: tool === 'diskmint' ? 'ratio <= 1.0' : 'peer',
      fsck: fsck.clean ? 'clean' : 'DIRTY',
      contents: contentsMatch(img, input, join(dir, 'check')) ? 'match' : 'DIFFER',
      volume: describeVolume(img),
    };
  };
  const dmRow = row('diskmint', 'node dist/diskmint.cjs fat create OUT --from DIR --size 256M --type 32 --label BENCH', dm, dmOut);
  const peerRow = row('mkfs.fat + mcopy', 'mkfs.fat -C -F 32 -n BENCH OUT 262144 && mcopy -s -i OUT DIR/* ::/', peer, peerOut);
  dmRow.ratio = dmRow.wallMs / peerRow.wallMs;
  dmRow.pass = dmRow.ratio <= 1.0 && dmRow.fsck === 'clean' && dmRow.contents === 'match';
  const rows = [dmRow, peerRow];

  const notes = [
    `input: ${tree.files} files, ${tree.bytes / MiB} MiB (largest ${(tree.largest / MiB).toFixed(1)} MiB, one empty), ${tree.folders} subfolders, ${tree.longNames} names needing long entries`,
    ...rows.map((r) => `${r.tool} volume: ${r.volume}`),
    ...rows.map((r) => `${r.tool} runs (s): ${r.allWallMs.map((x) => (x / 1000).toFixed(3)).join(', ')}`),
    `diskmint start-up alone (\`node dist/diskmint.cjs --version\`, median of 3): ${(median(startup) / 1000).toFixed(3)} s`,
    `peak RSS from ${existsSync(TIME) ? '/usr/bin/time -f %M (peer: the larger of mkfs.fat and mcopy, which run one after the other)' : 'n/a (no /usr/bin/time)'}`,
    'wall time is the whole child process (Node start-up included for diskmint); MiB/s is 64 MiB of file data / wall time',
    'the input files are in the page cache for both tools; mkfs.fat fsyncs its fresh (nearly empty) image once, mcopy and diskmint do not sync',
    ...caCertsNote(),
  ];
  const machine = {
    node: process.version,
    cpus: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    memGiB: Math.round(totalmem() / GiB),
    mkfsFat:
      (spawnSync('mkfs.fat', ['--help'], { encoding: 'utf8' }).stdout + spawnSync('mkfs.fat', ['--help'], { encoding: 'utf8' }).stderr).match(
        /mkfs\.fat (\d[\w.]*)/,
      )?.[1] ?? 'unknown',
    mtools: spawnSync('mcopy', ['-V'], { encoding: 'utf8' }).stdout.match(/(\d+\.\d+[\w.]*)/)?.[1] ?? 'unknown',
    date: new Date().toISOString(),
  };

  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ machine, runs: opts.runs, rows, notes }, null, 2)}\n`);
  } else {
    process.stdout.write(`${formatTable(rows)}\n\n`);
    for (const n of notes) process.stdout.write(`note: ${n}\n`);
    process.stdout.write(
      `machine: ${machine.cpus} x ${machine.cpu}, ${machine.memGiB} GiB, Node ${machine.node}, mkfs.fat ${machine.mkfsFat}, mtools ${machine.mtools}, ${machine.date}\n`,
    );
  }
  if (rows.some((r) => r.fsck !== 'clean' || r.contents !== 'match')) process.exitCode = 1;
}

main();
