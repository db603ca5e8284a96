/**
 * `boot status` and `boot simulate`: the image's boot stages as the fallback selector sees them
 * (bootcode/SELECTOR.md), through the model in formats/boot/stage-choice.ts. Nothing is written.
 */
import { describeAttributes, type BootOutcome } from '../../../formats/boot/gptboot.js';
import { chooseBootStage, defaultBootStage, simulateBootStages, type StageBootStep } from '../../../formats/boot/stage-choice.js';
import type { StageCheck } from '../../../formats/boot/stage-table.js';
import { openForReading, type EditorOptions } from '../../io/image-editor.js';
import { hashRange } from '../slots/hash.js';
import { checksOf, readBootStages } from './read.js';

export interface BootStageInfo {
  index: number;
  label: string;
  /** Attribute names: bootme, bootonce, bootfailed, then any other bits ('-' when none). */
  attributes: string;
  /** The raw 64-bit attribute field (a decimal string in --json). */
  attributeBits: bigint;
  /** Byte offset of the partition in the virtual disk. */
  offset: number;
  sizeBytes: number;
  /** SHA-256 of the whole partition ('' with hash: false). */
  sha256: string;
  /** The stage table's record: checksummed length and CRC-32 (hex), or null. */
  record: { length: number; crc32: string } | null;
  check: StageCheck;
  /** The stage `boot update` leaves alone. */
  isDefault: boolean;
}

export interface BootStatus {
  path: string;
  format: string;
  stages: BootStageInfo[];
  /** What the selector boots at the next power-up, and why (with the attribute writes it makes first). */
  next: { index?: number; label?: string; reason: string; writes: Array<{ index: number; before: string; after: string; why: string }> };
  selector: { installed: boolean; partition?: number; missing: string[] };
}

export async function bootStatus(path: string, opts: { hash?: boolean } & EditorOptions = {}): Promise<BootStatus> {
  const { reader, format } = await openForReading(path, opts);
  try {
    const view = await readBootStages(reader);
    const checks = checksOf(view);
    const byDefault = defaultBootStage(view.entries, checks);
    const stages: BootStageInfo[] = [];
    for (const s of view.stages) {
      stages.push({
        index: s.index,
        label: s.label,
        attributes: describeAttributes(s.attributes),
        attributeBits: s.attributes,
        offset: s.offset,
        sizeBytes: s.sizeBytes,
        sha256: opts.hash === false ? '' : await hashRange(reader, s.offset, s.sizeBytes),
        record: s.record ? { length: s.record.length, crc32: s.record.crc32.toString(16).padStart(8, '0') } : null,
        check: s.check,
        isDefault: s.index === byDefault,
      });
    }
    const choice = chooseBootStage(view.entries, checks);
    const chosen = view.stages.find((s) => s.index === choice.chosen);
    const writes = choice.writes.map((w) => ({ index: w.index, before: describeAttributes(w.before), after: describeAttributes(w.after), why: w.why }));
    return {
      path,
      format,
      stages,
      next: { index: choice.chosen, label: chosen?.label, reason: choice.reason, writes },
      selector: { installed: view.selector.installed, partition: view.selector.partition?.index, missing: view.selector.missing },
    };
  } finally {
    await reader.close();
  }
}

export interface BootSimulation {
  /** The stage checks the simulation assumes (the image's, unchanged between power-ups). */
  checks: Array<{ index: number; check: StageCheck }>;
  steps: StageBootStep[];
}

/** `boot simulate`: the selector's rules applied to a copy of the image's table, in memory. */
export async function bootSimulate(path: string, outcomes: BootOutcome[], opts: { confirm?: boolean } & EditorOptions = {}): Promise<BootSimulation> {
  const { reader } = await openForReading(path, opts);
  try {
    const view = await readBootStages(reader);
    const checks = checksOf(view);
    return {
      checks: view.stages.map((s) => ({ index: s.index, check: s.check })),
      steps: simulateBootStages(view.entries, checks, outcomes, { confirm: opts.confirm }),
    };
  } finally {
    await reader.close();
  }
}
