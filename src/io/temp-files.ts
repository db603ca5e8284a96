/**
 * Temporary files diskmint writes: outputs before their rename, and spools. Each is tracked
 * while it exists, so that a command stopped by a signal (the CLI calls removeTempFilesNow on
 * SIGINT, SIGTERM and SIGHUP) leaves nothing behind, not even beside its target.
 */
import { unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

const live = new Set<string>();
let made = 0;

/**
 * `.NAME.PID.N-RAND.tmp` beside `target` (NAME defaults to the target's own name): hidden, and
 * unique per process and call. Callers open it with 'wx', so a clash fails instead of clobbering.
 */
export function tempPathBeside(target: string, name = basename(target)): string {
  const rand = Math.floor(Math.random() * 0x100000000)
    .toString(16)
    .padStart(8, '0');
  return join(dirname(target), `.${name}.${process.pid}.${++made}-${rand}.tmp`);
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
