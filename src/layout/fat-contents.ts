/**
 * `contents: { "fat": { "from": "esp/", "type": "auto|12|16|32", "label": "EFISYS" } }`:
 * a FAT volume made from a folder. The volume is built during planning (metadata only; file
 * contents stay references), so a tree that doesn't fit is a layout error before any write.
 */
import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { FormatError } from '../../formats/common/errors.js';
import { buildFatVolume, minimumFatSize, treeFromFolder, treeFromObject, type FatBuildOptions, type FatTreeNode, type FatVolume } from '../fs/fat/index.js';
import { formatBytes } from '../model/size.js';
import type { LayoutProblems } from './resolve.js';

export interface FatContentsSpec {
  from?: string;
  type?: 'auto' | '12' | '16' | '32' | 12 | 16 | 32;
  label?: string;
  keepTimes?: boolean;
}

export interface PlannedFat {
  kind: 'fat';
  from: string;
  tree: FatTreeNode;
  options: FatBuildOptions;
  /** Built once the partition's size and place are known. */
  volume?: FatVolume;
}

export async function resolveFatContents(
  spec: FatContentsSpec,
  path: string,
  baseDir: string,
  sectorSize: number,
  problems: LayoutProblems,
): Promise<{ contents: PlannedFat; contentBytes: number } | undefined> {
  const type = spec.type === undefined || spec.type === 'auto' ? 'auto' : (Number(spec.type) as 12 | 16 | 32);
  const options: FatBuildOptions = { type, label: spec.label, sectorSize: sectorSize as 512 | 4096 };
  if (spec.from === undefined) {
    const tree = treeFromObject({});
    return { contents: { kind: 'fat', from: '(empty)', tree, options }, contentBytes: minimumFatSize(tree, options) };
  }
  const from = isAbsolute(spec.from) ? spec.from : resolve(baseDir, spec.from);
  const st = await stat(from).catch(() => undefined);
  if (!st?.isDirectory()) {
    problems.add(`${path}.contents.fat.from`, `${JSON.stringify(spec.from)} is not a folder (looked for ${from})`);
    return undefined;
  }
  try {
    const tree = await treeFromFolder(from, { keepTimes: spec.keepTimes });
    return { contents: { kind: 'fat', from, tree, options }, contentBytes: minimumFatSize(tree, options) };
  } catch (err) {
    if (!(err instanceof FormatError) && !(err instanceof Error && 'code' in err)) throw err;
    problems.add(`${path}.contents.fat`, (err as Error).message);
    return undefined;
  }
}

/** Build the volume to fill `sizeBytes` at absolute sector `startLba` (its hidden sectors). */
export async function buildPlannedFat(
  fat: PlannedFat,
  sizeBytes: number,
  startLba: number,
  seed: string,
  path: string,
  problems: LayoutProblems,
): Promise<void> {
  try {
    fat.volume = await buildFatVolume(fat.tree, { ...fat.options, size: sizeBytes, hiddenSectors: startLba, seed: `${seed}\0${path}` });
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    problems.add(`${path}.contents.fat`, `${err.message} (partition of ${formatBytes(sizeBytes)})`);
  }
}
