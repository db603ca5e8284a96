/**
 * diskmint reading containers, against qemu-img (not a test: timings never go into tests).
 *
 *   npm run build && node dist/bench/read-bench.js [--json] [--runs N]
 *
 * Input: a 2 GiB GPT disk holding 512 MiB of pseudo-random data (the build bench's disk), as a
 * sparse raw file, a qcow2 and a monolithicSparse VMDK (both written by diskmint). Cases:
 *   compare raw qcow2     diskmint compare  vs  qemu-img compare   (raw: qemu-img uses SEEK_DATA)
 *   compare qcow2 vmdk    diskmint compare  vs  qemu-img compare
 *   convert qcow2 -> vmdk diskmint convert  vs  qemu-img convert -O vmdk
 * Every command runs as a child process (start-up included), alternating tools, `--runs` times
 * (default 5) after one untimed run each; medians are reported with the largest peak RSS
 * (`/usr/bin/time -f %M`). The compares must say "identical" (exit 0) for both tools, and the
 * two conversions must hold the same disk (`qemu-img compare`). No targets: these numbers are
 * for reading, not for a pass/fail.
 */
import { GiB, MiB, QEMU_CONVERT_DURABLE, benchTempDir, caCertsNote, maxOf, measure, median, writeRandomFile, type Measurement } from './lib.js';
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Row {
  case: string;
  diskmintS: number;
  peerS: number;
  ratio: number;
  diskmintRssMB?: number;
  peerRssMB?: number;
  runs: { diskmint: number[]; peer: number[] };
}

const benchDir = dirname(fileURLToPath(import.meta.url));
const CLI = benchDir.endsWith(join('dist', 'bench')) ? join(benchDir, '..', 'diskmint.cjs') : join(benchDir, '..', 'dist', 'diskmint.cjs');

function parseArgs(argv: string[]): { json: boolean; runs: number } {
  const opts = { json: false, runs: 5 };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--json') opts.json = true;
    else if (argv[i] === '--runs') opts.runs = Math.max(1, Number(argv[++i]) | 0);
    else {
      process.stderr.write('usage: read-bench [--json] [--runs N]\n');
      process.exit(2);
    }
  }
  return opts;
}

function run(argv: string[]): void {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
}

/** Time `ours` and `theirs` alternately; each one's output file, if any, is removed before it runs. */
function timeBoth(name: string, ours: string[], theirs: string[], runs: number, timeFile: string, outputs: { ours?: string; theirs?: string } = {}): Row {
  const dm: Measurement[] = [];
  const peer: Measurement[] = [];
  const fresh = (path?: string) => path !== undefined && rmSync(path, { force: true });
  fresh(outputs.ours);
  run(ours);
  fresh(outputs.theirs);
  run(theirs);
  for (let i = 0; i < runs; i++) {
    fresh(outputs.ours);
    dm.push(measure(ours, timeFile).m);
    fresh(outputs.theirs);
    peer.push(measure(theirs, timeFile).m);
  }
  const mb = (ms: Measurement[]) => {
    const kib = maxOf(ms.map((m) => m.maxRssKiB));
    return kib === undefined ? undefined : kib / 1024;
  };
  const d = median(dm.map((m) => m.wallMs)) / 1000;
  const p = median(peer.map((m) => m.wallMs)) / 1000;
  return {
    case: name,
    diskmintS: d,
    peerS: p,
    ratio: d / p,
    diskmintRssMB: mb(dm),
    peerRssMB: mb(peer),
    runs: { diskmint: dm.map((m) => m.wallMs / 1000), peer: peer.map((m) => m.wallMs / 1000) },
  };
}

function main(): void {
  const opts = parseArgs(process.argv.slice(2));
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing; run \`npm run build\` first`);
  const dir = benchTempDir('read-bench', 4 * GiB);
  const timeFile = join(dir, 'time.txt');
  const data = join(dir, 'data.bin');
  writeRandomFile(data, 512 * MiB, 'read-bench');
  const layout = join(dir, 'layout.json');
  writeFileSync(
    layout,
    JSON.stringify({
      scheme: 'gpt',
      size: '2G',
      seed: 'diskmint-bench',
      partitions: [
        { type: 'efi', label: 'efi', size: '33M' },
        { type: 'freebsd-ufs', label: 'data', size: '512M', contents: { file: data } },
        { type: 'freebsd-swap', label: 'swap', size: '1G' },
        { type: 'freebsd-ufs', label: 'rest', size: 'rest' },
      ],
    }),
  );
  const raw = join(dir, 'disk.img');
  const qcow2 = join(dir, 'disk.qcow2');
  const vmdk = join(dir, 'disk.vmdk');
  run([process.execPath, CLI, 'build', layout, '-o', raw, '-q']);
  run([process.execPath, CLI, 'convert', raw, qcow2, '-q']);
  run([process.execPath, CLI, 'convert', raw, vmdk, '-q']);
  const ours = join(dir, 'ours.vmdk');
  const theirs = join(dir, 'theirs.vmdk');
  const dm = (...args: string[]) => [process.execPath, CLI, ...args];
  const rows = [
    timeBoth('compare raw qcow2', dm('compare', raw, qcow2), ['qemu-img', 'compare', raw, qcow2], opts.runs, timeFile),
    timeBoth('compare qcow2 vmdk', dm('compare', qcow2, vmdk), ['qemu-img', 'compare', qcow2, vmdk], opts.runs, timeFile),
    timeBoth(
      'convert qcow2 -> vmdk',
      dm('convert', qcow2, ours, '-q'),
      ['qemu-img', ...QEMU_CONVERT_DURABLE, '-O', 'vmdk', qcow2, theirs],
      opts.runs,
      timeFile,
      {
        ours,
        theirs,
      },
    ),
  ];
  run(['qemu-img', 'compare', ours, theirs]); // both conversions hold the same disk
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ rows, machine: machine() }, null, 2)}\n`);
    return;
  }
  const fmt = (x?: number) => (x === undefined ? '-' : x.toFixed(1));
  const lines = [
    '| case | diskmint s | qemu-img s | ratio diskmint/qemu-img | diskmint RSS MB | qemu-img RSS MB |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) => `| ${r.case} | ${r.diskmintS.toFixed(3)} | ${r.peerS.toFixed(3)} | ${r.ratio.toFixed(2)}x | ${fmt(r.diskmintRssMB)} | ${fmt(r.peerRssMB)} |`,
    ),
    '',
    'note: a 2 GiB GPT disk with 512 MiB of pseudo-random data; raw sparse, qcow2 and VMDK written by diskmint',
    'note: both compares said identical; both conversions hold the same disk (qemu-img compare)',
    ...rows.map(
      (r) =>
        `note: ${r.case} runs (s): diskmint ${r.runs.diskmint.map((x) => x.toFixed(3)).join(', ')}; qemu-img ${r.runs.peer.map((x) => x.toFixed(3)).join(', ')}`,
    ),
    ...caCertsNote(),
    `machine: ${machine()}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function machine(): string {
  const q = spawnSync('qemu-img', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0];
  return `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, ${q}, ${new Date().toISOString()}`;
}

main();
