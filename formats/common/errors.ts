/**
 * The one error type every codec throws. A parser given hostile or truncated bytes throws
 * only FormatError (never RangeError, TypeError or an allocation failure), so callers can
 * turn it into a verify finding or a clear message.
 */
export type FormatErrorCode =
  | 'TRUNCATED' // fewer bytes than the structure needs
  | 'BAD_MAGIC' // signature or magic number missing
  | 'BAD_CHECKSUM' // CRC or checksum mismatch
  | 'BAD_VALUE' // a field holds a value outside what the format allows
  | 'TOO_LARGE' // a count or size from the file exceeds our bounds
  | 'LOOP' // a chain of pointers loops back on itself
  | 'INVALID_ARGUMENT'; // a writer was asked for something the format cannot hold

export class FormatError extends Error {
  override readonly name = 'FormatError';
  constructor(
    readonly code: FormatErrorCode,
    message: string,
    /** Which format raised it ('gpt', 'mbr', 'bsd', ...). */
    readonly format: string,
  ) {
    super(message);
  }
}

/**
 * The one way codecs make their errors: it returns the FormatError, callers throw it
 * (`throw fail('gpt', 'TRUNCATED', '...')`), so control flow stays visible where it happens.
 */
export function fail(format: string, code: FormatErrorCode, message: string): FormatError {
  return new FormatError(code, message, format);
}
