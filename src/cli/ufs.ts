/** The `diskmint ufs` command group: list, read, extract and check a UFS1/UFS2 file system (IMG:N picks partition N). */
import type { Command } from 'commander';
import { catUfs } from '../ops/ufs/cat.js';
import { checkUfs } from '../ops/ufs/check.js';
import { extractUfs } from '../ops/ufs/extract.js';
import { listUfs } from '../ops/ufs/ls.js';
import type { UfsEntry } from '../fs/ufs/read-types.js';
import { printErr, printOut } from './output.js';
import { printJson } from './json.js';
import * as opts from './options.js';
import type { Values } from './options.js';

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
  const ufs = program.command('ufs').description('UFS1/UFS2 file systems: list, read, extract and check (IMG:N picks partition N)');

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
