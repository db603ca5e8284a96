/**
 * The image lock (src/io/image-lock.ts): another process's lock makes a writer wait, then fail
 * naming the holder; it is released on release, on SIGTERM, and taken over when its holder died
 * (kill -9, a reused pid, a reboot); a symlink and its target share one lock. The holders are
 * real child processes running the built module (dist/), as a second diskmint would be.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configureLocks, lockImage, lockPathFor } from '../../src/io/image-lock.js';
import { holdLock, type Holder } from '../helpers/lock-holder.js';
import { tempDir } from '../helpers/golden.js';

let dir = '';
let img = '';
const children: ChildProcess[] = [];
let notes: string[] = [];

beforeEach(() => {
  dir = tempDir('diskmint-lock-');
  img = join(dir, 'fw.img');
  writeFileSync(img, Buffer.alloc(4096));
  notes = [];
  configureLocks({ command: 'this test', note: (m) => notes.push(m) });
});

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function holder(path: string, withSignals = false): Holder {
  const h = holdLock(path, withSignals);
  children.push(h.child);
  return h;
}

describe('image lock', () => {
  it('a second taker fails naming the holder while it holds, and gets the lock once it is released', async () => {
    const h = holder(img);
    await h.said('locked');
    const pid = h.child.pid!;
    await expect(lockImage(img, { lockTimeout: 0 })).rejects.toThrow(
      new RegExp(`^fw\\.img is being edited by test holder \\(pid ${pid}\\) since \\d\\d:\\d\\d:\\d\\d; try again`),
    );
    await expect(lockImage(img, { lockTimeout: 0.3 })).rejects.toThrow(/being edited by test holder/);
    // Waiting: the holder releases while we wait, and we get the lock.
    const waiting = lockImage(img, { lockTimeout: 600 });
    h.child.stdin!.write('release\n');
    const lock = await waiting;
    const record = JSON.parse(readFileSync(lockPathFor(img), 'utf8')) as { pid: number; command: string; host: string };
    expect(record).toMatchObject({ pid: process.pid, command: 'this test', host: hostname() });
    lock.release();
    expect(existsSync(lockPathFor(img))).toBe(false);
    expect(notes).toEqual([]);
  });

  it('is re-entrant within a process: the file goes with the last release', async () => {
    const a = await lockImage(img, { lockTimeout: 0 });
    const b = await lockImage(img, { lockTimeout: 0 });
    a.release();
    a.release(); // twice is once
    expect(existsSync(lockPathFor(img))).toBe(true);
    b.release();
    expect(existsSync(lockPathFor(img))).toBe(false);
  });

  it('a lock whose holder was killed with SIGKILL is stale: taken over, with a note', async () => {
    const h = holder(img);
    await h.said('locked');
    const pid = h.child.pid!;
    h.child.kill('SIGKILL');
    await h.exited;
    expect(existsSync(lockPathFor(img))).toBe(true); // nothing removed it
    const lock = await lockImage(img, { lockTimeout: 0 });
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatch(
      new RegExp(`^fw\\.img: removed a stale lock of test holder \\(pid ${pid}\\) from \\d\\d:\\d\\d:\\d\\d: pid ${pid} is no longer running$`),
    );
    expect(JSON.parse(readFileSync(lockPathFor(img), 'utf8'))).toMatchObject({ pid: process.pid });
    lock.release();
  });

  it('SIGTERM removes the holder’s lock (the CLI’s signal handlers)', async () => {
    const h = holder(img, true);
    await h.said('locked');
    expect(existsSync(lockPathFor(img))).toBe(true);
    h.child.kill('SIGTERM');
    await h.exited;
    expect(existsSync(lockPathFor(img))).toBe(false);
  });

  it('a symlink and its target share one lock, kept beside the real file', async () => {
    const other = tempDir('diskmint-lock-link-');
    const link = join(other, 'link.img');
    symlinkSync(img, link);
    const h = holder(link);
    await h.said('locked');
    expect(existsSync(lockPathFor(img))).toBe(true);
    expect(existsSync(lockPathFor(link))).toBe(false);
    await expect(lockImage(img, { lockTimeout: 0 })).rejects.toThrow(/fw\.img is being edited by test holder/);
    h.child.stdin!.write('release\n');
    await h.said('released');
    (await lockImage(link, { lockTimeout: 0 })).release();
  });

  const record = (r: object) =>
    writeFileSync(lockPathFor(img), JSON.stringify({ host: hostname(), command: 'diskmint slot write', since: new Date().toISOString(), ...r }));

  it('a live holder on this host holds; one from another host is never judged stale and is named', async () => {
    record({ pid: process.ppid });
    await expect(lockImage(img, { lockTimeout: 0 })).rejects.toThrow(`(pid ${process.ppid}) since`);
    record({ pid: 1, host: 'elsewhere.example' });
    await expect(lockImage(img, { lockTimeout: 0 })).rejects.toThrow(/by diskmint slot write \(pid 1 on elsewhere\.example\) since/);
    expect(notes).toEqual([]);
  });

  it.runIf(process.platform === 'linux')('a reused pid (another start time) or a restart (another boot id) makes a lock stale', async () => {
    record({ pid: process.ppid, start: '1' });
    (await lockImage(img, { lockTimeout: 0 })).release();
    expect(notes.pop()).toMatch(/another process has its number/);
    record({ pid: process.ppid, bootId: '00000000-0000-0000-0000-000000000000' });
    (await lockImage(img, { lockTimeout: 0 })).release();
    expect(notes.pop()).toMatch(/the machine has restarted since/);
  });

  it('a lock file that names no holder is held while young, stale when old', async () => {
    writeFileSync(lockPathFor(img), '');
    await expect(lockImage(img, { lockTimeout: 0 })).rejects.toThrow(/another process/);
    const { utimesSync } = await import('node:fs');
    const old = new Date(Date.now() - 60_000);
    utimesSync(lockPathFor(img), old, old);
    (await lockImage(img, { lockTimeout: 0 })).release();
    expect(notes.pop()).toMatch(/does not say who holds it/);
  });

  it('a path that does not exist takes no lock (opening it fails as before)', async () => {
    const lock = await lockImage(join(dir, 'missing.img'), { lockTimeout: 0 });
    lock.release();
    expect(existsSync(lockPathFor(join(dir, 'missing.img')))).toBe(false);
  });
});
