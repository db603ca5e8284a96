/**
 * Where the planned partitions go (layout planning, plan.ts): sequential placement at the next
 * aligned sector unless a partition gives its offset (logical partitions each after their EBR),
 * then the checks that every partition lies inside the usable area and none overlap.
 */
import { formatBytes } from '../model/size.js';
import type { SchemeHandler } from '../schemes/handler.js';
import type { Draft } from './plan.js';
import type { LayoutProblems } from './resolve.js';

export interface Placement {
  starts: number[];
  ebrs: Array<number | undefined>;
  /** Which partitions are logical (each after its own EBR). */
  logical: boolean[];
  end: number;
  extended?: { startLba: number; sectors: number; slot: number };
}

/** Sequential placement: each partition at the next aligned sector unless it gives an offset. */
export function placePartitions(scheme: SchemeHandler, drafts: Draft[], sizes: number[], firstUsable: number, align: number): Placement {
  const starts: number[] = [];
  const ebrs: Array<number | undefined> = [];
  const logical: boolean[] = [];
  const logicals = scheme.capabilities.logicals;
  let cursor = firstUsable;
  let end = firstUsable;
  let extended: Placement['extended'];
  let slot = 0; // MBR primary slots 1-4, the extended partition taking the next when logicals begin
  for (const [i, d] of drafts.entries()) {
    const isLogical = logicals === 'all' || (logicals === 'marked' && d.spec.logical === true);
    logical.push(isLogical);
    if (isLogical) {
      // Each logical partition is preceded by its EBR (one alignment unit, at least one sector).
      const ebr = d.offsetSectors !== undefined ? d.offsetSectors - 1 : alignUp(cursor, align);
      const start = d.offsetSectors ?? alignUp(ebr + 1, align);
      if (!extended) extended = { startLba: ebr, sectors: 0, slot: ++slot };
      ebrs.push(ebr);
      starts.push(start);
      extended.sectors = start + sizes[i] - extended.startLba;
    } else {
      const start = d.offsetSectors ?? alignUp(cursor, align);
      ebrs.push(undefined);
      starts.push(start);
      ++slot;
    }
    cursor = starts[i] + sizes[i];
    end = Math.max(end, cursor);
  }
  return { starts, ebrs, logical, end, extended };
}

export function checkPlacement(drafts: Draft[], starts: number[], sizes: number[], first: number, last: number, ss: number, problems: LayoutProblems): void {
  const ranges = drafts.map((d, i) => ({ d, start: starts[i], end: starts[i] + sizes[i] - 1 }));
  for (const r of ranges) {
    if (r.start < first) problems.add(r.d.path, `starts at sector ${r.start}, inside the partition table area (first usable sector is ${first})`);
    if (r.end > last) problems.add(r.d.path, `ends at sector ${r.end}, beyond the last usable sector ${last} of the disk`);
    if ((r.d.contents.kind === 'fat' || r.d.contents.kind === 'ufs') && r.d.contentBytes > sizes[drafts.indexOf(r.d)] * ss) {
      problems.add(
        `${r.d.path}.contents.${r.d.contents.kind}`,
        `the ${r.d.contents.kind === 'fat' ? 'FAT volume' : 'UFS2 file system'} for this tree needs at least ${formatBytes(r.d.contentBytes)}, more than the partition (${formatBytes(sizes[drafts.indexOf(r.d)] * ss)})`,
      );
    } else if (r.d.contentBytes > sizes[drafts.indexOf(r.d)] * ss && r.d.contents.kind !== 'image') {
      const what =
        r.d.contents.kind === 'file' ? JSON.stringify(r.d.spec.contents && 'file' in r.d.spec.contents ? r.d.spec.contents.file : '') : 'the contents';
      problems.add(
        `${r.d.path}.contents`,
        `${what} is ${formatBytes(r.d.contentBytes)}, larger than the partition (${formatBytes(sizes[drafts.indexOf(r.d)] * ss)})`,
      );
    } else if (r.d.contents.kind === 'image' && r.d.contentBytes > sizes[drafts.indexOf(r.d)] * ss) {
      problems.add(
        `${r.d.path}.contents.image`,
        `the nested image needs ${formatBytes(r.d.contentBytes)}, more than the partition (${formatBytes(sizes[drafts.indexOf(r.d)] * ss)})`,
      );
    }
  }
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1];
    const b = sorted[i];
    if (b.start <= a.end) problems.add(b.d.path, `overlaps ${a.d.path} (sectors ${b.start}-${b.end} and ${a.start}-${a.end})`);
  }
}

export function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}
