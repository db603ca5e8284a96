/**
 * Slot commands for A/B firmware images: status, write, bootonce, confirm, activate and
 * simulate, on GPT images (FreeBSD's bootme/bootonce/bootfailed attributes) and on classic
 * NanoBSD MBR images (the active flag). Every command works on raw, qcow2, VMDK, VHD and VHDX.
 */
import { createHash } from 'node:crypto';
import { HASH_CHUNK, hashRange } from './hash.js';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { DiskmintError } from '../../model/errors.js';
import { sliceDiskReader, type DiskReader } from '../../model/disk-reader.js';
import { inspectDisk } from '../inspect.js';
import { formatBytes } from '../../model/size.js';
import { gptAttributeNames } from '../../../formats/schemes/gpt-attributes.js';
import { FREEBSD_BOOT_TYPE, FREEBSD_UFS_TYPE, gptTypeName } from '../../../formats/schemes/gpt-types.js';
import { activateSlot, chooseBootSlot, confirmBoot, setBootonce, type SlotEntry } from '../../../formats/boot/gptboot.js';
import { detectFilesystem } from '../../fs/detect.js';
import { openForReading, openImageEditor, type EditorOptions, type ImageEditor } from './editor.js';
import { checkGptCopiesFit, gptNeedsRepair, readGptForEdit, writeGptAttributes, type EditableGpt } from '../../schemes/gpt/edit.js';
import { applyBundle, isBundleFile, openCheckedBundle, type BundleTarget } from './bundle-write.js';
import { mbrSlots, setMbrActive, type MbrSlot } from '../../schemes/mbr/slots.js';

export type SlotRef = number | string;

export interface SlotInfo {
  index: number;
  label: string;
  type: string;
  attributes: string[];
  firstLba: number;
  sizeBytes: number;
  /** First 12 hex digits of the SHA-256 of the slot's bytes. */
  sha256: string;
  filesystem: { kind: string; label?: string };
  /** The slot that boots when no one-time request is pending. */
  isDefault: boolean;
}

export interface SlotStatus {
  path: string;
  format: string;
  scheme: 'gpt' | 'mbr';
  slots: SlotInfo[];
  /** What gptboot (or the MBR boot code) would boot next, and why. */
  next: { index?: number; label?: string; reason: string };
  /** freebsd-boot partitions (GPT), in order: the first is the primary boot stage. */
  bootStages: Array<{ index: number; label: string; sizeBytes: number; sha256: string }>;
}

export { hashRange };

async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: HASH_CHUNK })) h.update(chunk as Buffer);
  return h.digest('hex');
}

export function toSlotEntries(gpt: EditableGpt): SlotEntry[] {
  return gpt.entries.map((e) => ({ index: e.index, typeGuid: e.typeGuid, label: e.name, attributes: e.attributes }));
}

function resolveGptSlot(gpt: EditableGpt, ref: SlotRef): SlotEntry & { firstLba: number; lastLba: number } {
  const e = gpt.entries.find((x) => (typeof ref === 'number' || /^\d+$/.test(ref) ? x.index === Number(ref) : x.name === ref));
  if (!e) throw new DiskmintError('BAD_ARGUMENT', `no partition ${JSON.stringify(ref)} (give an index or a GPT label: ${gpt.entries.map((x) => x.name || x.index).join(', ')})`);
  if (e.typeGuid !== FREEBSD_UFS_TYPE) throw new DiskmintError('BAD_ARGUMENT', `partition ${e.index} (${e.name || 'unlabelled'}) is ${gptTypeName(e.typeGuid) ?? e.typeGuid}, not a freebsd-ufs OS slot`);
  return { index: e.index, typeGuid: e.typeGuid, label: e.name, attributes: e.attributes, firstLba: e.firstLba, lastLba: e.lastLba };
}

function slotName(e: { index: number; label: string }): string {
  return e.label ? `${e.index} (${e.label})` : String(e.index);
}

/** Which scheme carries the slots: GPT, or a NanoBSD-style MBR. */
async function schemeOf(disk: DiskReader): Promise<'gpt' | 'mbr'> {
  const { table } = await inspectDisk(disk);
  if (table?.scheme === 'gpt') return 'gpt';
  if (table?.scheme === 'mbr') return 'mbr';
  throw new DiskmintError('NOT_A_DISK', 'no GPT or MBR partition table: no slots to manage');
}

export async function slotStatus(path: string, opts: { hash?: boolean } & EditorOptions = {}): Promise<SlotStatus> {
  const { reader, format } = await openForReading(path, opts);
  try {
    const hashOf = (first: number, ss: number, size: number) => (opts.hash === false ? Promise.resolve('') : hashRange(reader, first * ss, size).then((h) => h.slice(0, 12)));
    if ((await schemeOf(reader)) === 'mbr') {
      const { slots, active } = await mbrSlots(reader);
      const infos: SlotInfo[] = [];
      for (const s of slots) infos.push(await mbrSlotInfo(reader, s, active, hashOf));
      const act = slots.find((s) => s.index === active);
      return { path, format, scheme: 'mbr', slots: infos, next: act ? { index: act.index, reason: `slice ${act.index} is marked active` } : { reason: 'no slice is marked active' }, bootStages: [] };
    }
    const gpt = await readGptForEdit(reader);
    const ss = gpt.sectorSize;
    const entries = toSlotEntries(gpt);
    const next = chooseBootSlot(entries, { firstTry: true });
    const plain = chooseBootSlot(entries.map((e) => ({ ...e, attributes: e.attributes & ~(1n << 58n) })), { firstTry: true });
    const slots: SlotInfo[] = [];
    for (const e of gpt.entries.filter((x) => x.typeGuid === FREEBSD_UFS_TYPE)) {
      const sizeBytes = (e.lastLba - e.firstLba + 1) * ss;
      const fs = await detectFilesystem(sliceDiskReader(reader, e.firstLba * ss, sizeBytes));
      slots.push({
        index: e.index, label: e.name, type: 'freebsd-ufs', attributes: gptAttributeNames(e.attributes), firstLba: e.firstLba, sizeBytes,
        sha256: await hashOf(e.firstLba, ss, sizeBytes), filesystem: { kind: fs.kind, label: fs.label }, isDefault: plain.index === e.index,
      });
    }
    const bootStages = [];
    for (const e of gpt.entries.filter((x) => x.typeGuid === FREEBSD_BOOT_TYPE)) {
      const sizeBytes = (e.lastLba - e.firstLba + 1) * ss;
      bootStages.push({ index: e.index, label: e.name, sizeBytes, sha256: await hashOf(e.firstLba, ss, sizeBytes) });
    }
    const chosen = gpt.entries.find((x) => x.index === next.index);
    return { path, format, scheme: 'gpt', slots, next: { index: next.index, label: chosen?.name, reason: next.reason }, bootStages };
  } finally {
    await reader.close();
  }
}

async function mbrSlotInfo(reader: DiskReader, s: MbrSlot, active: number | undefined, hashOf: (f: number, ss: number, n: number) => Promise<string>): Promise<SlotInfo> {
  const fs = await detectFilesystem(sliceDiskReader(reader, s.dataLba * 512, s.dataSectors * 512));
  return {
    index: s.index, label: `s${s.index}a`, type: 'freebsd (MBR slice, BSD label a)', attributes: s.index === active ? ['active'] : [],
    firstLba: s.dataLba, sizeBytes: s.dataSectors * 512, sha256: await hashOf(s.dataLba, 512, s.dataSectors * 512),
    filesystem: { kind: fs.kind, label: fs.label }, isDefault: s.index === active,
  };
}

export interface SlotEditOptions extends EditorOptions {
  /** Allow writing the slot that boots by default. */
  force?: boolean;
}

/** Open the image, run `fn` on its GPT, commit. */
async function editGpt<T>(path: string, opts: EditorOptions, fn: (editor: ImageEditor, gpt: EditableGpt) => Promise<T>): Promise<T> {
  const editor = await openImageEditor(path, opts);
  try {
    const result = await fn(editor, await readGptForEdit(editor.disk));
    await editor.commit();
    return result;
  } finally {
    await editor.close();
  }
}

async function setAttributes(editor: ImageEditor, gpt: EditableGpt, entries: SlotEntry[]): Promise<void> {
  const changed = new Map<number, bigint>();
  for (const e of entries) {
    const before = gpt.entries.find((x) => x.index === e.index);
    if (before && before.attributes !== e.attributes) changed.set(e.index, e.attributes);
  }
  // Rewrite when attributes change, and also to repair a damaged or stale copy.
  if (changed.size || gptNeedsRepair(gpt)) await writeGptAttributes(editor, gpt, changed);
}

export interface SlotWriteResult {
  slot: number;
  label: string;
  /** Byte offset of the slot's data in the image. */
  offset: number;
  bytes: number;
  sha256: string;
  bootonce: boolean;
}

export interface SlotWriteOptions extends SlotEditOptions {
  /** Then request a one-time boot of the slot (bootonce + bootme; GPT only). */
  bootonce?: boolean;
  /** For update bundles: the Ed25519 public key the bundle must be signed with. */
  pubkey?: string;
  /** For update bundles: refuse unsigned ones (needs `pubkey`). */
  requireSignature?: boolean;
}

/**
 * Open the image, find the slot's data area (GPT freebsd-ufs partition, or the `a` partition
 * of an MBR code slice), refuse the default slot unless forced, run `fill`, commit.
 */
async function writeIntoSlot(path: string, ref: SlotRef, opts: SlotWriteOptions, fill: (editor: ImageEditor, target: BundleTarget) => Promise<() => Promise<void>>): Promise<BundleTarget> {
  const editor = await openImageEditor(path, opts);
  let cleanup = async () => {};
  try {
    const target = (await schemeOf(editor.disk)) === 'gpt' ? await gptTarget(editor, ref, opts) : await mbrTarget(editor, ref, opts);
    if (target.offset + target.sizeBytes > editor.disk.size) {
      throw new DiskmintError('NOT_A_DISK', `slot ${slotName(target)} ends at byte ${target.offset + target.sizeBytes}, past the end of this ${editor.disk.size}-byte image: was it cut short? Nothing was written`);
    }
    cleanup = await fill(editor, target);
    await editor.commit();
    return target;
  } finally {
    await editor.close();
    await cleanup();
  }
}

async function gptTarget(editor: ImageEditor, ref: SlotRef, opts: SlotWriteOptions): Promise<BundleTarget> {
  const gpt = await readGptForEdit(editor.disk);
  if (opts.bootonce) checkGptCopiesFit(gpt, editor.disk.size); // before the slot is written
  const slot = resolveGptSlot(gpt, ref);
  const byDefault = chooseBootSlot(toSlotEntries(gpt).map((e) => ({ ...e, attributes: e.attributes & ~(1n << 58n) })), { firstTry: true }).index;
  if (byDefault === slot.index && !opts.force) {
    throw new DiskmintError('BAD_ARGUMENT', `slot ${slotName(slot)} is the one that boots by default; write the other slot, or pass --force`);
  }
  return { index: slot.index, label: slot.label, offset: slot.firstLba * gpt.sectorSize, sizeBytes: (slot.lastLba - slot.firstLba + 1) * gpt.sectorSize };
}

async function mbrTarget(editor: ImageEditor, ref: SlotRef, opts: SlotWriteOptions): Promise<BundleTarget> {
  if (opts.bootonce) throw new DiskmintError('BAD_ARGUMENT', 'MBR boot code has no one-time boot: write the slot, then `slot activate` it');
  const { slots, active } = await mbrSlots(editor.disk);
  const s = slots.find((x) => x.index === Number(ref));
  if (!s) throw new DiskmintError('BAD_ARGUMENT', `no code slice ${JSON.stringify(ref)} (slices holding a BSD label: ${slots.map((x) => x.index).join(', ')})`);
  if (s.index === active && !opts.force) throw new DiskmintError('BAD_ARGUMENT', `slice ${s.index} is active (it boots by default); write the other slice, or pass --force`);
  return { index: s.index, label: `s${s.index}a`, offset: s.dataLba * 512, sizeBytes: s.dataSectors * 512 };
}

/**
 * Write a filesystem image (or a signed update bundle) into a slot, read it back and compare
 * hashes, and only then, if asked, request a one-time boot.
 */
export async function slotWrite(path: string, ref: SlotRef, from: string, opts: SlotWriteOptions = {}): Promise<SlotWriteResult> {
  if (await isBundleFile(from)) return slotWriteBundle(path, ref, from, opts);
  if (opts.pubkey || opts.requireSignature) throw new DiskmintError('BAD_ARGUMENT', `${from} is not a signed update bundle, and a signature was required`);
  const st = await stat(from).catch(() => undefined);
  if (st === undefined) throw new DiskmintError('INPUT', `${from} not found`);
  // A device or FIFO has no size to check against the slot, and /dev/zero never ends.
  if (!st.isFile()) throw new DiskmintError('INPUT', `${from} is not a regular file; write a file system image (or an update bundle) into a slot`);
  const size = st.size;
  const target = await writeIntoSlot(path, ref, opts, async (editor, t) => {
    if (size > t.sizeBytes) throw new DiskmintError('BAD_ARGUMENT', `${from} is ${formatBytes(size)}, larger than slot ${slotName(t)} (${formatBytes(t.sizeBytes)})`);
    await editor.writeFile(t.offset, from, size);
    return async () => {};
  });
  const sha256 = await verifyWritten(path, target.offset, size, await hashFile(from), from, opts);
  if (opts.bootonce) await slotBootonce(path, target.index, opts);
  return { slot: target.index, label: target.label, offset: target.offset, bytes: size, sha256, bootonce: opts.bootonce === true };
}

async function slotWriteBundle(path: string, ref: SlotRef, from: string, opts: SlotWriteOptions): Promise<SlotWriteResult> {
  const bundle = await openCheckedBundle(from, opts); // signature and payload checked before any write
  const m = bundle.manifest;
  const target = await writeIntoSlot(path, ref, opts, (editor, t) => applyBundle(editor, bundle, t));
  const sha256 = await verifyWritten(path, target.offset, m.payloadSize, m.payloadSha256, from, opts);
  if (opts.bootonce) await slotBootonce(path, target.index, opts);
  return { slot: target.index, label: target.label, offset: target.offset, bytes: m.payloadSize, sha256, bootonce: opts.bootonce === true };
}

/** Re-open the image (or read through the owner's editor) and compare the slot's first `size` bytes with the expected hash. */
async function verifyWritten(path: string, offset: number, size: number, expected: string, from: string, opts: EditorOptions = {}): Promise<string> {
  const { reader } = await openForReading(path, opts);
  try {
    const written = await hashRange(reader, offset, size);
    if (written !== expected) throw new DiskmintError('IO', `read-back mismatch: the slot holds sha256 ${written.slice(0, 12)}, ${from} should give ${expected.slice(0, 12)}; boot attributes left unchanged`);
    return written;
  } finally {
    await reader.close();
  }
}

/** `gpart set -a bootonce`: bootonce and bootme on the slot. */
export async function slotBootonce(path: string, ref: SlotRef, opts: EditorOptions = {}): Promise<SlotEntry[]> {
  return editGpt(path, opts, async (editor, gpt) => {
    const slot = resolveGptSlot(gpt, ref);
    const next = setBootonce(toSlotEntries(gpt), slot.index);
    await setAttributes(editor, gpt, next);
    return next;
  });
}

/** What rc.d/gptboot does after a good boot. Returns its log lines. */
export async function slotConfirm(path: string, opts: EditorOptions = {}): Promise<string[]> {
  const { reader } = await openForReading(path, opts);
  const scheme = await schemeOf(reader).finally(() => reader.close());
  if (scheme === 'mbr') return ['MBR images have no one-time boot state to confirm'];
  return editGpt(path, opts, async (editor, gpt) => {
    const { entries, messages } = confirmBoot(toSlotEntries(gpt));
    await setAttributes(editor, gpt, entries);
    return messages;
  });
}

/** Make a slot the permanent default (GPT: bootme only on it; MBR: the active flag). */
export async function slotActivate(path: string, ref: SlotRef, opts: EditorOptions = {}): Promise<void> {
  const { reader } = await openForReading(path, opts);
  const scheme = await schemeOf(reader).finally(() => reader.close());
  if (scheme === 'mbr') {
    const editor = await openImageEditor(path, opts);
    try {
      await setMbrActive(editor, Number(ref));
      await editor.commit();
    } finally {
      await editor.close();
    }
    return;
  }
  await editGpt(path, opts, async (editor, gpt) => {
    const slot = resolveGptSlot(gpt, ref);
    await setAttributes(editor, gpt, activateSlot(toSlotEntries(gpt), slot.index));
  });
}
