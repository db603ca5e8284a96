/**
 * SOURCE_DATE_EPOCH (https://reproducible-builds.org/specs/source-date-epoch/): timestamps
 * later than it are clamped to it, earlier ones kept, as GNU tar's --clamp-mtime and the
 * reproducible-builds recommendation for archives do. (makefs -T sets every timestamp to the
 * value instead; clamping keeps a release tarball's older dates.) Every time of every node is
 * clamped: atime, mtime, ctime and birth time.
 */
import { DiskmintError } from '../../model/errors.js';
import type { FileTree, TreeTime } from './types.js';

/** SOURCE_DATE_EPOCH's value as seconds; a clear error when it is not a whole number. */
export function parseSourceDateEpoch(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d{1,15}$/.test(value)) throw new DiskmintError('BAD_ARGUMENT', `SOURCE_DATE_EPOCH=${JSON.stringify(value)} is not a whole number of seconds`);
  return Number(value);
}

const clamp = (t: TreeTime, epoch: number): TreeTime => (t.sec > epoch || (t.sec === epoch && t.nsec > 0) ? { sec: epoch, nsec: 0 } : t);

export function clampTimes(tree: FileTree, epoch: number): FileTree {
  return {
    nodes: tree.nodes.map((n) => ({
      ...n,
      atime: clamp(n.atime, epoch),
      mtime: clamp(n.mtime, epoch),
      ctime: clamp(n.ctime, epoch),
      birthtime: clamp(n.birthtime, epoch),
    })),
  };
}
