/**
 * diskmint UFS2 benchmark against Debian's makefs (not a test: timings never go into tests).
 *
 *   npm run build && node dist/bench/ufs-bench.js [--json] [--runs N] [--keep] [--phases]
 *   npx tsx bench/ufs-bench.ts [same options]
 *
 * `--phases` also times diskmint's three phases inside this process (after the child-process
 * runs, so they do not disturb them): loading the folder, building the volume, writing it.
 *
 * Input: a 400 MiB tree shaped like system files: 6,000 files in 120 folders (sizes
 * log-uniform from 0 bytes to a few MiB, deterministic pseudo-random content), 200 symlinks.
 *
 *   diskmint: node dist/diskmint.cjs ufs create out.ufs --from DIR
 *   peer:     makefs -t ffs -B little -o version=2 out.ufs DIR   (NetBSD's makefs, as Debian ships it)
 *
 * Both size the file system themselves (32 KiB blocks, 4 KiB fragments). Both run as child
 * processes; wall time is the whole process, Node start-up included. Each tool runs once
 * untimed (warm-up), then `--runs` times (default 3), alternating; the median is reported, peak
 * RSS (`/usr/bin/time -f %M`) is the largest of the runs. Targets: diskmint/makefs wall-time
 * ratio at most 1.0, diskmint's peak RSS under 200 MB.
 */
import { MiB, benchEnv, benchTempDir, caCertsNote, maxOf, measure, median, writeRandomFile, type Measurement, prng } from './lib.js';
import { existsSync, mkdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { treeFromFolder } from '../src/fs/tree/folder.js';
import { buildUfsVolume } from '../src/fs/ufs/build.js';
import { writeImage } from '../src/io/write-image.js';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const FILES = 6000;
const FOLDERS = 120;
const LINKS = 200;
const TOTAL_BYTES = 400 * MiB;

function parseArgs(argv: string[]): { json: boolean; runs: number; keep: boolean; phases: boolean } {
  const opts = { json: false, runs: 3, keep: false, phases: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') opts.json = true;
    else if (a === '--runs') opts.runs = Math.max(1, Number(argv[++i]) | 0);
    else if (a === '--keep') opts.keep = true;
    else if (a === '--phases') opts.phases = true;
    else {
      process.stderr.write(`ufs-bench: unknown argument ${a}\nusage: ufs-bench [--json] [--runs N] [--keep] [--phases]\n`);
      process.exit(2);
    }
  }
  return opts;
}

function makeInputTree(root: string): void {
  const rnd = prng(0x0f5_2026);
  const folders = Array.from({ length: FOLDERS }, (_, i) => (i < 10 ? `usr${i}` : `usr${i % 10}/lib${i}`));
  for (const f of folders) mkdirSync(join(root, f), { recursive: true });
  const weights = Array.from({ length: FILES }, () => Math.exp(rnd() * Math.log(100_000)));
  const sum = weights.reduce((a, b) => a + b, 0);
  const sizes = weights.map((w) => Math.floor((w / sum) * TOTAL_BYTES));
  sizes[0] += TOTAL_BYTES - sizes.reduce((a, b) => a + b, 0);
  sizes.forEach((size, i) => writeRandomFile(join(root, folders[i % FOLDERS], `file-${i}.so.${i % 7}`), size, `ufs-bench:${i}`));
  for (let i = 0; i < LINKS; i++) symlinkSync(`../${folders[(i * 7) % 10]}/file-${i}.so.${i % 7}`, join(root, folders[i % FOLDERS], `link-${i}`));
}

function diskmintCli(): string {
  const self = fileURLToPath(import.meta.url);
  const cli = self.endsWith('.ts') ? join(dirname(self), '..', 'dist', 'diskmint.cjs') : join(dirname(self), '..', 'diskmint.cjs');
  if (!existsSync(cli)) {
    process.stderr.write(`ufs-bench: ${cli} is missing; run \`npm run build\` first\n`);
    process.exit(1);
  }
  return cli;
}

interface PhaseTimes {
  walkMs: number;
  buildMs: number;
  writeMs: number;
}

/** diskmint's phases in this process, `runs` times: the folder walk, the build, the raw write. */
async function timePhases(input: string, output: string, runs: number): Promise<PhaseTimes[]> {
  const out: PhaseTimes[] = [];
  for (let i = 0; i < runs; i++) {
    rmSync(output, { force: true });
    const t0 = performance.now();
    const tree = await treeFromFolder(input);
    const t1 = performance.now();
    const volume = buildUfsVolume(tree);
    const t2 = performance.now();
    await writeImage(volume.disk, output);
    out.push({ walkMs: t1 - t0, buildMs: t2 - t1, writeMs: performance.now() - t2 });
  }
  rmSync(output, { force: true });
  return out;
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const cli = diskmintCli();
  const dir = benchTempDir('ufs-bench', 3 * TOTAL_BYTES, { keep: opts.keep });
  const input = join(dir, 'tree');
  const timeFile = join(dir, 'time.txt');
  const ours = join(dir, 'diskmint.ufs');
  const theirs = join(dir, 'makefs.ufs');
  try {
    makeInputTree(input);
    const run = {
      diskmint: (): Measurement => {
        rmSync(ours, { force: true });
        return measure([process.execPath, cli, 'ufs', 'create', ours, '--from', input], timeFile).m;
      },
      makefs: (): Measurement => {
        rmSync(theirs, { force: true });
        return measure(['makefs', '-t', 'ffs', '-B', 'little', '-o', 'version=2', theirs, input], timeFile, benchEnv()).m;
      },
    };
    run.diskmint();
    run.makefs();
    const got: Record<'diskmint' | 'makefs', Measurement[]> = { diskmint: [], makefs: [] };
    for (let i = 0; i < opts.runs; i++) {
      got.diskmint.push(run.diskmint());
      got.makefs.push(run.makefs());
    }
    const rows = (['diskmint', 'makefs'] as const).map((tool) => {
      const wallMs = median(got[tool].map((m) => m.wallMs));
      const rss = maxOf(got[tool].map((m) => m.maxRssKiB));
      const out = tool === 'diskmint' ? ours : theirs;
      return {
        tool,
        wallMs,
        allWallMs: got[tool].map((m) => Math.round(m.wallMs)),
        throughputMiBs: TOTAL_BYTES / MiB / (wallMs / 1000),
        peakRssMB: rss === undefined ? undefined : (rss * 1024) / 1e6,
        imageMiB: statSync(out).size / MiB,
      };
    });
    const ratio = rows[0].wallMs / rows[1].wallMs;
    const pass = ratio <= 1.0 && (rows[0].peakRssMB ?? 0) < 200;
    const phases = opts.phases ? await timePhases(input, join(dir, 'phases.ufs'), opts.runs) : undefined;
    const phaseMedians = phases && {
      walkMs: median(phases.map((p) => p.walkMs)),
      buildMs: median(phases.map((p) => p.buildMs)),
      writeMs: median(phases.map((p) => p.writeMs)),
    };
    const notes = [...caCertsNote(), `${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB memory`];
    if (opts.json) {
      process.stdout.write(
        JSON.stringify(
          { input: { files: FILES, folders: FOLDERS, symlinks: LINKS, bytes: TOTAL_BYTES }, rows, ratio, pass, phases, phaseMedians, notes },
          null,
          2,
        ) + '\n',
      );
      return;
    }
    process.stdout.write(`UFS2 from a ${TOTAL_BYTES / MiB} MiB tree (${FILES} files, ${FOLDERS} folders, ${LINKS} symlinks), ${opts.runs} runs\n`);
    for (const r of rows)
      process.stdout.write(
        `  ${r.tool.padEnd(9)} ${(r.wallMs / 1000).toFixed(2)} s  ${r.throughputMiBs.toFixed(0)} MiB/s  peak RSS ${r.peakRssMB?.toFixed(1) ?? 'n/a'} MB  image ${r.imageMiB.toFixed(0)} MiB  runs ${r.allWallMs.join(', ')} ms\n`,
      );
    const rss = rows[0].peakRssMB;
    process.stdout.write(
      `  ratio diskmint/makefs ${ratio.toFixed(2)} (target <= 1.00: ${ratio <= 1.0 ? 'met' : 'missed'}), peak RSS ${rss?.toFixed(0) ?? 'n/a'} MB (target < 200 MB: ${(rss ?? 0) < 200 ? 'met' : 'missed'}): ${pass ? 'PASS' : 'FAIL'}\n`,
    );
    if (phases && phaseMedians) {
      const ms = (v: number) => `${Math.round(v)} ms`;
      const all = (k: keyof PhaseTimes) => phases.map((p) => Math.round(p[k])).join(', ');
      process.stdout.write(
        `  in-process phases (medians): walk ${ms(phaseMedians.walkMs)} (${all('walkMs')}), build ${ms(phaseMedians.buildMs)} (${all('buildMs')}), write ${ms(phaseMedians.writeMs)} (${all('writeMs')})\n`,
      );
    }
    for (const n of notes) process.stdout.write(`  note: ${n}\n`);
  } finally {
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
