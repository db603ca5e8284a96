/**
 * What a plan holds open: the spool files of ufs contents made from tarballs (a compressed
 * archive is decompressed once into a temp file that the file system's contents point into),
 * in nested layouts too. They must outlive the plan's disk, so the plan owns them.
 */
import type { PlannedContents, PlannedImage } from './plan.js';

/** Removes the plan's spool files. Call it once its disk is written or compared (withPlannedImage in ops/build.ts does); idempotent. */
export async function releasePlan(plan: PlannedImage): Promise<void> {
  await releaseContents(plan.partitions.map((p) => p.contents));
}

/** Releases every item, even when one fails; then throws the first failure. */
export async function releaseContents(contents: PlannedContents[]): Promise<void> {
  let failure: unknown;
  for (const c of contents) {
    try {
      if (c.kind === 'ufs') await c.release();
      else if (c.kind === 'image') await releasePlan(c.plan);
    } catch (err) {
      failure ??= err;
    }
  }
  if (failure !== undefined) throw failure;
}
