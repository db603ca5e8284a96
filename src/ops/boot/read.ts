/**
 * Reading an image as the fallback selector sees it (bootcode/SELECTOR.md): the freebsd-boot
 * entries, the BIOS-boot partition with the stage checksum table at its byte 0 and the
 * selector's code at byte 512, each stage's check, and whether the selector is installed.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { equalBytes } from '../../../formats/common/bytes.js';
import { checkStage, decodeStageTable, STAGE_MAX_BYTES, STAGE_TABLE_SIZE, type StageCheck, type StageChecksum } from '../../../formats/boot/stage-table.js';
import type { SlotEntry } from '../../../formats/boot/gptboot.js';
import { FREEBSD_BOOT_TYPE } from '../../../formats/schemes/gpt-types.js';
import type { DiskReader } from '../../model/disk-reader.js';
import { readGptForEdit, type EditableGpt } from '../../schemes/gpt/edit.js';
import { toSlotEntries } from '../../schemes/gpt/slots.js';
import { BIOS_BOOT_TYPE, bootcodeDir, FALLBACK_MBR_FILE, FALLBACK_STAGE2_FILE, MBR_CODE_BYTES } from '../../layout/fallback-selector.js';

export interface StageOnDisk {
  index: number;
  label: string;
  guid: string;
  attributes: bigint;
  offset: number;
  sizeBytes: number;
  /** The table's record for this partition, when the table is valid and has one. */
  record?: StageChecksum;
  check: StageCheck;
}

export interface SelectorOnDisk {
  /** The first BIOS-boot partition (the one fallback-mbr.bin loads). */
  partition?: { index: number; label: string; offset: number; sizeBytes: number };
  /** The decoded table; undefined when there is no partition or its sector 0 is no valid table. */
  table?: StageChecksum[];
  /** Our selector runs at power-up: MBR code, stage2 and a valid table all in place. */
  installed: boolean;
  /** Why not, when it is not. */
  missing: string[];
}

export interface BootStagesView {
  gpt: EditableGpt;
  entries: SlotEntry[];
  stages: StageOnDisk[];
  selector: SelectorOnDisk;
}

/** fallback-mbr.bin (first 440 bytes) and fallback-stage2.bin, or undefined when this diskmint has none. */
async function shippedCode(): Promise<{ mbr: Uint8Array; stage2: Uint8Array } | undefined> {
  const dir = bootcodeDir();
  const mbrPath = join(dir, FALLBACK_MBR_FILE);
  const stage2Path = join(dir, FALLBACK_STAGE2_FILE);
  if (!existsSync(mbrPath) || !existsSync(stage2Path)) return undefined;
  return { mbr: new Uint8Array(await readFile(mbrPath)).subarray(0, MBR_CODE_BYTES), stage2: new Uint8Array(await readFile(stage2Path)) };
}

/** The first `min(size, 558,080)` bytes of a partition: what the selector loads and checks. */
export function loadedBytes(disk: DiskReader, offset: number, sizeBytes: number): Promise<Uint8Array> {
  return disk.read(offset, Math.min(sizeBytes, STAGE_MAX_BYTES));
}

/** Reads the GPT (either valid copy), the selector's partition and table, and checks every stage. */
export async function readBootStages(disk: DiskReader): Promise<BootStagesView> {
  const gpt = await readGptForEdit(disk);
  const ss = gpt.sectorSize;
  const span = (e: { firstLba: number; lastLba: number }) => ({ offset: e.firstLba * ss, sizeBytes: (e.lastLba - e.firstLba + 1) * ss });
  const bios = gpt.entries.find((e) => e.typeGuid === BIOS_BOOT_TYPE);
  const missing: string[] = [];
  const selector: SelectorOnDisk = { installed: false, missing };
  if (!bios) missing.push('no BIOS-boot partition holds the selector');
  else {
    selector.partition = { index: bios.index, label: bios.name, ...span(bios) };
    selector.table = decodeStageTable(await disk.read(selector.partition.offset, STAGE_TABLE_SIZE));
    if (!selector.table) missing.push(`BIOS-boot partition ${bios.index} holds no valid stage table`);
  }
  const code = await shippedCode();
  if (!code) missing.push(`this diskmint has no ${FALLBACK_MBR_FILE} and ${FALLBACK_STAGE2_FILE} to compare with`);
  else {
    if (!equalBytes(await disk.read(0, MBR_CODE_BYTES), code.mbr)) missing.push(`sector 0 does not hold ${FALLBACK_MBR_FILE}`);
    const p = selector.partition;
    if (p && !equalBytes(await disk.read(p.offset + STAGE_TABLE_SIZE, code.stage2.length), code.stage2))
      missing.push(`BIOS-boot partition ${p.index} does not hold ${FALLBACK_STAGE2_FILE} at byte ${STAGE_TABLE_SIZE}`);
  }
  selector.installed = missing.length === 0;
  const stages: StageOnDisk[] = [];
  for (const e of gpt.entries) {
    if (e.typeGuid !== FREEBSD_BOOT_TYPE) continue;
    const at = span(e);
    const record = selector.table?.find((r) => r.partitionGuid === e.guid);
    const check = checkStage(await loadedBytes(disk, at.offset, at.sizeBytes), record);
    stages.push({ index: e.index, label: e.name, guid: e.guid, attributes: e.attributes, ...at, record, check });
  }
  return { gpt, entries: toSlotEntries(gpt), stages, selector };
}

/** Each stage's check by GPT index, for formats/boot/stage-choice.ts. */
export function checksOf(view: BootStagesView): Map<number, StageCheck> {
  return new Map(view.stages.map((s) => [s.index, s.check]));
}
