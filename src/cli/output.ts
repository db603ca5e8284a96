/**
 * The CLI's text output (reports, listings, errors): written with fs.writeSync to descriptors 1
 * and 2. process.stdout and process.stderr are built on first use and load node:stream and net
 * or tty on the way: ~5 ms of start-up on a slow VM, for one line of report. Image bytes
 * (`convert IMG -`, `fat cat`) still stream through process.stdout.
 *
 * `cliOutput` is an object so that tests can catch what a command prints (vi.spyOn).
 */
import { fstatSync, writeSync } from 'node:fs';
import { isatty } from 'node:tty';

/** Descriptors that once refused a write with EAGAIN: their stream writes everything after. */
const handedToStream = new Set<number>();

function writeText(fd: 1 | 2, text: string): void {
  const stream = () => (fd === 1 ? process.stdout : process.stderr);
  if (handedToStream.has(fd)) return void stream().write(text);
  const bytes = Buffer.from(text, 'utf8');
  let done = 0;
  while (done < bytes.length) {
    try {
      done += writeSync(fd, bytes, done, bytes.length - done);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err; // EPIPE: main() exits 141
      // A full non-blocking pipe (set so by whoever made it): the stream waits for it, and
      // keeps the order of what follows.
      handedToStream.add(fd);
      stream().write(bytes.subarray(done));
      return;
    }
  }
}

export const cliOutput = {
  out: (text: string): void => writeText(1, text),
  err: (text: string): void => writeText(2, text),
};

/** Print to standard output. */
export const printOut = (text: string): void => cliOutput.out(text);
/** Print to standard error. */
export const printErr = (text: string): void => cliOutput.err(text);

/**
 * Whether standard error is a terminal (for progress bars), without building process.stderr:
 * only a character device can be one, so pipes and files never load node:tty (nor net).
 */
export function stderrIsTerminal(): boolean {
  try {
    return fstatSync(2).isCharacterDevice() && isatty(2);
  } catch {
    return false; // descriptor 2 closed
  }
}
