/**
 * Temporary files diskmint writes: outputs before their rename, and spools. Each is tracked
 * while it exists, so that a command stopped by a signal (the CLI calls removeTempFilesNow on
 * SIGINT, SIGTERM and SIGHUP) leaves nothing behind, not even beside its target.
 *
 * A process killed outright (kill -9, a power cut, the OOM killer) cannot clean up: its temp
 * files stay, hidden, up to the output's size. Their names say whose they are,
 * `.NAME.PID@HOST.N-RAND.tmp` (HOST: the CRC-32 of the host name in 8 hex digits, so that a process
 * on another machine sharing the folder, whose PID means nothing here, is never taken for a dead
 * one of ours), and the next output to the same target removes those of processes that no longer
 * exist (removeLeftoversBeside), with a notice to the onTempNotice listeners (the CLI prints it
 * on standard error). A temp file of a live process, or of another host, is never touched.
 */
import { readFileSync, unlinkSync } from 'node:fs';
import { readdir, unlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { crc32 } from '../../formats/common/crc32.js'; // the pure one: node:zlib is not loaded at start-up

const live = new Set<string>();
let made = 0;

const require = createRequire(import.meta.url);
let host: string | undefined;

/**
 * This host, as temp names carry it: the CRC-32 of its name in 8 hex digits. On Linux the name is
 * read from /proc (the UTS namespace's: a container's own), sparing node:os, which the CLI does not
 * load at start-up; elsewhere node:os gives it.
 */
function hostTag(): string {
  if (host === undefined) {
    let name: string;
    try {
      name = readFileSync('/proc/sys/kernel/hostname', 'utf8').trim();
    } catch {
      name = (require('node:os') as typeof import('node:os')).hostname();
    }
    host = crc32(Buffer.from(name, 'utf8')).toString(16).padStart(8, '0');
  }
  return host;
}

/**
 * `.NAME.PID@HOST.N-RAND.tmp` beside `target` (NAME defaults to the target's own name): hidden,
 * unique per process and call, and recognisable as this host's process PID's. Callers open it with
 * 'wx', so a clash fails instead of clobbering.
 */
export function tempPathBeside(target: string, name = basename(target)): string {
  const rand = Math.floor(Math.random() * 0x100000000)
    .toString(16)
    .padStart(8, '0');
  return join(dirname(target), `.${name}.${process.pid}@${hostTag()}.${++made}-${rand}.tmp`);
}

/** The PID in `file` when it is one of this host's temp names for NAME (exactly as tempPathBeside makes them), else undefined. */
export function tempFileOwner(file: string, name: string): number | undefined {
  const prefix = `.${name}.`;
  if (!file.startsWith(prefix)) return undefined;
  const m = /^([1-9]\d{0,9})@([0-9a-f]{8})\.\d+-[0-9a-f]{8}\.tmp$/.exec(file.slice(prefix.length));
  if (!m || m[2] !== hostTag()) return undefined;
  const pid = Number(m[1]);
  return pid <= 0x7fffffff ? pid : undefined;
}

/** Whether process `pid` exists (signal 0 checks without signalling; EPERM: it exists, another user's). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

type TempNoticeListener = (message: string) => void;
const listeners = new Set<TempNoticeListener>();

/** Be told of leftover temp files removed (one sentence each); returns the function that stops it. */
export function onTempNotice(listener: TempNoticeListener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/**
 * Remove the temp files that tempPathBeside(target, name) would name for processes of this host
 * that no longer exist: only in the target's folder, only NAME's, never this process's own, never a
 * live one's. Returns the paths removed (each also told to the onTempNotice listeners). A folder
 * that cannot be listed, or a file another run removed first, is no error.
 */
export async function removeLeftoversBeside(target: string, name = basename(target)): Promise<string[]> {
  const folder = dirname(target);
  const files = await readdir(folder).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const file of files) {
    const pid = tempFileOwner(file, name);
    if (pid === undefined || pid === process.pid || processExists(pid)) continue;
    const path = join(folder, file);
    try {
      await unlink(path);
    } catch {
      continue; // gone already (another run cleaned it), or not ours to remove
    }
    removed.push(path);
    for (const listener of listeners) listener(`removed ${path}, a temp file left by diskmint process ${pid}, which no longer runs`);
  }
  return removed;
}

/** Remember `path` until untrackTempFile: removeTempFilesNow deletes it. */
export function trackTempFile(path: string): void {
  live.add(path);
}

export function untrackTempFile(path: string): void {
  live.delete(path);
}

/** Delete every tracked temp file now, synchronously (for signal handlers). */
export function removeTempFilesNow(): void {
  for (const path of live) {
    try {
      unlinkSync(path);
    } catch {
      // already gone, or never created
    }
  }
  live.clear();
}
