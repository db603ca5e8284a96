/**
 * Images with diskmint's fallback selector (bootcode/fallback-mbr.bin, fallback-stage2.bin,
 * installed by the layout's `"bootcode": "diskmint-fallback"`) for the boot-command tests.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildImage } from '../../src/index.js';
import type { Layout } from '../../src/layout/schema.js';

/** A stand-in boot stage: `size` bytes, a pattern from `seed`, never an all-zero first sector. */
export function stageFile(dir: string, name: string, size: number, seed: number): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    new Uint8Array(size).map((_, i) => ((i * 31 + seed * 17) & 0xff) | 1),
  );
  return path;
}

export function fallbackLayout(stage: string, extra: Partial<Layout> = {}): Layout {
  return {
    scheme: 'gpt',
    size: '8M',
    seed: 'boot-commands',
    bootcode: 'diskmint-fallback',
    partitions: [
      { type: 'freebsd-boot', label: 'gptboot0', size: '128K', contents: { file: stage } },
      { type: 'freebsd-boot', label: 'gptboot1', size: '128K', contents: { file: stage } },
      { type: 'freebsd-ufs', label: 'os1', size: '1M', attributes: ['bootme'] },
    ],
    ...extra,
  };
}

export async function buildFallbackImage(dir: string, stage: string, name = 'fb.img', format?: string): Promise<string> {
  const output = join(dir, name);
  await buildImage(fallbackLayout(stage), { output, format: format as never });
  return output;
}
