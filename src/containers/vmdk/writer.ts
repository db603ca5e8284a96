/**
 * VMDK writers: monolithicSparse and streamOptimized (pipe friendly), monolithicFlat (descriptor
 * plus a `-flat.vmdk` sibling), and the split twoGbMaxExtentSparse / twoGbMaxExtentFlat
 * (descriptor plus extent files of at most 2 GiB, `-s001.vmdk` / `-f001.vmdk`). Structures:
 * formats/containers/vmdk.ts.
 *
 * A sparse extent lays out like qemu-img's (block/vmdk.c vmdk_init_extent): header, descriptor
 * area (20 sectors; empty in split extents), redundant GD + all its GTs, GD + all its GTs,
 * grains from a grain-aligned overHead, all-zero grains left out (block-layout.ts: to a file the
 * grains go first and the tables last, one read of the source; to a pipe a pre-scan finds the
 * grains, then the tables come first: the same bytes).
 *
 * streamOptimized follows VMware's stream layout: header with gdOffset = GD_AT_END, grains as
 * zlib streams behind grain markers (all-zero grains skipped), each grain table behind a GT
 * marker after its grains, GD marker + GD, footer marker + footer header, end-of-stream marker.
 */
import { basename } from 'node:path';
import { crc32 } from 'node:zlib';
import { DiskmintError } from '../../model/errors.js';
import { VirtualDisk } from '../../model/extents.js';
import type { ByteSink } from '../../io/sink.js';
import type { WriteContext } from '../types.js';
import { allocatedBlocks } from '../blocks.js';
import { writeInPlace, writeTablesAndBlocks } from '../block-layout.js';
import { compressedBlocks, type CompressedBlocksOptions } from '../compressed-blocks.js';
import {
  COMPRESSION_DEFLATE,
  COMPRESSION_NONE,
  FLAG_COMPRESSED,
  FLAG_MARKERS,
  FLAG_REDUNDANT_GT,
  FLAG_VALID_NEWLINE_TEST,
  MARKER_FOOTER,
  MARKER_GD,
  MARKER_GT,
  SECTOR,
  grainMarkerParts,
  encodeMetadataMarker,
  encodeSparseHeader,
  encodeU32Table,
  gdSectors as gdSectorsOf,
  gtSectors as gtSectorsOf,
  type SparseHeader,
} from '../../../formats/containers/vmdk.js';
import { descriptorGeometry, encodeDescriptor, type ExtentLine } from '../../../formats/containers/vmdk-descriptor.js';

export const GRAIN_SECTORS = 128; // 64 KiB grains, as qemu-img and VMware write
export const GRAIN_BYTES = GRAIN_SECTORS * SECTOR;
export const GTES_PER_GT = 512; // spec: numGTEsPerGT is 512
const DESC_SECTORS = 20; // qemu-img reserves 20 sectors for the embedded descriptor
const MAX_SECTORS_U32 = 0xffffffff; // GTEs and GD entries are u32 sector numbers

export interface VmdkWriteOptions {
  subformat: 'monolithicSparse' | 'streamOptimized' | 'monolithicFlat' | 'twoGbMaxExtentSparse' | 'twoGbMaxExtentFlat';
  adapterType: string;
  hwVersion: string;
  toolsVersion: string;
}

const SUBFORMATS = ['monolithicSparse', 'streamOptimized', 'monolithicFlat', 'twoGbMaxExtentSparse', 'twoGbMaxExtentFlat'] as const;
/** twoGbMaxExtent* extents hold at most 2 GiB each (qemu's split size, as VMware's). */
const SPLIT_EXTENT_BYTES = 0x80000000;
/** qemu-img 7.2 accepts ide, lsilogic, buslogic, legacyESX; VMware also writes pvscsi. */
const ADAPTERS = ['ide', 'lsilogic', 'buslogic', 'legacyESX', 'pvscsi'];
export const OPTION_KEYS = ['subformat', 'adapter_type', 'hwversion', 'toolsversion', 'compat6'] as const;

export function parseWriteOptions(options: Readonly<Record<string, string>>): VmdkWriteOptions {
  for (const k of Object.keys(options)) {
    if (!(OPTION_KEYS as readonly string[]).includes(k))
      throw new DiskmintError('BAD_ARGUMENT', `vmdk: unknown option "${k}" (known: ${OPTION_KEYS.join(', ')})`);
  }
  const subformat = options.subformat ?? 'monolithicSparse';
  if (!(SUBFORMATS as readonly string[]).includes(subformat)) {
    throw new DiskmintError('BAD_ARGUMENT', `vmdk: subformat "${subformat}" is not supported for writing (use ${SUBFORMATS.join(', ')})`);
  }
  const adapterType = options.adapter_type ?? 'ide';
  if (!ADAPTERS.includes(adapterType)) throw new DiskmintError('BAD_ARGUMENT', `vmdk: adapter_type "${adapterType}" is not one of ${ADAPTERS.join(', ')}`);
  const compat6 = options.compat6;
  if (compat6 !== undefined && !['on', 'off', 'true', 'false'].includes(compat6))
    throw new DiskmintError('BAD_ARGUMENT', `vmdk: compat6 must be on or off, not "${compat6}"`);
  const six = compat6 === 'on' || compat6 === 'true';
  if (six && options.hwversion !== undefined) throw new DiskmintError('BAD_ARGUMENT', 'vmdk: compat6 cannot be combined with hwversion');
  const hwVersion = options.hwversion ?? (six ? '6' : '4');
  if (!/^\d{1,3}$/.test(hwVersion)) throw new DiskmintError('BAD_ARGUMENT', `vmdk: hwversion "${hwVersion}" is not a number`);
  const toolsVersion = options.toolsversion ?? '2147483647'; // qemu-img's default: "not installed"
  if (!/^\d{1,10}$/.test(toolsVersion) || Number(toolsVersion) > 0x7fffffff)
    throw new DiskmintError('BAD_ARGUMENT', `vmdk: toolsversion "${toolsVersion}" is not a number`);
  return { subformat: subformat as VmdkWriteOptions['subformat'], adapterType, hwVersion, toolsVersion };
}

/** Content ID: deterministic, from the layout (size, subformat, allocated grains); never CID_NOPARENT. */
function layoutCid(subformat: string, size: number, grains: readonly number[]): number {
  let c = crc32(`diskmint vmdk ${subformat} ${size}`);
  const buf = Buffer.alloc(4096 * 4);
  for (let i = 0; i < grains.length; i += 4096) {
    const n = Math.min(4096, grains.length - i);
    for (let k = 0; k < n; k++) buf.writeUInt32LE(grains[i + k] >>> 0, k * 4);
    c = crc32(buf.subarray(0, n * 4), c);
  }
  return c === 0xffffffff ? 0xfffffffe : c;
}

function descriptorText(o: VmdkWriteOptions, createType: string, sizeBytes: number, cid: number, extents: ExtentLine[]): string {
  return encodeDescriptor({
    cid,
    createType,
    extents,
    hwVersion: o.hwVersion,
    adapterType: o.adapterType,
    toolsVersion: o.toolsVersion,
    ...descriptorGeometry(sizeBytes, o.adapterType),
  });
}

/** The file name written into embedded descriptors: the output's own name. */
function selfName(outputPath: string): string {
  return outputPath === '-' ? 'disk.vmdk' : basename(outputPath);
}

function embedDescriptor(text: string): Uint8Array {
  const bytes = Buffer.from(text, 'latin1');
  if (bytes.length > DESC_SECTORS * SECTOR) throw new DiskmintError('BAD_ARGUMENT', 'VMDK descriptor does not fit its 20 sectors');
  const out = new Uint8Array(DESC_SECTORS * SECTOR);
  out.set(bytes);
  return out;
}

function checkSectors(n: number, what: string): void {
  if (n > MAX_SECTORS_U32) throw new DiskmintError('BAD_ARGUMENT', `VMDK ${what} would need sector offsets past 2^32 (2 TiB)`);
}

/** GT `t`'s entries: grain index -> sector, from the ascending allocated list starting at `from`. */
function gtEntries(t: number, allocated: readonly number[], sectorOf: (k: number) => number, from: { k: number }): Uint32Array | undefined {
  const first = t * GTES_PER_GT;
  const end = first + GTES_PER_GT;
  let out: Uint32Array | undefined;
  while (from.k < allocated.length && allocated[from.k] < end) {
    out ??= new Uint32Array(GTES_PER_GT);
    out[allocated[from.k] - first] = sectorOf(from.k);
    from.k++;
  }
  return out;
}

export async function writeMonolithicSparse(disk: VirtualDisk, sink: ByteSink, ctx: WriteContext, o: VmdkWriteOptions): Promise<void> {
  const capacity = Math.ceil(disk.size / SECTOR);
  await writeSparseExtent(disk, sink, ctx, (grainsStored) =>
    descriptorText(o, 'monolithicSparse', disk.size, layoutCid('monolithicSparse', disk.size, grainsStored), [
      { access: 'RW', sectors: capacity, type: 'SPARSE', file: selfName(ctx.outputPath), offset: 0 },
    ]),
  );
}

/**
 * twoGbMaxExtentSparse: a descriptor file naming sparse extents of at most 2 GiB each,
 * `-s001.vmdk` on. Each extent is laid out as a monolithicSparse file whose descriptor area
 * stays empty, as qemu-img writes them.
 */
export async function writeSplitSparse(disk: VirtualDisk, sink: ByteSink, ctx: WriteContext, o: VmdkWriteOptions): Promise<void> {
  await writeExtentFiles(disk, sink, ctx, o, {
    bytes: SPLIT_EXTENT_BYTES,
    type: 'SPARSE',
    name: (part) => extentFileName(ctx.outputPath, 's', part),
    async write(range, out, extentCtx, bytes) {
      await writeSparseExtent(range, out, extentCtx, undefined, bytes / SECTOR);
      await out.finish();
    },
  });
}

/**
 * A hosted sparse extent: header, descriptor area (with `descriptorFor`'s text, or left empty),
 * both grain directories and tables, then the grains. `capacitySectors` defaults to the disk's.
 */
async function writeSparseExtent(
  disk: VirtualDisk,
  sink: ByteSink,
  ctx: WriteContext,
  descriptorFor: ((grainsStored: readonly number[]) => string) | undefined,
  capacitySectors = Math.ceil(disk.size / SECTOR),
): Promise<void> {
  const capacity = capacitySectors;
  const geometry = { capacity, grainSize: GRAIN_SECTORS, numGTEsPerGT: GTES_PER_GT };
  const grains = Math.ceil(capacity / GRAIN_SECTORS);
  const gtCount = Math.ceil(grains / GTES_PER_GT);
  const gdSecs = gdSectorsOf(geometry);
  const gtSecs = gtSectorsOf(GTES_PER_GT);
  const rgdOffset = 1 + DESC_SECTORS;
  const gdOffset = rgdOffset + gdSecs + gtCount * gtSecs;
  const overHead = Math.ceil((gdOffset + gdSecs + gtCount * gtSecs) / GRAIN_SECTORS) * GRAIN_SECTORS;
  checkSectors(overHead + allocatedBlocks(disk, GRAIN_BYTES).length * GRAIN_SECTORS, 'monolithicSparse');
  const header: SparseHeader = {
    version: 1,
    flags: FLAG_VALID_NEWLINE_TEST | FLAG_REDUNDANT_GT,
    capacity,
    grainSize: GRAIN_SECTORS,
    descriptorOffset: 1,
    descriptorSize: DESC_SECTORS,
    numGTEsPerGT: GTES_PER_GT,
    rgdOffset,
    gdOffset,
    overHead,
    uncleanShutdown: false,
    compressAlgorithm: COMPRESSION_NONE,
  };
  const start = sink.position;
  const tables = { dirs: [rgdOffset, gdOffset], gtCount, gdSecs, gtSecs, overHead };
  await sink.write(encodeSparseHeader(header));
  // The grains not all zeros, then (to a file) or after a pre-scan before them (to a pipe), the
  // descriptor, whose CID names them, and the directories and tables: the same bytes either way.
  await writeTablesAndBlocks(disk, sink, {
    blockSize: GRAIN_BYTES,
    dataStart: start + overHead * SECTOR,
    onProgress: (done) => ctx.onProgress?.(done, disk.size),
    async writeTables(stored, put) {
      const putSector = (bytes: Uint8Array, sector: number) => put(bytes, start + sector * SECTOR);
      if (descriptorFor) await putSector(embedDescriptor(descriptorFor(stored)), 1);
      await writeGrainTables(putSector, tables, stored);
    },
  });
}

/**
 * Both copies of the grain directory and tables, the redundant one first (qemu's order), each
 * directory pointing at its own tables and each table at the stored grains (ascending), which
 * follow the overhead. Tables without grains are left as zeros (holes).
 */
async function writeGrainTables(
  put: (bytes: Uint8Array, sector: number) => Promise<void>,
  t: { dirs: number[]; gtCount: number; gdSecs: number; gtSecs: number; overHead: number },
  stored: readonly number[],
): Promise<void> {
  for (const dirAt of t.dirs) {
    const gd = new Uint32Array(t.gtCount);
    for (let i = 0; i < t.gtCount; i++) gd[i] = dirAt + t.gdSecs + i * t.gtSecs;
    await put(encodeU32Table(gd, t.gdSecs), dirAt);
    const cursor = { k: 0 };
    for (let i = 0; i < t.gtCount; i++) {
      const gt = gtEntries(i, stored, (k) => t.overHead + k * GRAIN_SECTORS, cursor);
      if (gt) await put(encodeU32Table(gt, t.gtSecs), dirAt + t.gdSecs + i * t.gtSecs);
    }
  }
}

/**
 * streamOptimized's compression policy: every stored grain is a zlib stream (RFC 1950, the only
 * algorithm the format names), at the requested level, kept whatever its size.
 */
function streamGrainPacker(ctx: WriteContext): CompressedBlocksOptions<Uint8Array>['pack'] {
  const level = ctx.compress?.level;
  return (data, compressor) => compressor.compress(data, 'zlib', level);
}

export async function writeStreamOptimized(disk: VirtualDisk, sink: ByteSink, ctx: WriteContext, o: VmdkWriteOptions): Promise<void> {
  // The disk's own size, in whole sectors (a last partial sector rounded up), as qemu-img writes
  // it: a size that is not a whole number of grains is kept (102,400 bytes stay 102,400), and the
  // last grain holds only the sectors up to the capacity.
  const capacity = Math.ceil(disk.size / SECTOR);
  const geometry = { capacity, grainSize: GRAIN_SECTORS, numGTEsPerGT: GTES_PER_GT };
  const gtCount = Math.ceil(Math.ceil(capacity / GRAIN_SECTORS) / GTES_PER_GT);
  const gdSecs = gdSectorsOf(geometry);
  const gtSecs = gtSectorsOf(GTES_PER_GT);
  const overHead = GRAIN_SECTORS; // header, descriptor, padding to the first grain
  const header: SparseHeader = {
    version: 3,
    flags: FLAG_VALID_NEWLINE_TEST | FLAG_COMPRESSED | FLAG_MARKERS,
    capacity,
    grainSize: GRAIN_SECTORS,
    descriptorOffset: 1,
    descriptorSize: DESC_SECTORS,
    numGTEsPerGT: GTES_PER_GT,
    rgdOffset: 0,
    gdOffset: 'end',
    overHead,
    uncleanShutdown: false,
    compressAlgorithm: COMPRESSION_DEFLATE,
  };
  const cid = layoutCid('streamOptimized', disk.size, allocatedBlocks(disk, GRAIN_BYTES));
  const desc = descriptorText(o, 'streamOptimized', capacity * SECTOR, cid, [
    { access: 'RW', sectors: capacity, type: 'SPARSE', file: selfName(ctx.outputPath), offset: 0 },
  ]);
  const start = sink.position;
  const sectorNow = () => (sink.position - start) / SECTOR;
  await sink.write(encodeSparseHeader(header));
  await sink.write(embedDescriptor(desc));
  await sink.skip(start + overHead * SECTOR - sink.position);

  const gd = new Uint32Array(gtCount);
  let gt: Uint32Array | undefined;
  let gtIndex = -1;
  const flushGt = async () => {
    if (!gt) return;
    await sink.write(encodeMetadataMarker(MARKER_GT, gtSecs));
    gd[gtIndex] = sectorNow();
    await sink.write(encodeU32Table(gt, gtSecs));
    gt = undefined;
  };
  const onProgress = (done: number) => ctx.onProgress?.(done, disk.size);
  for await (const { index, packed } of compressedBlocks(disk, GRAIN_BYTES, { threads: ctx.threads, pack: streamGrainPacker(ctx), onProgress })) {
    const t = Math.floor(index / GTES_PER_GT);
    if (t !== gtIndex) {
      await flushGt();
      gtIndex = t;
    }
    gt ??= new Uint32Array(GTES_PER_GT);
    const at = sectorNow();
    checkSectors(at, 'streamOptimized');
    gt[index % GTES_PER_GT] = at;
    await sink.writeParts(grainMarkerParts(index * GRAIN_SECTORS, packed)); // no zero scan: compressed bytes, never all zero
  }
  await flushGt();
  await sink.write(encodeMetadataMarker(MARKER_GD, gdSecs));
  const gdAt = sectorNow();
  checkSectors(gdAt, 'streamOptimized');
  await sink.write(encodeU32Table(gd, gdSecs));
  await sink.write(encodeMetadataMarker(MARKER_FOOTER, 1));
  await sink.write(encodeSparseHeader({ ...header, gdOffset: gdAt }));
  await sink.write(new Uint8Array(SECTOR)); // end-of-stream marker: all zeros
}

/** `disk.vmdk` -> `disk-flat.vmdk` (qemu-img's name for a monolithicFlat extent). */
export function flatExtentName(outputPath: string): string {
  const { stem, ext } = splitName(outputPath);
  return `${stem}-flat${ext}`;
}

/** `disk.vmdk`, part 1 -> `disk-f001.vmdk` (flat) or `disk-s001.vmdk` (sparse): qemu-img's names for split extents. */
export function extentFileName(outputPath: string, kind: 'f' | 's', part: number): string {
  const { stem, ext } = splitName(outputPath);
  return `${stem}-${kind}${String(part).padStart(3, '0')}${ext}`;
}

function splitName(outputPath: string): { stem: string; ext: string } {
  const base = basename(outputPath);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? { stem: base.slice(0, dot), ext: base.slice(dot) } : { stem: base, ext: '' };
}

/**
 * A descriptor plus flat extents beside it: one `-flat.vmdk` (monolithicFlat), or files of at
 * most 2 GiB each, `-f001.vmdk` on (twoGbMaxExtentFlat, for file systems that cap file sizes).
 * Each extent is a sparse file: zeros stay holes.
 */
export async function writeMonolithicFlat(disk: VirtualDisk, sink: ByteSink, ctx: WriteContext, o: VmdkWriteOptions): Promise<void> {
  const split = o.subformat === 'twoGbMaxExtentFlat';
  await writeExtentFiles(disk, sink, ctx, o, {
    bytes: split ? SPLIT_EXTENT_BYTES : Math.ceil(disk.size / SECTOR) * SECTOR,
    type: 'FLAT',
    name: (part) => (split ? extentFileName(ctx.outputPath, 'f', part) : flatExtentName(ctx.outputPath)),
    async write(range, out, extentCtx, bytes) {
      await writeInPlace(range, out, 0, (done) => extentCtx.onProgress?.(done, range.size));
      await out.finish(bytes);
    },
  });
}

/**
 * A descriptor file (written to `sink`) naming extent files beside it, each holding
 * `extent.bytes` of the disk (the last one the rest, in whole sectors), written by `extent.write`
 * from its range of the disk, with progress reported against the whole disk.
 */
async function writeExtentFiles(
  disk: VirtualDisk,
  sink: ByteSink,
  ctx: WriteContext,
  o: VmdkWriteOptions,
  extent: {
    bytes: number;
    type: 'FLAT' | 'SPARSE';
    name: (part: number) => string;
    write: (range: VirtualDisk, out: ByteSink, extentCtx: WriteContext, bytes: number) => Promise<void>;
  },
): Promise<void> {
  if (ctx.outputPath === '-') {
    throw new DiskmintError('BAD_ARGUMENT', `VMDK ${o.subformat} writes a descriptor plus extent files: it needs an output file, not a pipe`);
  }
  const total = Math.ceil(disk.size / SECTOR) * SECTOR;
  if (total === 0) throw new DiskmintError('BAD_ARGUMENT', 'VMDK cannot describe an empty disk');
  const extents: ExtentLine[] = [];
  for (let start = 0, part = 1; start < total; start += extent.bytes, part++) {
    const bytes = Math.min(extent.bytes, total - start);
    const name = extent.name(part);
    const out = await ctx.createSiblingOutput(name);
    const onProgress = ctx.onProgress && ((done: number) => ctx.onProgress?.(Math.min(disk.size, start + done), disk.size));
    await extent.write(diskRange(disk, start, Math.min(bytes, disk.size - start)), out, { ...ctx, onProgress }, bytes);
    extents.push({ access: 'RW', sectors: bytes / SECTOR, type: extent.type, file: name, offset: 0 });
  }
  const cid = layoutCid(o.subformat, disk.size, allocatedBlocks(disk, GRAIN_BYTES));
  await sink.write(Buffer.from(descriptorText(o, o.subformat, disk.size, cid, extents), 'latin1'));
}

/** `length` bytes of `disk` from `start`, as a disk of their own (nothing is read here). */
function diskRange(disk: VirtualDisk, start: number, length: number): VirtualDisk {
  return new VirtualDisk(length).place(0, length, { kind: 'disk', disk, offset: start });
}
