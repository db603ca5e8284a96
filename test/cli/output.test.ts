/**
 * The CLI's text goes out with fs.writeSync; a non-blocking pipe that is full (EAGAIN) hands the
 * rest, and everything after it, to process.stdout, so nothing is lost or reordered; EPIPE is
 * thrown for main() to turn into exit 141.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';

const writes: Array<{ fd: number; text: string }> = [];
let refuse: string | undefined; // errno code for the next writeSync, once
let partial = 0; // bytes the next writeSync takes before refusing

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  return {
    ...real,
    writeSync: (fd: number, buf: Uint8Array, offset = 0, length = buf.length - offset) => {
      if (partial > 0) {
        const n = Math.min(partial, length);
        partial = 0;
        writes.push({ fd, text: Buffer.from(buf.subarray(offset, offset + n)).toString() });
        return n;
      }
      if (refuse) {
        const code = refuse;
        refuse = undefined;
        throw Object.assign(new Error(`${code}: write`), { code, errno: code === 'EPIPE' ? -32 : -11, syscall: 'write' }); // as libuv's errors are: main() needs the errno
      }
      writes.push({ fd, text: Buffer.from(buf.subarray(offset, offset + length)).toString() });
      return length;
    },
  };
});

const { printErr, printOut } = await import('../../src/cli/output.js');

afterEach(() => {
  writes.length = 0;
  vi.restoreAllMocks();
});

describe('CLI text output', () => {
  it('writes to descriptors 1 and 2', () => {
    printOut('report\n');
    printErr('warning\n');
    expect(writes).toEqual([
      { fd: 1, text: 'report\n' },
      { fd: 2, text: 'warning\n' },
    ]);
  });

  it('after EAGAIN, the stream gets the rest of that text and all that follows, in order', () => {
    const streamed: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      streamed.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
      return true;
    });
    partial = 4;
    refuse = 'EAGAIN';
    printOut('first line\n');
    printOut('second line\n');
    expect(writes).toEqual([{ fd: 1, text: 'firs' }]);
    expect(streamed).toEqual(['t line\n', 'second line\n']);
  });

  it('EPIPE reaches the caller', () => {
    // Descriptor 2: descriptor 1 went to its stream for good in the test above.
    refuse = 'EPIPE';
    expect(() => printErr('x\n')).toThrow(expect.objectContaining({ code: 'EPIPE' }));
  });
});
