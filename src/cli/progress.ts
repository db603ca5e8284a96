/** A progress bar on standard error for long work; silent when stderr is not a terminal. */
import { formatBytes } from '../model/size.js';
import { stderrIsTerminal } from './output.js';
import type { ProgressReporter } from '../io/progress.js';

export interface Progress {
  update(done: number, total: number): void;
  finish(): void;
}

export function createProgress(label: string, opts: { enabled?: boolean; stream?: NodeJS.WriteStream } = {}): Progress {
  const enabled = opts.enabled ?? (opts.stream ? opts.stream.isTTY === true : stderrIsTerminal());
  if (!enabled) return { update() {}, finish() {} };
  const stream = opts.stream ?? process.stderr;
  const started = Date.now();
  let lastDraw = 0;
  let drawn = false;
  return {
    update(done, total) {
      const now = Date.now();
      if (now - lastDraw < 100 && done < total) return;
      lastDraw = now;
      const width = 30;
      const frac = total > 0 ? Math.min(1, done / total) : 1;
      const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, ' ');
      const rate = done / Math.max(0.001, (now - started) / 1000);
      stream.write(`\r${label} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${formatBytes(done)} / ${formatBytes(total)} ${formatBytes(rate)}/s `);
      drawn = true;
    },
    finish() {
      if (drawn) stream.write('\r\x1b[K');
    },
  };
}

/**
 * What the CLI gives writeImage to report to: a bar on standard error when it is a terminal,
 * else nothing (no bar, and no wrapping of reads).
 */
export function terminalProgress(opts: { stream?: NodeJS.WriteStream } = {}): ProgressReporter | undefined {
  if (!(opts.stream ? opts.stream.isTTY === true : stderrIsTerminal())) return undefined;
  let bar: Progress | undefined;
  let total = 0;
  let done = 0;
  return {
    start(bytes, label) {
      total = bytes;
      done = 0;
      bar = createProgress(label, { enabled: true, stream: opts.stream });
    },
    advance(bytes) {
      done += bytes;
      bar?.update(done, total);
    },
    done() {
      bar?.finish();
    },
  };
}
