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
