/**
 * `diskmint mkimg`: FreeBSD mkimg(1)'s command line, translated into a layout and built with
 * diskmint's own engine, so mkimg build scripts run unchanged wherever Node runs.
 * Placement follows mkimg (usr.bin/mkimg/mkimg.c and the scheme files): partitions start on
 * -P block boundaries (MBR: track boundaries), sizes round up to whole sectors, a BSD image
 * ends on a cylinder boundary.
 */
import { stat } from 'node:fs/promises';
import { DiskmintError } from '../model/errors.js';
import { buildImage, withPlannedImage } from './build.js';
import { SCHEME_NAMES, findScheme, schemeHandler } from '../schemes/registry.js';
import { listWords } from '../schemes/sectors.js';
import type { SchemeName } from '../schemes/handler.js';
import type { WriteImageOptions } from '../io/write-image.js';
import type { Layout, PartitionSpec } from '../layout/schema.js';

export interface MkimgArgs {
  scheme: SchemeName;
  format: string;
  output: string;
  bootcode?: string;
  partitions: MkimgPartition[];
  active?: number;
  sectorSize: number;
  blockSize: number;
  heads: number;
  sectorsPerTrack: number;
  minCapacity?: number;
  maxCapacity?: number;
  deterministic: boolean;
}

export interface MkimgPartition {
  type: string;
  label?: string;
  file?: string;
  size?: number;
  offset?: { bytes: number; relative: boolean };
}

/** mkimg's -f names -> diskmint formats (vhdf = fixed VHD). */
const FORMATS: Record<string, { format: string; options?: string }> = {
  raw: { format: 'raw' },
  qcow2: { format: 'qcow2' },
  qcow: { format: 'qcow2', options: 'compat=0.10' },
  vhd: { format: 'vhd', options: 'subformat=dynamic' },
  vhdf: { format: 'vhd', options: 'subformat=fixed' },
  vhdx: { format: 'vhdx' },
  vmdk: { format: 'vmdk', options: 'subformat=monolithicSparse' },
};

/** expand_number(3): a number with an optional k/m/g/t/p/e suffix (powers of 1024). */
export function expandNumber(text: string, what: string): number {
  const m = /^(\d+)([kmgtpe]?)b?$/i.exec(text.trim());
  if (!m) throw new DiskmintError('BAD_ARGUMENT', `mkimg: ${what} "${text}" is not a number (e.g. 512, 64k, 1g)`);
  const n = Number(m[1]) * 1024 ** ' kmgtpe'.indexOf((m[2] || ' ').toLowerCase());
  if (!Number.isSafeInteger(n)) throw new DiskmintError('BAD_ARGUMENT', `mkimg: ${what} "${text}" is too large`);
  return n;
}

/** `type[/label]:=file[:[+]offset]`, `type[/label]::size[:[+]offset]`; `-` is an unused slot. */
export function parsePartSpec(spec: string): MkimgPartition | undefined {
  if (spec === '-') return undefined;
  const m = /^([^/:]+)(?:\/([^:]*))?:([=:-])([^:]*)(?::(\+?)(\S+))?$/.exec(spec);
  if (!m) throw new DiskmintError('BAD_ARGUMENT', `mkimg: -p "${spec}": expected type[/label]:=file or type[/label]::size`);
  const [, type, label, kind, value, plus, offset] = m;
  if (kind === '-')
    throw new DiskmintError(
      'BAD_ARGUMENT',
      `mkimg: -p "${spec}": partitions from a command (:-cmd) are not supported; run the command to a file and use :=file`,
    );
  const part: MkimgPartition = { type, label: label || undefined };
  if (kind === '=') part.file = value;
  else part.size = expandNumber(value, 'partition size');
  if (offset !== undefined) part.offset = { bytes: expandNumber(offset, 'partition offset'), relative: plus === '+' };
  return part;
}

/** Parse mkimg's options (getopt style: `-s gpt` or `-sgpt`). */
export function parseMkimgArgs(argv: readonly string[]): MkimgArgs {
  const args: Partial<MkimgArgs> & { partitions: MkimgPartition[] } = { partitions: [], deterministic: false };
  let active: number | undefined;
  const takesValue = new Set(['a', 'b', 'c', 'C', 'f', 'H', 'o', 'p', 'P', 's', 'S', 'T']);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--capacity') {
      args.minCapacity = args.maxCapacity = expandNumber(argv[++i] ?? '', '--capacity');
      continue;
    }
    const m = /^-([a-zA-Z])(.*)$/.exec(arg);
    if (!m) throw new DiskmintError('BAD_ARGUMENT', `mkimg: unexpected argument "${arg}"`);
    const [, flag, inline] = m;
    if (flag === 'y') args.deterministic = true;
    else if (flag === 'v') continue;
    else if (!takesValue.has(flag)) throw new DiskmintError('BAD_ARGUMENT', `mkimg: unknown option -${flag}`);
    else {
      const value = inline || argv[++i];
      if (value === undefined) throw new DiskmintError('BAD_ARGUMENT', `mkimg: -${flag} needs a value`);
      switch (flag) {
        case 'a':
          active = Number(value);
          break;
        case 'b':
          args.bootcode = value;
          break;
        case 'c':
          args.minCapacity = expandNumber(value, '-c capacity');
          break;
        case 'C':
          args.maxCapacity = expandNumber(value, '-C capacity');
          break;
        case 'f':
          args.format = value;
          break;
        case 'H':
          args.heads = Number(value);
          break;
        case 'o':
          args.output = value;
          break;
        case 'P':
          args.blockSize = expandNumber(value, '-P block size');
          break;
        case 'S':
          args.sectorSize = expandNumber(value, '-S sector size');
          break;
        case 's':
          args.scheme = value as MkimgArgs['scheme'];
          break;
        case 'T':
          args.sectorsPerTrack = Number(value);
          break;
        case 'p': {
          const part = parsePartSpec(value);
          if (part) args.partitions.push(part);
          break;
        }
      }
    }
  }
  if (!args.scheme) throw new DiskmintError('BAD_ARGUMENT', `mkimg: -s scheme is required (${listWords(SCHEME_NAMES, 'or')})`);
  const scheme = findScheme(args.scheme);
  if (!scheme) {
    throw new DiskmintError('BAD_ARGUMENT', `mkimg: scheme "${args.scheme}" is not supported (diskmint writes ${listWords(SCHEME_NAMES)}; not apm or vtoc8)`);
  }
  if (scheme.capabilities.bootcode.bytes === 0 && args.bootcode !== undefined)
    throw new DiskmintError('BAD_ARGUMENT', `mkimg: the ${scheme.name} scheme has no boot code (-b)`);
  if (!args.output) throw new DiskmintError('BAD_ARGUMENT', 'mkimg: -o outfile is required (mkimg would write to standard output; give -o - for that)');
  const sectorSize = args.sectorSize ?? 512;
  return {
    ...(args as MkimgArgs),
    format: args.format ?? 'raw',
    sectorSize,
    blockSize: args.blockSize ?? sectorSize,
    heads: args.heads ?? 1,
    sectorsPerTrack: args.sectorsPerTrack ?? 1,
    active,
  };
}

/** The layout mkimg would lay out for these arguments. */
export async function mkimgLayout(a: MkimgArgs): Promise<Layout> {
  const scheme = schemeHandler(a.scheme);
  const { mkimg: rules, capabilities: caps } = scheme;
  const blockSectors = Math.max(1, a.blockSize / a.sectorSize);
  const track = a.sectorsPerTrack > 1 ? a.sectorsPerTrack : 1;
  // MBR and EBR partitions start on track boundaries (each EBR takes the track before its partition).
  const alignSectors = rules.alignToTrack ? track : blockSectors;
  const partitions: PartitionSpec[] = [];
  for (const [i, p] of a.partitions.entries()) {
    const bytes = p.file !== undefined ? (await stat(p.file).catch(() => undefined))?.size : p.size;
    if (bytes === undefined) throw new DiskmintError('INPUT', `mkimg: -p ${p.type}:=${p.file}: file not found`);
    // mkimg.c: size = bytes rounded up to whole sectors; only the next start is rounded (scheme metadata).
    // ebr.c: the EBR entry's size is rounded up to whole tracks.
    const sectors = Math.ceil(bytes / a.sectorSize);
    const spec: PartitionSpec = { type: p.type, size: `${rules.roundSizeToTrack ? Math.ceil(sectors / track) * track : sectors}s` };
    if (p.file !== undefined) spec.contents = { file: p.file };
    if (p.label !== undefined && caps.labels) spec.label = p.label;
    if (caps.activeFlag && a.active === i + 1) spec.active = true;
    if (p.offset) {
      if (p.offset.relative) throw new DiskmintError('BAD_ARGUMENT', `mkimg: relative offsets (:+N) are not supported; give an absolute offset`);
      spec.offset = p.offset.bytes;
    }
    if (a.deterministic && caps.guids) spec.uuid = repeatedGuid(i + 1);
    partitions.push(spec);
  }
  const layout: Layout = {
    scheme: a.scheme,
    sectorSize: a.sectorSize as 512 | 4096,
    align: `${alignSectors}s`,
    geometry: { heads: Math.min(255, a.heads), sectors: Math.min(63, a.sectorsPerTrack) },
    partitions,
  };
  if (caps.guids && a.deterministic) layout.diskGuid = repeatedGuid(a.partitions.length + 1);
  if (a.bootcode) layout.bootcode = a.bootcode;
  else if (caps.diskSignature === 'seeded') layout.diskSignature = 0; // mkimg writes no disk signature of its own
  // Image end: BSD rounds to a cylinder (bsd.c SCHEME_META_IMG_END); -c sets a minimum size.
  const plan = await withPlannedImage(layout, { baseDir: process.cwd() }, async ({ plan }) => plan);
  let sectors = plan.totalSectors;
  if (rules.endOnCylinder) {
    const cylinder = a.heads * a.sectorsPerTrack;
    const end = Math.max(...plan.partitions.map((p) => p.startLba + p.sectors), Math.ceil(rules.endOnCylinder.minBytes / a.sectorSize));
    sectors = Math.ceil(end / cylinder) * cylinder;
  }
  if (a.minCapacity !== undefined) sectors = Math.max(sectors, Math.ceil(a.minCapacity / a.sectorSize));
  if (a.maxCapacity !== undefined && sectors * a.sectorSize > a.maxCapacity) {
    throw new DiskmintError('BAD_ARGUMENT', `mkimg: the image needs ${sectors * a.sectorSize} bytes, more than -C ${a.maxCapacity}`);
  }
  layout.size = `${sectors}s`;
  return layout;
}

/** mkimg -y: identifiers are 16 copies of a counter byte, partitions first, then the disk. */
function repeatedGuid(n: number): string {
  const b = (n & 0xff).toString(16).padStart(2, '0');
  return `${b.repeat(4)}-${b.repeat(2)}-${b.repeat(2)}-${b.repeat(2)}-${b.repeat(6)}`;
}

/** `streams` gives writeImage's stdout and progress for the output path (the CLI's; a library caller's own). */
export async function runMkimg(
  argv: readonly string[],
  streams: (output: string) => Pick<WriteImageOptions, 'stdout' | 'progress'> = () => ({}),
): Promise<void> {
  const a = parseMkimgArgs(argv);
  const f = FORMATS[a.format];
  if (!f) throw new DiskmintError('BAD_ARGUMENT', `mkimg: format "${a.format}" is not supported (use ${Object.keys(FORMATS).join(', ')})`);
  const layout = await mkimgLayout(a);
  await buildImage(layout, {
    ...streams(a.output),
    output: a.output,
    format: f.format,
    options: f.options,
    baseDir: process.cwd(),
    seed: a.deterministic ? 'mkimg-y' : undefined,
  });
}
