/**
 * `"bootcode": "diskmint-fallback"`: diskmint's own boot-stage selector (bootcode/SELECTOR.md).
 * The protective MBR gets bootcode/fallback-mbr.bin; a 64 KiB BIOS-boot partition `selector`
 * is added after the layout's partitions, holding the stage checksum table at byte 0
 * (formats/boot/stage-table.ts, one record per freebsd-boot partition whose contents are a
 * file) and bootcode/fallback-stage2.bin at byte 512.
 */
import { existsSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { dirname, join, resolve, isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeStageTable, STAGE_MAX_BYTES, STAGE_TABLE_MAX_ENTRIES, STAGE_TABLE_SIZE, type StageChecksum } from '../../formats/boot/stage-table.js';
import { FREEBSD_BOOT_TYPE } from '../../formats/schemes/gpt-types.js';
import { DiskmintError } from '../model/errors.js';
import { crc32 } from '../model/crc32.js';
import type { Layout, PartitionSpec } from './schema.js';
import type { PlanContext, PlannedImage } from './plan.js';

/** The layout's `bootcode` value that installs the selector. */
export const FALLBACK_BOOTCODE = 'diskmint-fallback';
/** SELECTOR.md "Where it lives": the selector's BIOS-boot partition, 64 KiB, named `selector`. */
export const SELECTOR_LABEL = 'selector';
export const SELECTOR_PARTITION_BYTES = 64 * 1024;
/** GPT type of the selector's partition (GRUB's BIOS boot partition). */
export const BIOS_BOOT_TYPE = '21686148-6449-6e6f-744e-656564454649';
/** The MBR code area the selector's first stage fills: bytes 0-439 (the disk signature follows). */
export const MBR_CODE_BYTES = 440;
export const FALLBACK_MBR_FILE = 'fallback-mbr.bin';
export const FALLBACK_STAGE2_FILE = 'fallback-stage2.bin';

/**
 * The package's bootcode/ folder: the nearest folder above this module (src/layout/ in the
 * sources, dist/src/layout/ when compiled, dist/ in the bundle) holding package.json and
 * bootcode/.
 */
export function bootcodeDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bootcode'))) return join(dir, 'bootcode');
    const up = dirname(dir);
    if (up === dir) throw new DiskmintError('INPUT', "diskmint's bootcode/ folder was not found beside its package.json");
    dir = up;
  }
}

export interface FallbackBootcode {
  /** The first 440 bytes of fallback-mbr.bin. */
  mbr: Uint8Array;
  stage2: Uint8Array;
}

/** Reads fallback-mbr.bin and fallback-stage2.bin; a missing or oversized file is an INPUT error. */
export async function readFallbackBootcode(): Promise<FallbackBootcode> {
  const dir = bootcodeDir();
  const read = async (name: string) =>
    new Uint8Array(
      await readFile(join(dir, name)).catch(() => {
        throw new DiskmintError('INPUT', `${join(dir, name)} not found: this diskmint has no fallback selector boot code`);
      }),
    );
  const mbr = await read(FALLBACK_MBR_FILE);
  const stage2 = await read(FALLBACK_STAGE2_FILE);
  if (stage2.length > SELECTOR_PARTITION_BYTES - STAGE_TABLE_SIZE)
    throw new DiskmintError(
      'INPUT',
      `${FALLBACK_STAGE2_FILE} is ${stage2.length} bytes; the selector partition holds ${SELECTOR_PARTITION_BYTES - STAGE_TABLE_SIZE} after its table`,
    );
  return { mbr: mbr.subarray(0, MBR_CODE_BYTES), stage2 };
}

/** The stage table record of a file's first bytes (its whole length, at most pmbr's limit). */
export async function stageRecordOfFile(path: string, partitionGuid: string): Promise<StageChecksum | undefined> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    if (size < 1 || size > STAGE_MAX_BYTES) return undefined;
    const bytes = new Uint8Array(size);
    await handle.read(bytes, 0, size, 0);
    return { partitionGuid, length: size, crc32: crc32(bytes) };
  } finally {
    await handle.close();
  }
}

/** The selector partition's used bytes: the stage table (sector 0), then the selector's code. */
export function selectorBytes(stage2: Uint8Array, records: readonly StageChecksum[]): Uint8Array {
  const bytes = new Uint8Array(STAGE_TABLE_SIZE + stage2.length);
  bytes.set(encodeStageTable(records.slice(0, STAGE_TABLE_MAX_ENTRIES)), 0);
  bytes.set(stage2, STAGE_TABLE_SIZE);
  return bytes;
}

type Planner = (layout: Layout, ctx: PlanContext, fixedBytes?: number) => Promise<PlannedImage>;

function layoutProblem(path: string, message: string): DiskmintError {
  const problem = `${path}: ${message}`;
  return new DiskmintError('LAYOUT', problem, [problem]);
}

/**
 * Plans a layout whose bootcode is "diskmint-fallback": the layout with the selector partition
 * added and the MBR code file named, planned as any other, then the selector partition's bytes.
 */
export async function planWithSelector(layout: Layout, ctx: PlanContext, fixedBytes: number | undefined, plan: Planner): Promise<PlannedImage> {
  const at = ctx.path ? `${ctx.path}.bootcode` : 'bootcode';
  if (layout.scheme !== 'gpt') throw layoutProblem(at, `"${FALLBACK_BOOTCODE}" chooses among freebsd-boot GPT partitions; this layout is ${layout.scheme}`);
  const isStage = (p: PartitionSpec) => p.type === 'freebsd-boot' || p.type.toLowerCase() === FREEBSD_BOOT_TYPE;
  if (!layout.partitions.some(isStage)) throw layoutProblem(at, `"${FALLBACK_BOOTCODE}" needs at least one freebsd-boot partition to boot`);
  if (layout.partitions.some((p) => p.label === SELECTOR_LABEL))
    throw layoutProblem(at, `"${FALLBACK_BOOTCODE}" adds the partition "${SELECTOR_LABEL}"; the layout already has one by that label`);
  const dir = bootcodeDir();
  for (const name of [FALLBACK_MBR_FILE, FALLBACK_STAGE2_FILE]) {
    if (!existsSync(join(dir, name))) throw layoutProblem(at, `${join(dir, name)} not found: this diskmint has no fallback selector boot code`);
  }
  const code = await readFallbackBootcode();
  const selector: PartitionSpec = { type: 'bios-boot', label: SELECTOR_LABEL, size: SELECTOR_PARTITION_BYTES, contents: { zero: true } };
  // Planned without a bootcode file (the disk signature is then seeded, as for code of 440 bytes), then given the code.
  const planned = await plan({ ...layout, bootcode: undefined, partitions: [...layout.partitions, selector] }, ctx, fixedBytes);
  planned.bootcode = code.mbr;
  const records: StageChecksum[] = [];
  for (const p of planned.partitions) {
    if (p.gptType !== FREEBSD_BOOT_TYPE || p.contents.kind !== 'file' || !p.guid) continue;
    const path = isAbsolute(p.contents.path) ? p.contents.path : resolve(ctx.baseDir, p.contents.path);
    const record = await stageRecordOfFile(path, p.guid);
    if (record) records.push(record);
  }
  const bytes = selectorBytes(code.stage2, records);
  const last = planned.partitions[planned.partitions.length - 1];
  last.contents = { kind: 'bytes', bytes, what: 'the fallback selector (stage table + fallback-stage2.bin)' };
  return planned;
}
