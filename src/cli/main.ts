/** The `diskmint` command: a thin shell over the library functions. */
import { removeTempFilesNow } from '../io/temp-files.js';
import { writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { buildImage } from '../ops/build.js';
import { convertImage } from '../ops/convert.js';
import { compareImages } from '../ops/compare.js';
import { runMkimg } from '../layout/mkimg.js';
import { addFatCommands } from './fat.js';
import { addSlotCommands } from './slot.js';
import { addSignCommands } from './sign.js';
import { addZfsCommands } from './zfs.js';
import { verifyImageSignature } from '../ops/sign.js';
import { presetLayoutChecked, PRESETS, type PresetName, type PresetOptions } from '../layout/presets.js';
import type { WriteImageOptions } from '../io/write-image.js';
import { inspectImage } from '../ops/inspect.js';
import { verifyImage } from '../ops/verify/verify.js';
import { DiskmintError, FormatError } from '../model/errors.js';
import { formatBuild, formatCompare, formatInspection, formatVerify, printJson } from './report.js';
import { printOut, printErr } from './output.js';
import { terminalProgress } from './progress.js';

/** Exit statuses: 0 fine, 1 problems found (verify) or the command failed, 2 unusable input. */
const EXIT_PROBLEMS = 1;
const EXIT_UNREADABLE = 2;
/** sysexits.h EX_SOFTWARE: a bug in diskmint. */
const EXIT_INTERNAL = 70;
/** 128 + SIGPIPE: what a shell reports for `cat` when the reader of its output went away. */
const EXIT_BROKEN_PIPE = 141;

type PresetFlags = PresetOptions & { preset?: PresetName };

interface OutputFlags {
  format?: string;
  opt?: string;
  compress?: boolean;
  compression?: 'deflate' | 'zstd';
  level?: number;
  threads?: number;
  quiet?: boolean;
}

/** The output-format flags shared by build and convert (qemu-img's names where it has one). */
function addOutputOptions(cmd: Command, optionFlag: string): Command {
  return cmd
    .option('-O, --format <format>', 'output format: raw, qcow2, vmdk, vhd (vpc), vhdx (default: from the file extension)')
    .option(optionFlag, 'format options, qemu-img style: subformat=streamOptimized,adapter_type=lsilogic,cluster_size=65536,compat=1.1,compression_type=zstd,force_size=on')
    .option('-c, --compress', 'compress data (qcow2 clusters; VMDK streamOptimized always compresses)')
    .addOption(new Option('--compression <kind>', 'compression algorithm').choices(['deflate', 'zstd']))
    .option('--level <n>', 'compression level', (v) => Number(v))
    .option('--threads <n>', 'compression threads (default: every core); output bytes do not depend on it', (v) => Number(v))
    .option('-q, --quiet', 'no progress bar');
}

function writeOptions(o: OutputFlags, output: string): WriteImageOptions {
  return {
    format: o.format, options: o.opt, compress: o.compress || o.compression !== undefined,
    compression: o.compression, level: o.level, threads: o.threads, ...outputStreams(output, o.quiet),
  };
}

/** Where writeImage sends '-' (standard output), and a progress bar unless quiet or piped. */
export function outputStreams(output: string, quiet = false): Pick<WriteImageOptions, 'stdout' | 'progress'> {
  if (output === '-') return { stdout: process.stdout };
  return { progress: quiet ? undefined : terminalProgress() };
}

const sectorSizeOption = new Option('--sector-size <bytes>', 'logical sector size for MBR/BSD disks (default: detected from their contents; GPT records its own)')
  .choices(['512', '4096'])
  .argParser(Number);

export function makeProgram(): Command {
  const program = new Command('diskmint')
    .description('Build, convert, inspect and verify bootable disk images without root')
    .version('0.1.0')
    .showHelpAfterError()
    // Before the commands are added: each copies it. Help's width still asks process.stdout.
    .configureOutput({ writeOut: printOut, writeErr: printErr });

  addOutputOptions(
    program
      .command('build')
      .description('build an image from a layout file (or a preset), in any output format')
      .argument('[layout]', 'layout JSON file (or use --preset)')
      .requiredOption('-o, --output <file>', "output image ('-' for standard output)")
      .option('--seed <seed>', "seed for GUIDs and signatures ('random' for a fresh one)")
      .option('--json', 'print the result as JSON')
      .addOption(new Option('--preset <name>', 'build a preset layout instead of a file').choices([...PRESETS]))
      .option('--os <file>', 'preset: OS filesystem image for slot 1')
      .option('--copy-os', 'preset: also copy the OS image into slot 2')
      .option('--cfg <file>', 'preset: cfg filesystem image')
      .option('--esp <dir>', 'preset: folder for the ESP (FAT32)')
      .option('--boot <file>', 'preset: MBR boot code (pmbr for nanobsd, boot0 for nanobsd-mbr)')
      .option('--boot-stage <file>', 'preset: gptboot (nanobsd) or boot (nanobsd-mbr)')
      .option('--size <size>', 'preset: disk size (default 4G)')
      .option('--os-size <size>', 'preset: size of each OS slot (default 1G)')
      .option('--data <size>', 'preset: data partition size, rest (default) or none')
      .option('--swap <size>', 'preset: swap size (default none)'),
    '--opt <key=value,...>',
  ).action(async (layout: string | undefined, o: OutputFlags & PresetFlags & { output: string; seed?: string; json?: boolean }) => {
      if (!layout === !o.preset) throw new DiskmintError('BAD_ARGUMENT', 'give a layout file or --preset NAME (one of them)');
      const source = o.preset ? await presetLayoutChecked(o.preset, o) : layout!;
      const result = await buildImage(source, { ...writeOptions(o, o.output), output: o.output, seed: o.seed, baseDir: o.preset ? process.cwd() : undefined });
      const text = o.json ? JSON.stringify(result, null, 2) : formatBuild(result);
      // With -o -, the image owns stdout; the report goes to stderr.
      (o.output === '-' ? printErr : printOut)(`${text}\n`);
    });

  program
    .command('info')
    .description('show the partition tables of an image')
    .argument('<image>')
    .option('--json', 'print as JSON')
    .addOption(sectorSizeOption)
    .action(async (image: string, o: { json?: boolean; sectorSize?: number }) => {
      const r = await inspectImage(image, { sectorSize: o.sectorSize });
      if (o.json) printJson(r);
      else printOut(`${formatInspection(r)}\n`);
    });

  program
    .command('verify')
    .description('check an image: exit 0 when sound, 1 when problems were found, 2 when it is not a disk image')
    .argument('<image>')
    .option('--json', 'print as JSON')
    .option('--expect <layout>', 'also check the image against this layout')
    .option('--contents', 'with --expect: also compare every byte with what the layout and its files build (a reproducibility check)')
    .option('--seed <seed>', 'seed of the expected layout')
    .option('--strict', 'treat warnings as problems')
    .option('--boot', 'also report the boot chain: MBR code, boot stages, OS slot attributes')
    .option('--signature <file>', 'also check a detached signature (from `diskmint sign`) and every hash it lists')
    .option('--pubkey <file>', 'the Ed25519 public key for --signature')
    .addOption(sectorSizeOption)
    .action(async (image: string, o: { json?: boolean; expect?: string; contents?: boolean; seed?: string; strict?: boolean; boot?: boolean; sectorSize?: number; signature?: string; pubkey?: string }) => {
      if (!o.signature !== !o.pubkey) throw new DiskmintError('BAD_ARGUMENT', '--signature and --pubkey go together');
      if (o.contents && !o.expect) throw new DiskmintError('BAD_ARGUMENT', '--contents compares with a layout: give --expect LAYOUT');
      const r = await verifyImage(image, o);
      if (o.signature && o.pubkey) {
        const sig = await verifyImageSignature(image, o.signature, o.pubkey);
        r.findings.push(...sig.findings);
        r.errors += sig.findings.filter((f) => f.severity === 'error').length;
        r.ok = r.ok && sig.ok;
      }
      if (o.json) printJson(r);
      else printOut(`${formatVerify(r)}\n`);
      process.exitCode = r.ok ? 0 : EXIT_PROBLEMS;
    });

  program
    .command('compare')
    .description('do two images hold the same disk, whatever their formats? exit 0 when they do, 1 when not (as qemu-img compare); IMG:N compares partition N')
    .argument('<image-a>', 'IMG or IMG:N')
    .argument('<image-b>', 'IMG or IMG:N')
    .option('--strict', 'images of different sizes differ (default: the larger one may only add zeros)')
    .option('--json', 'print as JSON')
    .action(async (a: string, b: string, o: { strict?: boolean; json?: boolean }) => {
      const r = await compareImages(a, b, { strict: o.strict });
      if (o.json) printJson(r);
      else printOut(`${formatCompare(r)}\n`);
      process.exitCode = r.identical ? 0 : EXIT_PROBLEMS;
    });

  addOutputOptions(
    program
      .command('convert')
      .description('convert an image (raw, qcow2, VMDK, VHD, VHDX: detected by content) to another format')
      .argument('<input>')
      .argument('<output>', "output file, '-' for standard output")
      .option('--allow-backing', 'open qcow2 backing files / VMDK parents (refused by default)')
      .option('--json', 'print a summary as JSON'),
    '-o, --opt <key=value,...>',
  ).action(async (input: string, output: string, o: OutputFlags & { json?: boolean; allowBacking?: boolean }) => {
    const r = await convertImage(input, output, { ...writeOptions(o, output), allowBacking: o.allowBacking });
    const text = o.json ? JSON.stringify(r, null, 2) : `${r.input} (${r.inputFormat}) -> ${r.output} (${r.format}), virtual size ${r.virtualSize} bytes`;
    if (o.json || output !== '-') (output === '-' ? printErr : printOut)(`${text}\n`);
  });

  program
    .command('mkimg')
    .description("FreeBSD mkimg's command line: -s scheme -f format [-b bootcode] -p type[/label]:=file | ::size [-a N] [-S secsz] [-P blksz] [-H heads] [-T sectors] [-c capacity] [-C max] [-y] -o out")
    .allowUnknownOption(true)
    .helpOption(false)
    .argument('[args...]')
    .action(async (args: string[]) => {
      await runMkimg(args, (output) => outputStreams(output));
    });

  addFatCommands(program);
  addSlotCommands(program);
  addSignCommands(program);
  addZfsCommands(program);

  program
    .command('schema')
    .description('print the JSON Schema of layout files')
    .option('-o, --output <file>', 'write to a file instead of standard output')
    .action(async (o: { output?: string }) => {
      const { layoutJsonSchema } = await import('../layout/schema.js'); // zod: loaded only here and for layouts
      const text = `${JSON.stringify(layoutJsonSchema(), null, 2)}\n`;
      if (o.output) writeFileSync(o.output, text);
      else printOut(text);
    });
  return program;
}

/**
 * For the `diskmint` process (not for programs that embed the library): on SIGINT, SIGTERM or
 * SIGHUP, delete the temp files of the output being written, then die of the same signal, as
 * the shell expects. Without this an interrupted build leaves a hidden `.NAME.PID...tmp` beside
 * its target, as large as the data written so far.
 */
export function removeTempFilesOnSignals(): void {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      removeTempFilesNow();
      process.kill(process.pid, signal); // no listener is left: the default action ends the process
    });
  }
}

export async function main(argv: string[]): Promise<number> {
  try {
    await makeProgram().parseAsync(argv);
    return Number(process.exitCode ?? 0);
  } catch (err) {
    if (err instanceof DiskmintError) {
      printErr(`diskmint: ${err.code === 'LAYOUT' ? 'invalid layout:\n  ' + err.problems.join('\n  ') : err.message}\n`);
      return err.code === 'NOT_A_DISK' || err.code === 'LAYOUT' || err.code === 'INPUT' ? EXIT_UNREADABLE : EXIT_PROBLEMS;
    }
    if (err instanceof FormatError) {
      printErr(`diskmint: ${err.format}: ${err.message}\n`);
      return EXIT_UNREADABLE;
    }
    // Operating-system errors (a missing file, a full disk, no permission) are the user's to fix.
    const sys = err as NodeJS.ErrnoException;
    if (typeof sys?.code === 'string' && typeof sys.syscall === 'string') {
      // The reader of our output went away (`diskmint convert IMG - | head -c 1M`): stop quietly.
      if (sys.code === 'EPIPE') return EXIT_BROKEN_PIPE;
      printErr(`diskmint: ${sys.message}\n`);
      return sys.code === 'ENOENT' ? EXIT_UNREADABLE : EXIT_PROBLEMS;
    }
    printErr(`diskmint: internal error: ${(err as Error)?.stack ?? String(err)}\n(please report this with the command that caused it)\n`);
    return EXIT_INTERNAL;
  }
}
