/**
 * `slot write` into containers, edited in place (not a test: timings never go into tests).
 *
 *   npm run build && node dist/bench/slot-bench.js [--json] [--runs N]
 *
 * Input: a 4 GiB GPT disk with two 1.5 GiB OS slots, os1 holding 1 GiB of pseudo-random data;
 * the same disk as raw (sparse), qcow2, monolithicSparse VMDK, dynamic VHD and VHDX, each written
 * by diskmint. Case: `diskmint slot write IMG os2 --from DATA` of a 1 GiB pseudo-random file.
 * Each run starts from a fresh copy of the image (copied untimed). Against: diskmint's own raw
 * case (issue 17's target: a container at most 1.2x of raw) and `qemu-io -c "write -s DATA OFF LEN"`,
 * qemu's own write into the same container (no read-back, no table edit: a floor, not a peer of
 * the whole command). Medians over `--runs` (default 3), peak RSS from /usr/bin/time.
 */
import { GiB, MiB, benchTempDir, caCertsNote, maxOf, measure, median, writeRandomFile, type Measurement } from './lib.js';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = dirname(fileURLToPath(import.meta.url));
const CLI = benchDir.endsWith(join('dist', 'bench')) ? join(benchDir, '..', 'diskmint.cjs') : join(benchDir, '..', 'dist', 'diskmint.cjs');

const KINDS = [
  { name: 'raw', format: 'raw', options: undefined, qemu: 'raw' },
  { name: 'qcow2', format: 'qcow2', options: undefined, qemu: 'qcow2' },
  { name: 'vmdk', format: 'vmdk', options: 'subformat=monolithicSparse', qemu: 'vmdk' },
  { name: 'vhd', format: 'vhd', options: undefined, qemu: 'vpc' },
  { name: 'vhdx', format: 'vhdx', options: undefined, qemu: 'vhdx' },
] as const;

interface Row {
  kind: string;
  diskmintS: number;
  vsRaw: number;
  qemuIoS: number;
  diskmintMBps: number;
  diskmintRssMB?: number;
  runs: number[];
}

function run(argv: string[]): string {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 16 * MiB });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

function main(): void {
  const json = process.argv.includes('--json');
  const runsAt = process.argv.indexOf('--runs');
  const runs = runsAt > 0 ? Math.max(1, Number(process.argv[runsAt + 1]) | 0) : 3;
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing; run \`npm run build\` first`);
  const dir = benchTempDir('slot-bench', 16 * GiB);
  const timeFile = join(dir, 'time.txt');
  const os1 = join(dir, 'os1.bin');
  const data = join(dir, 'os2.bin');
  writeRandomFile(os1, GiB, 'slot-bench-os1');
  writeRandomFile(data, GiB, 'slot-bench-os2');
  const layout = join(dir, 'layout.json');
  writeFileSync(
    layout,
    JSON.stringify({
      scheme: 'gpt',
      size: '4G',
      seed: 'diskmint-bench',
      partitions: [
        { type: 'freebsd-ufs', label: 'os1', size: '1536M', attributes: ['bootme'], contents: { file: os1 } },
        { type: 'freebsd-ufs', label: 'os2', size: '1536M' },
        { type: 'freebsd-ufs', label: 'data', size: 'rest' },
      ],
    }),
  );
  const dm = (...args: string[]) => [process.execPath, CLI, ...args];
  const pristineRaw = join(dir, 'pristine.raw');
  run(dm('build', layout, '-o', pristineRaw, '-q'));
  const status = JSON.parse(run(dm('slot', 'status', pristineRaw, '--json', '--no-hash'))) as { slots: Array<{ label: string; firstLba: number }> };
  const os2Offset = status.slots.find((s) => s.label === 'os2')!.firstLba * 512;
  const rows: Row[] = [];
  let rawS = 0;
  for (const kind of KINDS) {
    const pristine = join(dir, `pristine.${kind.format}`);
    if (kind.format !== 'raw') run(dm('convert', pristineRaw, pristine, '-O', kind.format, ...(kind.options ? ['-o', kind.options] : []), '-q'));
    const img = join(dir, `img.${kind.format}`);
    const fresh = () => run(['cp', '--sparse=always', kind.format === 'raw' ? pristineRaw : pristine, img]);
    const ours: Measurement[] = [];
    const theirs: Measurement[] = [];
    for (let i = 0; i < runs; i++) {
      fresh();
      ours.push(measure(dm('slot', 'write', img, 'os2', '--from', data, '--json'), timeFile).m);
      fresh();
      theirs.push(measure(['qemu-io', '-f', kind.qemu, '-c', `write -s ${data} ${os2Offset} ${GiB}`, img], timeFile).m);
    }
    if (kind.qemu !== 'vpc' && kind.qemu !== 'raw') run(['qemu-img', 'check', '-f', kind.qemu, img]); // qemu-io's write left it sound
    const s = median(ours.map((m) => m.wallMs)) / 1000;
    if (kind.format === 'raw') rawS = s;
    const kib = maxOf(ours.map((m) => m.maxRssKiB));
    rows.push({
      kind: kind.name,
      diskmintS: s,
      vsRaw: s / rawS,
      qemuIoS: median(theirs.map((m) => m.wallMs)) / 1000,
      diskmintMBps: GiB / MiB / s,
      diskmintRssMB: kib === undefined ? undefined : kib / 1024,
      runs: ours.map((m) => m.wallMs / 1000),
    });
  }
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, ${new Date().toISOString()}`;
  if (json) {
    process.stdout.write(`${JSON.stringify({ rows, machine }, null, 2)}\n`);
    return;
  }
  const lines = [
    '| image | diskmint slot write s | vs raw | MB/s | peak RSS MB | qemu-io write s |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.kind} | ${r.diskmintS.toFixed(2)} | ${r.vsRaw.toFixed(2)}x | ${r.diskmintMBps.toFixed(0)} | ${r.diskmintRssMB?.toFixed(0) ?? '-'} | ${r.qemuIoS.toFixed(2)} |`,
    ),
    '',
    'note: slot write includes the read-back of the slot and the GPT edit; qemu-io only writes',
    ...rows.map((r) => `note: ${r.kind} runs (s): ${r.runs.map((x) => x.toFixed(2)).join(', ')}`),
    ...caCertsNote(),
    `machine: ${machine}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main();
