/**
 * diskmint flash against bmaptool copy and dd, onto a loop device (not a test: timings never go
 * into tests). Needs root (losetup) and bmap-tools.
 *
 *   npm run build && node dist/bench/flash-bench.js [--json] [--runs N]
 *
 * Input: a 4 GiB sparse raw GPT image holding 1 GiB of pseudo-random data in four 256 MiB
 * pieces, and `bmaptool create`'s map of it (untimed). Target: a loop device (direct I/O to its
 * sparse backing file, so the page cache does not absorb the writes) of 4 GiB + 1 MiB. Cases:
 *   diskmint flash IMG DEV --yes                      (writes the data and table areas, fdatasync, reads back with O_DIRECT)
 *   diskmint flash --bmap IMG.bmap IMG DEV --yes      (the same from bmaptool's map: no scan of the raw file for data)
 *   bmaptool copy --bmap IMG.bmap IMG DEV             (writes the mapped blocks checking their SHA-256, fsync)
 *   dd if=IMG of=DEV bs=4M conv=fsync                 (every byte)
 *   diskmint flash IMG.xz DEV --yes                   (the image as `xz -T2 -0` ships it: many blocks, decoded on every core)
 *   bmaptool copy --bmap IMG.bmap IMG.xz DEV          (bmaptool decompresses the stream as it writes)
 * Each runs `--runs` times (default 3), alternating; medians, the image's 4 GiB over the time
 * as MB/s, and the largest peak RSS (`/usr/bin/time -f %M`). Targets: diskmint no slower than
 * bmaptool, at least 3x faster than dd, under 150 MB RSS; from .xz no slower than bmaptool from
 * the same .xz. Making the .xz takes a minute or more (untimed; `--no-xz` leaves those rows out). The device is checked after each tool
 * (the image's data ranges, `cmp`).
 */
import { GiB, MiB, benchTempDir, caCertsNote, maxOf, measure, median, type Measurement } from './lib.js';
import { execFileSync, spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const IMAGE_SIZE = 4 * GiB;
/** Where the four data pieces start (after the GPT, spread over the disk). */
const PIECES = [1 * MiB, 1 * GiB, 2 * GiB + 64 * MiB, 3 * GiB + 512 * MiB];
const PIECE = 256 * MiB;

const benchDir = dirname(fileURLToPath(import.meta.url));
const CLI = benchDir.endsWith(join('dist', 'bench')) ? join(benchDir, '..', 'diskmint.cjs') : join(benchDir, '..', 'dist', 'diskmint.cjs');

function parseArgs(argv: string[]): { json: boolean; runs: number; xz: boolean } {
  const opts = { json: false, runs: 3, xz: true };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--json') opts.json = true;
    else if (argv[i] === '--no-xz') opts.xz = false;
    else if (argv[i] === '--runs') opts.runs = Math.max(1, Number(argv[++i]) | 0);
    else {
      process.stderr.write('usage: flash-bench [--json] [--runs N] [--no-xz]\n');
      process.exit(2);
    }
  }
  return opts;
}

/** Pseudo-random bytes (AES-256-CTR keystream, as lib.ts's writeRandomFile) at `offset` of an existing file. */
function writeRandomAt(path: string, offset: number, bytes: number, label: string): void {
  const key = createHash('sha256').update(`diskmint-bench:${label}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(4 * MiB);
  const fd = openSync(path, 'r+');
  try {
    for (let done = 0; done < bytes;) {
      const chunk = cipher.update(zeros.subarray(0, Math.min(zeros.length, bytes - done)));
      for (let off = 0; off < chunk.length;) off += writeSync(fd, chunk, off, chunk.length - off, offset + done + off);
      done += chunk.length;
    }
  } finally {
    closeSync(fd);
  }
}

interface Row {
  tool: string;
  medianS: number;
  mbPerS: number;
  maxRssMB?: number;
  runs: number[];
}

function main(): void {
  const opts = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) {
    process.stderr.write('flash-bench: needs root (losetup)\n');
    process.exit(1);
  }
  const dir = benchTempDir('flash', 7 * GiB);
  const image = join(dir, 'card.img');
  const bmap = join(dir, 'card.bmap');
  execFileSync('truncate', ['-s', String(IMAGE_SIZE), image]);
  execFileSync('sgdisk', ['-n', '1:2048:0', image], { stdio: 'ignore' });
  PIECES.forEach((at, i) => writeRandomAt(image, at, PIECE, `flash-${i}`));
  execFileSync('bmaptool', ['create', '-o', bmap, image], { stdio: 'ignore' });
  const xz = `${image}.xz`;
  if (opts.xz) execFileSync('sh', ['-c', `xz -T2 -0 -k -c '${image}' > '${xz}'`], { stdio: 'inherit' });
  const backing = join(dir, 'card.dev');
  execFileSync('truncate', ['-s', String(IMAGE_SIZE + MiB), backing]);
  const dev = execFileSync('losetup', ['-f', '--show', '--direct-io=on', backing], { encoding: 'utf8' }).trim();
  const timeFile = join(dir, 'time.txt');
  try {
    const cases: Array<[string, string[]]> = [
      ['diskmint flash', [process.execPath, CLI, 'flash', image, dev, '--yes']],
      ['diskmint flash --bmap', [process.execPath, CLI, 'flash', '--bmap', bmap, image, dev, '--yes']],
      ['bmaptool copy', ['bmaptool', 'copy', '--bmap', bmap, image, dev]],
      ['dd bs=4M conv=fsync', ['dd', `if=${image}`, `of=${dev}`, 'bs=4M', 'conv=fsync', 'status=none']],
    ];
    if (opts.xz) {
      cases.push(['diskmint flash .xz', [process.execPath, CLI, 'flash', xz, dev, '--yes']]);
      cases.push(['bmaptool copy .xz', ['bmaptool', 'copy', '--bmap', bmap, xz, dev]]);
    }
    const runs = new Map<string, Measurement[]>(cases.map(([name]) => [name, []]));
    for (let r = 0; r < opts.runs; r++) {
      for (const [name, argv] of cases) {
        // A blank card each time: what the last tool left must not help the next one.
        execFileSync('blkdiscard', ['-f', dev], { stdio: 'ignore' });
        runs.get(name)!.push(measure(argv, timeFile).m);
        for (const at of PIECES) {
          const same = spawnSync('cmp', ['-i', `${at}:${at}`, '-n', String(PIECE), image, dev]).status === 0;
          if (!same) throw new Error(`${name}: the device differs from the image in the data at ${at}`);
        }
      }
    }
    const rows: Row[] = cases.map(([tool]) => {
      const ms = runs.get(tool)!;
      const s = median(ms.map((m) => m.wallMs)) / 1000;
      const rss = maxOf(ms.map((m) => m.maxRssKiB));
      return { tool, medianS: s, mbPerS: IMAGE_SIZE / 1e6 / s, maxRssMB: rss && rss / 1024, runs: ms.map((m) => m.wallMs / 1000) };
    });
    const [ours, oursBmap, bmaptool, dd, oursXz, bmaptoolXz] = rows;
    const summary = {
      vsBmaptool: ours.medianS / bmaptool.medianS,
      bmapVsBmaptool: oursBmap.medianS / bmaptool.medianS,
      ddOverDiskmint: dd.medianS / ours.medianS,
      ...(oursXz ? { xzVsBmaptoolXz: oursXz.medianS / bmaptoolXz.medianS } : {}),
    };
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ rows, summary, notes: caCertsNote() }, null, 2)}\n`);
      return;
    }
    const caseNote = `load average at start ${loadavg()[0].toFixed(1)}; `;
    for (const note of caCertsNote()) process.stdout.write(`note: ${note}\n`);
    process.stdout.write(`${caseNote}4 GiB image, 1 GiB of data, onto ${dev} (direct I/O loop), ${opts.runs} runs each\n`);
    for (const r of rows) {
      const rss = r.maxRssMB === undefined ? '' : `, peak RSS ${r.maxRssMB.toFixed(0)} MB`;
      process.stdout.write(
        `  ${r.tool.padEnd(22)} ${r.medianS.toFixed(2)} s  ${r.mbPerS.toFixed(0)} MB/s${rss}  (runs ${r.runs.map((x) => x.toFixed(2)).join(', ')})\n`,
      );
    }
    process.stdout.write(
      `  diskmint / bmaptool: ${summary.vsBmaptool.toFixed(2)}x the time, with the same bmap ${summary.bmapVsBmaptool.toFixed(2)}x (target <= 1); dd / diskmint: ${summary.ddOverDiskmint.toFixed(2)}x (target >= 3)\n`,
    );
    if (summary.xzVsBmaptoolXz !== undefined)
      process.stdout.write(`  from .xz, diskmint / bmaptool: ${summary.xzVsBmaptoolXz.toFixed(2)}x the time (target <= 1)\n`);
  } finally {
    execFileSync('losetup', ['-d', dev]);
  }
}

main();
