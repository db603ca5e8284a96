/**
 * kill -9 in the middle of a write (issue 17 item 4): the killed process cannot remove its temp
 * file; the next command writing the same output does, with a note on standard error.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/golden.js';
import { whenInFolder } from '../helpers/when-in-folder.js';
import { BUNDLE, diskmint, requireFreshBundle } from '../helpers/cli.js';

describe('a temp file left by kill -9', () => {
  it('is removed by the next convert to the same output, which says so', async () => {
    requireFreshBundle();
    const dir = tempDir();
    const input = join(dir, 'random.raw');
    writeFileSync(input, randomBytes(96 << 20)); // incompressible: zstd on one thread takes ~1 s
    const out = join(dir, 'out.qcow2');
    const child = spawn(process.execPath, [BUNDLE, 'convert', input, out, '-O', 'qcow2', '-c', '--compression', 'zstd', '--threads', '1', '-q'], {
      stdio: 'ignore',
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, sig) => resolve({ code, signal: sig })),
    );
    const temps = () => readdirSync(dir).filter((f) => f.endsWith('.tmp'));
    await whenInFolder(
      dir,
      () => temps().some((f) => (statSync(join(dir, f), { throwIfNoEntry: false })?.size ?? 0) > 0),
      exited,
      () => `the conversion ended before it could be killed: ${readdirSync(dir).join(', ')}`,
    );
    child.kill('SIGKILL');
    expect(await exited).toEqual({ code: null, signal: 'SIGKILL' });
    const [left] = temps();
    expect(left).toMatch(new RegExp(`^\\.out\\.qcow2\\.${child.pid}@[0-9a-f]{8}\\.\\d+-[0-9a-f]{8}\\.tmp$`));

    const again = diskmint(['convert', input, out, '-O', 'qcow2', '-q']);
    expect(again.stderr).toBe(`diskmint: note: removed ${join(dir, left)}, a temp file left by diskmint process ${child.pid}, which no longer runs\n`);
    expect(again.status).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['out.qcow2', 'random.raw']);
  });
});
