/** `diskmint build`: layout file (or object) to a raw image, atomically. */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { DiskmintError } from '../model/errors.js';
import type { Layout } from '../layout/schema.js';
import { planLayout, type PlannedImage, type PlannedPartition } from '../layout/plan.js';
import { releasePlan } from '../layout/plan-release.js';
import { assembleDisk } from '../layout/assemble.js';
import { refuseUnwritableOutput, writeImage, type WriteImageOptions } from '../io/write-image.js';
import { refuseBmapToPipe, writeBmapBeside } from './bmap.js';
import { resolveSeed, seedFromLayoutText } from '../model/seed.js';
import type { VirtualDisk } from '../model/extents.js';

export interface BuildOptions extends WriteImageOptions {
  /** Output path, or '-' for standard output. The format comes from `format` or the extension. */
  output: string;
  /** Overrides the layout's seed; 'random' for a fresh one. */
  seed?: string;
  /** Folder that contents paths are relative to (default: the layout file's folder, else cwd). */
  baseDir?: string;
  /** Also write the output's block map beside it (`OUT.bmap`, bmaptool's format), made from the file written. */
  bmap?: boolean;
}

export interface BuiltPartition {
  index: number;
  type: string;
  label?: string;
  startLba: number;
  sectors: number;
  guid?: string;
  contents: string;
  nested?: BuildSummary;
}

export interface BuildSummary {
  scheme: Layout['scheme'];
  sectorSize: number;
  sizeBytes: number;
  seed: string;
  diskGuid?: string;
  partitions: BuiltPartition[];
  warnings: string[];
}

export interface BuildResult extends BuildSummary {
  output: string;
  /** Output format: raw, qcow2, vmdk, vhd or vhdx. */
  format: string;
  /** Bytes of data written (holes excluded). */
  dataBytes: number;
  /** The block map written beside the output (with `bmap`). */
  bmap?: string;
}

/** parseLayout, with the schema module (zod) loaded on first use: building it costs every start ~4 ms. */
async function validateLayout(json: unknown): Promise<Layout> {
  const { parseLayout } = await import('../layout/schema.js');
  return parseLayout(json);
}

/** Read and validate a layout file. */
export async function loadLayout(path: string): Promise<{ layout: Layout; text: string }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new DiskmintError('INPUT', `layout ${path} not found`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new DiskmintError('LAYOUT', `${path}: not valid JSON: ${(err as Error).message}`);
  }
  return { layout: await validateLayout(json), text };
}

export interface PlannedDisk {
  plan: PlannedImage;
  disk: VirtualDisk;
  /** Removes the plan's spool files (ufs contents from tarballs): the disk cannot be read after it. */
  release(): Promise<void>;
}

/**
 * Plan and assemble without writing: the virtual disk a layout describes. The caller owns
 * its spool files and must call `release()` when done; withPlannedImage does that for it.
 */
export async function planImage(layoutOrPath: Layout | string, opts: { seed?: string; baseDir?: string } = {}): Promise<PlannedDisk> {
  let layout: Layout;
  let text: string;
  let baseDir = opts.baseDir ?? process.cwd();
  if (typeof layoutOrPath === 'string') {
    ({ layout, text } = await loadLayout(layoutOrPath));
    baseDir = opts.baseDir ?? dirname(resolve(layoutOrPath));
  } else {
    layout = await validateLayout(layoutOrPath);
    text = JSON.stringify(layout);
  }
  const seed = resolveSeed(opts.seed ?? layout.seed, seedFromLayoutText(text));
  const plan = await planLayout(layout, { baseDir, seed, path: '' });
  const release = () => releasePlan(plan);
  try {
    return { plan, disk: assembleDisk(plan), release };
  } catch (err) {
    await release();
    throw err;
  }
}

/** Plan a layout, `use` its disk, then release the plan's spool files, whether `use` succeeds or throws. */
export async function withPlannedImage<T>(
  layoutOrPath: Layout | string,
  opts: { seed?: string; baseDir?: string },
  use: (planned: PlannedDisk) => Promise<T>,
): Promise<T> {
  const planned = await planImage(layoutOrPath, opts);
  try {
    return await use(planned);
  } finally {
    await planned.release();
  }
}

/** Build the image a layout describes and write it to `opts.output`. */
export async function buildImage(layoutOrPath: Layout | string, opts: BuildOptions): Promise<BuildResult> {
  refuseUnwritableOutput(opts.output, opts);
  refuseBmapToPipe(opts.output, opts.bmap);
  const layoutFile = typeof layoutOrPath === 'string' ? [layoutOrPath] : [];
  const result = await withPlannedImage(layoutOrPath, opts, async ({ plan, disk }) => {
    const written = await writeImage(disk, opts.output, { ...opts, inputs: [...(opts.inputs ?? []), ...layoutFile] });
    return { ...summarisePlan(plan), output: opts.output, format: written.format, dataBytes: disk.dataBytes() };
  });
  return opts.bmap ? { ...result, bmap: await writeBmapBeside(opts.output) } : result;
}

export function summarisePlan(plan: PlannedImage): BuildSummary {
  return {
    scheme: plan.scheme,
    sectorSize: plan.sectorSize,
    sizeBytes: plan.totalSectors * plan.sectorSize,
    seed: plan.seed,
    diskGuid: plan.diskGuid,
    partitions: plan.partitions.map(summarisePartition),
    warnings: plan.warnings,
  };
}

function summarisePartition(p: PlannedPartition): BuiltPartition {
  const c = p.contents;
  return {
    index: p.index,
    type: p.type,
    label: p.label ?? p.bsdLetter,
    startLba: p.startLba,
    sectors: p.sectors,
    guid: p.guid,
    contents:
      c.kind === 'file'
        ? c.path
        : c.kind === 'fat'
          ? `FAT${c.volume?.type ?? ''} from ${c.from}`
          : c.kind === 'bytes'
            ? c.what
            : c.kind === 'ufs'
              ? `UFS2 from ${c.from.join(' + ') || 'nothing (empty)'}`
              : c.kind,
    nested: c.kind === 'image' ? summarisePlan(c.plan) : undefined,
  };
}
