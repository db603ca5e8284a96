/** The CLI's use of the library's image handle. */
import { openImage, type Image, type OpenImageOptions } from '../ops/image.js';

/** Open an image, run `fn` on it, close it (committing its edits). */
export async function withImage<T>(path: string, fn: (image: Image) => Promise<T>, opts: OpenImageOptions = {}): Promise<T> {
  const image = await openImage(path, opts);
  try {
    return await fn(image);
  } finally {
    await image.close();
  }
}
