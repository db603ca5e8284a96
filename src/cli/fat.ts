/** The `diskmint fat` command group. */
import type { Command } from 'commander';
import { catFat, createFatImage, extractFat, listFat } from '../ops/fat.js';
import { formatBytes } from '../model/size.js';
import { printErr, printOut } from './output.js';
import { printJson } from './json.js';
import * as opts from './options.js';
import type { Values } from './options.js';

const CREATE_OPTIONS = [
  opts.required(opts.described(opts.from, 'folder to copy in')),
  opts.text('--size <size>', 'volume size, e.g. 64M (default: the smallest volume that holds the tree)'),
  opts.choice('--type <bits>', 'FAT type (default: chosen by size, as mkfs.fat does)', ['12', '16', '32', 'auto']),
  opts.text('--label <name>', 'volume label (up to 11 characters)'),
  opts.described(opts.sectorSize, 'logical sector size (default 512)'),
  opts.described(opts.seed, 'seed for the volume serial number'),
  opts.flag('--keep-times', "stamp entries with the files' own times (default: SOURCE_DATE_EPOCH or 1980-01-01)"),
  opts.described(opts.format, 'output format (default: from the file extension, else raw)'),
  opts.json,
] as const;

export function addFatCommands(program: Command): void {
  const fat = program.command('fat').description('FAT12/16/32 volumes: create from a folder; list, read and extract files (IMG:N picks partition N)');

  opts
    .addOptions(
      fat.command('create').description('make a FAT volume image from a folder (any output format: raw, qcow2, vmdk, vhd, vhdx)').argument('<output>'),
      CREATE_OPTIONS,
    )
    .action(async (output: string, o: Values<typeof CREATE_OPTIONS>) => {
      const type = o.type === undefined || o.type === 'auto' ? 'auto' : (Number(o.type) as 12 | 16 | 32);
      const r = await createFatImage(output, { ...o, type, progress: false, ...(output === '-' ? { stdout: process.stdout } : {}) });
      if (o.json) printJson(r);
      else printOut(`${output}: FAT${r.type}, ${formatBytes(r.sizeBytes)}, ${r.clusters} clusters of ${formatBytes(r.clusterSize)}\n`);
    });

  fat
    .command('ls')
    .description('list a folder of the FAT volume in IMG or IMG:N')
    .argument('<image>')
    .argument('[path]', 'folder or file', '/')
    .addOption(opts.json.make())
    .action(async (image: string, path: string, o: Values<readonly [typeof opts.json]>) => {
      const entries = await listFat(image, path);
      if (o.json) return printJson(entries);
      for (const e of entries) {
        const when = e.mtime.toISOString().slice(0, 16).replace('T', ' ');
        const stored = e.storedName === undefined ? '' : `  (stored name ${JSON.stringify(e.storedName)} is not a valid 8.3 name)`;
        printOut(`${e.isDirectory ? 'd' : '-'} ${String(e.isDirectory ? '' : e.size).padStart(12)} ${when} ${e.name}${e.isDirectory ? '/' : ''}${stored}\n`);
      }
    });

  fat
    .command('cat')
    .description('write a file from the FAT volume in IMG or IMG:N to standard output')
    .argument('<image>')
    .argument('<path>')
    .action(async (image: string, path: string) => {
      await catFat(image, path, process.stdout);
    });

  fat
    .command('extract')
    .description('copy the whole tree of the FAT volume in IMG or IMG:N into DEST')
    .argument('<image>')
    .argument('<dest>')
    .action(async (image: string, dest: string) => {
      for (const e of await extractFat(image, dest))
        printErr(
          `diskmint: warning: ${e.path}: the stored name ${JSON.stringify(e.storedName)} is not a valid 8.3 name; extracted as ${JSON.stringify(e.name)}\n`,
        );
    });
}
