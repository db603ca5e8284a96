/**
 * A virtual disk's runs with the holes of large source files left out: a file run (a raw image
 * placed into a layout, a raw input being converted) becomes the runs of its data, as the kernel
 * maps the file (lseek SEEK_DATA), so writers never read its holes. Without the kernel calls the
 * runs are as they were, and the writers read the holes as zeros.
 */
import { VirtualDisk, type DataRun, type ExtentSource } from '../../model/extents.js';
import { FileCache } from '../run-reader.js';
import { ZERO_BLOCK } from '../zero-blocks.js';
import { kernelIo } from './ffi.js';
import { seekDataIo, seekDataRanges } from './data-ranges.js';

/** File runs shorter than this are read whole: a lookup per small file would cost more than its holes. */
const SPLIT_AT_LEAST = 4 << 20;

/**
 * `runs` with every file run of SPLIT_AT_LEAST bytes or more cut down to its data, each piece
 * widened to whole ZERO_BLOCKs counted from the run's start (where writers' zero blocks fall), so
 * the bytes written, and the blocks left as holes, are those of the whole run.
 */
export async function dataOnlyRuns(runs: Iterable<DataRun>, files: FileCache): Promise<DataRun[]> {
  const out: DataRun[] = [];
  for (const run of runs) {
    const io = run.kind === 'file' && run.length >= SPLIT_AT_LEAST ? kernelIo() : undefined;
    if (run.kind !== 'file' || !io) {
      out.push(run);
      continue;
    }
    await files.withFile(run.path, async (handle) => {
      const fileIo = seekDataIo(handle.fd, io);
      // A file shorter than its run (changed since it was placed) is read whole, to fail as it did.
      if (!fileIo || (await handle.stat()).size < run.fileOffset + run.length) return void out.push(run);
      let last: DataRun | undefined;
      for (const r of seekDataRanges(fileIo, handle.fd, run.fileOffset, run.fileOffset + run.length, run.path)) {
        const start = Math.floor((r.offset - run.fileOffset) / ZERO_BLOCK) * ZERO_BLOCK;
        const end = Math.min(run.length, Math.ceil((r.offset + r.length - run.fileOffset) / ZERO_BLOCK) * ZERO_BLOCK);
        if (last && run.offset + start <= last.offset + last.length) last.length = run.offset + end - last.offset;
        else out.push((last = { ...run, offset: run.offset + start, length: end - start, fileOffset: run.fileOffset + start }));
      }
    });
  }
  return out;
}

/**
 * `disk` with its large file runs cut down to their data (see dataOnlyRuns), for reading its
 * blocks: the same bytes, without the holes. The disk itself is `disk` when nothing was cut, so
 * what writers derive from its shape (identifiers) never depends on the path taken.
 */
export async function withoutFileHoles(disk: VirtualDisk): Promise<VirtualDisk> {
  const original = [...disk.runs()];
  if (!original.some((r) => r.kind === 'file' && r.length >= SPLIT_AT_LEAST) || !kernelIo()) return disk;
  const files = new FileCache();
  try {
    const runs = await dataOnlyRuns(original, files);
    if (runs.length === original.length && runs.every((r, i) => r.length === original[i].length)) return disk;
    const mapped = new VirtualDisk(disk.size);
    for (const r of runs) mapped.place(r.offset, r.length, sourceOf(r));
    return mapped;
  } finally {
    await files.closeAll();
  }
}

function sourceOf(run: DataRun): ExtentSource {
  if (run.kind === 'bytes') return { kind: 'bytes', data: run.data };
  if (run.kind === 'file') return { kind: 'file', path: run.path, offset: run.fileOffset };
  return { kind: 'reader', reader: run.reader, offset: run.readerOffset };
}
