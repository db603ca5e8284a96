/**
 * `diskmint ufs extract IMG[:N] [PATH] -o DIR`: copy a UFS tree (or one file) into a folder
 * with its modes, times, symlinks and hard links (owners too when run as root).
 */
import { DiskmintError } from '../../model/errors.js';
import { extractUfsTree, type UfsExtractReport } from '../../fs/ufs/read-extract.js';
import { withUfs } from './open.js';

export async function extractUfs(spec: string, dest: string, path = '/'): Promise<UfsExtractReport> {
  return withUfs(spec, async (ufs) => {
    const entry = await ufs.stat(path);
    if (!entry) throw new DiskmintError('BAD_ARGUMENT', `${path}: no such file or folder in ${spec}`);
    return extractUfsTree(ufs, entry, dest);
  });
}
