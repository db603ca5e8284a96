/**
 * Only src/cli/ parses command lines, prints or exits: the library (everything else in src/,
 * formats/, bootcode/) neither imports commander nor src/cli/, nor touches the console, the
 * process's streams or its exit. The exceptions left are listed with their reason; a new one
 * fails here.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../..', import.meta.url).pathname;
const FORBIDDEN = /\bconsole\.\w+|\bprocess\.(stdout|stderr|exit|exitCode)\b|from 'commander'|from '(\.\.\/)+cli\//g;

/** `file: match` pairs allowed for now, and why. */
const KNOWN = new Set([
  // The progress bar: write-image is to take a progress reporter instead (issue 16, src/io).
  "src/io/write-image.ts: from '../cli/",
  // Output '-' means standard output when no stream is given (library callers included).
  'src/io/write-image.ts: process.stdout',
  'src/containers/raw/writer.ts: process.stdout',
]);

function* sources(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* sources(p);
    else if (e.name.endsWith('.ts')) yield p;
  }
}

/** Every forbidden use outside src/cli/, as `file: match`. */
export function printingOutsideCli(root: string): string[] {
  const found = new Set<string>();
  for (const top of ['src', 'formats', 'bootcode']) {
    for (const file of sources(join(root, top))) {
      const rel = relative(root, file);
      if (rel.startsWith('src/cli/')) continue;
      for (const m of readFileSync(file, 'utf8').matchAll(FORBIDDEN)) found.add(`${rel}: ${m[0]}`);
    }
  }
  return [...found].sort();
}

describe('only src/cli/ prints, exits or parses a command line', () => {
  it('nothing else does, but for the listed exceptions', () => {
    expect(printingOutsideCli(ROOT).filter((f) => !KNOWN.has(f))).toEqual([]);
  });

  it('the check finds each kind of use', () => {
    const lines = ["console.log('x');", 'process.stderr.write(x);', 'process.exitCode = 2;', "import { Command } from 'commander';", "import { printOut } from '../../cli/output.js';"];
    const matches = lines.flatMap((l) => [...l.matchAll(FORBIDDEN)].map((m) => m[0]));
    expect(matches).toEqual(['console.log', 'process.stderr', 'process.exitCode', "from 'commander'", "from '../../cli/"]);
  });
});
