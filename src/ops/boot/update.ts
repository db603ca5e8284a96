/**
 * `boot update`: a new boot stage into the freebsd-boot partition that is not the default
 * (bootcode/SELECTOR.md "What the commands do"). One editor, one lock, in this order:
 *
 *   the stage table with the new record (length, CRC-32 of FILE)   BARRIER
 *   FILE into the partition, zeros to its end                       BARRIER
 *   read back and compare
 *   (--bootonce) bootonce+bootme on it: the GPT edit's own order (src/schemes/gpt/edit.ts)
 *
 * The record lands first, so from then on the partition checks 'ok' only once every byte of
 * FILE is there: a crash at any write leaves either the old stage with its old record (the
 * table write was torn: no table, every non-empty stage accepted, the old bytes intact) or a
 * stage that fails its check. The default stage is never written, so it still boots.
 */
import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { ATTR_BOOTFAILED, ATTR_BOOTME, ATTR_BOOTONCE } from '../../../formats/boot/gptboot.js';
import { defaultBootStage, stageName } from '../../../formats/boot/stage-choice.js';
import { encodeStageTable, STAGE_MAX_BYTES, STAGE_TABLE_MAX_ENTRIES, STAGE_TABLE_SIZE } from '../../../formats/boot/stage-table.js';
import { openImageEditor, type EditorOptions, type ImageEditor } from '../../io/image-editor.js';
import { crc32 } from '../../model/crc32.js';
import type { DiskReader } from '../../model/disk-reader.js';
import { DiskmintError } from '../../model/errors.js';
import { formatBytes } from '../../model/size.js';
import { checkGptCopiesFit, writeGptAttributes } from '../../schemes/gpt/edit.js';
import { checksOf, readBootStages, type StageOnDisk } from './read.js';

export interface BootUpdateOptions extends EditorOptions {
  /** The new boot stage (gptboot, gptzfsboot). */
  from: string;
  /** Then mark it to be tried once (bootonce + bootme, bootfailed cleared). */
  bootonce?: boolean;
}

export interface BootUpdateResult {
  stage: number;
  label: string;
  bytes: number;
  sha256: string;
  /** The table record's CRC-32, 8 hex digits. */
  crc32: string;
  bootonce: boolean;
}

/** Zeros are written only over chunks that are not zero already (cost follows the data). */
const ZERO_CHUNK = 64 * 1024;

async function readStageFile(from: string): Promise<Uint8Array> {
  const st = await stat(from).catch(() => undefined);
  if (!st) throw new DiskmintError('INPUT', `${from} not found`);
  if (!st.isFile()) throw new DiskmintError('INPUT', `${from} is not a regular file; give the boot stage (gptboot) as a file`);
  if (st.size === 0) throw new DiskmintError('BAD_ARGUMENT', `${from} is empty; nothing was written`);
  if (st.size > STAGE_MAX_BYTES)
    throw new DiskmintError(
      'BAD_ARGUMENT',
      `${from} is ${st.size} bytes; a boot stage is loaded whole below 0x90000, at most ${STAGE_MAX_BYTES} bytes; nothing was written`,
    );
  const handle = await open(from, 'r');
  try {
    const bytes = new Uint8Array(st.size);
    const { bytesRead } = await handle.read(bytes, 0, st.size, 0);
    if (bytesRead !== st.size) throw new DiskmintError('INPUT', `${from} changed size while it was read`);
    return bytes;
  } finally {
    await handle.close();
  }
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

export async function bootUpdate(path: string, opts: BootUpdateOptions): Promise<BootUpdateResult> {
  const file = await readStageFile(opts.from);
  const expected = sha256(file);
  const editor = await openImageEditor(path, opts);
  try {
    const view = await readBootStages(editor.disk);
    if (view.stages.length < 2)
      throw new DiskmintError(
        'BAD_ARGUMENT',
        `${path} has ${view.stages.length} freebsd-boot partition${view.stages.length === 1 ? '' : 's'}; an update needs a second one to fall back to; nothing was written`,
      );
    const selector = view.selector.partition;
    if (!selector || selector.sizeBytes < STAGE_TABLE_SIZE)
      throw new DiskmintError(
        'BAD_ARGUMENT',
        `${path} has no BIOS-boot partition for the stage table (build it with "bootcode": "diskmint-fallback"); nothing was written`,
      );
    const byDefault = defaultBootStage(view.entries, checksOf(view));
    const target = view.stages.find((s) => s.index !== byDefault)!;
    if (file.length > target.sizeBytes)
      throw new DiskmintError(
        'BAD_ARGUMENT',
        `${opts.from} is ${formatBytes(file.length)}, larger than freebsd-boot partition ${stageName(target)} (${formatBytes(target.sizeBytes)}); nothing was written`,
      );
    if (opts.bootonce) checkGptCopiesFit(view.gpt, editor.disk.size); // before the first write
    const records = (view.selector.table ?? []).filter((r) => r.partitionGuid !== target.guid && view.stages.some((s) => s.guid === r.partitionGuid));
    const record = { partitionGuid: target.guid, length: file.length, crc32: crc32(file) };
    if (records.length >= STAGE_TABLE_MAX_ENTRIES) records.length = STAGE_TABLE_MAX_ENTRIES - 1;
    await editor.writeBytes(selector.offset, encodeStageTable([...records, record]));
    await editor.barrier();
    await writeStage(editor, target, file);
    await editor.barrier();
    await checkReadBack(editor.disk, target, file.length, expected, opts.from);
    if (opts.bootonce) {
      const attrs = (target.attributes | ATTR_BOOTME | ATTR_BOOTONCE) & ~ATTR_BOOTFAILED;
      await writeGptAttributes(editor, view.gpt, new Map([[target.index, attrs]]));
    }
    await editor.commit((disk) => checkReadBack(disk, target, file.length, expected, opts.from));
    return {
      stage: target.index,
      label: target.label,
      bytes: file.length,
      sha256: expected,
      crc32: record.crc32.toString(16).padStart(8, '0'),
      bootonce: opts.bootonce === true,
    };
  } finally {
    await editor.close();
  }
}

/** FILE at the partition's start, then zeros over whatever is not zero up to its end. */
async function writeStage(editor: ImageEditor, target: StageOnDisk, file: Uint8Array): Promise<void> {
  await editor.writeBytes(target.offset, file);
  const end = target.offset + target.sizeBytes;
  for (let at = target.offset + file.length; at < end;) {
    const n = Math.min(ZERO_CHUNK - ((at - target.offset) % ZERO_CHUNK), end - at);
    const old = await editor.disk.read(at, n);
    if (old.some((b) => b !== 0)) await editor.writeBytes(at, new Uint8Array(n));
    at += n;
  }
}

async function checkReadBack(disk: DiskReader, target: StageOnDisk, length: number, expected: string, from: string): Promise<void> {
  const got = sha256(await disk.read(target.offset, length));
  if (got !== expected)
    throw new DiskmintError(
      'IO',
      `read-back mismatch: freebsd-boot partition ${stageName(target)} holds sha256 ${got.slice(0, 12)}, ${from} should give ${expected.slice(0, 12)}; it now fails its check and the default stage still boots; attributes left unchanged`,
    );
}
