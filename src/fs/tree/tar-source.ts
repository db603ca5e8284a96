/**
 * A FileTree from a tarball: plain tar, or gzip, xz, zstd or bzip2 compressed (known by the
 * first bytes, never by the name). A compressed archive is decompressed once, front to back,
 * into a temp file in the system's temp folder; file contents are ranges of that file (or of
 * the plain tarball itself), so nothing is held in memory. Owners (the numeric uid and gid),
 * modes, times, file flags (SCHILY.fflags), hard links and device numbers come from the
 * archive only, never from the user running diskmint.
 */
import { createWriteStream } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { COMPRESSION_MAGIC_BYTES, detectCompression } from '../../../formats/common/compression.js';
import { FormatError } from '../../../formats/common/errors.js';
import { normalizeArchivePath } from '../../../formats/archive/archive-path.js';
import { TAR_BLOCK, TarReader, tarPadded, type TarEntry } from '../../../formats/archive/tar.js';
import { DecodeError, decompressedChunks } from '../../io/compressed/decode.js';
import { tempPathBeside, trackTempFile, untrackTempFile } from '../../io/temp-files.js';
import { DiskmintError, isSystemError } from '../../model/errors.js';
import { finishTree } from './order.js';
import { clampTimes } from './times.js';
import type { FileTree, TreeNode, TreeNodeKind } from './types.js';

/** A tree whose contents may live in a temp file: `close()` removes it (call it when done). */
export interface LoadedTree {
  tree: FileTree;
  close(): Promise<void>;
}

export interface TarOptions {
  sourceDateEpoch?: number;
}

const KINDS: Record<Exclude<TarEntry['type'], 'hardlink'>, TreeNodeKind> = { file: 'file', symlink: 'symlink', char: 'char', block: 'block', dir: 'dir', fifo: 'fifo' };

async function readAt(handle: FileHandle, length: number, position: number): Promise<Uint8Array> {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await handle.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

/** The archive's bytes as a plain tar: the file itself, or a temp file it was decompressed into. */
async function plainTar(file: string): Promise<{ path: string; remove: () => Promise<void> }> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    throw new DiskmintError('INPUT', `cannot read the archive ${file}: ${(err as Error).message}`);
  }
  const head = await readAt(handle, COMPRESSION_MAGIC_BYTES, 0).finally(() => handle.close());
  const kind = detectCompression(head);
  if (kind === undefined) return { path: file, remove: async () => {} };
  if (kind === 'zip') throw new DiskmintError('BAD_ARGUMENT', `${file} is a zip archive: give a tar, tar.gz, tar.xz, tar.zst or tar.bz2`);
  const temp = tempPathBeside(join(tmpdir(), 'diskmint-tree.tar'));
  trackTempFile(temp);
  const remove = async () => {
    await unlink(temp).catch(() => {});
    untrackTempFile(temp);
  };
  try {
    await pipeline(Readable.from(decompressedChunks(file, kind)), createWriteStream(temp, { flags: 'wx', mode: 0o600 }));
  } catch (err) {
    await remove();
    if (err instanceof DecodeError) throw new DiskmintError('INPUT', `${file}: the ${kind} stream is damaged or truncated (${err.message})`);
    if (isSystemError(err)) throw new DiskmintError('IO', `decompressing ${file} into ${tmpdir()} failed: ${err.message}`);
    throw err;
  }
  return { path: temp, remove };
}

function nodeOfEntry(e: TarEntry, path: string, archive: string, dataOffset: number): TreeNode {
  const node: TreeNode = {
    path,
    kind: e.type === 'hardlink' ? 'file' : KINDS[e.type],
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    flags: e.flags,
    atime: e.atime ?? e.mtime,
    mtime: e.mtime,
    ctime: e.ctime ?? e.mtime,
    birthtime: e.birthtime ?? e.mtime,
    size: 0,
  };
  if (e.type === 'file') {
    node.size = e.size;
    node.content = { path: archive, offset: dataOffset, length: e.size };
  } else if (e.type === 'symlink') {
    node.target = e.linkname;
    node.size = Buffer.byteLength(e.linkname);
  } else if (e.type === 'char' || e.type === 'block') node.device = { major: e.devmajor, minor: e.devminor };
  return node;
}

/** Every member of the plain tar at `path`, as nodes (hard links still pointing at their target). */
async function readMembers(path: string, label: string): Promise<Map<string, TreeNode>> {
  const handle = await open(path, 'r');
  const nodes = new Map<string, TreeNode>();
  try {
    const size = (await handle.stat()).size;
    const reader = new TarReader();
    for (let at = 0; ; ) {
      if (at >= size && nodes.size > 0) break; // no end blocks: tolerated, as GNU tar does
      const block = await readAt(handle, TAR_BLOCK, at);
      const step = reader.header(block);
      at += TAR_BLOCK;
      if (step.kind === 'end') break;
      const dataSize = step.kind === 'extension' ? step.size : step.entry.size;
      if (at + dataSize > size) throw new DiskmintError('INPUT', `${label} ends inside the data of a member (it is truncated)`);
      if (step.kind === 'extension') reader.extension(await readAt(handle, dataSize, at));
      else {
        const e = step.entry;
        const p = normalizeArchivePath(e.path, 'tar');
        const node = nodeOfEntry(e, p, path, at);
        if (e.type === 'hardlink') {
          const target = normalizeArchivePath(e.linkname, 'tar');
          if (!nodes.has(target)) throw new DiskmintError('INPUT', `${label}: ${JSON.stringify(p)} is a hard link to ${JSON.stringify(target)}, which comes nowhere before it`);
          if (target !== p) node.hardlinkOf = target;
        }
        if (p === '' && node.kind !== 'dir') throw new DiskmintError('INPUT', `${label}: the archive's root is not a folder`);
        nodes.set(p, node);
      }
      at += tarPadded(dataSize);
    }
  } catch (err) {
    if (err instanceof FormatError) throw new DiskmintError('INPUT', `${label} is not a tar archive diskmint can read: ${err.message}`);
    throw err;
  } finally {
    await handle.close();
  }
  return nodes;
}

/** The tree a tarball holds; `close()` removes the decompressed temp file when there is one. */
export async function treeFromTar(file: string, opts: TarOptions = {}): Promise<LoadedTree> {
  const plain = await plainTar(file);
  try {
    const tree = finishTree(await readMembers(plain.path, file), file);
    return { tree: opts.sourceDateEpoch === undefined ? tree : clampTimes(tree, opts.sourceDateEpoch), close: plain.remove };
  } catch (err) {
    await plain.remove();
    throw err;
  }
}
