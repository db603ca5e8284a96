/** The `diskmint fat` command group. */
import { Command, Option } from 'commander';
import { catFat, createFatImage, extractFat, listFat } from '../ops/fat.js';
import { formatBytes } from '../model/size.js';
import { printOut } from './output.js';

export function addFatCommands(program: Command): void {
  const fat = program.command('fat').description('FAT12/16/32 volumes: create from a folder; list, read and extract files (IMG:N picks partition N)');

  fat
    .command('create')
    .description('make a FAT volume image from a folder (any output format: raw, qcow2, vmdk, vhd, vhdx)')
    .argument('<output>')
    .requiredOption('--from <dir>', 'folder to copy in')
    .option('--size <size>', 'volume size, e.g. 64M (default: the smallest volume that holds the tree)')
    .addOption(new Option('--type <bits>', 'FAT type (default: chosen by size, as mkfs.fat does)').choices(['12', '16', '32', 'auto']))
    .option('--label <name>', 'volume label (up to 11 characters)')
    .addOption(new Option('--sector-size <bytes>').choices(['512', '4096']).argParser(Number))
    .option('--seed <seed>', 'seed for the volume serial number')
    .option('--keep-times', "stamp entries with the files' own times (default: SOURCE_DATE_EPOCH or 1980-01-01)")
    .option('-O, --format <format>', 'output format (default: from the file extension, else raw)')
    .option('--json', 'print the result as JSON')
    .action(async (output: string, o: { from: string; size?: string; type?: string; label?: string; sectorSize?: 512 | 4096; seed?: string; keepTimes?: boolean; format?: string; json?: boolean }) => {
      const type = o.type === undefined || o.type === 'auto' ? 'auto' : (Number(o.type) as 12 | 16 | 32);
      const r = await createFatImage(output, { ...o, type, ...(output === '-' ? { stdout: process.stdout } : {}) });
      printOut(o.json ? `${JSON.stringify(r, null, 2)}\n` : `${output}: FAT${r.type}, ${formatBytes(r.sizeBytes)}, ${r.clusters} clusters of ${formatBytes(r.clusterSize)}\n`);
    });

  fat
    .command('ls')
    .description('list a folder of the FAT volume in IMG or IMG:N')
    .argument('<image>')
    .argument('[path]', 'folder or file', '/')
    .option('--json', 'print as JSON')
    .action(async (image: string, path: string, o: { json?: boolean }) => {
      const entries = await listFat(image, path);
      if (o.json) return void printOut(`${JSON.stringify(entries, null, 2)}\n`);
      for (const e of entries) {
        const when = e.mtime.toISOString().slice(0, 16).replace('T', ' ');
        printOut(`${e.isDirectory ? 'd' : '-'} ${String(e.isDirectory ? '' : e.size).padStart(12)} ${when} ${e.name}${e.isDirectory ? '/' : ''}\n`);
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
      await extractFat(image, dest);
    });
}
