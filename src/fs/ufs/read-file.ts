/**
 * A file's bytes, streamed: the data extents of its block map read in runs of up to 1 MiB
 * (neighbouring blocks read together), holes given as zeros or, for extraction, left out.
 * A pointer outside the file system is a FormatError naming the inode.
 */
import { fail } from '../../../formats/common/errors.js';
import { blockMap, type ReadBytes } from './read-blocks.js';
import type { UfsGeometry } from './read-geometry.js';
import type { UfsInode } from './inode-types.js';

const RUN_BYTES = 1 << 20;

/** The file's data (holes left out), as runs at their byte offsets in the file, in order. */
export async function* fileExtents(g: UfsGeometry, read: ReadBytes, inode: UfsInode): AsyncGenerator<{ offset: number; bytes: Uint8Array }> {
  const size = inode.size;
  let runOffset = -1; // file offset where the pending run starts
  let runDisk = 0; // disk byte offset of the pending run
  let runLength = 0;
  const flush = async () => {
    const bytes = await read(runDisk, runLength);
    if (bytes.length !== runLength) throw fail('ufs', 'TRUNCATED', `inode ${inode.ino}: its blocks lie past the end of the disk`);
    return { offset: runOffset, bytes };
  };
  for await (const piece of blockMap(g, read, inode, Math.ceil(g.sizeFrags / g.frag) + 3)) {
    if (piece.kind === 'indirect') continue;
    if (piece.kind === 'bad') {
      throw fail(
        'ufs',
        'BAD_VALUE',
        `inode ${inode.ino}: block pointer ${piece.addr} (logical block ${piece.lbn}) is outside the ${g.sizeFrags}-fragment file system`,
      );
    }
    const offset = piece.lbn * g.blockSize;
    const length = Math.min(piece.bytes, size - offset);
    const disk = piece.addr * g.fragSize;
    if (runLength > 0 && runOffset + runLength === offset && runDisk + runLength === disk && runLength + length <= RUN_BYTES) {
      runLength += length;
      continue;
    }
    if (runLength > 0) yield await flush();
    runOffset = offset;
    runDisk = disk;
    runLength = length;
  }
  if (runLength > 0) yield await flush();
}

/** Every byte of the file, holes as zeros, in chunks of at most 1 MiB. */
export async function* fileBytes(g: UfsGeometry, read: ReadBytes, inode: UfsInode): AsyncGenerator<Uint8Array> {
  let at = 0;
  const zeros = function* (upTo: number) {
    while (at < upTo) {
      const n = Math.min(RUN_BYTES, upTo - at);
      at += n;
      yield new Uint8Array(n);
    }
  };
  for await (const { offset, bytes } of fileExtents(g, read, inode)) {
    yield* zeros(offset);
    yield bytes;
    at = offset + bytes.length;
  }
  yield* zeros(inode.size);
}
