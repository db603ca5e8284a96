/** The `diskmint flash` command: write an image to a card or disk, read it back. */
import { Option, type Command } from 'commander';
import { DiskmintError } from '../model/errors.js';
import { formatBytes } from '../model/size.js';
import { flashImage, FlashInterrupted, type FlashConfirmation, type FlashProgress, type FlashResult } from '../ops/flash/flash.js';
import { formatInspection } from './report.js';
import { printErr, printOut, stderrIsTerminal } from './output.js';
import { printJson, toJson } from './json.js';
import { createProgress, terminalProgress, type Progress } from './progress.js';
import * as opts from './options.js';
import type { Values } from './options.js';

/** 128 + SIGINT: what a shell reports for a command stopped by Ctrl-C. */
const EXIT_INTERRUPTED = 130;
const EXIT_MISMATCH = 1;

const FLASH_OPTIONS = [
  opts.text('--bmap <file>', "write the ranges of this block map (bmaptool's, 1.x or 2.0) and check their checksums"),
  opts.flag('--discard', 'make every hole of the image read as zeros on the device (zeroed or discarded by the device where it can, else written)'),
  opts.flag('-y, --yes', 'write without asking for confirmation'),
  opts.described(opts.json, 'progress events and the result as JSON'),
  opts.allowBacking,
] as const;

/** Ask on the terminal, naming the device, its size, model and current partition table. */
async function askOnTerminal(c: FlashConfirmation): Promise<boolean> {
  const lines = [`diskmint: about to write ${c.image} (${formatBytes(c.imageSize)}) to ${c.description}`];
  if (c.current)
    lines.push(
      'It now holds:',
      ...formatInspection(c.current)
        .split('\n')
        .map((l) => `  ${l}`),
    );
  printErr(`${lines.join('\n')}\n`);
  const { createInterface } = await import('node:readline/promises'); // loaded only to ask (it loads node:os and streams)
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`Everything on ${c.target.path} will be lost. Write it? [y/N] `);
    return /^\s*y(es)?\s*$/i.test(answer);
  } finally {
    rl.close();
  }
}

/** Progress: a bar per phase on a terminal; with --json, one event line per phase and per 5%. */
function progressReporter(json: boolean): { onProgress(p: FlashProgress): void; finish(): void } {
  let bar: Progress | undefined;
  let phase = '';
  let step = -1;
  const tty = stderrIsTerminal() && terminalProgress() !== undefined;
  const onProgress = (p: FlashProgress): void => {
    if (json) {
      const s = p.totalBytes ? Math.floor((p.doneBytes / p.totalBytes) * 20) : 20;
      if (p.phase !== phase || s !== step)
        printErr(toJson({ event: 'progress', ...p, bytesPerSecond: Math.round(p.bytesPerSecond) }).replace(/\n\s*/g, ' ') + '\n');
      [phase, step] = [p.phase, s];
      return;
    }
    if (!tty) return;
    if (p.phase !== phase) {
      bar?.finish();
      bar = createProgress(p.phase, { enabled: true });
      phase = p.phase;
    }
    bar?.update(p.doneBytes, p.totalBytes);
  };
  return { onProgress, finish: () => bar?.finish() };
}

function formatFlash(r: FlashResult): string {
  const v = r.verify;
  const check =
    v.mode === 'none'
      ? 'not verified'
      : v.ok
        ? `verified (${v.mode === 'full' ? 'the first image-size bytes' : 'every written range'}, read ${v.readBack === 'direct' ? 'from the medium with O_DIRECT' : 'through the page cache: O_DIRECT was refused'})`
        : `VERIFICATION FAILED: the device differs from the image at byte ${v.firstBadOffset}`;
  return [
    `${r.image} (${r.format}, ${formatBytes(r.imageSize)}) -> ${r.device}: wrote ${formatBytes(r.dataBytes)} of data and ${formatBytes(r.zeroBytes)} of zeros in ${r.ranges} ranges, ${formatBytes(r.writeBytesPerSecond)}/s`,
    `  ${check}`,
    r.discard
      ? `  every hole of the image reads as zeros on the device (${r.holes === 'write' ? 'zeros written' : `${formatBytes(r.zeroedInKernelBytes)} zeroed by the device itself, ${r.holes === 'discard' ? 'BLKDISCARD' : 'BLKZEROOUT'}`})`
      : '  holes outside the first and last MiB keep what the device held (--discard zeroes them)',
  ].join('\n');
}

export function addFlashCommands(program: Command): void {
  const flash = program
    .command('flash')
    .description(
      'write an image (any format diskmint reads) to a block device or file: only its data, then read back and compare; exit 1 when the read-back differs',
    )
    .argument('<image>')
    .argument('<device>', 'a block device (the whole card or disk) or a regular file')
    .addOption(new Option('--verify [mode]', "read back every written range (default), or with 'full' the device's first image-size bytes").choices(['full']))
    .addOption(new Option('--no-verify', 'do not read back'));
  opts.addOptions(flash, FLASH_OPTIONS).action(async (image: string, device: string, o: Values<typeof FLASH_OPTIONS> & { verify?: boolean | 'full' }) => {
    const interactive = process.stdin.isTTY === true && stderrIsTerminal();
    if (!o.yes && !interactive) {
      throw new DiskmintError(
        'BAD_ARGUMENT',
        `standard input is not a terminal to confirm on: give --yes to write ${device} without asking; nothing was written`,
      );
    }
    const controller = new AbortController();
    const onSignal = () => controller.abort();
    process.on('SIGINT', onSignal);
    const report = progressReporter(o.json === true);
    try {
      const r = await flashImage(image, device, {
        verify: o.verify === false ? 'none' : o.verify === 'full' ? 'full' : 'written',
        bmap: o.bmap,
        discard: o.discard,
        yes: o.yes,
        confirm: askOnTerminal,
        allowBacking: o.allowBacking,
        onProgress: report.onProgress,
        signal: controller.signal,
      });
      if (o.json) printJson(r);
      else printOut(`${formatFlash(r)}\n`);
      if (!r.verify.ok) process.exitCode = EXIT_MISMATCH;
    } catch (err) {
      if (!(err instanceof FlashInterrupted)) throw err;
      printErr(`diskmint: ${err.message}\n`);
      process.exitCode = EXIT_INTERRUPTED;
    } finally {
      report.finish();
      process.off('SIGINT', onSignal);
    }
  });
}
