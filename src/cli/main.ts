/**
 * The `diskmint` command: a thin shell over the library functions. Each command's modules are
 * imported when that command runs (and command groups added only when the command line names
 * them), so `diskmint --version` or `diskmint fat ls` loads no engine it does not use.
 */
import { onTempNotice, removeTempFilesNow } from '../io/temp-files.js';
import { configureLocks } from '../io/image-lock.js';
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { presetLayoutChecked, PRESETS } from '../layout/presets.js';
import type { WriteImageOptions } from '../io/write-image.js';
import { DiskmintError, FormatError, isSystemError } from '../model/errors.js';
import { printJson } from './json.js';
import { printOut, printErr } from './output.js';
import { terminalProgress } from './progress.js';
import * as opts from './options.js';
import { checkLevel, type Values } from './options.js';

/** Exit statuses: 0 fine, 1 problems found (verify) or the command failed, 2 unusable input. */
const EXIT_PROBLEMS = 1;
const EXIT_UNREADABLE = 2;
/** sysexits.h EX_SOFTWARE: a bug in diskmint. */
const EXIT_INTERNAL = 70;
/** 128 + SIGPIPE: what a shell reports for `cat` when the reader of its output went away. */
const EXIT_BROKEN_PIPE = 141;

/** The output-format options shared by build and convert. */
const WRITE_OPTIONS = [opts.format, opts.compress, opts.compression, opts.level, opts.threads, opts.quiet, opts.verbose, opts.bmapBeside] as const;
type WriteFlags = Values<typeof WRITE_OPTIONS> & { opt?: string };

async function writeOptions(o: WriteFlags, output: string): Promise<WriteImageOptions & { bmap?: boolean }> {
  const { parseOptionString } = await import('../containers/registry.js');
  const algorithm = o.compression ?? (parseOptionString(o.opt).compression_type === 'zstd' ? 'zstd' : 'deflate');
  if (o.compress || o.compression !== undefined) await checkCompressor(algorithm, o.verbose);
  return {
    format: o.format,
    options: o.opt,
    compress: o.compress || o.compression !== undefined,
    compression: o.compression,
    level: checkLevel(o.level, algorithm),
    threads: o.threads,
    bmap: o.bmap,
    ...outputStreams(output, o.quiet),
  };
}

/**
 * Which zstd engine will run (checks DISKMINT_ZSTD before anything is written) and, with
 * `--verbose`, one line saying what compresses.
 */
async function checkCompressor(algorithm: opts.Compression, verbose = false): Promise<void> {
  let engine = `node:zlib (zlib ${process.versions.zlib})`;
  if (algorithm === 'zstd') {
    const { describeZstdEngine, zstdEngine } = await import('../io/zstd.js');
    engine = describeZstdEngine(zstdEngine());
  }
  if (verbose) printErr(`diskmint: ${algorithm} through ${engine}\n`);
}

/** Where writeImage sends '-' (standard output), and a progress bar unless quiet or piped. */
export function outputStreams(output: string, quiet = false): Pick<WriteImageOptions, 'stdout' | 'progress'> {
  if (output === '-') return { stdout: process.stdout };
  return { progress: quiet ? undefined : terminalProgress() };
}

const preset = (flags: `--${string}`, description: string) => opts.text(flags, `preset: ${description}`);
const BUILD_OPTIONS = [
  opts.described(opts.required(opts.output), "output image ('-' for standard output)"),
  opts.seed,
  opts.json,
  opts.choice('--preset <name>', 'build a preset layout instead of a file', PRESETS),
  preset('--os <file>', 'OS filesystem image for slot 1'),
  preset(
    '--os-from <source...>',
    'instead of --os: a UFS2 file system made from folders, tarballs (base.txz) and mtree:SPEC[@FOLDER] (METALOG), layered in order',
  ),
  opts.flag('--copy-os', 'preset: also copy the OS image into slot 2'),
  preset('--cfg <file>', 'cfg filesystem image'),
  preset('--cfg-from <source...>', 'instead of --cfg: a UFS2 file system (label cfg) made from folders, tarballs and mtree specs'),
  preset('--esp <dir>', 'folder for the ESP (FAT32)'),
  preset('--boot <file>', 'MBR boot code (pmbr or diskmint-fallback for nanobsd, boot0 for nanobsd-mbr)'),
  preset('--boot-stage <file>', 'gptboot (nanobsd) or boot (nanobsd-mbr)'),
  preset('--size <size>', 'disk size (default 4G)'),
  preset('--os-size <size>', 'size of each OS slot (default 1G)'),
  preset('--data <size>', 'data partition size, rest (default) or none'),
  preset('--swap <size>', 'swap size (default none)'),
  opts.formatOptions,
  ...WRITE_OPTIONS,
] as const;

const CONVERT_OPTIONS = [opts.formatOptionsShort, opts.allowBacking, opts.described(opts.json, 'print a summary as JSON'), ...WRITE_OPTIONS] as const;

const INFO_OPTIONS = [opts.json, opts.sectorSize, opts.allowBacking, opts.flag('--verbose', "also say how a raw image's data is found (dataMap)")] as const;

const VERIFY_OPTIONS = [
  opts.json,
  opts.text('--expect <layout>', 'also check the image against this layout'),
  opts.flag('--contents', 'with --expect: also compare every byte with what the layout and its files build (a reproducibility check)'),
  opts.described(opts.seed, 'seed of the expected layout'),
  opts.strict,
  opts.flag('--boot', 'also report the boot chain: MBR code, boot stages, OS slot attributes'),
  opts.text('--signature <file>', 'also check a detached signature (from `diskmint sign`) and every hash it lists'),
  opts.described(opts.pubkey, 'the Ed25519 public key for --signature'),
  opts.sectorSize,
  opts.allowBacking,
] as const;

const COMPARE_OPTIONS = [
  opts.described(opts.strict, 'images of different sizes differ (default: the larger one may only add zeros)'),
  opts.json,
  opts.allowBacking,
] as const;

const SCHEMA_OPTIONS = [opts.described(opts.output, 'write to a file instead of standard output')] as const;

/** `diskmint slot write`: the names from the program down to `action`. */
function commandLine(action: Command): string {
  const names: string[] = [];
  for (let c: Command | null = action; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

type AddCommands = (program: Command) => void;

/** Command groups in modules of their own, in the order help lists them, with the top-level commands each adds. */
const COMMAND_GROUPS: readonly { commands: readonly string[]; load: () => Promise<AddCommands> }[] = [
  { commands: ['fat'], load: async () => (await import('./fat.js')).addFatCommands },
  { commands: ['slot', 'preset'], load: async () => (await import('./slot.js')).addSlotCommands },
  { commands: ['key', 'sign', 'bundle'], load: async () => (await import('./sign.js')).addSignCommands },
  { commands: ['zfs'], load: async () => (await import('./zfs.js')).addZfsCommands },
  { commands: ['flash'], load: async () => (await import('./flash.js')).addFlashCommands },
  { commands: ['bmap'], load: async () => (await import('./bmap.js')).addBmapCommand },
  { commands: ['boot'], load: async () => (await import('./boot.js')).addBootCommands },
  { commands: ['ufs'], load: async () => (await import('./ufs.js')).addUfsCommands },
];
/** The commands makeProgram adds itself. */
const OWN_COMMANDS = ['build', 'info', 'repair', 'verify', 'compare', 'convert', 'mkimg', 'internal-error-test', 'schema'];

/**
 * The command groups a command line needs: none for a command of this file or a bare
 * `--version`, the group of a command it names, every group otherwise (help, no command or an
 * unknown one: commander lists them, or suggests the nearest).
 */
export async function commandGroupsFor(argv: readonly string[]): Promise<AddCommands[]> {
  return Promise.all(groupsNeeded(argv.slice(2)).map((g) => g.load()));
}

function groupsNeeded(args: readonly string[]): typeof COMMAND_GROUPS {
  const command = args.find((a) => !a.startsWith('-')); // the program's own options (-V, -h) take no value
  if (command === undefined) return args.length > 0 && args.every((a) => a === '-V' || a === '--version') ? [] : COMMAND_GROUPS;
  if (OWN_COMMANDS.includes(command)) return [];
  const named = COMMAND_GROUPS.filter((g) => g.commands.includes(command));
  return named.length > 0 ? named : COMMAND_GROUPS;
}

/** The program with every command of this file and the given groups (commandGroupsFor). */
export function makeProgram(groups: readonly AddCommands[]): Command {
  const program = new Command('diskmint')
    .description('Build, convert, inspect and verify bootable disk images without root')
    .version('0.1.0')
    .showHelpAfterError()
    // Before the commands are added: each copies it. Help's width still asks process.stdout.
    .configureOutput({ writeOut: printOut, writeErr: printErr })
    // A lock on an image says which command holds it: `diskmint slot write` (src/io/image-lock.ts).
    .hook('preAction', (_program, action) => configureLocks({ command: commandLine(action), note: (m) => printErr(`diskmint: note: ${m}\n`) }));

  opts
    .addOptions(
      program
        .command('build')
        .description('build an image from a layout file (or a preset), in any output format')
        .argument('[layout]', 'layout JSON file (or use --preset)'),
      BUILD_OPTIONS,
    )
    .action(async (layout: string | undefined, o: Values<typeof BUILD_OPTIONS>) => {
      if (!layout === !o.preset) throw new DiskmintError('BAD_ARGUMENT', 'give a layout file or --preset NAME (one of them)');
      const [{ buildImage }, { formatBuild }] = await Promise.all([import('../ops/build.js'), import('./report.js')]);
      const source = o.preset ? await presetLayoutChecked(o.preset, o) : layout!;
      const result = await buildImage(source, {
        ...(await writeOptions(o, o.output)),
        output: o.output,
        seed: o.seed,
        baseDir: o.preset ? process.cwd() : undefined,
      });
      // With -o -, the image owns stdout; the report goes to stderr.
      const print = o.output === '-' ? printErr : printOut;
      if (o.json) printJson(result, print);
      else print(`${formatBuild(result)}\n`);
    });

  opts
    .addOptions(
      program
        .command('info')
        .description('show the partition tables of an image: exit 1 when they have errors (as verify), 2 when it is not a disk image')
        .argument('<image>'),
      INFO_OPTIONS,
    )
    .action(async (path: string, o: Values<typeof INFO_OPTIONS>) => {
      const [{ withImage }, { formatInspection }] = await Promise.all([import('./with-image.js'), import('./report.js')]);
      const r = await withImage(path, (image) => image.inspect({ sectorSize: o.sectorSize }), { allowBacking: o.allowBacking });
      if (o.json) printJson(r);
      else printOut(`${formatInspection(r)}\n${o.verbose && r.dataMap ? `data map: ${r.dataMap}\n` : ''}`);
      // A table with errors (a GPT neither of whose copies can be read shows no partitions) is
      // reported as verify reports it: exit 1, the findings printed.
      process.exitCode = r.findings.some((f) => f.severity === 'error') ? EXIT_PROBLEMS : 0;
    });

  opts
    .addOptions(
      program
        .command('repair')
        .description(
          'replay a VHDX log not yet applied (as Hyper-V, qemu-img check -r all), then rewrite a damaged or out-of-date GPT copy from the good one (as gpart recover, sgdisk -e); exit 2 when neither copy is valid',
        )
        .argument('<image>'),
      [opts.json] as const,
    )
    .action(async (path: string, o: { json?: boolean }) => {
      const { repairImage } = await import('../ops/repair.js');
      const r = await repairImage(path);
      if (o.json) printJson(r);
      else printOut(`${r.message}\n`);
    });

  opts
    .addOptions(
      program.command('verify').description('check an image: exit 0 when sound, 1 when problems were found, 2 when it is not a disk image').argument('<image>'),
      VERIFY_OPTIONS,
    )
    .action(async (path: string, o: Values<typeof VERIFY_OPTIONS>) => {
      if (!o.signature !== !o.pubkey) throw new DiskmintError('BAD_ARGUMENT', '--signature and --pubkey go together');
      if (o.contents && !o.expect) throw new DiskmintError('BAD_ARGUMENT', '--contents compares with a layout: give --expect LAYOUT');
      const [{ withImage }, { formatVerify }] = await Promise.all([import('./with-image.js'), import('./report.js')]);
      const r = await withImage(path, (image) => image.verify(o), { allowBacking: o.allowBacking });
      if (o.json) printJson(r);
      else printOut(`${formatVerify(r)}\n`);
      process.exitCode = r.ok ? 0 : EXIT_PROBLEMS;
    });

  opts
    .addOptions(
      program
        .command('compare')
        .description(
          'do two images hold the same disk, whatever their formats? exit 0 when they do, 1 when not (as qemu-img compare); IMG:N compares partition N',
        )
        .argument('<image-a>', 'IMG or IMG:N')
        .argument('<image-b>', 'IMG or IMG:N'),
      COMPARE_OPTIONS,
    )
    .action(async (a: string, b: string, o: Values<typeof COMPARE_OPTIONS>) => {
      const [{ compareImages }, { formatCompare }] = await Promise.all([import('../ops/compare.js'), import('./report.js')]);
      const r = await compareImages(a, b, { strict: o.strict, allowBacking: o.allowBacking });
      if (o.json) printJson(r);
      else printOut(`${formatCompare(r)}\n`);
      process.exitCode = r.identical ? 0 : EXIT_PROBLEMS;
    });

  opts
    .addOptions(
      program
        .command('convert')
        .description('convert an image (raw, qcow2, VMDK, VHD, VHDX: detected by content) to another format')
        .argument('<input>')
        .argument('<output>', "output file, '-' for standard output"),
      CONVERT_OPTIONS,
    )
    .action(async (input: string, output: string, o: Values<typeof CONVERT_OPTIONS>) => {
      const { convertImage } = await import('../ops/convert.js');
      const r = await convertImage(input, output, { ...(await writeOptions(o, output)), allowBacking: o.allowBacking });
      // With OUT -, the image owns stdout: the JSON goes to stderr, the text line nowhere.
      if (o.json) printJson(r, output === '-' ? printErr : printOut);
      else if (output !== '-')
        printOut(`${r.input} (${r.inputFormat}) -> ${r.output} (${r.format}), virtual size ${r.virtualSize} bytes${r.bmap ? `; block map ${r.bmap}` : ''}\n`);
    });

  program
    .command('mkimg')
    .description(
      "FreeBSD mkimg's command line: -s scheme -f format [-b bootcode] -p type[/label]:=file | ::size [-a N] [-S secsz] [-P blksz] [-H heads] [-T sectors] [-c capacity] [-C max] [-y] -o out",
    )
    .allowUnknownOption(true)
    .helpOption(false)
    .argument('[args...]')
    .action(async (args: string[]) => {
      const { runMkimg } = await import('../ops/mkimg.js');
      await runMkimg(args, (output) => outputStreams(output));
    });

  // For the test of exit 70: a TypeError thrown from a command's action, after an await, as a
  // bug would be, reaching main()'s handler.
  program.command('internal-error-test', { hidden: true }).action(async () => {
    await Promise.resolve();
    (undefined as unknown as { bug(): void }).bug();
  });

  for (const addGroup of groups) addGroup(program);

  opts
    .addOptions(program.command('schema').description('print the JSON Schema of layout files'), SCHEMA_OPTIONS)
    .action(async (o: Values<typeof SCHEMA_OPTIONS>) => {
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
 * the shell expects. Without this an interrupted build leaves a hidden `.NAME.PID@HOST...tmp` beside
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

/**
 * A bug (anything but a DiskmintError, a FormatError or an operating-system error): one line
 * naming it as such, never relabelled as the command's failure; the stack only with
 * DISKMINT_DEBUG=1.
 */
export function internalError(err: unknown, debug: boolean): string {
  const what = err instanceof Error ? `${err.name}: ${err.message}` : `thrown ${typeof err}: ${String(err)}`;
  const line = `diskmint: internal error: ${what.replace(/\s*\n\s*/g, ' ')} (a bug in diskmint: please report it with the command that caused it${debug ? '' : '; DISKMINT_DEBUG=1 shows where'})\n`;
  const stack = err instanceof Error && err.stack ? err.stack : undefined;
  return debug && stack ? `${line}${stack}\n` : line;
}

export async function main(argv: string[]): Promise<number> {
  // Temp files a killed diskmint left beside an output, removed by this run: said on stderr.
  const stopNotices = onTempNotice((message) => printErr(`diskmint: note: ${message}\n`));
  try {
    await makeProgram(await commandGroupsFor(argv)).parseAsync(argv);
    return Number(process.exitCode ?? 0);
  } catch (err) {
    return reportError(err);
  } finally {
    stopNotices();
  }
}

/** What main() does with an error a command threw: one line on standard error, and the exit status. */
export function reportError(err: unknown): number {
  if (err instanceof DiskmintError) {
    printErr(`diskmint: ${err.code === 'LAYOUT' ? 'invalid layout:\n  ' + err.problems.join('\n  ') : err.message}\n`);
    return err.code === 'NOT_A_DISK' || err.code === 'LAYOUT' || err.code === 'INPUT' ? EXIT_UNREADABLE : EXIT_PROBLEMS;
  }
  if (err instanceof FormatError) {
    printErr(`diskmint: ${err.format}: ${err.message}\n`);
    return EXIT_UNREADABLE;
  }
  // Operating-system errors (a missing file, a full disk, no permission) are the user's to fix.
  if (isSystemError(err)) {
    // The reader of our output went away (`diskmint convert IMG - | head -c 1M`): stop quietly.
    if (err.code === 'EPIPE') return EXIT_BROKEN_PIPE;
    printErr(`diskmint: ${err.message}\n`);
    return err.code === 'ENOENT' ? EXIT_UNREADABLE : EXIT_PROBLEMS;
  }
  printErr(internalError(err, process.env.DISKMINT_DEBUG === '1'));
  return EXIT_INTERNAL;
}
