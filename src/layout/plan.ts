/**
 * Layout planning: turn a validated layout into exact sector positions, types and GUIDs.
 * All checks happen here, before a single byte is written: sizes, alignment, overlaps,
 * contents that don't fit, missing files. Problems are collected and reported together.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { DiskmintError } from '../model/errors.js';
import { deriveGuid, deriveU32 } from '../model/seed.js';
import { formatBytes, parseSizeSpec, type SizeSpec } from '../model/size.js';
import type { Layout, PartitionSpec } from './schema.js';
import { LayoutProblems, checkSchemeFields, resolveAttributes, resolveContentsFile, resolveType, type ResolvedType } from './resolve.js';
import { buildPlannedFat, resolveFatContents, type PlannedFat } from './fat-contents.js';
import { buildPlannedUfs, resolveUfsContents, type PlannedUfs, type UfsTreeCache } from './ufs-contents.js';
import { schemeHandler } from '../schemes/registry.js';
import type { SchemeHandler } from '../schemes/handler.js';
import { FALLBACK_BOOTCODE, planWithSelector } from './fallback-selector.js';
import { releaseContents, releasePlan } from './plan-release.js';
import { alignUp, checkPlacement, placePartitions } from './placement.js';

export type PlannedContents =
  | { kind: 'none' }
  | { kind: 'zero' }
  | { kind: 'file'; path: string; size: number }
  | { kind: 'image'; plan: PlannedImage }
  | PlannedFat
  | PlannedUfs
  /** Bytes diskmint makes itself (the fallback selector's partition); `what` names them. */
  | { kind: 'bytes'; bytes: Uint8Array; what: string };

export interface PlannedPartition extends ResolvedType {
  /** 1-based: GPT slot; MBR 1-4 primary slots, 5+ logicals; BSD slot (a=1, b=2, d=4 ...). */
  index: number;
  jsonPath: string;
  type: string;
  label?: string;
  bsdLetter?: string;
  guid?: string;
  /** The layout stated the GUID (rather than deriving it from the seed). */
  uuidGiven: boolean;
  attributes: bigint;
  active: boolean;
  logical: boolean;
  startLba: number;
  sectors: number;
  /** MBR logicals: the sector holding this partition's EBR. */
  ebrLba?: number;
  contents: PlannedContents;
}

export interface PlannedImage {
  scheme: Layout['scheme'];
  sectorSize: number;
  totalSectors: number;
  alignSectors: number;
  seed: string;
  diskGuid?: string;
  diskGuidGiven: boolean;
  diskSignature?: number;
  entries: number;
  geometry: { heads: number; sectorsPerTrack: number };
  bootcode?: Uint8Array;
  partitions: PlannedPartition[];
  /** MBR: the extended partition holding the logicals. */
  extended?: { startLba: number; sectors: number; slot: number };
  /** Non-fatal notes (unaligned explicit offsets ...). */
  warnings: string[];
}

export interface PlanContext {
  baseDir: string;
  seed: string;
  /** JSON path prefix of this layout inside its parent ('' at the top). */
  path: string;
  parentSectorSize?: number;
  /** Absolute sector of this layout's disk inside the outermost image (FAT hidden sectors). */
  baseLba?: number;
  /** Trees loaded for this plan's ufs contents, shared by partitions naming the same sources (planLayout makes it). */
  ufsTrees?: UfsTreeCache;
}

/** A partition being planned (placement.ts places them). */
export interface Draft extends ResolvedType {
  spec: PartitionSpec;
  path: string;
  size: SizeSpec;
  offsetSectors?: number;
  contents: PlannedContents;
  contentBytes: number;
}

/**
 * Plan a layout. `fixedBytes` is the partition size a nested layout must fill when its size is auto.
 * The plan owns spool files (releasePlan, plan-release.ts); when planning fails, it removes them itself.
 */
export async function planLayout(layout: Layout, ctx: PlanContext, fixedBytes?: number): Promise<PlannedImage> {
  ctx = ctx.ufsTrees ? ctx : { ...ctx, ufsTrees: new Map() };
  if (layout.bootcode === FALLBACK_BOOTCODE) {
    let planned: PlannedImage | undefined;
    try {
      return await planWithSelector(layout, ctx, fixedBytes, async (...args) => (planned = await planLayout(...args)));
    } catch (err) {
      if (planned) await releasePlan(planned);
      throw err;
    }
  }
  const drafts: Draft[] = [];
  try {
    return await planDrafts(layout, ctx, fixedBytes, drafts);
  } catch (err) {
    await releaseContents(drafts.map((d) => d.contents));
    throw err;
  }
}

/** planLayout's work; `drafts` is filled as contents are resolved, so a failure can release them. */
async function planDrafts(layout: Layout, ctx: PlanContext, fixedBytes: number | undefined, drafts: Draft[]): Promise<PlannedImage> {
  const problems = new LayoutProblems();
  const p = (suffix: string) => (ctx.path ? `${ctx.path}.${suffix}` : suffix);
  const sectorSize = layout.sectorSize ?? ctx.parentSectorSize ?? 512;
  if (ctx.parentSectorSize !== undefined && sectorSize !== ctx.parentSectorSize) {
    problems.add(p('sectorSize'), `${sectorSize} differs from the enclosing disk's sector size ${ctx.parentSectorSize}`);
  }
  const scheme = schemeHandler(layout.scheme);
  const caps = scheme.capabilities;
  const geo = scheme.geometry(sectorSize, layout.entries);
  const alignSectors = resolveAlign(layout, scheme, sectorSize, p('align'), problems);

  let totalSectors: number | undefined;
  const sizeSpec = parseSizeSpec(layout.size ?? 'auto') ?? { kind: 'auto' };
  if (sizeSpec.kind === 'bytes' || sizeSpec.kind === 'sectors') {
    const bytes = sizeSpec.kind === 'bytes' ? sizeSpec.bytes : sizeSpec.sectors * sectorSize;
    if (bytes % sectorSize !== 0) problems.add(p('size'), `${JSON.stringify(layout.size)} is not a whole number of ${sectorSize}-byte sectors`);
    totalSectors = Math.floor(bytes / sectorSize);
  } else if (sizeSpec.kind === 'auto') {
    if (fixedBytes !== undefined) totalSectors = Math.floor(fixedBytes / sectorSize);
  } else {
    problems.add(p('size'), `${JSON.stringify(layout.size)}: a disk size must be bytes or auto`);
  }

  const warnings: string[] = [];
  for (const [i, spec] of layout.partitions.entries()) {
    const path = p(`partitions[${i}]`);
    checkSchemeFields(layout.scheme, spec, path, problems);
    const type = resolveType(layout.scheme, spec, path, problems);
    const size = parseSizeSpec(spec.size ?? 'auto') ?? { kind: 'auto' };
    const offset = spec.offset === undefined ? undefined : parseSizeSpec(spec.offset);
    let offsetSectors: number | undefined;
    if (offset?.kind === 'bytes' || offset?.kind === 'sectors') {
      const bytes = offset.kind === 'bytes' ? offset.bytes : offset.sectors * sectorSize;
      if (bytes % sectorSize) problems.add(`${path}.offset`, `${JSON.stringify(spec.offset)} is not a multiple of the sector size (${sectorSize})`);
      offsetSectors = Math.floor(bytes / sectorSize);
      if (offsetSectors % alignSectors)
        warnings.push(`${path}.offset: ${JSON.stringify(spec.offset)} is not aligned to ${formatBytes(alignSectors * sectorSize)}`);
    } else if (offset) {
      problems.add(`${path}.offset`, `${JSON.stringify(spec.offset)}: an offset must be bytes or sectors`);
    }
    const { contents, contentBytes } = await resolveContents(spec, path, ctx, sectorSize, problems);
    if (size.kind === 'auto' && contentBytes === 0) {
      problems.add(`${path}.size`, 'missing: a partition without contents needs a size');
    }
    drafts.push({ ...type, spec, path, size, offsetSectors, contents, contentBytes });
  }
  if (problems.list.length) throw layoutError(problems);

  // Fixed sizes in sectors; `rest` and percentages need the disk size.
  const restIndex = drafts.findIndex((d) => d.size.kind === 'rest');
  if (drafts.filter((d) => d.size.kind === 'rest').length > 1) problems.add(p('partitions'), 'only one partition may use "rest"');
  const fixedSectors = (d: Draft, total: number | undefined): number => {
    const s = d.size;
    if (s.kind === 'bytes') return Math.ceil(s.bytes / sectorSize);
    if (s.kind === 'sectors') return s.sectors;
    if (s.kind === 'auto') return Math.ceil(d.contentBytes / sectorSize);
    if (s.kind === 'percent') {
      if (total === undefined) {
        problems.add(`${d.path}.size`, `${JSON.stringify(d.spec.size)} needs a fixed disk size ("size" of the layout)`);
        return 0;
      }
      return Math.floor((total * s.percent) / 100 / alignSectors) * alignSectors;
    }
    return 0; // rest: filled in below
  };
  const sizes = drafts.map((d) => fixedSectors(d, totalSectors));
  if (restIndex >= 0 && totalSectors === undefined) {
    problems.add(`${drafts[restIndex].path}.size`, '"rest" needs a fixed disk size ("size" of the layout)');
  }
  if (problems.list.length) throw layoutError(problems);

  let placed = placePartitions(scheme, drafts, sizes, geo.firstUsable, alignSectors);
  if (totalSectors === undefined) {
    totalSectors = alignUp(placed.end + geo.trailerSectors, alignSectors);
  } else if (restIndex >= 0) {
    const lastUsable = totalSectors - geo.trailerSectors - 1;
    const avail = lastUsable + 1 - placed.end;
    const isLast = restIndex === drafts.length - 1;
    const rest = isLast ? avail : Math.floor(avail / alignSectors) * alignSectors;
    if (rest <= 0) problems.add(`${drafts[restIndex].path}.size`, `"rest": no space left (the other partitions need ${formatBytes(placed.end * sectorSize)})`);
    else {
      sizes[restIndex] = rest;
      placed = placePartitions(scheme, drafts, sizes, geo.firstUsable, alignSectors);
    }
  }
  const lastUsable = totalSectors - geo.trailerSectors - 1;
  checkPlacement(drafts, placed.starts, sizes, geo.firstUsable, lastUsable, sectorSize, problems);
  scheme.checkLimits({
    partitions: drafts.map((d) => ({ path: d.path, logical: d.spec.logical === true, active: d.spec.active === true })),
    totalSectors,
    entries: geo.entries,
    diskSignatureGiven: layout.diskSignature !== undefined,
    at: p,
    problem: (path, message) => problems.add(path, message),
  });
  const bootcode = await readBootcode(layout, scheme, ctx, p('bootcode'), problems);
  if (problems.list.length) throw layoutError(problems);

  // Nested layouts with auto size fill their partition; FAT volumes fill theirs.
  for (const [i, d] of drafts.entries()) {
    const baseLba = (ctx.baseLba ?? 0) + placed.starts[i];
    if (d.contents.kind === 'image' && d.spec.contents && 'image' in d.spec.contents) {
      const auto = (d.spec.contents.image.size ?? 'auto') === 'auto';
      const sizing = d.contents;
      d.contents = {
        kind: 'image',
        plan: await planLayout(
          d.spec.contents.image,
          { ...ctx, path: `${d.path}.contents.image`, parentSectorSize: sectorSize, baseLba },
          auto ? sizes[i] * sectorSize : undefined,
        ),
      };
      // The plan made to size the partition is replaced by the one placed in it.
      await releaseContents([sizing]);
    } else if (d.contents.kind === 'fat') {
      await buildPlannedFat(d.contents, sizes[i] * sectorSize, baseLba, ctx.seed, d.path, problems);
    } else if (d.contents.kind === 'ufs') {
      buildPlannedUfs(d.contents, sizes[i] * sectorSize, ctx.seed, d.path, problems);
    }
  }
  if (problems.list.length) throw layoutError(problems);

  const indexes = scheme.tableIndexes(placed.logical);
  const partitions = drafts.map((d, i): PlannedPartition => ({
    index: indexes[i],
    jsonPath: d.path,
    type: d.spec.type,
    gptType: d.gptType,
    mbrType: d.mbrType,
    bsdFstype: d.bsdFstype,
    bsdLetter: scheme.partitionLetter?.(i),
    label: d.spec.label,
    guid: caps.guids ? (d.spec.uuid?.toLowerCase() ?? deriveGuid(ctx.seed, d.path)) : undefined,
    uuidGiven: d.spec.uuid !== undefined,
    attributes: caps.attributes ? resolveAttributes(d.spec, d.path, problems) : 0n,
    active: d.spec.active ?? false,
    logical: d.spec.logical ?? false,
    startLba: placed.starts[i],
    sectors: sizes[i],
    ebrLba: placed.ebrs[i],
    contents: d.contents,
  }));
  if (problems.list.length) throw layoutError(problems);

  return {
    scheme: layout.scheme,
    sectorSize,
    totalSectors,
    alignSectors,
    seed: ctx.seed,
    diskGuid: caps.guids ? (layout.diskGuid?.toLowerCase() ?? deriveGuid(ctx.seed, p('disk'))) : undefined,
    diskGuidGiven: layout.diskGuid !== undefined,
    diskSignature: resolveDiskSignature(layout, scheme, ctx, p('disk-signature'), bootcode),
    entries: geo.entries,
    geometry: { heads: layout.geometry?.heads ?? 255, sectorsPerTrack: layout.geometry?.sectors ?? 63 },
    bootcode,
    partitions,
    extended: placed.extended,
    warnings,
  };
}

function resolveAlign(layout: Layout, scheme: SchemeHandler, sectorSize: number, path: string, problems: LayoutProblems): number {
  const spec = parseSizeSpec(layout.align ?? scheme.defaultAlign);
  const bytes = spec?.kind === 'bytes' ? spec.bytes : spec?.kind === 'sectors' ? spec.sectors * sectorSize : undefined;
  if (bytes === undefined || bytes === 0) {
    problems.add(path, `${JSON.stringify(layout.align)}: alignment must be a size in bytes or sectors`);
    return 1;
  }
  if (bytes % sectorSize !== 0) {
    problems.add(path, `${JSON.stringify(layout.align)} is not a multiple of the sector size (${sectorSize})`);
    return 1;
  }
  return bytes / sectorSize;
}

async function resolveContents(spec: PartitionSpec, path: string, ctx: PlanContext, sectorSize: number, problems: LayoutProblems) {
  const c = spec.contents;
  if (!c) return { contents: { kind: 'none' } as PlannedContents, contentBytes: 0 };
  if ('zero' in c) return { contents: { kind: 'zero' } as PlannedContents, contentBytes: 0 };
  if ('fat' in c)
    return (await resolveFatContents(c.fat, path, ctx.baseDir, sectorSize, problems)) ?? { contents: { kind: 'none' } as PlannedContents, contentBytes: 0 };
  if ('ufs' in c)
    return (await resolveUfsContents(c.ufs, path, ctx.baseDir, problems, ctx.ufsTrees)) ?? { contents: { kind: 'none' } as PlannedContents, contentBytes: 0 };
  if ('file' in c) {
    const f = await resolveContentsFile(c.file, ctx.baseDir, path, problems);
    return f
      ? { contents: { kind: 'file', ...f } as PlannedContents, contentBytes: f.size }
      : { contents: { kind: 'none' } as PlannedContents, contentBytes: 0 };
  }
  try {
    // A nested layout of auto size fills a partition of fixed size; size it from the partition now.
    const partSize = parseSizeSpec(spec.size ?? 'auto');
    const fixed = partSize?.kind === 'bytes' ? partSize.bytes : partSize?.kind === 'sectors' ? partSize.sectors * sectorSize : undefined;
    const auto = (c.image.size ?? 'auto') === 'auto';
    const plan = await planLayout(c.image, { ...ctx, path: `${path}.contents.image`, parentSectorSize: sectorSize }, auto ? fixed : undefined);
    return { contents: { kind: 'image', plan } as PlannedContents, contentBytes: plan.totalSectors * plan.sectorSize };
  } catch (err) {
    if (!(err instanceof DiskmintError) || err.code !== 'LAYOUT') throw err;
    for (const line of err.problems) problems.list.push(line);
    return { contents: { kind: 'none' } as PlannedContents, contentBytes: 0 };
  }
}

async function readBootcode(layout: Layout, scheme: SchemeHandler, ctx: PlanContext, path: string, problems: LayoutProblems): Promise<Uint8Array | undefined> {
  if (layout.bootcode === undefined) return undefined;
  const abs = isAbsolute(layout.bootcode) ? layout.bootcode : resolve(ctx.baseDir, layout.bootcode);
  const limit = scheme.capabilities.bootcode;
  if (limit.bytes === 0) {
    problems.add(path, `${limit.what}: remove "bootcode"`);
    return undefined;
  }
  try {
    const bytes = new Uint8Array(await readFile(abs));
    if (bytes.length > limit.bytes) {
      problems.add(path, `${JSON.stringify(layout.bootcode)} is ${bytes.length} bytes; ${limit.what} holds at most ${limit.bytes}`);
    }
    return bytes;
  } catch {
    problems.add(path, `${JSON.stringify(layout.bootcode)} not found (looked for ${abs})`);
    return undefined;
  }
}

/** A given disk signature where the scheme has one (GPT's protective MBR too); MBRs get one from the seed. */
function resolveDiskSignature(layout: Layout, scheme: SchemeHandler, ctx: PlanContext, what: string, bootcode: Uint8Array | undefined): number | undefined {
  const has = scheme.capabilities.diskSignature;
  if (has === undefined) return undefined;
  if (layout.diskSignature !== undefined) return Number(layout.diskSignature);
  // Boot code that covers bytes 440..443 brings its own signature (as mkimg copies 446 bytes).
  if (bootcode && bootcode.length >= 444) return undefined;
  return has === 'seeded' ? deriveU32(ctx.seed, what) : undefined;
}

function layoutError(problems: LayoutProblems): DiskmintError {
  return new DiskmintError('LAYOUT', problems.list.join('\n'), problems.list);
}
