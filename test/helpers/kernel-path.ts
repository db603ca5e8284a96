/**
 * For tests that choose the I/O path themselves, both ways, whatever the run's DISKMINT_PURE_IO
 * (CI's second pass sets it for the rest of the suite): it is cleared before each test and
 * restored after, and koffi's loader is put back.
 */
import { afterEach, beforeEach } from 'vitest';
import { useKoffiLoader } from '../../src/io/kernel/ffi.js';

export function eachTestChoosesItsPath(): void {
  const runPureIo = process.env.DISKMINT_PURE_IO;
  beforeEach(() => {
    delete process.env.DISKMINT_PURE_IO;
  });
  afterEach(() => {
    useKoffiLoader();
    if (runPureIo === undefined) delete process.env.DISKMINT_PURE_IO;
    else process.env.DISKMINT_PURE_IO = runPureIo;
  });
}
