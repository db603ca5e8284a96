/**
 * The fallback for containers that cannot take an edit in place (streamOptimized VMDK, a
 * monolithicFlat descriptor, a qcow2 whose refcount table is full ...): the edits are collected
 * as an overlay and the container is rewritten whole, with the same format and options, to a temp
 * file beside the real file (a symlink is followed: its target is replaced, the link stays), with
 * the old file's mode and owner, fsynced and renamed over it only when complete. A crash leaves
 * the old image untouched. A file with other hard links is refused: a rename would split them.
 */
import { stat } from 'node:fs/promises';
import { DiskmintError } from '../model/errors.js';
import type { DiskReader } from '../model/disk-reader.js';
import { VirtualDisk, type ExtentSource } from '../model/extents.js';
import { FileCache, readRunInto } from './run-reader.js';
import { writeImage } from './write-image.js';
import { openDisk } from './open-disk.js';
import type { ContainerFormat, ContainerReader } from '../containers/types.js';
import type { EditorOptions, ImageEditor } from './image-editor.js';

interface Edit {
  offset: number;
  length: number;
  source: ExtentSource;
}

/**
 * An editor that rewrites the container at commit. `realPath` is the file itself (symlinks
 * resolved); `why` says why it cannot be edited in place (for the hard-link refusal).
 */
export async function rewritingEditor(
  path: string,
  realPath: string,
  base: ContainerReader,
  format: ContainerFormat,
  why: string,
  opts: EditorOptions,
): Promise<ImageEditor> {
  const st = await stat(realPath);
  if (st.nlink > 1) {
    throw new DiskmintError(
      'BAD_ARGUMENT',
      `${path} has ${st.nlink - 1} other hard link(s) and cannot be edited in place (${why}); a rewrite would split the links: nothing was changed`,
    );
  }
  const edits: Edit[] = [];
  const files = new FileCache();
  let writes = 0;
  const addEdit = (e: Edit) => {
    if (e.offset < 0 || e.offset + e.length > base.size)
      throw new DiskmintError('BAD_ARGUMENT', `write at ${e.offset} of ${e.length} bytes is outside the image`);
    opts.beforeWrite?.(++writes);
    edits.push(e);
  };
  const disk: DiskReader = {
    size: base.size,
    async read(offset, length) {
      const out = new Uint8Array(await base.read(offset, length));
      for (const e of edits) {
        const from = Math.max(offset, e.offset);
        const to = Math.min(offset + out.length, e.offset + e.length);
        if (from >= to) continue;
        const overlay = await overlayBytes(e, from - e.offset, to - from, files);
        out.set(overlay, from - offset);
      }
      return out;
    },
    close: async () => {},
  };
  return {
    path,
    format,
    inPlace: false,
    disk,
    async writeBytes(offset, data) {
      addEdit({ offset, length: data.length, source: { kind: 'bytes', data: new Uint8Array(data) } });
    },
    async writeFile(offset, file, length, fileOffset = 0) {
      addEdit({ offset, length, source: { kind: 'file', path: file, offset: fileOffset } });
    },
    async barrier() {
      opts.onBarrier?.(writes); // nothing to order: the commit replaces the whole file at once
    },
    async commit(check) {
      if (!edits.length) return;
      const merged = await mergeEdits(base, edits);
      // The check reads the complete temp file, opened as an image, before it replaces the old one.
      const beforeCommit = check
        ? async (temp: string) => {
            const { reader } = await openDisk(temp);
            try {
              await check(reader);
            } finally {
              await reader.close();
            }
          }
        : undefined;
      await writeImage(merged, realPath, {
        format,
        options: rewriteOptions(base),
        outputFile: { mode: st.mode & 0o7777, owner: { uid: st.uid, gid: st.gid }, beforeCommit },
      });
      edits.length = 0;
    },
    mark: () => edits.length,
    rollback(mark) {
      edits.length = Math.min(edits.length, mark);
    },
    async close() {
      await files.closeAll();
      await base.close();
    },
  };
}

async function overlayBytes(e: Edit, skip: number, length: number, files: FileCache): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  const s = e.source;
  if (s.kind === 'bytes') out.set(s.data.subarray(skip, skip + length));
  else if (s.kind === 'file') await readRunInto({ offset: 0, length: e.length, kind: 'file', path: s.path, fileOffset: s.offset }, skip, out, files);
  return out;
}

/** The base image's data with the edits laid over it (later edits win). */
async function mergeEdits(base: ContainerReader, edits: Edit[]): Promise<VirtualDisk> {
  // Flatten edits into disjoint pieces, later edits covering earlier ones.
  let pieces: Edit[] = [];
  for (const e of edits) pieces = [...subtract(pieces, e.offset, e.offset + e.length), e];
  const disk = new VirtualDisk(base.size);
  for await (const r of base.allocatedRanges()) {
    const whole: Edit = { offset: r.offset, length: Math.min(r.length, base.size - r.offset), source: { kind: 'reader', reader: base, offset: r.offset } };
    const kept = pieces.reduce<Edit[]>((acc, p) => subtract(acc, p.offset, p.offset + p.length), [whole]);
    for (const part of kept) disk.place(part.offset, part.length, part.source);
  }
  for (const p of pieces) disk.place(p.offset, p.length, p.source);
  return disk;
}

/** Remove [from, to) from each piece, splitting pieces and shifting their sources. */
function subtract(pieces: Edit[], from: number, to: number): Edit[] {
  const out: Edit[] = [];
  for (const p of pieces) {
    const end = p.offset + p.length;
    if (to <= p.offset || from >= end) {
      out.push(p);
      continue;
    }
    if (from > p.offset) out.push(slice(p, p.offset, from));
    if (to < end) out.push(slice(p, to, end));
  }
  return out;
}

function slice(p: Edit, from: number, to: number): Edit {
  const skip = from - p.offset;
  const s = p.source;
  const source: ExtentSource = s.kind === 'bytes' ? { kind: 'bytes', data: s.data.subarray(skip, skip + (to - from)) } : { ...s, offset: s.offset + skip };
  return { offset: from, length: to - from, source };
}

/** Options that reproduce the container's own format choices when it is rewritten. */
function rewriteOptions(r: ContainerReader): Record<string, string> {
  const d = r.details();
  switch (r.format) {
    case 'qcow2':
      return { compat: String(d.compat ?? '1.1'), cluster_size: String(d.cluster_size ?? 65536) };
    case 'vmdk': {
      const sub = r.subformat ?? 'monolithicSparse';
      if (!['monolithicSparse', 'streamOptimized', 'monolithicFlat'].includes(sub)) {
        throw new DiskmintError('BAD_ARGUMENT', `editing a ${sub} VMDK in place is not supported; convert it to monolithicSparse first`);
      }
      return { subformat: sub, ...(d.adapterType ? { adapter_type: String(d.adapterType) } : {}) };
    }
    case 'vhd':
      return { subformat: r.subformat ?? 'dynamic', force_size: 'on' };
    case 'vhdx':
      return { subformat: r.subformat ?? 'dynamic', ...(d.blockSize ? { block_size: String(d.blockSize) } : {}) };
    default:
      return {};
  }
}
