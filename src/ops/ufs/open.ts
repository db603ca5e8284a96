/**
 * Opening the UFS1/UFS2 file system in `IMG[:N]` (any image diskmint reads; `:N` picks
 * partition N), for `ufs ls`, `cat`, `extract` and `check`.
 */
import { DiskmintError } from '../../model/errors.js';
import { FormatError } from '../../../formats/common/errors.js';
import { openFileSystemAt } from '../image-spec.js';
import { openUfs } from '../../fs/ufs/read.js';
import type { UfsReader } from '../../fs/ufs/read-types.js';

/** Open the UFS file system in `IMG[:N]`. The caller must `close()`. */
export async function openUfsVolume(spec: string): Promise<{ ufs: UfsReader; close(): Promise<void> }> {
  const { fs, close } = await openFileSystemAt(spec, 'a UFS file system', openUfs);
  return { ufs: fs, close };
}

/** Run `fn` on the opened file system, closing the image after; bad bytes met on the way become a DiskmintError naming the image. */
export async function withUfs<T>(spec: string, fn: (ufs: UfsReader) => Promise<T>): Promise<T> {
  const { ufs, close } = await openUfsVolume(spec);
  try {
    return await fn(ufs);
  } catch (err) {
    if (err instanceof FormatError) throw new DiskmintError(err.code === 'INVALID_ARGUMENT' ? 'BAD_ARGUMENT' : 'NOT_A_DISK', `${spec}: ${err.message}`);
    throw err;
  } finally {
    await close();
  }
}
