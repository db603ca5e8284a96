/**
 * `IMG[:N]` on the command line: an image (any format diskmint reads), or partition N of it as
 * `info` numbers them (GPT entries, MBR slots 1-4 and logicals 5 on, BSD letters a=1 ...).
 */
import { DiskmintError } from '../model/errors.js';
import { FormatError } from '../../formats/common/errors.js';
import { sliceDiskReader, type DiskReader } from '../model/disk-reader.js';
import { inspectDisk } from './inspect.js';
import { openDisk, type OpenDiskOptions } from '../io/open-disk.js';
import type { ContainerReader } from '../containers/types.js';

/** `IMG` or `IMG:N`: the image path and the 1-based partition index, if any. */
export function parseImageSpec(spec: string): { path: string; partition?: number } {
  const m = /^(.*):(\d+)$/.exec(spec);
  return m ? { path: m[1], partition: Number(m[2]) } : { path: spec };
}

/**
 * Where partition `partition` of an open disk lies, in bytes. A disk without it is unusable input
 * for the command (DiskmintError 'INPUT', exit 2 as the README says), naming the partitions it has.
 */
export async function partitionRange(disk: DiskReader, path: string, partition: number): Promise<{ offset: number; size: number }> {
  const { table } = await inspectDisk(disk);
  const p = table?.partitions.find((x) => x.index === partition);
  if (!table || !p) {
    throw new DiskmintError('INPUT', `${path} has no partition ${partition}${table ? ` (it has ${table.partitions.map((x) => x.index).join(', ')})` : ''}`);
  }
  return {
    offset: table.offset + p.firstLba * table.sectorSize,
    size: Math.max(0, Math.min(p.sizeBytes, disk.size - table.offset - p.firstLba * table.sectorSize)),
  };
}

/**
 * Open `IMG[:N]` as a container reader: the whole image, or a window onto partition N whose
 * allocated ranges are the image's, clipped to it. `close()` closes the image.
 */
export async function openImageSpec(spec: string, opts: OpenDiskOptions = {}): Promise<{ reader: ContainerReader; format: string }> {
  const { path, partition } = parseImageSpec(spec);
  const { reader } = await openDisk(path, opts);
  const format = reader.subformat ? `${reader.format} (${reader.subformat})` : reader.format;
  if (partition === undefined) return { reader, format };
  try {
    const { offset, size } = await partitionRange(reader, path, partition);
    const window = sliceDiskReader(reader, offset, size);
    const partitionReader: ContainerReader = {
      ...window,
      read: (o, n, into) => window.read(o, n, into),
      format: reader.format,
      subformat: reader.subformat,
      details: () => reader.details(),
      async *allocatedRanges() {
        for await (const r of reader.allocatedRanges()) {
          const from = Math.max(r.offset, offset);
          const to = Math.min(r.offset + r.length, offset + size);
          if (from < to) yield { offset: from - offset, length: to - from };
          if (r.offset >= offset + size) break;
        }
      },
      close: () => reader.close(),
    };
    return { reader: partitionReader, format: `${format}, partition ${partition}` };
  } catch (err) {
    await reader.close();
    throw err;
  }
}

/**
 * Open the file system `open` finds in `IMG[:N]` (the whole image, or partition N). Bytes that are
 * not one are "not `what`" (exit 2, naming the spec). `close()` closes the image; on an error it
 * is closed here.
 */
export async function openFileSystemAt<T>(spec: string, what: string, open: (volume: DiskReader) => Promise<T>): Promise<{ fs: T; close(): Promise<void> }> {
  const { path, partition } = parseImageSpec(spec);
  const { reader } = await openDisk(path);
  try {
    let volume: DiskReader = reader;
    if (partition !== undefined) {
      const { offset, size } = await partitionRange(reader, path, partition);
      volume = sliceDiskReader(reader, offset, size);
    }
    const fs = await open(volume).catch((err: unknown) => {
      if (err instanceof FormatError) throw new DiskmintError('NOT_A_DISK', `${spec}: not ${what}: ${err.message}`);
      throw err;
    });
    return { fs, close: () => reader.close() };
  } catch (err) {
    await reader.close();
    throw err;
  }
}
