/**
 * Leftover temp files (issue 17 item 4): a process killed outright leaves `.NAME.PID@HOST.N-RAND.tmp`
 * beside its target; the next output to the same target removes those whose process no longer
 * exists, and says so. A live process's temp file, another target's, another host's, or a file
 * that only looks like one is never touched.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileAtomically } from '../../src/io/atomic-output.js';
import { onTempNotice, removeLeftoversBeside, tempFileOwner, tempPathBeside } from '../../src/io/temp-files.js';
import { tempDir } from '../helpers/golden.js';

/** The PID of a process that has exited (and been reaped): nothing runs under it now. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  expect(r.status).toBe(0);
  return r.pid!;
}

/** tempPathBeside's name for `target`, as process `pid` would have made it. */
function tempOf(target: string, pid: number, name?: string): string {
  const path = tempPathBeside(target, name);
  const file = basename(path).replace(`.${process.pid}@`, `.${pid}@`);
  return join(target.slice(0, target.length - basename(target).length), file);
}

const stops: (() => void)[] = [];
afterEach(() => stops.splice(0).forEach((stop) => stop()));

describe('temp names', () => {
  it('name their process and host, and are recognised only exactly', () => {
    const target = '/x/disk.img';
    const mine = basename(tempPathBeside(target));
    expect(mine).toMatch(new RegExp(`^\\.disk\\.img\\.${process.pid}@[0-9a-f]{8}\\.\\d+-[0-9a-f]{8}\\.tmp$`));
    expect(tempFileOwner(mine, 'disk.img')).toBe(process.pid);
    expect(tempFileOwner(mine, 'disk')).toBeUndefined(); // another target's
    expect(tempFileOwner(mine.replace(/@[0-9a-f]{8}/, '@00000000'), 'disk.img')).toBeUndefined(); // another host's (unless ours hashes so)
    for (const other of [
      '.disk.img.123.4-0123abcd.tmp',
      '.disk.img.123@zz.4-0123abcd.tmp',
      `${mine}.x`,
      mine.slice(1),
      '.disk.img.0@00000000.1-00000000.tmp',
    ]) {
      expect(tempFileOwner(other, 'disk.img'), other).toBeUndefined();
    }
  });
});

describe('leftovers', () => {
  it('the next output to the target removes those of dead processes, says so, and keeps a live one, another target and other files', async () => {
    const dir = tempDir();
    const target = join(dir, 'disk.img');
    const dead = deadPid();
    const sleeper = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    try {
      const leftover = tempOf(target, dead);
      const scratch = tempOf(target, dead, 'disk.img.spool');
      const liveOne = tempOf(target, sleeper.pid!);
      const ownLive = tempPathBeside(target);
      const otherTarget = tempOf(join(dir, 'other.img'), dead);
      const lookalike = join(dir, `.disk.img.${dead}.1-0123abcd.tmp`); // the old pattern: no host, not recognised
      for (const p of [leftover, scratch, liveOne, ownLive, otherTarget, lookalike]) writeFileSync(p, 'x');
      const notices: string[] = [];
      stops.push(onTempNotice((m) => notices.push(m)));
      await writeFileAtomically(target, Buffer.from('new'));
      expect(notices).toEqual([`removed ${leftover}, a temp file left by diskmint process ${dead}, which no longer runs`]);
      const left = readdirSync(dir).sort();
      expect(left).toEqual([basename(lookalike), basename(scratch), basename(liveOne), basename(ownLive), basename(otherTarget), 'disk.img'].sort());
      // A scratch file's name is the scratch NAME's: removed when that name is written again.
      expect(await removeLeftoversBeside(target, 'disk.img.spool')).toEqual([scratch]);
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  it('a folder that cannot be listed is no error', async () => {
    expect(await removeLeftoversBeside(join(tempDir(), 'missing', 'x.img'))).toEqual([]);
  });
});
