import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The FreeBSD mkimg goldens copied into fixtures/mkimg (provenance: fixtures/mkimg/README.md, SOURCES.tsv). */
export const MKIMG_GOLDENS = new URL('../../fixtures/mkimg/', import.meta.url).pathname;
const HEX2BIN = new URL('../../fixtures/mkimg/hex2bin.py', import.meta.url).pathname;

/** Decode a golden `.hex` into a file in `dir` and return its path. */
export function decodeGolden(name: string, dir: string): string {
  const out = join(dir, name.replace(/\.hex$/, ''));
  execFileSync('python3', [HEX2BIN, join(MKIMG_GOLDENS, name), out]);
  return out;
}

/** Folders made by tempDir in this test file; test/helpers/remove-temp-dirs.ts removes them after it. */
const madeDirs: string[] = [];

/** A fresh folder under the OS temp folder, removed when the test file ends (DISKMINT_KEEP_TEST_DIRS=1 keeps it). */
export function tempDir(prefix = 'diskmint-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  madeDirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  if (process.env.DISKMINT_KEEP_TEST_DIRS === '1') return;
  for (const dir of madeDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** The inputs mkimg_test.sh makes: `jot -b B n` boot code and `jot -b P 2097152` partition data. */
export function writeMkimgInputs(dir: string): { boot512: string; boot8k: string; data4m: string } {
  const fill = (ch: string, bytes: number) => Buffer.from(`${ch}\n`.repeat(bytes / 2), 'latin1');
  const boot512 = join(dir, 'boot-512.bin');
  const boot8k = join(dir, 'boot-8k.bin');
  const data4m = join(dir, 'partition_data_4M.bin');
  writeFileSync(boot512, fill('B', 512));
  writeFileSync(boot8k, fill('B', 8192));
  writeFileSync(data4m, fill('P', 4 << 20));
  return { boot512, boot8k, data4m };
}
