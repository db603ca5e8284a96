/**
 * Images with diskmint's fallback selector for the boot-command tests. The selector's code is
 * read from bootcode/fallback-mbr.bin and fallback-stage2.bin when they are there; until those
 * files exist, placeholders in a temp folder stand in (DISKMINT_BOOTCODE_DIR), so the tests
 * exercise the TypeScript side either way.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildImage } from '../../src/index.js';
import type { Layout } from '../../src/layout/schema.js';
import { tempDir } from './golden.js';

const ROOT = new URL('../..', import.meta.url).pathname;

/** Points DISKMINT_BOOTCODE_DIR at placeholders unless the real selector code is in bootcode/. */
export function useSelectorCode(): void {
  if (existsSync(join(ROOT, 'bootcode/fallback-mbr.bin')) && existsSync(join(ROOT, 'bootcode/fallback-stage2.bin'))) return;
  const dir = tempDir('diskmint-bootcode-');
  writeFileSync(join(dir, 'fallback-mbr.bin'), new Uint8Array(440).fill(0x90));
  writeFileSync(
    join(dir, 'fallback-stage2.bin'),
    new Uint8Array(3000).map((_, i) => (i * 13 + 7) & 0xff),
  );
  process.env.DISKMINT_BOOTCODE_DIR = dir;
}

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
