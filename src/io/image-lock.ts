/**
 * An exclusive lock on an image for the commands that write an existing image (slot write,
 * bootonce, confirm, activate, zfs bootonce, the library's edits). Readers never take it.
 *
 * The lock is a file beside the image's real path (symlinks resolved, so two names of one image
 * share one lock): `.NAME.diskmint-lock`, holding who took it (pid, host, command, when, and on
 * Linux the boot id and the process's start time). It is created whole and atomically (written
 * to a temp file, then link()ed to its name, which fails if it exists), removed on release, on
 * exit and on SIGINT/SIGTERM/SIGHUP (through temp-files.ts). A lock whose holder is gone is
 * stale and taken over, with a note: its pid is not running on this host, or it runs but
 * started after the lock was taken (the pid was reused), or the machine rebooted since (a
 * different boot id). So kill -9 and a power cut never wedge an image. A lock from another host
 * (a shared folder) is never judged stale: its message names the host.
 *
 * Node has no flock(); a lock file needs nothing native and says who holds the image. Within one
 * process the lock is re-entrant (counted): a command that edits in several sessions (slot write
 * then bootonce) holds it throughout, and its own editors share it.
 */
import { closeSync, linkSync, openSync, readFileSync, realpathSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DiskmintError } from '../model/errors.js';
import { processExists, tempPathBeside, trackTempFile, untrackTempFile } from './temp-files.js';

/** Seconds a writer waits for another's lock by default. */
export const DEFAULT_LOCK_TIMEOUT = 5;
const POLL_MS = 100;
/** A lock file that cannot be parsed is being written, unless it is older than this. */
const UNREADABLE_GRACE_MS = 10_000;

export interface LockOptions {
  /** Seconds to wait for another writer's lock (default 5; 0: fail at once). */
  lockTimeout?: number;
}

export interface ImageLock {
  /** The lock file. */
  readonly lockPath: string;
  release(): void;
}

interface Holder {
  pid: number;
  host: string;
  command: string;
  since: string;
  bootId?: string;
  start?: string;
}

let command = 'a program using the diskmint library';
let note: (message: string) => void = () => {};

/** What the lock file says holds the image (the CLI: `diskmint slot write`), and where notes go. */
export function configureLocks(opts: { command?: string; note?: (message: string) => void }): void {
  if (opts.command !== undefined) command = opts.command;
  if (opts.note) note = opts.note;
}

/** `.NAME.diskmint-lock` beside the real file. */
export function lockPathFor(realPath: string): string {
  return join(dirname(realPath), `.${basename(realPath)}.diskmint-lock`);
}

const held = new Map<string, { count: number }>();
let exitHook = false;

/**
 * Take the lock on `path` (waiting up to `lockTimeout` seconds), or throw a DiskmintError naming
 * the holder. A path that does not resolve gets no lock: opening it fails as before.
 */
export async function lockImage(path: string, opts: LockOptions = {}): Promise<ImageLock> {
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return { lockPath: '', release: () => {} };
  }
  const lockPath = lockPathFor(real);
  const timeout = opts.lockTimeout ?? DEFAULT_LOCK_TIMEOUT;
  if (!(timeout >= 0)) throw new DiskmintError('BAD_ARGUMENT', `lock timeout must be 0 or more seconds, not ${timeout}`);
  const deadline = Date.now() + timeout * 1000;
  for (;;) {
    const mine = held.get(lockPath);
    if (mine) {
      mine.count++;
      return releaser(lockPath);
    }
    if (create(lockPath, real)) {
      held.set(lockPath, { count: 1 });
      trackTempFile(lockPath);
      if (!exitHook) {
        exitHook = true;
        process.once('exit', releaseAllNow);
      }
      return releaser(lockPath);
    }
    const found = readHolder(lockPath);
    if (found === 'gone') continue;
    const staleBecause = whyStale(found, lockPath);
    if (staleBecause) {
      breakStale(lockPath, found, staleBecause, path);
      continue;
    }
    const left = deadline - Date.now();
    if (left <= 0) throw new DiskmintError('IO', busyMessage(path, lockPath, found));
    await sleep(Math.min(POLL_MS, left));
  }
}

/** Run `fn` holding the lock on `path`. */
export async function withImageLock<T>(path: string, opts: LockOptions, fn: () => Promise<T>): Promise<T> {
  const lock = await lockImage(path, opts);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}

function releaser(lockPath: string): ImageLock {
  let done = false;
  return {
    lockPath,
    release() {
      if (done) return;
      done = true;
      const mine = held.get(lockPath);
      if (!mine || --mine.count > 0) return;
      held.delete(lockPath);
      untrackTempFile(lockPath);
      try {
        unlinkSync(lockPath);
      } catch {
        // removed already (a signal handler ran)
      }
    },
  };
}

function releaseAllNow(): void {
  for (const lockPath of held.keys()) {
    try {
      unlinkSync(lockPath);
    } catch {
      // gone
    }
  }
  held.clear();
}

/** Create the lock file with its contents in one step; false if it exists. */
function create(lockPath: string, real: string): boolean {
  const record: Holder = { pid: process.pid, host: hostname(), command, since: new Date().toISOString(), ...linuxIdentity(process.pid) };
  const text = `${JSON.stringify(record)}\n`;
  const temp = tempPathBeside(real, `${basename(real)}.diskmint-lock`);
  trackTempFile(temp);
  try {
    writeFileSync(temp, text, { flag: 'wx' });
    try {
      linkSync(temp, lockPath);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return false;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS' && code !== 'EOPNOTSUPP') throw lockError(err, lockPath);
    }
    // A file system without hard links: exclusive create, then write (a reader allows for the gap).
    let fd: number;
    try {
      fd = openSync(lockPath, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw lockError(err, lockPath);
    }
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
    return true;
  } catch (err) {
    if (err instanceof DiskmintError) throw err;
    throw lockError(err, lockPath);
  } finally {
    untrackTempFile(temp);
    try {
      unlinkSync(temp);
    } catch {
      // never created
    }
  }
}

function lockError(err: unknown, lockPath: string): DiskmintError {
  const e = err as NodeJS.ErrnoException;
  return new DiskmintError('IO', `cannot lock the image: cannot create ${lockPath} (${e.code ?? e.message}); the image was not changed`);
}

type Found = { holder?: Holder; raw: string; mtimeMs: number };

function readHolder(lockPath: string): Found | 'gone' {
  let raw: string;
  let mtimeMs: number;
  try {
    mtimeMs = statSync(lockPath).mtimeMs;
    raw = readFileSync(lockPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw lockError(err, lockPath);
  }
  try {
    const h = JSON.parse(raw) as Holder;
    if (Number.isInteger(h.pid) && h.pid > 0 && typeof h.host === 'string') return { holder: h, raw, mtimeMs };
  } catch {
    // being written, or not ours
  }
  return { raw, mtimeMs };
}

/** Why the holder is gone, or undefined while it may still hold the image. */
function whyStale(found: Found, lockPath: string): string | undefined {
  const h = found.holder;
  if (!h) return Date.now() - found.mtimeMs > UNREADABLE_GRACE_MS ? `${lockPath} does not say who holds it` : undefined;
  if (h.host !== hostname()) return undefined;
  const ours = linuxIdentity(h.pid);
  const me = linuxIdentity(process.pid);
  if (h.bootId && me.bootId && h.bootId !== me.bootId) return 'the machine has restarted since';
  if (!processExists(h.pid)) return `pid ${h.pid} is no longer running`; // EPERM: running, as another user
  if (h.start && ours.start && h.start !== ours.start) return `pid ${h.pid} is no longer running (another process has its number)`;
  return undefined;
}

/** Remove a stale lock, unless someone replaced it meanwhile; one breaker at a time. */
function breakStale(lockPath: string, found: Found, why: string, path: string): void {
  const breaker = `${lockPath}.break`;
  try {
    writeFileSync(breaker, String(process.pid), { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw lockError(err, breaker);
    // Another process is breaking it; its marker is itself stale if it died doing so.
    try {
      const pid = Number(readFileSync(breaker, 'utf8'));
      if (!alive(pid) || Date.now() - statSync(breaker).mtimeMs > UNREADABLE_GRACE_MS) unlinkSync(breaker);
    } catch {
      // gone meanwhile
    }
    return;
  }
  trackTempFile(breaker);
  try {
    let now: string | undefined;
    try {
      now = readFileSync(lockPath, 'utf8');
    } catch {
      return; // gone meanwhile
    }
    if (now !== found.raw) return;
    unlinkSync(lockPath);
    const h = found.holder;
    note(`${basename(path)}: removed a stale lock${h ? ` of ${h.command} (pid ${h.pid}) from ${clock(h.since)}` : ''}: ${why}`);
  } finally {
    untrackTempFile(breaker);
    try {
      unlinkSync(breaker);
    } catch {
      // gone
    }
  }
}

function alive(pid: number): boolean {
  return Number.isInteger(pid) && pid > 0 && processExists(pid);
}

function busyMessage(path: string, lockPath: string, found: Found): string {
  const h = found.holder;
  const who = h
    ? `${h.command} (pid ${h.pid}${h.host !== hostname() ? ` on ${h.host}` : ''}) since ${clock(h.since)}`
    : `another process (${lockPath} is being written)`;
  return `${basename(path)} is being edited by ${who}; try again, or wait longer with --lock-timeout SECONDS (nothing was changed)`;
}

/** HH:MM:SS local time, with the date when not today. */
function clock(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (n: number) => String(n).padStart(2, '0');
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const today = new Date();
  const sameDay = d.getFullYear() === today.getFullYear() && d.getMonth() === today.getMonth() && d.getDate() === today.getDate();
  return sameDay ? time : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

/** Linux only: the boot id and a process's start time (clock ticks since boot), to tell a reused pid. */
function linuxIdentity(pid: number): { bootId?: string; start?: string } {
  if (process.platform !== 'linux') return {};
  const out: { bootId?: string; start?: string } = {};
  try {
    out.bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    // no /proc
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    out.start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    // no such process, or no /proc
  }
  return out;
}
