/** The `diskmint ufs` command group. */
import type { Command } from 'commander';
import { createUfs } from '../ops/ufs/create.js';
import { formatBytes } from '../model/size.js';
import { printOut } from './output.js';
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

export function addUfsCommands(program: Command): void {
  const ufs = program.command('ufs').description('UFS2 file systems (FreeBSD): create from folders, tarballs or METALOGs');

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
}
