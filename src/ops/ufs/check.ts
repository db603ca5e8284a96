/** `diskmint ufs check IMG[:N]`: the fsck_ffs -n style consistency check of a UFS file system. */
import type { UfsProblem } from '../../fs/ufs/read-types.js';
import { withUfs } from './open.js';

export async function checkUfs(spec: string): Promise<UfsProblem[]> {
  return withUfs(spec, (ufs) => ufs.check());
}
