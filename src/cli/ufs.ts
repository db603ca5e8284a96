/** The `diskmint ufs` command group: create UFS2 file systems; list, read, extract and check UFS1/UFS2 (IMG:N picks partition N). */
import type { Command } from 'commander';
import { createUfs } from '../ops/ufs/create.js';
import { catUfs } from '../ops/ufs/cat.js';
import { checkUfs } from '../ops/ufs/check.js';
import { extractUfs } from '../ops/ufs/extract.js';
import { listUfs } from '../ops/ufs/ls.js';
import type { UfsEntry } from '../fs/ufs/read-types.js';
import { formatBytes } from '../model/size.js';
import { printErr, printOut } from './output.js';
import { printJson } from './json.js';
import * as opts from './options.js';
import type { Values } from './options.js';

const CREATE_OPTIONS = [
  opts.required(opts.text('--from <source...>', 'a folder, a tarball (.tar, .tar.gz, .tar.xz, .tar.zst) or mtree:SPEC[@FOLDER]; several are layered in order')),
  opts.text('--size <size>', 'file system size, e.g. 512M (default: the smallest that holds the tree, plus minfree)'),
  opts.text('--label <name>', 'volume label, fs_volname (/dev/ufs/NAME; up to 31 bytes)'),
  opts.integer('--block-size <bytes>', 'block size (default 32768)', 4096, 32768),
  opts.integer('--frag-size <bytes>', 'fragment size (default 4096)', 512, 32768),
  opts.integer('--density <bytes>', 'bytes of data per inode (default: newfs’ 2 fragments, more inodes when the tree needs them)', 512, 2 ** 31 - 1),
  opts.integer('--minfree <percent>', 'space reserved for root, percent (default 8)', 0, 99),
  opts.flag('--softupdates', 'enable soft updates (off by default, as makefs)'),
  opts.described(opts.seed, 'seed for the file system id and inode generation numbers'),
  opts.described(opts.format, 'output format (default: from the file extension, else raw)'),
  opts.json,
] as const;

const LS_OPTIONS = [opts.flag('-l, --long', 'one line per entry with mode, links, owner, size and time, as ls -l'), opts.json] as const;
const EXTRACT_OPTIONS = [opts.required(opts.text('-o, --output <dir>', 'folder to write into (created if missing)')), opts.json] as const;
const CHECK_OPTIONS = [opts.json, opts.strict] as const;

const TYPE_CHAR: Record<string, string> = { file: '-', dir: 'd', symlink: 'l', char: 'c', block: 'b', fifo: 'p', socket: 's' };

/** ls -l's mode string: type, then rwx triples with setuid, setgid and sticky. */
export function modeString(e: UfsEntry): string {
  const m = e.stat.mode;
  const bits = (r: number, w: number, x: number, special: number, s: string) =>
    `${m & r ? 'r' : '-'}${m & w ? 'w' : '-'}${m & special ? (m & x ? s : s.toUpperCase()) : m & x ? 'x' : '-'}`;
  return TYPE_CHAR[e.stat.kind] + bits(0o400, 0o200, 0o100, 0o4000, 's') + bits(0o40, 0o20, 0o10, 0o2000, 's') + bits(0o4, 0o2, 0o1, 0o1000, 't');
}

function longLine(e: UfsEntry): string {
  const s = e.stat;
  const when = new Date(s.mtime.sec * 1000).toISOString().slice(0, 16).replace('T', ' ');
  const size = s.rdev ? `${s.rdev.major}, ${s.rdev.minor}` : String(s.size);
  const target = e.target !== undefined ? ` -> ${e.target}` : '';
  return `${modeString(e)} ${String(s.nlink).padStart(3)} ${String(s.uid).padEnd(6)} ${String(s.gid).padEnd(6)} ${size.padStart(12)} ${when} ${e.name}${target}`;
}

export function addUfsCommands(program: Command): void {
  const ufs = program
    .command('ufs')
    .description(
      'UFS file systems (FreeBSD): create UFS2 from folders, tarballs or METALOGs; list, read, extract and check UFS1/UFS2 (IMG:N picks partition N)',
    );

  opts
    .addOptions(
      ufs.command('create').description('make a UFS2 file system image (any output format: raw, qcow2, vmdk, vhd, vhdx)').argument('<output>'),
      CREATE_OPTIONS,
    )
    .action(async (output: string, o: Values<typeof CREATE_OPTIONS>) => {
      const from = ([] as string[]).concat(o.from as string | string[]);
      const r = await createUfs(output, {
        ...o,
        from,
        blockSize: o.blockSize,
        fragSize: o.fragSize,
        progress: false,
        ...(output === '-' ? { stdout: process.stdout } : {}),
      });
      if (o.json) printJson(r);
      else
        printOut(
          `${output}: UFS2${r.label ? ` "${r.label}"` : ''}, ${formatBytes(r.sizeBytes)}, ${r.cylinderGroups} cylinder groups of ${r.inodesPerGroup} inodes, ` +
            `blocks ${formatBytes(r.blockSize)}/${formatBytes(r.fragSize)}, ${r.inodes} inodes used, ${formatBytes(r.freeBytes)} free\n`,
        );
    });

  opts
    .addOptions(
      ufs.command('ls').description('list a folder of the UFS file system in IMG or IMG:N').argument('<image>').argument('[path]', 'folder or file', '/'),
      LS_OPTIONS,
    )
    .action(async (image: string, path: string, o: Values<typeof LS_OPTIONS>) => {
      const entries = await listUfs(image, path);
      if (o.json) return printJson(entries);
      for (const e of entries) printOut(`${o.long ? longLine(e) : `${e.name}${e.stat.kind === 'dir' ? '/' : ''}`}\n`);
    });

  ufs
    .command('cat')
    .description('write a file from the UFS file system in IMG or IMG:N to standard output')
    .argument('<image>')
    .argument('<path>')
    .action(async (image: string, path: string) => {
      await catUfs(image, path, process.stdout);
    });

  opts
    .addOptions(
      ufs
        .command('extract')
        .description('copy the tree (or PATH) of the UFS file system in IMG or IMG:N into a folder: modes, times, symlinks, hard links (owners when root)')
        .argument('<image>')
        .argument('[path]', 'folder or file to extract', '/'),
      EXTRACT_OPTIONS,
    )
    .action(async (image: string, path: string, o: Values<typeof EXTRACT_OPTIONS>) => {
      const r = await extractUfs(image, o.output, path);
      if (o.json) return printJson(r);
      for (const s of r.skipped) printErr(`diskmint: warning: ${s.path}: a ${s.kind} was not created: ${s.reason}\n`);
      printOut(`${o.output}: ${r.dirs} folders, ${r.files} files, ${r.symlinks} symlinks, ${r.hardlinks} hard links\n`);
    });

  opts
    .addOptions(
      ufs.command('check').description('check the UFS file system in IMG or IMG:N as fsck_ffs -n does (exit 1 on problems)').argument('<image>'),
      CHECK_OPTIONS,
    )
    .action(async (image: string, o: Values<typeof CHECK_OPTIONS>) => {
      const problems = await checkUfs(image);
      if (o.json) printJson(problems);
      else if (problems.length === 0) printOut(`${image}: no problems found\n`);
      else for (const p of problems) printOut(`${p.severity}: ${p.code}: ${p.message}\n`);
      const bad = problems.some((p) => p.severity === 'error' || (o.strict && p.severity === 'warning'));
      process.exitCode = bad ? 1 : 0;
    });
}
