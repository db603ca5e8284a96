import { finding, type Finding } from '../model/findings.js';
import type { TablePartition } from './types.js';

/** Findings for partitions that overlap each other (any scheme). */
export function findOverlaps(parts: readonly TablePartition[], where: string, code: string): Finding[] {
  const sorted = [...parts].sort((a, b) => a.firstLba - b.firstLba || a.index - b.index);
  const out: Finding[] = [];
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i + 1; j < sorted.length && sorted[j].firstLba <= sorted[i].lastLba; j++) {
      out.push(
        finding(
          'error',
          code,
          `partition ${sorted[i].index} (sectors ${sorted[i].firstLba}-${sorted[i].lastLba}) overlaps partition ${sorted[j].index} (sectors ${sorted[j].firstLba}-${sorted[j].lastLba})`,
          where,
        ),
      );
    }
  }
  return out;
}

/** Findings for partitions outside [first, last] (inclusive sector bounds). */
export function findOutOfBounds(parts: readonly TablePartition[], first: number, last: number, where: string, code: string, what: string): Finding[] {
  return parts
    .filter((p) => p.firstLba < first || p.lastLba > last || p.lastLba < p.firstLba)
    .map((p) => finding('error', code, `partition ${p.index} (sectors ${p.firstLba}-${p.lastLba}) lies outside ${what} (sectors ${first}-${last})`, where));
}
