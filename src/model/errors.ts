/**
 * Errors the engine raises. Codecs raise FormatError (formats/common/errors.ts); the engine wraps
 * problems with user input (layouts, files, arguments) in DiskmintError with a stable code.
 */
export { FormatError } from '../../formats/common/errors.js';

export type DiskmintErrorCode =
  | 'LAYOUT' // the layout file is invalid; message names the JSON path
  | 'BAD_ARGUMENT' // an API or CLI argument is invalid
  | 'INPUT' // an input file is missing or unreadable
  | 'NOT_A_DISK' // a file cannot be read as a disk image
  | 'IO'; // reading or writing failed

export class DiskmintError extends Error {
  override readonly name = 'DiskmintError';
  constructor(
    readonly code: DiskmintErrorCode,
    message: string,
    /** For LAYOUT errors: every problem found, one line each. */
    readonly problems: readonly string[] = [message],
  ) {
    super(message);
  }
}

/**
 * A Node system error (ENOSPC, EIO, EACCES...: an errno, a code and the failed syscall): the
 * operating system refused, the user's to fix, not a bug of ours. Node's argument errors
 * (ERR_INVALID_ARG_TYPE, a TypeError) have a code but no errno, and are not.
 */
export function isSystemError(err: unknown): err is NodeJS.ErrnoException & { code: string } {
  const e = err as NodeJS.ErrnoException | undefined;
  return e instanceof Error && typeof e.code === 'string' && typeof e.errno === 'number' && typeof e.syscall === 'string';
}
