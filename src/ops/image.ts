/**
 * An image as a handle: open it once, read it, edit its slots, convert or compare it, close it.
 *
 * Edits (slot writes, bootonce, confirm, activate, repair) go through one editor: the image is
 * written in place as each edit runs (in the crash-safe order of src/ops/slots; a container
 * through its format's edit session), or, for a container that cannot be edited in place
 * (streamOptimized VMDK), the edits are collected and the container is rewritten once, to a temp
 * file renamed over it, by `commit()` or `close()`. A slot write commits pending edits, then
 * writes, commits (fsync) and reads the slot back from the file before any attribute is set on
 * it, as `slot write` does. Reads (`inspect`, `verify`, `compare`, `convert`) see the image as
 * committed: they commit pending edits first. An edit that fails leaves a rewritten container's
 * earlier pending edits as they were and drops its own; in place, what was written stays, as in
 * a raw image (the slot edits check before their first write).
 *
 * Nothing is printed: `convert`'s `progress` is a callback or a ProgressReporter, told only when
 * given.
 */
import { openDisk, type OpenDiskOptions } from '../io/open-disk.js';
import type { ContainerFormat } from '../containers/types.js';
import { DiskmintError } from '../model/errors.js';
import type { WriteImageOptions } from '../io/write-image.js';
import type { ProgressReporter } from '../io/progress.js';
import { inspectImage, type ImageInspection, type InspectOptions } from './inspect.js';
import { verifyImage, type VerifyOptions, type VerifyReport } from './verify/verify.js';
import { compareImages, type CompareOptions, type CompareResult } from './compare.js';
import { convertImage, type ConvertResult } from './convert.js';
import { openImageEditor, type ImageEditor } from '../io/image-editor.js';
import { withImageLock, type LockOptions } from '../io/image-lock.js';
import { repairImage, type RepairResult } from './repair.js';
import {
  slotActivate,
  slotBootonce,
  slotConfirm,
  slotStatus,
  slotWrite,
  type SlotRef,
  type SlotStatus,
  type SlotWriteOptions,
  type SlotWriteResult,
} from './slots/slots.js';

/** Progress of a long copy: bytes done of the total. */
export type ProgressCallback = (done: number, total: number) => void;

export interface OpenImageOptions extends OpenDiskOptions, LockOptions {
  /** Logical sector size of MBR/BSD disks for `inspect` and `verify` (default: detected). */
  sectorSize?: number;
}

export interface ImageVerifyOptions extends VerifyOptions {
  /** Also check a detached signature (from `signImage`) and every hash it lists... */
  signature?: string;
  /** ...made with this Ed25519 public key (PEM). */
  pubkey?: string;
}

export interface ImageConvertOptions extends Omit<WriteImageOptions, 'progress' | 'stdout'> {
  /**
   * Told as data is copied: a callback, called with bytes done of the total, or a
   * ProgressReporter (as `convertImage` takes). Without it, no progress.
   */
  progress?: ProgressCallback | ProgressReporter;
}

export type ImageSlotWriteOptions = Omit<SlotWriteOptions, 'editor' | 'beforeWrite'>;

export interface Image {
  readonly path: string;
  /** Container format, detected from content. */
  readonly format: ContainerFormat;
  /** Virtual disk size in bytes. */
  readonly size: number;
  /** Partition tables (nested too), what each partition holds, and the probes' findings. */
  inspect(opts?: InspectOptions): Promise<ImageInspection>;
  /** Findings; `ok` when none is an error. With `signature` and `pubkey`, the signature too. */
  verify(opts?: ImageVerifyOptions): Promise<VerifyReport>;
  /** Whether this image and another (a path, `IMG:N`, or a handle) hold the same disk. */
  compare(other: string | Image, opts?: Pick<CompareOptions, 'strict'>): Promise<CompareResult>;
  /** Write this image in another format (from `to`'s extension, or `opts.format`). */
  convert(to: string, opts?: ImageConvertOptions): Promise<ConvertResult>;
  /** The A/B slots: attributes, sizes, hashes, file systems, what boots next. */
  slots(opts?: { hash?: boolean }): Promise<SlotStatus>;
  /** Write a file system image or an update bundle into a slot and read it back; then bootonce if asked. */
  slotWrite(slot: SlotRef, from: string, opts?: ImageSlotWriteOptions): Promise<SlotWriteResult>;
  /** Request a one-time boot of a slot (`gpart set -a bootonce`). */
  bootonce(slot: SlotRef): Promise<void>;
  /** What rc.d/gptboot does after a good boot; returns its log lines. */
  confirm(): Promise<string[]>;
  /** Make a slot the permanent default. */
  activate(slot: SlotRef): Promise<void>;
  /** Rewrite a damaged or stale GPT copy from the good one, after replaying a VHDX log (`diskmint repair`). */
  repair(): Promise<RepairResult>;
  /** Make pending edits durable (fsync; a container that cannot be edited in place: the one rewrite). */
  commit(): Promise<void>;
  /** Commit pending edits and release the image. */
  close(): Promise<void>;
}

export async function openImage(path: string, options: OpenImageOptions = {}): Promise<Image> {
  const { lockTimeout, ...opts } = options;
  const opened = await openDisk(path, opts); // not an image: fails here
  const { format } = opened;
  const size = opened.reader.size;
  await opened.reader.close();
  let editor: ImageEditor | undefined;
  let closed = false;

  const live = () => {
    if (closed) throw new DiskmintError('BAD_ARGUMENT', `${path}: the image was closed`);
  };
  const commit = async () => {
    live();
    if (!editor) return;
    const e = editor;
    editor = undefined; // a container's reader is of the file it replaces: the next edit reopens
    try {
      await e.commit();
    } finally {
      await e.close();
    }
  };
  /** Run one edit through the shared editor; if it fails, drop what it added. */
  const edit = async <T>(fn: (e: ImageEditor) => Promise<T>): Promise<T> => {
    live();
    editor ??= await openImageEditor(path, { lockTimeout }); // the lock is held until the edits are committed
    const e = editor;
    const mark = e.mark();
    try {
      return await fn(e);
    } catch (err) {
      e.rollback(mark);
      throw err;
    }
  };
  /** Reads see the image as committed. */
  const read = async <T>(fn: () => Promise<T>): Promise<T> => {
    await commit();
    return fn();
  };

  const image: Image = {
    path,
    format,
    size,
    inspect: (o = {}) => read(() => inspectImage(path, { ...opts, ...o })),
    verify: (o = {}) =>
      read(async () => {
        const { signature, pubkey, ...rest } = o;
        if (!signature !== !pubkey) throw new DiskmintError('BAD_ARGUMENT', 'signature and pubkey go together');
        const report = await verifyImage(path, { ...opts, ...rest });
        if (signature && pubkey) {
          const { verifyImageSignature } = await import('./sign-verify.js');
          const sig = await verifyImageSignature(path, signature, pubkey);
          report.findings.push(...sig.findings);
          report.errors += sig.findings.filter((f) => f.severity === 'error').length;
          report.ok = report.ok && sig.ok;
        }
        return report;
      }),
    compare: (other, o = {}) => read(() => compareImages(path, typeof other === 'string' ? other : other.path, { ...opts, strict: o.strict })),
    convert: (to, o = {}) =>
      read(() => {
        const { progress, ...rest } = o;
        const reporter = typeof progress === 'function' ? callbackReporter(progress) : progress;
        return convertImage(path, to, { ...opts, ...rest, progress: reporter ?? false });
      }),
    slots: async (o = {}) => {
      live();
      return slotStatus(path, { ...o, editor });
    },
    async slotWrite(slot, from, o = {}) {
      // As `slot write`: the data committed (raw: fsync; a container: its rewrite) and read back
      // from the file before any attribute changes. Pending edits go first.
      // One lock throughout, so no other writer comes between the write and the bootonce.
      await commit();
      // slotWrite sets bootonce after the read-back (in place), or in the same rewrite (a container
      // that must be rewritten, read back before the rename): one rewrite per command.
      return withImageLock(path, { lockTimeout }, () => slotWrite(path, slot, from, { ...o, lockTimeout: o.lockTimeout ?? lockTimeout }));
    },
    bootonce: async (slot) => {
      await edit((e) => slotBootonce(path, slot, { editor: e }));
    },
    confirm: () => edit((e) => slotConfirm(path, { editor: e })),
    activate: (slot) => edit((e) => slotActivate(path, slot, { editor: e })),
    repair: () => read(() => repairImage(path, { lockTimeout })),
    commit,
    async close() {
      if (closed) return;
      try {
        await commit();
      } finally {
        closed = true;
      }
    },
  };
  return image;
}

/**
 * convertImage's progress (a ProgressReporter, which writeImage tells of every byte read) as
 * `progress(done, total)` calls.
 */
function callbackReporter(progress: ProgressCallback): ProgressReporter {
  let done = 0;
  let total = 0;
  return {
    start(bytes) {
      total = bytes;
      done = 0;
    },
    advance(bytes) {
      done += bytes;
      progress(done, total);
    },
    done() {},
  };
}
