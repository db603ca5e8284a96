/**
 * A FileTree from a tarball: plain tar, or gzip, xz, zstd or bzip2 compressed (known by the
 * first bytes, never by the name). A compressed archive is decompressed once, front to back,
 * into a temp file in the system's temp folder; file contents are ranges of that file (or of
 * the plain tarball itself), so nothing is held in memory. Owners, modes, times, file flags
 * (SCHILY.fflags), hard links and device numbers come from the archive only, never from the
 * user running diskmint.
 *
 * Owners as extracting the archive on the target system would set them (bsdtar and GNU tar
 * look the names up first): a member's uname/gname, when the target's tables know it, gives
 * the id; else the archive's numeric id stands. The tables are the tree's own (or the earlier
 * layers') etc/master.passwd and etc/group, else FreeBSD's stock ones (users.ts). This matters
 * for archives made without root from a METALOG (`tar -cf base.tar @METALOG`): bsdtar writes
 * the names and uid/gid 0. `numericOwner` keeps the numeric ids (tar --numeric-owner).
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
import { nameTables } from './users.js';

/** A tree whose contents may live in a temp file: `close()` removes it (call it when done). */
export interface LoadedTree {
  tree: FileTree;
  close(): Promise<void>;
}

export interface TarOptions {
  sourceDateEpoch?: number;
  /** Keep the archive's numeric uid/gid, ignoring uname/gname (tar --numeric-owner). */
  numericOwner?: boolean;
  /** Trees whose etc/master.passwd and etc/group name users when the archive holds none. */
  nameTrees?: FileTree[];
}

const KINDS: Record<Exclude<TarEntry['type'], 'hardlink'>, TreeNodeKind> = {
  file: 'file',
  symlink: 'symlink',
  char: 'char',
  block: 'block',
  dir: 'dir',
  fifo: 'fifo',
};

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

const WINDOW = 256 << 10;

/**
 * Reads of an archive through a 256 KiB window: the headers of small members lie close together,
 * so most come from one read. A returned view is valid until the next call.
 */
class WindowedReader {
  private readonly buf = Buffer.alloc(WINDOW);
  private start = 0;
  private end = 0;
  constructor(private readonly handle: FileHandle) {}

  async read(length: number, position: number): Promise<Uint8Array> {
    if (length > WINDOW) return readAt(this.handle, length, position);
    if (position < this.start || position + length > this.end) {
      const got = await readAt(this.handle, WINDOW, position);
      this.buf.set(got);
      this.start = position;
      this.end = position + got.length;
    }
    const from = position - this.start;
    return this.buf.subarray(from, Math.min(from + length, this.end - this.start));
  }
}

/** Every member of the plain tar at `path`, as nodes (hard links still pointing at their target). */
async function readMembers(path: string, label: string, names: Map<TreeNode, [string, string]>): Promise<Map<string, TreeNode>> {
  const handle = await open(path, 'r');
  const nodes = new Map<string, TreeNode>();
  try {
    const size = (await handle.stat()).size;
    const reader = new TarReader();
    const window = new WindowedReader(handle);
    for (let at = 0; ;) {
      if (at >= size && nodes.size > 0) break; // no end blocks: tolerated, as GNU tar does
      const block = await window.read(TAR_BLOCK, at);
      const step = reader.header(block);
      at += TAR_BLOCK;
      if (step.kind === 'end') break;
      const dataSize = step.kind === 'extension' ? step.size : step.entry.size;
      if (at + dataSize > size) throw new DiskmintError('INPUT', `${label} ends inside the data of a member (it is truncated)`);
      if (step.kind === 'extension') reader.extension(await window.read(dataSize, at));
      else {
        const e = step.entry;
        const p = normalizeArchivePath(e.path, 'tar');
        const node = nodeOfEntry(e, p, path, at);
        if (e.type === 'hardlink') {
          const target = normalizeArchivePath(e.linkname, 'tar');
          if (!nodes.has(target))
            throw new DiskmintError('INPUT', `${label}: ${JSON.stringify(p)} is a hard link to ${JSON.stringify(target)}, which comes nowhere before it`);
          if (target !== p) node.hardlinkOf = target;
        }
        if (p === '' && node.kind !== 'dir') throw new DiskmintError('INPUT', `${label}: the archive's root is not a folder`);
        nodes.set(p, node);
        names.set(node, [e.uname, e.gname]);
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

/** Each member's uid and gid from its uname and gname where the tables know them. */
async function ownersByName(members: Map<string, TreeNode>, names: Map<TreeNode, [string, string]>, nameTrees: FileTree[]): Promise<void> {
  const tables = await nameTables([{ nodes: [...members.values()] }, ...nameTrees]);
  for (const [node, [uname, gname]] of names) {
    const uid = uname ? tables.users.get(uname) : undefined;
    const gid = gname ? tables.groups.get(gname) : undefined;
    if (uid !== undefined) node.uid = uid;
    if (gid !== undefined) node.gid = gid;
  }
}

/** The tree a tarball holds; `close()` removes the decompressed temp file when there is one. */
export async function treeFromTar(file: string, opts: TarOptions = {}): Promise<LoadedTree> {
  const plain = await plainTar(file);
  try {
    const names = new Map<TreeNode, [string, string]>();
    const members = await readMembers(plain.path, file, names);
    if (!opts.numericOwner) await ownersByName(members, names, opts.nameTrees ?? []);
    const tree = finishTree(members, file);
    return { tree: opts.sourceDateEpoch === undefined ? tree : clampTimes(tree, opts.sourceDateEpoch), close: plain.remove };
  } catch (err) {
    await plain.remove();
    throw err;
  }
}
