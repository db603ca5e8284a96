/** The CLI's use of the library's image handle. */
import { DiskmintError, isSystemError } from '../model/errors.js';
import { openImage, type Image, type OpenImageOptions } from '../ops/image.js';

/**
 * Open an image, run `fn` on it, close it (committing its edits). An operating-system error that
 * names no file (a read or write on an open file: EIO, ENOSPC) names the image the command was
 * working on, so the message never leaves the user guessing which file failed.
 */
export async function withImage<T>(path: string, fn: (image: Image) => Promise<T>, opts: OpenImageOptions = {}): Promise<T> {
  try {
    const image = await openImage(path, opts);
    try {
      return await fn(image);
    } finally {
      await image.close();
    }
  } catch (err) {
    if (isSystemError(err) && err.path === undefined && err.code !== 'EPIPE') throw new DiskmintError('IO', `${err.message} (while working on ${path})`);
    throw err;
  }
}
