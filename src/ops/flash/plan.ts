/**
 * Which byte ranges `flash` writes: the image's data (its mapped 4 KiB blocks, from the
 * container or a bmap), and zeros where the image needs them to read as zeros.
 *
 * Without `discard`, zeros go only where stale bytes would be taken for a table: the first and
 * the last MiB of the image (MBR, primary GPT and its entries, the gap before the first
 * partition; the backup GPT's entries and header, UEFI 2.10 section 5.3.1). Every other hole
 * keeps what the device held: a file system written by the image ignores its free blocks, as
 * after `bmaptool copy`. With `discard`, every hole inside the image is zeroed too (flash.ts
 * says how), so the device's first image-size bytes equal the image.
 */
import { mappedBlockRanges, rangeBytes } from '../bmap.js';
import type { BlockMap, BmapChecksumType } from '../../../formats/bmap/bmap.js';
import type { ContainerReader } from '../../containers/types.js';
import type { DecodedStream } from '../../io/compressed/decoded-stream.js';
import { nonZeroSpans } from '../../io/zero-blocks.js';
import { FLASH_CHUNK } from './write.js';

/** The neighbourhood of the tables at each end of the image that is always zeroed (1 MiB: the usual alignment of the first partition). */
export const TABLE_AREA = 1 << 20;

export interface FlashRange {
  offset: number;
  length: number;
  kind: 'data' | 'zero';
  /** A bmap range's own checksum, checked while writing (bmaptool copy does the same). */
  expected?: { type: BmapChecksumType; hex: string; blocks: string };
}

/** The image's data ranges: from the bmap when given (its checksums kept), else the container's map. */
async function dataRanges(reader: ContainerReader, bmap?: BlockMap): Promise<FlashRange[]> {
  const out: FlashRange[] = [];
  if (bmap) {
    for (const r of bmap.ranges) {
      const { offset, length } = rangeBytes(r, bmap.blockSize, bmap.imageSize);
      const blocks = r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`;
      const expected = r.checksum && bmap.checksumType ? { type: bmap.checksumType, hex: r.checksum, blocks } : undefined;
      out.push({ offset, length, kind: 'data', expected });
    }
    return out;
  }
  for await (const r of mappedBlockRanges(reader)) out.push({ ...rangeBytes(r, 4096, reader.size), kind: 'data' });
  return out;
}

/** The parts of [start, end) that no data range covers (data sorted and disjoint). */
function holesIn(data: readonly FlashRange[], start: number, end: number): FlashRange[] {
  const holes: FlashRange[] = [];
  let at = start;
  for (const d of data) {
    if (d.offset + d.length <= at) continue;
    if (d.offset >= end) break;
    if (d.offset > at) holes.push({ offset: at, length: d.offset - at, kind: 'zero' });
    at = Math.max(at, d.offset + d.length);
  }
  if (at < end) holes.push({ offset: at, length: end - at, kind: 'zero' });
  return holes;
}

/** Where the image's holes are zeroed: everywhere with `discard`, else the table areas at its two ends. */
function zeroAreas(size: number, discard: boolean | undefined): Array<[start: number, end: number]> {
  if (discard || size <= 2 * TABLE_AREA) return [[0, size]];
  return [
    [0, TABLE_AREA],
    [size - TABLE_AREA, size],
  ];
}

/** Every range flash writes, ascending and disjoint. */
export async function flashPlan(reader: ContainerReader, opts: { bmap?: BlockMap; discard?: boolean }): Promise<FlashRange[]> {
  const data = await dataRanges(reader, opts.bmap);
  const zeros = zeroAreas(reader.size, opts.discard).flatMap(([s, e]) => holesIn(data, s, e));
  return [...data, ...zeros].sort((a, b) => a.offset - b.offset);
}

/**
 * The same ranges as flashPlan, for an image read once as it decodes (a DecodedStream): each
 * FLASH_CHUNK is looked at in turn, its data spans (zero-blocks.ts' blocks, as the spooled path
 * notes them) yielded at once, so that they are read from the window before it moves on; zero
 * ranges carry on across chunks and are yielded when they end (they read nothing). `passed`
 * hears of each chunk looked at (progress follows the decoding).
 */
export async function* streamedFlashPlan(image: DecodedStream, opts: { discard?: boolean; passed?: (bytes: number) => void }): AsyncGenerator<FlashRange> {
  const areas = zeroAreas(image.size, opts.discard);
  let zero: FlashRange | undefined; // a zero range still growing
  const zeros = function* (start: number, end: number): Generator<FlashRange> {
    for (const hole of areas.flatMap(([s, e]) => holesIn([], Math.max(s, start), Math.min(e, end)))) {
      if (hole.length <= 0) continue;
      if (zero && zero.offset + zero.length === hole.offset) zero.length += hole.length;
      else {
        if (zero) yield zero;
        zero = hole;
      }
    }
  };
  for (let at = 0; at < image.size; at += FLASH_CHUNK) {
    const bytes = await image.view(at, Math.min(FLASH_CHUNK, image.size - at));
    const ranges: FlashRange[] = [];
    let end = at; // where the last data span ended
    for (const [s, e] of nonZeroSpans(bytes)) {
      ranges.push(...zeros(end, at + s));
      if (zero) ranges.push(zero);
      zero = undefined;
      ranges.push({ offset: at + s, length: e - s, kind: 'data' });
      end = at + e;
    }
    ranges.push(...zeros(end, at + bytes.length));
    yield* ranges;
    opts.passed?.(bytes.length);
  }
  if (zero) yield zero;
}

export const totalBytes = (plan: readonly FlashRange[], kind?: FlashRange['kind']): number =>
  plan.reduce((n, r) => n + (kind && r.kind !== kind ? 0 : r.length), 0);
