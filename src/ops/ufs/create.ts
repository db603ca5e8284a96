/**
 * `diskmint ufs create`: a UFS2 file system image (any output format) from one or more tree
 * sources (folders, tarballs, mtree specs or METALOGs over folders, layered in order).
 */
import { refuseUnwritableOutput, writeImage, type WriteImageOptions } from '../../io/write-image.js';
import { DiskmintError } from '../../model/errors.js';
import { parseByteSize } from '../../model/size.js';
import { sourceDateEpoch } from '../../model/source-date.js';
import { resolveSeed } from '../../model/seed.js';
import { buildUfsVolume, type UfsBuildOptions } from '../../fs/ufs/build.js';
import { loadTreeSources, type FileTree } from '../../fs/tree/index.js';

export interface UfsCreateOptions extends WriteImageOptions, Omit<UfsBuildOptions, 'size'> {
  /** Tree sources (`--from`), layered in order; or give `tree`. */
  from?: string[];
  tree?: FileTree;
  /** Bytes or a size string (`64M`); omitted = the smallest that holds the tree plus fs_minfree. */
  size?: number | string;
}

export interface UfsCreateResult {
  sizeBytes: number;
  blockSize: number;
  fragSize: number;
  cylinderGroups: number;
  inodesPerGroup: number;
  inodes: number;
  freeBytes: number;
  label: string;
}

/** Build a UFS2 image at `output` (written atomically: a temp file renamed into place). */
export async function createUfs(output: string, opts: UfsCreateOptions): Promise<UfsCreateResult> {
  refuseUnwritableOutput(output, opts);
  if ((opts.tree === undefined) === (opts.from === undefined || opts.from.length === 0)) {
    throw new DiskmintError('BAD_ARGUMENT', 'ufs create needs its contents: --from SOURCE (one or more), or a tree');
  }
  let size: number | undefined;
  if (opts.size !== undefined) {
    size = parseByteSize(opts.size);
    if (size === undefined) throw new DiskmintError('BAD_ARGUMENT', `--size ${opts.size} is not a size in bytes (e.g. 64M)`);
  }
  const epoch = sourceDateEpoch();
  const loaded = opts.tree ? { tree: opts.tree, close: async () => {} } : await loadTreeSources(opts.from!, { sourceDateEpoch: epoch });
  try {
    const volume = buildUfsVolume(loaded.tree, { ...opts, size, time: opts.time ?? epoch, seed: resolveSeed(opts.seed, 'diskmint-ufs') });
    await writeImage(volume.disk, output, opts);
    const l = volume.layout;
    return {
      sizeBytes: volume.sizeBytes,
      blockSize: l.bsize,
      fragSize: l.fsize,
      cylinderGroups: l.ncg,
      inodesPerGroup: l.ipg,
      inodes: volume.inodes,
      freeBytes: volume.freeBytes,
      label: opts.label ?? '',
    };
  } finally {
    await loaded.close();
  }
}
