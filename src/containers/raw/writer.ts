/**
 * Raw output of a virtual disk, into a ByteSink. To a file (a seekable sink): data extents are
 * written in place and zero ranges stay holes (a sparse file); all-zero blocks inside file data
 * become holes too, as `cp --sparse=always` does. Large source files are read only where the
 * kernel says they hold data (io/kernel/), and their non-zero blocks are copied by the kernel
 * (copy_file_range: a reflink where the file system shares extents) when it can, else written.
 * To a pipe: everything, zeros included, in order. `writeRawImage` (the library's) writes a file
 * through a temp file beside the target, renamed only when complete.
 */
import { FileCache, readRunInto } from '../../io/run-reader.js';
import { fileSink, streamSink, type ByteSink } from '../../io/sink.js';
import { writeAtomically } from '../../io/atomic-output.js';
import { nonZeroSpans } from '../../io/zero-blocks.js';
import type { Writable } from 'node:stream';
import { DiskmintError } from '../../model/errors.js';
import type { DataRun, VirtualDisk } from '../../model/extents.js';
import { forEachConcurrent } from '../../io/concurrency.js';
import { dataOnlyRuns } from '../../io/kernel/file-data-runs.js';
import { copyFileRange } from '../../io/kernel/copy.js';
import { pageAlignedBuffer } from '../../io/aligned-memory.js';

const CHUNK = 4 << 20; // read/write unit for file data (the largest one, for a file)
/** The smallest read/write unit for a file; see copyChunk. */
const MIN_COPY_CHUNK = 1 << 20;

export interface RawWriteResult {
  /** Bytes of data actually written (holes excluded for files). */
  bytesWritten: number;
  size: number;
}

/**
 * Write `disk` to `target` as a raw image: a file (through writeAtomically: temp file, fsync,
 * rename), or with '-' the stream `opts.stdout`.
 */
export async function writeRawImage(disk: VirtualDisk, target: string, opts: { stdout?: Writable } = {}): Promise<RawWriteResult> {
  if (target === '-') {
    if (!opts.stdout) throw new DiskmintError('BAD_ARGUMENT', "raw output to '-' needs the stream to write to (opts.stdout)");
    const sink = streamSink(opts.stdout);
    const result = await writeRaw(disk, sink);
    await sink.finish();
    return result;
  }
  return writeAtomically(target, async (handle) => {
    const sink = fileSink(handle);
    const result = await writeRaw(disk, sink);
    await sink.finish();
    return result;
  });
}

/**
 * Write `disk` as a raw image into `sink`, whose position is left at the disk's end (the caller
 * finishes the sink): positional writes with holes when it is seekable, else everything in order.
 */
export async function writeRaw(disk: VirtualDisk, sink: ByteSink): Promise<RawWriteResult> {
  return sink.seekable ? writeRawToFile(disk, sink) : writeRawToStream(disk, sink);
}

async function writeRawToFile(disk: VirtualDisk, out: ByteSink): Promise<RawWriteResult> {
  let bytesWritten = 0;
  const files = new FileCache();
  const buffers: Uint8Array[] = [];
  try {
    const runs = await dataOnlyRuns(disk.runs(), files);
    const chunk = copyChunk(runs);
    const copier = kernelCopier(out, files);
    // Pieces go to disjoint ranges, so they are copied by COPY_WORKERS loops at once: reads and
    // writes then overlap in libuv's thread pool, on every core (only pwrite is used: a file
    // sink's positional writes go straight to the file, so they may run at once).
    await forEachConcurrent(gatheredPieces(runs, chunk), COPY_WORKERS, async (piece, worker) => {
      const only = piece.parts.length === 1 ? piece.parts[0] : undefined;
      if (only?.run.kind === 'bytes') {
        await out.pwrite(only.run.data.subarray(only.skip, only.skip + only.n), piece.position);
        bytesWritten += only.n;
        return;
      }
      buffers[worker] ??= pageAlignedBuffer(chunk); // page-aligned: a piece on a page boundary goes to the device without a copy
      const data = buffers[worker].subarray(0, piece.length);
      await fillPiece(piece, data, files);
      const written = await writeSkippingZeros(out, data, piece, copier); // not `+= await`: loops run at once
      bytesWritten += written;
    });
    await out.skip(disk.size - out.position); // the file ends where the disk does (a hole up to there)
  } finally {
    await files.closeAll();
  }
  return { bytesWritten, size: disk.size };
}

/**
 * The copy unit for these runs: CHUNK, or less when there is little data, so that the copy loops'
 * buffers stay under a sixteenth of it. New memory costs a page fault per 4 KiB on first touch,
 * ~10 us each on some VMs: four 4 MiB buffers for a 64 MiB FAT volume cost ~40 ms there, more
 * than the larger writes save (measured: fat create 184 -> 161 ms with 1 MiB; a 512 MiB file
 * still copies faster in 4 MiB pieces).
 */
function copyChunk(runs: readonly DataRun[]): number {
  let dataBytes = 0;
  for (const run of runs) dataBytes += run.length;
  let chunk = MIN_COPY_CHUNK;
  while (chunk < CHUNK && chunk * COPY_WORKERS * 16 < dataBytes) chunk *= 2;
  return chunk;
}

/** Copy loops at once: four keeps libuv's four threads busy (measured: 2x one loop on 2 cores). */
const COPY_WORKERS = 4;
/** Reads in flight for one gathered piece (many small files): bounds the files open at once. */
const PART_READS = 8;
/** File parts up to this size are read synchronously (fillPiece). */
const SYNC_READ_MAX = 256 << 10;
/** Runs this close together share one write; the bytes between them are written as zeros. */
const GATHER_GAP = 64 << 10;

/** Up to a chunk of bytes written with one write: a piece of a large run, or several small runs. */
interface Piece {
  position: number;
  length: number;
  /** `n` bytes of `run` from `skip`, at `at` bytes into the piece; parts are in disk order. */
  parts: { run: DataRun; skip: number; at: number; n: number }[];
}

/**
 * Every data run in disk order, cut into `chunk`-sized pieces, with neighbouring small runs
 * gathered into one piece: a FAT volume of many small files (or a layout of many small
 * partitions) is then written in a few large writes instead of one per file.
 */
function* gatheredPieces(runs: Iterable<DataRun>, chunk: number): Generator<Piece> {
  let piece: Piece | undefined;
  for (const run of runs) {
    for (let skip = 0; skip < run.length; skip += chunk) {
      const n = Math.min(chunk, run.length - skip);
      const position = run.offset + skip;
      const joins = piece !== undefined && position - (piece.position + piece.length) <= GATHER_GAP && position + n - piece.position <= chunk;
      if (!joins) {
        if (piece) yield piece;
        piece = { position, length: 0, parts: [] };
      }
      const at = position - piece!.position;
      piece!.parts.push({ run, skip, at, n });
      piece!.length = at + n;
    }
  }
  if (piece) yield piece;
}

/** Fill `data` with the piece's bytes: its runs' bytes, zeros in the gaps between them. */
async function fillPiece(piece: Piece, data: Uint8Array, files: FileCache): Promise<void> {
  let end = 0;
  for (const { at, n } of piece.parts) {
    if (at > end) data.fill(0, end, at);
    end = at + n;
  }
  // Small file parts (a tree's many small files) are read here and now: from the page cache a
  // synchronous read costs a few microseconds, a read through libuv's threads several times that.
  const rest: Piece['parts'] = [];
  for (const part of piece.parts) {
    const { run, skip, at, n } = part;
    if (run.kind === 'file' && n <= SYNC_READ_MAX) files.readSync(run.path, data.subarray(at, at + n), run.fileOffset + skip);
    else rest.push(part);
  }
  await forEachConcurrent(rest, PART_READS, ({ run, skip, at, n }) => readRunInto(run, skip, data.subarray(at, at + n), files));
}

/**
 * Write the piece's non-zero 64 KiB blocks from `data` (neighbours in one write): the rest stays
 * holes. A span inside one file part is copied from that file by the kernel when it can.
 */
async function writeSkippingZeros(out: ByteSink, data: Uint8Array, piece: Piece, copier: KernelCopier | undefined): Promise<number> {
  let written = 0;
  for (const [start, end] of nonZeroSpans(data)) {
    const part = copier && piece.parts.find((p) => p.run.kind === 'file' && p.at <= start && end <= p.at + p.n);
    const copied = part?.run.kind === 'file' ? await copier!(part.run, part.skip + start - part.at, end - start, piece.position + start) : 0;
    if (copied < end - start) await out.pwrite(data.subarray(start + copied, end), piece.position + start + copied);
    written += end - start;
  }
  return written;
}

/** Copies `n` bytes at `skip` into a file run to `position` of the output; returns how many it copied. */
type KernelCopier = (run: Extract<DataRun, { kind: 'file' }>, skip: number, n: number, position: number) => Promise<number>;

/**
 * copy_file_range from source files into the output file, until a call copies nothing (other
 * file systems, no kernel calls): from then on every byte is written from the buffers.
 */
function kernelCopier(out: ByteSink, files: FileCache): KernelCopier | undefined {
  const dstFd = out.fd;
  if (dstFd === undefined) return undefined;
  let usable = true;
  return async (run, skip, n, position) => {
    if (!usable) return 0;
    const copied = await files.withFile(run.path, (src) => copyFileRange(src.fd, run.fileOffset + skip, dstFd, position, n));
    if (copied === undefined) usable = false;
    return copied ?? 0;
  };
}

async function writeRawToStream(disk: VirtualDisk, sink: ByteSink): Promise<RawWriteResult> {
  const files = new FileCache();
  try {
    for (const run of await dataOnlyRuns(disk.runs(), files)) {
      await sink.skip(run.offset - sink.position); // zeros up to the run (and in a file's holes)
      for (let done = 0; done < run.length;) {
        const n = Math.min(CHUNK, run.length - done);
        const chunk = new Uint8Array(n); // a fresh buffer: the stream may hold it
        await readRunInto(run, done, chunk, files);
        await sink.write(chunk);
        done += n;
      }
    }
    await sink.skip(disk.size - sink.position); // zeros to the disk's end
  } finally {
    await files.closeAll();
  }
  return { bytesWritten: disk.size, size: disk.size };
}
