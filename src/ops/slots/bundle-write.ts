/**
 * `slot write IMG SLOT --from UPDATE.dmb`: check the bundle's signature before anything is
 * written, check it fits the slot (and, for a delta, that the slot holds its base), run the whole
 * payload once without writing (raw images, which are edited in place), stream it into the slot,
 * read the slot back against the manifest's sha256, and only then set bootonce. A refusal, a
 * corrupt record or a payload that does not make the manifest's image leaves the slot's bytes and
 * attributes as they were.
 */
import { createHash } from 'node:crypto';
import { open, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tempPathBeside, trackTempFile, untrackTempFile } from '../../io/temp-files.js';
import { writeFully } from '../../io/write-fully.js';
import { DiskmintError } from '../../model/errors.js';
import { openBundle, bundleTargetCheck, type OpenedBundle } from '../bundle/open.js';
import { BUNDLE_MAGIC } from '../bundle/format.js';
import type { ImageEditor } from '../../io/image-editor.js';
import { hashRange, updateWithRange } from './hash.js';

export interface BundleTarget {
  index: number;
  label: string;
  /** Byte offset and size of the slot's data area in the image. */
  offset: number;
  sizeBytes: number;
}

export interface BundleWriteOptions {
  pubkey?: string;
  requireSignature?: boolean;
}

/** True when the file starts with the bundle magic. */
export async function isBundleFile(path: string): Promise<boolean> {
  const h = await open(path, 'r').catch(() => undefined);
  if (!h) return false;
  try {
    const buf = Buffer.alloc(BUNDLE_MAGIC.length);
    await h.read(buf, 0, buf.length, 0);
    return buf.toString('latin1') === BUNDLE_MAGIC;
  } finally {
    await h.close();
  }
}

/** Open and check the bundle; refuses unsigned or wrongly signed ones when a key is required. */
export async function openCheckedBundle(from: string, opts: BundleWriteOptions): Promise<OpenedBundle> {
  if (opts.requireSignature && !opts.pubkey) throw new DiskmintError('BAD_ARGUMENT', '--require-signature needs --pubkey KEY.pub to check the signature with');
  const bundle = await openBundle(from, { pubkey: opts.pubkey, requireSignature: opts.requireSignature || opts.pubkey !== undefined });
  if ((opts.pubkey || opts.requireSignature) && !bundle.verified)
    throw new DiskmintError('INPUT', `${from}: the signature does not verify with ${opts.pubkey}`);
  return bundle;
}

/**
 * Apply `bundle` into the slot `target` through `editor` (not committed here). Raw images take
 * the payload straight into place; containers spool it to a temp file first so the edit overlay
 * refers to a file instead of holding the payload in memory.
 */
export async function applyBundle(editor: ImageEditor, bundle: OpenedBundle, target: BundleTarget): Promise<() => Promise<void>> {
  const m = bundle.manifest;
  const base = m.kind === 'delta' ? await hashRange(editor.disk, target.offset, m.baseSize ?? 0) : undefined;
  const refusal = bundleTargetCheck(m, target.sizeBytes, base);
  if (refusal) throw new DiskmintError('BAD_ARGUMENT', `slot ${target.index}${target.label ? ` (${target.label})` : ''}: ${refusal}`);
  if (editor.inPlace) {
    await dryRunPayload(editor, bundle, target);
    for await (const chunk of bundle.payload()) await editor.writeBytes(target.offset + chunk.offset, chunk.data);
    return async () => {};
  }
  const spool = tempPathBeside(join(tmpdir(), 'diskmint-bundle.spool'));
  trackTempFile(spool);
  const handle = await open(spool, 'wx+');
  const cleanup = async () => {
    await handle.close().catch(() => {});
    await unlink(spool).catch(() => {});
    untrackTempFile(spool);
  };
  try {
    let at = 0;
    const pieces: Array<{ offset: number; length: number; at: number }> = [];
    for await (const chunk of bundle.payload()) {
      await writeFully(handle, chunk.data, at);
      pieces.push({ offset: chunk.offset, length: chunk.data.length, at });
      at += chunk.data.length;
    }
    for (const p of pieces) await editor.writeFile(target.offset + p.offset, spool, p.length, p.at);
  } catch (err) {
    await cleanup();
    throw err;
  }
  return cleanup; // the spool must outlive the editor's commit
}

/**
 * Images written in place (raw, and containers with in-place edits) see each write at once, so
 * the payload runs once first without writing: every record
 * decompresses and checks (payload() throws otherwise), and the slot it would leave, its current
 * bytes where a delta has no record, hashes to the manifest's payloadSha256. Only then is the
 * first byte written. (Containers that are rewritten into a temp file and renamed lose nothing on
 * a failure part-way through.)
 */
async function dryRunPayload(editor: ImageEditor, bundle: OpenedBundle, target: BundleTarget): Promise<void> {
  const m = bundle.manifest;
  const image = createHash('sha256');
  let at = 0; // bytes of the new image hashed so far
  for await (const chunk of bundle.payload()) {
    if (chunk.offset > at) await updateWithRange(image, editor.disk, target.offset + at, Math.min(chunk.offset, m.payloadSize) - at);
    const end = Math.min(chunk.offset + chunk.data.length, m.payloadSize);
    if (end > chunk.offset) image.update(chunk.data.subarray(0, end - chunk.offset));
    at = Math.max(at, end);
  }
  if (at < m.payloadSize) await updateWithRange(image, editor.disk, target.offset + at, m.payloadSize - at);
  if (image.digest('hex') !== m.payloadSha256) {
    throw new DiskmintError(
      'INPUT',
      `${bundle.path}: the slot would not hold the bundle's image (its sha256 would differ from the manifest's payloadSha256); nothing was written`,
    );
  }
}
