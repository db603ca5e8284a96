/**
 * A/B slots on GPT images (NanoBSD's GPT layout): freebsd-ufs partitions are OS slots, chosen
 * by gptboot from the bootme/bootonce/bootfailed attributes (FreeBSD sys/sys/disk/gpt.h bits
 * 57-59); freebsd-boot partitions are the boot stages pmbr loads.
 */
import { activateSlot, chooseBootSlot, confirmBoot, setBootonce, type SlotEntry } from '../../../formats/boot/gptboot.js';
import { gptAttributeNames } from '../../../formats/schemes/gpt-attributes.js';
import { FREEBSD_BOOT_TYPE as FREEBSD_BOOT, FREEBSD_UFS_TYPE as FREEBSD_UFS, gptTypeName } from '../../../formats/schemes/gpt-types.js';
import { DiskmintError } from '../../model/errors.js';
import type { DiskReader } from '../../model/disk-reader.js';
import type { SchemeSlots, SlotSupport, TableWriter } from '../handler.js';
import { checkGptCopiesFit, gptNeedsRepair, readGptForEdit, writeGptAttributes, type EditableGpt } from './edit.js';

const BOOTONCE = 1n << 58n;

export function toSlotEntries(gpt: EditableGpt): SlotEntry[] {
  return gpt.entries.map((e) => ({ index: e.index, typeGuid: e.typeGuid, label: e.name, attributes: e.attributes }));
}

export function slotName(e: { index: number; label: string }): string {
  return e.label ? `${e.index} (${e.label})` : String(e.index);
}

function resolveGptSlot(gpt: EditableGpt, ref: number | string): SlotEntry & { firstLba: number; lastLba: number } {
  const e = gpt.entries.find((x) => (typeof ref === 'number' || /^\d+$/.test(ref) ? x.index === Number(ref) : x.name === ref));
  if (!e)
    throw new DiskmintError(
      'BAD_ARGUMENT',
      `no partition ${JSON.stringify(ref)} (give an index or a GPT label: ${gpt.entries.map((x) => x.name || x.index).join(', ')})`,
    );
  if (e.typeGuid !== FREEBSD_UFS)
    throw new DiskmintError(
      'BAD_ARGUMENT',
      `partition ${e.index} (${e.name || 'unlabelled'}) is ${gptTypeName(e.typeGuid) ?? e.typeGuid}, not a freebsd-ufs OS slot`,
    );
  return { index: e.index, typeGuid: e.typeGuid, label: e.name, attributes: e.attributes, firstLba: e.firstLba, lastLba: e.lastLba };
}

/** The slot gptboot boots when no one-time request is pending. */
function defaultSlot(gpt: EditableGpt): number | undefined {
  return chooseBootSlot(
    toSlotEntries(gpt).map((e) => ({ ...e, attributes: e.attributes & ~BOOTONCE })),
    { firstTry: true },
  ).index;
}

async function readSlots(disk: DiskReader): Promise<SchemeSlots> {
  const gpt = await readGptForEdit(disk);
  const ss = gpt.sectorSize;
  const next = chooseBootSlot(toSlotEntries(gpt), { firstTry: true });
  const byDefault = defaultSlot(gpt);
  const span = (e: { firstLba: number; lastLba: number }) => ({ offset: e.firstLba * ss, sizeBytes: (e.lastLba - e.firstLba + 1) * ss });
  const slots = gpt.entries
    .filter((x) => x.typeGuid === FREEBSD_UFS)
    .map((e) => ({
      index: e.index,
      label: e.name,
      type: 'freebsd-ufs',
      attributes: gptAttributeNames(e.attributes),
      firstLba: e.firstLba,
      ...span(e),
      isDefault: byDefault === e.index,
    }));
  const bootStages = gpt.entries.filter((x) => x.typeGuid === FREEBSD_BOOT).map((e) => ({ index: e.index, label: e.name, ...span(e) }));
  const chosen = gpt.entries.find((x) => x.index === next.index);
  return { slots, next: { index: next.index, label: chosen?.name, reason: next.reason }, bootStages };
}

/** Set changed attributes; rewrite also to repair a damaged or stale copy. */
async function setAttributes(editor: TableWriter, gpt: EditableGpt, entries: SlotEntry[]): Promise<void> {
  const changed = new Map<number, bigint>();
  for (const e of entries) {
    const before = gpt.entries.find((x) => x.index === e.index);
    if (before && before.attributes !== e.attributes) changed.set(e.index, e.attributes);
  }
  if (changed.size || gptNeedsRepair(gpt)) await writeGptAttributes(editor, gpt, changed);
}

export const gptSlots: SlotSupport = {
  read: (disk) => readSlots(disk),
  async target(disk, _table, ref, opts) {
    const gpt = await readGptForEdit(disk);
    if (opts.bootonce) checkGptCopiesFit(gpt, disk.size); // before the slot is written
    const slot = resolveGptSlot(gpt, ref);
    if (defaultSlot(gpt) === slot.index && !opts.force) {
      throw new DiskmintError('BAD_ARGUMENT', `slot ${slotName(slot)} is the one that boots by default; write the other slot, or pass --force`);
    }
    return { index: slot.index, label: slot.label, offset: slot.firstLba * gpt.sectorSize, sizeBytes: (slot.lastLba - slot.firstLba + 1) * gpt.sectorSize };
  },
  async activate(editor, _table, ref) {
    const gpt = await readGptForEdit(editor.disk);
    const slot = resolveGptSlot(gpt, ref);
    await setAttributes(editor, gpt, activateSlot(toSlotEntries(gpt), slot.index));
  },
  oneTimeBoot: {
    entries: async (disk) => toSlotEntries(await readGptForEdit(disk)),
    async request(editor, ref) {
      const gpt = await readGptForEdit(editor.disk);
      const slot = resolveGptSlot(gpt, ref);
      const next = setBootonce(toSlotEntries(gpt), slot.index);
      await setAttributes(editor, gpt, next);
      return next;
    },
    async confirm(editor) {
      const gpt = await readGptForEdit(editor.disk);
      const { entries, messages } = confirmBoot(toSlotEntries(gpt));
      await setAttributes(editor, gpt, entries);
      return messages;
    },
  },
};
