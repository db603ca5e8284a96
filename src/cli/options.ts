/**
 * Every CLI option is declared once here, with the type of its parsed value; commands list the
 * options they take (`addOptions(cmd, [output, json, ...])`) and read them as `Values<typeof
 * THEIRS>`, whose keys are derived from the flags ('-o, --output <file>' -> `output: string`).
 * Numbers are checked as they are parsed: `--threads abc` is an error naming the option (exit
 * 1), never NaN passed on.
 *
 * Spellings (README "Options common to the commands"): the output file is `-o, --output FILE`
 * wherever it is not positional; `convert IN OUT` keeps qemu-img's positional output and `-o`
 * for format options (its users come from qemu-img), and also takes `--opt`, the spelling
 * `build` uses. Older spellings stay as hidden aliases (`key generate --out`).
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { DiskmintError } from '../model/errors.js';

/** An option: its flags (the key of its value derives from them), how to make it, its value's type. */
export interface OptionDef<F extends string = string, T = unknown, R extends boolean = boolean> {
  readonly flags: F;
  readonly required: R;
  /** A fresh commander Option (each command needs its own). */
  make(): Option;
  /** Type only: the parsed value. */
  readonly __value?: T;
}

type LongName<F extends string> = F extends `${string}--${infer Rest}` ? (Rest extends `${infer Name} ${string}` ? Name : Rest) : never;
type Camel<S extends string> = S extends `${infer A}-${infer B}` ? `${A}${Capitalize<Camel<B>>}` : S;
type Positive<N extends string> = N extends `no-${infer P}` ? P : N;
/** The attribute commander stores an option under: '--no-hash' -> 'hash', '--sector-size <n>' -> 'sectorSize'. */
export type KeyOf<F extends string> = Camel<Positive<LongName<F>>>;
type ValueOf<D> = D extends OptionDef<string, infer T> ? T : never;

/** The parsed options of a command that takes `Defs`: required ones always present. */
export type Values<Defs extends readonly OptionDef[]> = {
  [D in Defs[number] as D extends OptionDef<string, unknown, true> ? KeyOf<D['flags']> : never]: ValueOf<D>;
} & {
  [D in Defs[number] as D extends OptionDef<string, unknown, true> ? never : KeyOf<D['flags']>]?: ValueOf<D>;
};

function def<T, const F extends string>(flags: F, make: (o: Option) => Option = (o) => o, description = ''): OptionDef<F, T, false> {
  return { flags, required: false, make: () => make(new Option(flags, description)) };
}

/** A string-valued option (`--label <name>`). */
export const text = <const F extends string>(flags: F, description: string): OptionDef<F, string, false> => def<string, F>(flags, undefined, description);
/** A switch (`--json`); `--no-x` switches default to true. */
export const flag = <const F extends string>(flags: F, description: string): OptionDef<F, boolean, false> => def<boolean, F>(flags, undefined, description);
/** One of a list of words. */
export const choice = <const F extends string, const C extends string>(flags: F, description: string, choices: readonly C[]): OptionDef<F, C, false> =>
  def<C, F>(flags, (o) => o.choices(choices), description);

/** A whole number from `min` to `max`, checked as it is parsed. */
export const integer = <const F extends string>(flags: F, description: string, min: number, max: number): OptionDef<F, number, false> =>
  def<number, F>(flags, (o) => o.argParser(parseInteger(min, max)), description);

export function parseInteger(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = /^\s*-?\d+\s*$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    return n;
  };
}

/** The same option, mandatory. */
export function required<F extends string, T>(d: OptionDef<F, T, boolean>): OptionDef<F, T, true> {
  return { flags: d.flags, required: true, make: () => d.make().makeOptionMandatory() };
}
/** The same option with another description (what the output is, for this command). */
export function described<F extends string, T, R extends boolean>(d: OptionDef<F, T, R>, description: string): OptionDef<F, T, R> {
  return { ...d, make: () => Object.assign(d.make(), { description }) };
}
/** The same option, left out of --help (an old spelling kept working). */
export function hidden<F extends string, T, R extends boolean>(d: OptionDef<F, T, R>): OptionDef<F, T, R> {
  return { ...d, make: () => d.make().hideHelp() };
}
/** The same option with a default value. */
export function withDefault<F extends string, T>(d: OptionDef<F, T, boolean>, value: T): OptionDef<F, T, true> {
  return { flags: d.flags, required: true, make: () => d.make().default(value) };
}

export function addOptions<Defs extends readonly OptionDef[]>(cmd: Command, defs: Defs): Command {
  for (const d of defs) cmd.addOption(d.make());
  return cmd;
}

// ---- the shared options ---------------------------------------------------------------------

/** Seconds a writing command waits for another's lock on the image (src/io/image-lock.ts). */
export const lockTimeout = def<number, '--lock-timeout <seconds>'>(
  '--lock-timeout <seconds>',
  (o) =>
    o.argParser((value) => {
      const n = /^\s*\d+(\.\d+)?\s*$/.test(value) ? Number(value) : NaN;
      if (!(n >= 0 && n <= 86400)) throw new InvalidArgumentError('expected seconds from 0 to 86400');
      return n;
    }),
  'seconds to wait while another command edits the image (default 5; 0: fail at once)',
);

export const bmapBeside = flag('--bmap', "also write OUT.bmap beside the output (bmaptool's block map; fw.img.zst gets fw.img.bmap)");
export const json = flag('--json', 'print the result as JSON (64-bit values as decimal strings)');
export const quiet = flag('-q, --quiet', 'no progress bar');
export const verbose = flag('--verbose', 'say on standard error what compresses (zstd: node:zlib or WebAssembly; DISKMINT_ZSTD=native|wasm forces one)');
/** The output file, wherever it is not a positional argument. */
export const output = text('-o, --output <file>', "output file ('-' for standard output)");
export const seed = text('--seed <seed>', "seed for GUIDs and signatures ('random' for a fresh one)");
export const from = text('--from <file>', 'input file');
export const pubkey = text('--pubkey <file>', 'Ed25519 public key (PEM)');
export const privateKey = text('--key <file>', 'Ed25519 private key (PEM)');
export const requireSignature = flag('--require-signature', 'refuse anything but a bundle signed by --pubkey');
export const strict = flag('--strict', 'treat warnings as problems');
export const allowBacking = flag('--allow-backing', 'open qcow2 backing files (the whole chain) instead of refusing them');
export const sectorSize = def<512 | 4096, '--sector-size <bytes>'>(
  '--sector-size <bytes>',
  (o) => o.choices(['512', '4096']).argParser((v) => Number(v) as 512 | 4096),
  'logical sector size for MBR/BSD disks (default: detected from their contents; GPT records its own)',
);

/** The output-format options of build and convert (qemu-img's names where it has one). */
export const format = text('-O, --format <format>', 'output format: raw, qcow2, vmdk, vhd (vpc), vhdx (default: from the file extension)');
const FORMAT_OPTIONS =
  'format options, qemu-img style: subformat=streamOptimized,adapter_type=lsilogic,cluster_size=65536,compat=1.1,compression_type=zstd,force_size=on';
/** Format options where `-o` is the output file (build). */
export const formatOptions = text('--opt <key=value,...>', FORMAT_OPTIONS);
/** Format options as qemu-img spells them, where the output is positional (convert). */
export const formatOptionsShort = text('-o, --opt <key=value,...>', FORMAT_OPTIONS);
export const compress = flag('-c, --compress', 'compress data (qcow2 clusters; VMDK streamOptimized always compresses)');
export const COMPRESSIONS = ['deflate', 'zstd'] as const;
export type Compression = (typeof COMPRESSIONS)[number];
export const compression = choice('--compression <kind>', 'compression algorithm', COMPRESSIONS);
/** Checked against the algorithm's own range once that is known (levelFor). */
export const level = integer('--level <n>', 'compression level (deflate 0-9, zstd 1-22)', 0, 22);
export const threads = integer(
  '--threads <n>',
  'compression threads (default: every core; .xz: as xz -T0, cores the memory holds); output bytes do not depend on it',
  1,
  1024,
);

const LEVELS: Record<Compression, [number, number]> = { deflate: [0, 9], zstd: [1, 22] };
/** `--level` within the range of the algorithm that will use it. */
export function checkLevel(level: number | undefined, algorithm: Compression): number | undefined {
  if (level === undefined) return undefined;
  const [min, max] = LEVELS[algorithm];
  if (level < min || level > max) throw new DiskmintError('BAD_ARGUMENT', `--level ${level}: ${algorithm} levels go from ${min} to ${max}`);
  return level;
}
