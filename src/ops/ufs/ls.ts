/** `diskmint ufs ls IMG[:N] [PATH]`: the entries of a folder (or the one entry of a file) in a UFS file system. */
import { DiskmintError } from '../../model/errors.js';
import type { UfsEntry } from '../../fs/ufs/read-types.js';
import { withUfs } from './open.js';

export async function listUfs(spec: string, path = '/'): Promise<UfsEntry[]> {
  return withUfs(spec, async (ufs) => {
    const entry = await ufs.stat(path);
    if (!entry) throw new DiskmintError('BAD_ARGUMENT', `${path}: no such file or folder in ${spec}`);
    return entry.stat.kind === 'dir' ? ufs.list(path) : [entry];
  });
}
