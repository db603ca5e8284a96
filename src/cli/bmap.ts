/** The `diskmint bmap` command: an image's block map in bmaptool's format. */
import type { Command } from 'commander';
import { createBmap } from '../ops/bmap.js';
import { printOut } from './output.js';
import { printJson } from './json.js';
import * as opts from './options.js';
import type { Values } from './options.js';

const BMAP_OPTIONS = [opts.required(opts.described(opts.output, 'the block map file (IMAGE.bmap)')), opts.json, opts.allowBacking] as const;

export function addBmapCommand(program: Command): void {
  opts
    .addOptions(
      program
        .command('bmap')
        .description("write the image's block map in bmaptool's format 2.0 (SHA-256 per range), for bmaptool copy and flash --bmap")
        .argument('<image>'),
      BMAP_OPTIONS,
    )
    .action(async (image: string, o: Values<typeof BMAP_OPTIONS>) => {
      const r = await createBmap(image, { output: o.output, allowBacking: o.allowBacking });
      if (o.json) printJson(r);
      else printOut(`${r.output}: ${r.mappedBlocksCount} of ${r.blocksCount} blocks of ${r.blockSize} bytes mapped, in ${r.ranges} ranges\n`);
    });
}
