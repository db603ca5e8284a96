/**
 * main()'s error handler (reportError): an operating-system error is the user's to fix (one
 * line, exit 1 or 2, 141 for EPIPE); what only looks like one (a code and a syscall, but no
 * errno, or not an Error at all) is a bug, exit 70, as src/model/errors.ts's isSystemError says.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cliOutput } from '../../src/cli/output.js';
import { reportError } from '../../src/cli/main.js';
import { tempDir } from '../helpers/golden.js';

function report(err: unknown): { status: number; stderr: string } {
  let stderr = '';
  const spy = vi.spyOn(cliOutput, 'err').mockImplementation((text) => void (stderr += text));
  try {
    return { status: reportError(err), stderr };
  } finally {
    spy.mockRestore();
  }
}

/** What fs really throws: errno, code, syscall. */
function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('did not throw');
}

afterEach(() => vi.restoreAllMocks());

describe('reportError', () => {
  it('a missing file: its message, exit 2; another system error: exit 1; EPIPE: 141, silently', () => {
    const dir = tempDir();
    const missing = report(thrownBy(() => readFileSync(join(dir, 'missing.img'))));
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/^diskmint: ENOENT: no such file or directory, open '.*missing\.img'\n$/);
    const isDir = report(thrownBy(() => readFileSync(dir)));
    expect(isDir).toEqual({ status: 1, stderr: expect.stringMatching(/^diskmint: EISDIR: .*\n$/) });
    const epipe = report(Object.assign(new Error('write EPIPE'), { code: 'EPIPE', errno: -32, syscall: 'write' }));
    expect(epipe).toEqual({ status: 141, stderr: '' });
  });

  it('a code and a syscall without an errno, or on a plain object, is a bug: exit 70, never "diskmint: undefined"', () => {
    const noErrno = report(Object.assign(new Error('looks like open'), { code: 'ENOENT', syscall: 'open' }));
    expect(noErrno.status).toBe(70);
    expect(noErrno.stderr).toMatch(/^diskmint: internal error: Error: looks like open \(a bug in diskmint/);
    const plain = report({ code: 'ENOENT', syscall: 'open' });
    expect(plain.status).toBe(70);
    expect(plain.stderr).toMatch(/^diskmint: internal error: thrown object: /);
  });
});
