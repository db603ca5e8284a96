/**
 * The disk the fallback selector's boot tests boot (bootcode/SELECTOR.md): protective MBR with
 * bootcode/fallback-mbr.bin, then GPT partitions
 *   1 selector  bios-boot     64 KiB: sector 0 the stage table, sectors 1.. fallback-stage2.bin
 *   2 boot-a    freebsd-boot  64 KiB: test stage A
 *   3 boot-b    freebsd-boot  64 KiB: empty until a test writes stage B
 *   4 os        freebsd-ufs    1 MiB: never read
 * built with diskmint's own buildImage, and the edits a boot cycle needs (a stage written with
 * its table record, attributes, damage), all through diskmint's image editor so that the same
 * calls work on raw and qcow2 images. When `boot update` / `boot confirm` exist, the cycle can
 * call them instead of writeStage / setAttributes.
 */
import { writeFile, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildImage, type Layout } from '../../src/index.js';
import { openImageEditor, openForReading } from '../../src/io/image-editor.js';
import { readGptForEdit, writeGptAttributes } from '../../src/schemes/gpt/edit.js';
import { readGpt } from '../../src/schemes/gpt/read.js';
import { crc32 } from '../../formats/common/crc32.js';
import { decodeStageTable, encodeStageTable, type StageChecksum } from '../../formats/boot/stage-table.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BOOTCODE = join(ROOT, 'bootcode');
export const FALLBACK_MBR = join(BOOTCODE, 'fallback-mbr.bin');
export const FALLBACK_STAGE2 = join(BOOTCODE, 'fallback-stage2.bin');
export const TEST_STAGE_A = join(BOOTCODE, 'test-stage-a.bin');
export const TEST_STAGE_B = join(BOOTCODE, 'test-stage-b.bin');

const SECTOR = 512;
/** FreeBSD sys/sys/disk/gpt.h GPT_ENT_ATTR_BOOTFAILED / BOOTONCE / BOOTME. */
export const BOOTFAILED = 1n << 57n;
export const BOOTONCE = 1n << 58n;
export const BOOTME = 1n << 59n;

export interface FallbackPart {
  /** 1-based GPT partition number. */
  index: number;
  guid: string;
  firstLba: number;
  lastLba: number;
}

export interface FallbackImage {
  path: string;
  selector: FallbackPart;
  a: FallbackPart;
  b: FallbackPart;
}

/**
 * Builds the image at `path` (raw); stage A is written and recorded in the table, B is empty.
 * `bSize`: the size of B's partition (default 64K).
 */
export async function buildFallbackImage(dir: string, path = join(dir, 'fallback.img'), opts: { bSize?: string } = {}): Promise<FallbackImage> {
  const selectorFile = join(dir, 'selector.bin');
  // Sector 0 (the table) starts as zeros, "no table"; it is written below once the GUIDs are known.
  await writeFile(selectorFile, Buffer.concat([Buffer.alloc(SECTOR), await readFile(FALLBACK_STAGE2)]));
  const layout: Layout = {
    scheme: 'gpt',
    seed: 'fallback-selector-test',
    bootcode: FALLBACK_MBR,
    align: '4K',
    partitions: [
      { type: 'bios-boot', label: 'selector', size: '64K', contents: { file: selectorFile } },
      { type: 'freebsd-boot', label: 'boot-a', size: '64K', contents: { file: TEST_STAGE_A } },
      { type: 'freebsd-boot', label: 'boot-b', size: opts.bSize ?? '64K' },
      { type: 'freebsd-ufs', label: 'os', size: '1M' },
    ],
  };
  await buildImage(layout, { output: path, baseDir: dir });
  const entries = await gptEntries(path);
  const part = (n: number): FallbackPart => {
    const e = entries.find((x) => x.index === n);
    if (!e) throw new Error(`fallback image: no partition ${n}`);
    return { index: e.index, guid: e.guid, firstLba: e.firstLba, lastLba: e.lastLba };
  };
  const image = { path, selector: part(1), a: part(2), b: part(3) };
  await recordStage(image, image.a, await readFile(TEST_STAGE_A));
  return image;
}

/** The entries of the valid GPT copy (primary first), as diskmint's reader sees them. */
export async function gptEntries(path: string) {
  const { reader } = await openForReading(path);
  try {
    return (await readGptForEdit(reader)).entries;
  } finally {
    await reader.close();
  }
}

/** Each copy's attributes by partition number (undefined for a copy that is not valid). */
export async function attributesOnDisk(path: string): Promise<{ primary?: Map<number, bigint>; backup?: Map<number, bigint> }> {
  const { reader } = await openForReading(path);
  try {
    const gpt = await readGpt(reader);
    const map = (c: { valid: boolean; entries?: { index: number; attributes: bigint }[] } | undefined) =>
      c?.valid && c.entries ? new Map(c.entries.map((e) => [e.index, e.attributes])) : undefined;
    return { primary: map(gpt?.primary), backup: map(gpt?.backup) };
  } finally {
    await reader.close();
  }
}

/** Sets the attributes of the listed partitions (both copies, diskmint's crash-safe GPT edit). */
export async function setAttributes(path: string, attributes: ReadonlyMap<number, bigint>): Promise<void> {
  const editor = await openImageEditor(path);
  try {
    await writeGptAttributes(editor, await readGptForEdit(editor.disk), attributes);
    await editor.commit();
  } finally {
    await editor.close();
  }
}

/** Writes raw bytes at a byte offset of the image (any container diskmint edits). */
export async function writeBytesAt(path: string, offset: number, bytes: Uint8Array): Promise<void> {
  const editor = await openImageEditor(path);
  try {
    await editor.writeBytes(offset, bytes);
    await editor.commit();
  } finally {
    await editor.close();
  }
}

function partBytes(p: FallbackPart): number {
  return (p.lastLba - p.firstLba + 1) * SECTOR;
}

/** Writes `stage` into the partition, zeros after it; the table is left as it is. */
export async function writeStageBytes(image: FallbackImage, p: FallbackPart, stage: Uint8Array): Promise<void> {
  if (stage.length > partBytes(p)) throw new Error(`a ${stage.length}-byte stage does not fit partition ${p.index}`);
  const whole = new Uint8Array(partBytes(p));
  whole.set(stage);
  await writeBytesAt(image.path, p.firstLba * SECTOR, whole);
}

/** Writes `stage` into the partition and records its length and CRC-32 in the selector's table. */
export async function recordStage(image: FallbackImage, p: FallbackPart, stage: Uint8Array): Promise<void> {
  await writeStageBytes(image, p, stage);
  const records = (await readStageTable(image)) ?? [];
  const next: StageChecksum[] = [...records.filter((r) => r.partitionGuid !== p.guid), { partitionGuid: p.guid, length: stage.length, crc32: crc32(stage) }];
  await writeBytesAt(image.path, image.selector.firstLba * SECTOR, encodeStageTable(next));
}

/** The selector's table as it is on the disk (undefined: no valid table). */
export async function readStageTable(image: FallbackImage): Promise<StageChecksum[] | undefined> {
  const { reader } = await openForReading(image.path);
  try {
    return decodeStageTable(await reader.read(image.selector.firstLba * SECTOR, SECTOR));
  } finally {
    await reader.close();
  }
}
