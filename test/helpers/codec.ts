import { expect } from 'vitest';
import { FormatError } from '../../formats/common/errors.js';

/** `fn` throws a FormatError (with `code` when given); without a code, not throwing is accepted. */
export function expectFormatError(fn: () => unknown, code?: string): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FormatError);
    if (code) expect((e as FormatError).code).toBe(code);
    return;
  }
  if (code) throw new Error(`expected FormatError ${code}`);
}
