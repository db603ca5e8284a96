/**
 * diskmint update-bundle benchmark: full vs delta bundle size and speed (not a test).
 *
 *   npx tsx bench/delta-bench.ts [--json] [--runs N] [--mib N]
 *   npm run build && node dist/bench/delta-bench.js [--json]
 *
 * Two FFS (UFS2) images made with Debian's makefs (`-t ffs -B little -o version=2 -s 256m`)
 * from the same folder: about --mib (default 150) MiB of regular files copied from /usr/bin
 * and /usr/lib/x86_64-linux-gnu. Two cases, each against the same first image: (1) 1% of the
 * files by count, evenly spread through the sorted list, rewritten with new bytes of the same
 * size; (2) files spread through the list rewritten until 1% of the bytes have changed. Both use `-T` with a fixed time so the images
 * differ only by the changed files (and the metadata that follows from them).
 *
 * Reports the full bundle size, the delta bundle size, and `zstd -19` of the new image for
 * comparison, plus creation and apply times (in-process, median of --runs, default 3). Apply
 * is what the slot writer does: open and verify the bundle, stream the chunks, write them into
 * a copy of the base (delta) or an empty file (full); the result is checked byte-identical.
 * Target: the delta under 5% of the full bundle.
 */
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
  ftruncateSync,
} from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createBundle } from '../src/ops/bundle/create.js';
import { openBundle } from '../src/ops/bundle/open.js';
import { writeKeyPair } from '../src/ops/sign-keys.js';

const MiB = 1 << 20;
const SOURCES = ['/usr/bin', '/usr/lib/x86_64-linux-gnu'];
const FIXED_TIME = '1700000000';

interface Options {
  json: boolean;
  runs: number;
  mib: number;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { json: false, runs: 3, mib: 150 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') opts.json = true;
    else if (a === '--runs') opts.runs = Math.max(1, Number(argv[++i]) | 0);
    else if (a === '--mib') opts.mib = Math.max(1, Number(argv[++i]) | 0);
    else {
      process.stderr.write(`usage: delta-bench [--json] [--runs N] [--mib N]\n`);
      process.exit(a === '-h' || a === '--help' ? 0 : 2);
    }
  }
  return opts;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Regular files under the source folders, sorted, until `bytes` are collected: symbolic links
 * are not followed (/usr/bin/X11 points back at /usr/bin), hard links are taken once, files
 * over 16 MiB are skipped.
 */
function pickFiles(bytes: number): string[] {
  const out: string[] = [];
  const seen = new Set<number>();
  let total = 0;
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d).sort();
    } catch {
      return;
    }
    for (const n of names) {
      if (total >= bytes) return;
      const p = join(d, n);
      const st = lstatSync(p, { throwIfNoEntry: false });
      if (!st || seen.has(st.ino)) continue;
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && st.size > 0 && st.size <= 16 * MiB) {
        seen.add(st.ino);
        out.push(p);
        total += st.size;
      }
    }
  };
  for (const s of SOURCES) walk(s);
  return out;
}

/** New bytes for a file: an AES-256-CTR keystream of a key derived from its name. */
function rewrite(path: string): number {
  const size = statSync(path).size;
  const key = createHash('sha256').update(`diskmint-delta-bench:${path}`).digest();
  writeFileSync(path, createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size)));
  return size;
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * MiB });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

async function timeIt(runs: number, fn: () => Promise<void>): Promise<{ ms: number; all: number[] }> {
  const all: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    all.push(performance.now() - t);
  }
  return { ms: median(all), all };
}

/** The slot writer's loop, with plain fs writes onto a copy of the base (or an empty file). */
async function apply(bundle: string, pubkey: string, base: string | undefined, target: string): Promise<void> {
  const b = await openBundle(bundle, { pubkey });
  if (base) copyFileSync(base, target);
  const fd = openSync(target, base ? 'r+' : 'w');
  try {
    for await (const c of b.payload()) for (let o = 0; o < c.data.length;) o += writeSync(fd, c.data, o, c.data.length - o, c.offset + o);
    ftruncateSync(fd, b.manifest.payloadSize);
  } finally {
    closeSync(fd);
  }
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const log = (s: string) => {
    if (!opts.json) process.stderr.write(`${s}\n`);
  };
  for (const tool of ['makefs', 'zstd']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
      process.stderr.write(`delta-bench: ${tool} not found (apt-get install ${tool})\n`);
      process.exit(1);
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'diskmint-delta-bench-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  process.on('exit', cleanup);
  process.on('SIGINT', () => process.exit(130));

  log(`collecting ~${opts.mib} MiB of system files into ${dir} ...`);
  const tree = join(dir, 'tree');
  const files = pickFiles(opts.mib * MiB);
  let treeBytes = 0;
  const copies: string[] = [];
  for (const f of files) {
    const to = join(tree, relative('/usr', f));
    mkdirSync(join(to, '..'), { recursive: true });
    copyFileSync(f, to);
    copies.push(to);
    treeBytes += statSync(to).size;
  }
  const makefs = (out: string) => run('makefs', ['-t', 'ffs', '-B', 'little', '-o', 'version=2', '-s', '256m', '-T', FIXED_TIME, out, tree]);
  const oldImg = join(dir, 'old.ufs');
  makefs(oldImg);
  const { privatePath: key, publicPath: pub } = await writeKeyPair(join(dir, 'bench'));
  const machine = {
    node: process.version,
    cpus: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    date: new Date().toISOString(),
    zstd: run('zstd', ['--version']).trim(),
  };

  // Case 1: 1% of the files by count, evenly spread. Case 2: files evenly spread until 1% of the bytes.
  const count = Math.max(1, Math.round(copies.length / 100));
  const byCount = Array.from({ length: count }, (_, k) => Math.floor(((k + 0.5) * copies.length) / count));
  // Files no larger than a quarter of the 1% budget, so several files spread through the image share it.
  const byBytes: number[] = [];
  const budget = treeBytes / 100;
  for (let i = 37 % copies.length, sum = 0, seen = 0; sum < budget && seen < copies.length; i = (i + 97) % copies.length, seen++) {
    const size = statSync(copies[i]).size;
    if (size > Math.max(budget / 4, 64 << 10)) continue;
    byBytes.push(i);
    sum += size;
  }
  const cases: CaseResult[] = [];
  for (const [name, picks] of [
    ['1% of the files', byCount],
    ['1% of the bytes', byBytes],
  ] as const) {
    log(`case "${name}": rewriting ${picks.length} files, makefs ...`);
    let changedBytes = 0;
    for (const i of picks) changedBytes += rewrite(copies[i]);
    const newImg = join(dir, 'new.ufs');
    makefs(newImg);
    for (const i of picks) copyFileSync(files[i], copies[i]); // back to the original tree for the next case
    cases.push(await runCase(name, { dir, oldImg, newImg, key, pub, runs: opts.runs, changedFiles: picks.length, changedBytes }, log));
  }
  const result = { machine, input: { files: copies.length, treeBytes }, runs: opts.runs, target: 'delta < 5% of the full bundle', cases };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const mb = (n: number) => `${(n / MiB).toFixed(2)} MiB`;
  const sec = (ms?: number) => (ms === undefined ? '' : `${(ms / 1000).toFixed(2)} s`);
  const lines = [
    `input: ${copies.length} files, ${mb(treeBytes)} (makefs -s 256m image); ${opts.runs} runs, median`,
    '',
    '| change | differing 64 KiB blocks | full bundle | delta bundle | delta / full | zstd -19 of new image | full create / apply | delta create / apply | zstd -19 time | target |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...cases.map(
      (c) =>
        `| ${c.name}: ${c.changedFiles} files, ${mb(c.changedBytes)} | ${c.differingBlocks64k} of ${c.totalBlocks64k} | ${mb(c.fullBytes)} | ${mb(c.deltaBytes)} | ${(c.deltaOverFull * 100).toFixed(2)}% | ${mb(c.zstdBytes)} | ${sec(c.fullCreateMs)} / ${sec(c.fullApplyMs)} | ${sec(c.deltaCreateMs)} / ${sec(c.deltaApplyMs)} | ${sec(c.zstdMs)} | ${c.pass ? 'PASS' : 'MISS'} |`,
    ),
    '',
    `machine: ${machine.cpus} x ${machine.cpu}, Node ${machine.node}, ${machine.zstd}, ${machine.date}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

interface CaseResult {
  name: string;
  changedFiles: number;
  changedBytes: number;
  differingBlocks64k: number;
  totalBlocks64k: number;
  fullBytes: number;
  deltaBytes: number;
  zstdBytes: number;
  deltaOverFull: number;
  pass: boolean;
  fullCreateMs: number;
  deltaCreateMs: number;
  fullApplyMs: number;
  deltaApplyMs: number;
  zstdMs: number;
  timings: Record<string, number[]>;
}

interface CaseInput {
  dir: string;
  oldImg: string;
  newImg: string;
  key: string;
  pub: string;
  runs: number;
  changedFiles: number;
  changedBytes: number;
}

async function runCase(name: string, c: CaseInput, log: (s: string) => void): Promise<CaseResult> {
  const a = readFileSync(c.oldImg);
  const b = readFileSync(c.newImg);
  let differing = 0;
  for (let o = 0; o < b.length; o += 65536) if (!a.subarray(o, o + 65536).equals(b.subarray(o, o + 65536))) differing++;
  log('  full bundles ...');
  const fullPath = join(c.dir, 'full.dmb');
  const fullCreate = await timeIt(c.runs, async () => void (await createBundle({ from: c.newImg, key: c.key, output: fullPath })));
  log('  delta bundles ...');
  const deltaPath = join(c.dir, 'delta.dmb');
  const deltaCreate = await timeIt(c.runs, async () => void (await createBundle({ from: c.newImg, base: c.oldImg, key: c.key, output: deltaPath })));
  log('  applying ...');
  const target = join(c.dir, 'slot.img');
  const newSha = sha(c.newImg);
  const fullApply = await timeIt(c.runs, () => apply(fullPath, c.pub, undefined, target));
  if (sha(target) !== newSha) throw new Error('full bundle applied does not give the new image');
  const deltaApply = await timeIt(c.runs, () => apply(deltaPath, c.pub, c.oldImg, target));
  if (sha(target) !== newSha) throw new Error('delta bundle applied does not give the new image');
  log('  zstd -19 ...');
  const zstdOut = join(c.dir, 'new.ufs.zst');
  const zstdTime = await timeIt(1, async () => void run('zstd', ['-19', '-T0', '-q', '-f', c.newImg, '-o', zstdOut]));
  const fullBytes = statSync(fullPath).size;
  const deltaBytes = statSync(deltaPath).size;
  return {
    name,
    changedFiles: c.changedFiles,
    changedBytes: c.changedBytes,
    differingBlocks64k: differing,
    totalBlocks64k: Math.ceil(b.length / 65536),
    fullBytes,
    deltaBytes,
    zstdBytes: statSync(zstdOut).size,
    deltaOverFull: deltaBytes / fullBytes,
    pass: deltaBytes / fullBytes < 0.05,
    fullCreateMs: fullCreate.ms,
    deltaCreateMs: deltaCreate.ms,
    fullApplyMs: fullApply.ms,
    deltaApplyMs: deltaApply.ms,
    zstdMs: zstdTime.ms,
    timings: { fullCreate: fullCreate.all, deltaCreate: deltaCreate.all, fullApply: fullApply.all, deltaApply: deltaApply.all },
  };
}

await main();
