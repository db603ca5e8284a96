/** `diskmint convert`: any image diskmint reads, to any format it writes, without a raw intermediate. */
import { realpath } from 'node:fs/promises';
import { DiskmintError } from './errors.js';
import { VirtualDisk } from './extents.js';
import { openDisk, type OpenDiskOptions } from './open-disk.js';
import type { ContainerReader } from './containers/types.js';
import { writeImage, type WriteImageOptions, type WriteImageResult } from './write-image.js';

export interface ConvertOptions extends WriteImageOptions, OpenDiskOptions {}

export interface ConvertResult extends WriteImageResult {
  input: string;
  inputFormat: string;
  /** Bytes of the source that hold data (what was read and written). */
  dataBytes: number;
}

/** The virtual disk of an open image: its allocated ranges, read on demand. */
export async function diskFromReader(reader: ContainerReader & { sourcePath?: string }): Promise<VirtualDisk> {
  const disk = new VirtualDisk(reader.size);
  for await (const r of reader.allocatedRanges()) {
    // Raw files are read as file ranges: straight into the writer's buffers, no copies.
    const source = reader.sourcePath !== undefined ? { kind: 'file' as const, path: reader.sourcePath, offset: r.offset } : { kind: 'reader' as const, reader, offset: r.offset };
    disk.place(r.offset, Math.min(r.length, reader.size - r.offset), source);
  }
  return disk;
}

export async function convertImage(input: string, output: string, opts: ConvertOptions = {}): Promise<ConvertResult> {
  if (output !== '-' && (await samePath(input, output))) {
    throw new DiskmintError('BAD_ARGUMENT', `input and output are the same file (${input}); convert to a new file`);
  }
  const { reader, format } = await openDisk(input, opts);
  try {
    const disk = await diskFromReader(reader);
    const result = await writeImage(disk, output, opts);
    return { ...result, input, inputFormat: reader.subformat ? `${format} (${reader.subformat})` : format, dataBytes: disk.dataBytes() };
  } finally {
    await reader.close();
  }
}

async function samePath(a: string, b: string): Promise<boolean> {
  try {
    return (await realpath(a)) === (await realpath(b));
  } catch {
    return false;
  }
}
