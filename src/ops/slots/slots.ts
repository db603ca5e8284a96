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
import type { SlotEntry } from '../../../formats/boot/gptboot.js';
import { detectFilesystem } from '../../fs/detect.js';
import { openForReading, openImageEditor, type EditorOptions, type ImageEditor } from '../../io/image-editor.js';
import { withImageLock } from '../../io/image-lock.js';
import { applyBundle, isBundleFile, openCheckedBundle, type BundleTarget } from './bundle-write.js';
import { SCHEME_HANDLERS, schemeHandler } from '../../schemes/registry.js';
import { listWords } from '../../schemes/sectors.js';
import type { SlotSupport } from '../../schemes/handler.js';
import type { PartitionTable } from '../../schemes/types.js';

export { toSlotEntries } from '../../schemes/gpt/slots.js';

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
  scheme: PartitionTable['scheme'];
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

/** The table whose scheme carries slots (GPT, or a NanoBSD-style MBR), with its slot support. */
export async function slotTable(disk: DiskReader): Promise<{ table: PartitionTable; slots: SlotSupport }> {
  const { table } = await inspectDisk(disk);
  const slots = table ? schemeHandler(table.scheme).slots : undefined;
  if (!table || !slots) {
    const names = SCHEME_HANDLERS.filter((h) => h.slots).map((h) => h.name.toUpperCase());
    throw new DiskmintError('NOT_A_DISK', `no ${listWords(names, 'or')} partition table: no slots to manage`);
  }
  return { table, slots };
}

export async function slotStatus(path: string, opts: { hash?: boolean } & EditorOptions = {}): Promise<SlotStatus> {
  const { reader, format } = await openForReading(path, opts);
  try {
    const hashOf = (offset: number, size: number) => (opts.hash === false ? Promise.resolve('') : hashRange(reader, offset, size).then((h) => h.slice(0, 12)));
    const { table, slots: support } = await slotTable(reader);
    const view = await support.read(reader, table);
    const slots: SlotInfo[] = [];
    for (const s of view.slots) {
      const fs = await detectFilesystem(sliceDiskReader(reader, s.offset, s.sizeBytes));
      slots.push({
        index: s.index,
        label: s.label,
        type: s.type,
        attributes: s.attributes,
        firstLba: s.firstLba,
        sizeBytes: s.sizeBytes,
        sha256: await hashOf(s.offset, s.sizeBytes),
        filesystem: { kind: fs.kind, label: fs.label },
        isDefault: s.isDefault,
      });
    }
    const bootStages = [];
    for (const b of view.bootStages) bootStages.push({ index: b.index, label: b.label, sizeBytes: b.sizeBytes, sha256: await hashOf(b.offset, b.sizeBytes) });
    return { path, format, scheme: table.scheme, slots, next: view.next, bootStages };
  } finally {
    await reader.close();
  }
}

function slotName(e: { index: number; label: string }): string {
  return e.label ? `${e.index} (${e.label})` : String(e.index);
}

export interface SlotEditOptions extends EditorOptions {
  /** Allow writing the slot that boots by default. */
  force?: boolean;
}

/** Open the image, run `fn` with its slot support, commit. */
async function editSlots<T>(
  path: string,
  opts: EditorOptions,
  fn: (editor: ImageEditor, support: SlotSupport, table: PartitionTable) => Promise<T>,
): Promise<T> {
  const editor = await openImageEditor(path, opts);
  try {
    const { table, slots } = await slotTable(editor.disk);
    const result = await fn(editor, slots, table);
    await editor.commit();
    return result;
  } finally {
    await editor.close();
  }
}

/** The scheme's slot support, read from the image without opening it for writing. */
async function slotSupportOf(path: string, opts: EditorOptions): Promise<SlotSupport> {
  const { reader } = await openForReading(path, opts);
  return slotTable(reader)
    .then((t) => t.slots)
    .finally(() => reader.close());
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
async function writeIntoSlot(
  path: string,
  ref: SlotRef,
  opts: SlotWriteOptions,
  fill: (editor: ImageEditor, target: BundleTarget) => Promise<() => Promise<void>>,
  check?: (disk: DiskReader, target: BundleTarget) => Promise<void>,
): Promise<BundleTarget> {
  const editor = await openImageEditor(path, opts);
  let cleanup = async () => {};
  try {
    const { table, slots } = await slotTable(editor.disk);
    const target = await slots.target(editor.disk, table, ref, opts);
    if (target.offset + target.sizeBytes > editor.disk.size) {
      throw new DiskmintError(
        'NOT_A_DISK',
        `slot ${slotName(target)} ends at byte ${target.offset + target.sizeBytes}, past the end of this ${editor.disk.size}-byte image: was it cut short? Nothing was written`,
      );
    }
    cleanup = await fill(editor, target);
    await editor.commit(check ? (disk) => check(disk, target) : undefined);
    return target;
  } finally {
    await editor.close();
    await cleanup();
  }
}

/**
 * Write a filesystem image (or a signed update bundle) into a slot, read it back and compare
 * hashes, and only then, if asked, request a one-time boot.
 */
export async function slotWrite(path: string, ref: SlotRef, from: string, opts: SlotWriteOptions = {}): Promise<SlotWriteResult> {
  // One lock from the write to the bootonce: no other writer between them (an owner's editor holds it already).
  if (opts.editor) return slotWriteLocked(path, ref, from, opts);
  return withImageLock(path, opts, () => slotWriteLocked(path, ref, from, opts));
}

async function slotWriteLocked(path: string, ref: SlotRef, from: string, opts: SlotWriteOptions): Promise<SlotWriteResult> {
  if (await isBundleFile(from)) return slotWriteBundle(path, ref, from, opts);
  if (opts.pubkey || opts.requireSignature) throw new DiskmintError('BAD_ARGUMENT', `${from} is not a signed update bundle, and a signature was required`);
  const st = await stat(from).catch(() => undefined);
  if (st === undefined) throw new DiskmintError('INPUT', `${from} not found`);
  // A device or FIFO has no size to check against the slot, and /dev/zero never ends.
  if (!st.isFile()) throw new DiskmintError('INPUT', `${from} is not a regular file; write a file system image (or an update bundle) into a slot`);
  const size = st.size;
  const expected = await hashFile(from);
  let bootonceDone = false;
  const target = await writeIntoSlot(
    path,
    ref,
    opts,
    async (editor, t) => {
      if (size > t.sizeBytes)
        throw new DiskmintError('BAD_ARGUMENT', `${from} is ${formatBytes(size)}, larger than slot ${slotName(t)} (${formatBytes(t.sizeBytes)})`);
      await editor.writeFile(t.offset, from, size);
      // A container that is rewritten (no in-place edits) gets the bootonce in the same rewrite, so
      // it is rewritten once: the read-back below runs on the new file before it replaces the old.
      if (opts.bootonce && !editor.inPlace) {
        await slotBootonce(path, t.index, { ...opts, editor });
        bootonceDone = true;
      }
      return async () => {};
    },
    async (disk, t) => {
      if (bootonceDone) await checkReadBack(disk, t.offset, size, expected, from);
    },
  );
  const sha256 = await verifyWritten(path, target.offset, size, expected, from, opts);
  if (opts.bootonce && !bootonceDone) await slotBootonce(path, target.index, opts);
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
    return await checkReadBack(reader, offset, size, expected, from);
  } finally {
    await reader.close();
  }
}

/** The slot's bytes hashed as `disk` holds them: a mismatch is an IO error (boot attributes untouched). */
async function checkReadBack(disk: DiskReader, offset: number, size: number, expected: string, from: string): Promise<string> {
  const written = await hashRange(disk, offset, size);
  if (written !== expected)
    throw new DiskmintError(
      'IO',
      `read-back mismatch: the slot holds sha256 ${written.slice(0, 12)}, ${from} should give ${expected.slice(0, 12)}; boot attributes left unchanged`,
    );
  return written;
}

/** `gpart set -a bootonce`: bootonce and bootme on the slot. */
export async function slotBootonce(path: string, ref: SlotRef, opts: EditorOptions = {}): Promise<SlotEntry[]> {
  const support = await slotSupportOf(path, opts);
  if (!support.oneTimeBoot) throw new DiskmintError('BAD_ARGUMENT', support.noOneTimeBoot?.bootonce ?? 'this image has no one-time boot');
  return editSlots(path, opts, (editor, slots) => slots.oneTimeBoot!.request(editor, ref));
}

/** What rc.d/gptboot does after a good boot. Returns its log lines. */
export async function slotConfirm(path: string, opts: EditorOptions = {}): Promise<string[]> {
  const support = await slotSupportOf(path, opts);
  if (!support.oneTimeBoot) return [support.noOneTimeBoot?.confirm ?? 'this image has no one-time boot state to confirm'];
  return editSlots(path, opts, (editor, slots) => slots.oneTimeBoot!.confirm(editor));
}

/** Make a slot the permanent default (GPT: bootme only on it; MBR: the active flag). */
export async function slotActivate(path: string, ref: SlotRef, opts: EditorOptions = {}): Promise<void> {
  await editSlots(path, opts, (editor, slots, table) => slots.activate(editor, table, ref));
}
