/**
 * Image manifests, what a signature covers: the image's size and sha256 and every partition's
 * (nested ones too), hashed in one pass over the disk.
 */
import { createHash } from 'node:crypto';
import { openDisk } from '../io/open-disk.js';
import { inspectDisk } from './inspect.js';
import type { PartitionTable } from '../schemes/types.js';
import { readInto, type DiskReader } from '../model/disk-reader.js';

export interface ManifestPartition {
  /** Which table: `gpt`, `mbr`, `bsd`, or a nested label such as `mbr.partition[1].bsd`. */
  table: string;
  index: number;
  type: string;
  rawType: string;
  label: string;
  /** Byte offset in the virtual disk. */
  offset: number;
  size: number;
  sha256: string;
}

export interface ImageManifest {
  format: 'diskmint-image-manifest';
  formatVersion: 1;
  /** The virtual disk: container format does not matter (a qcow2 copy verifies as the raw). */
  image: { size: number; sha256: string };
  scheme: PartitionTable['scheme'] | null;
  partitions: ManifestPartition[];
}

function manifestPartitions(table: PartitionTable | null, where: string, out: ManifestPartition[]): void {
  if (!table) return;
  for (const p of table.partitions) {
    out.push({
      table: where,
      index: p.index,
      type: p.typeName,
      rawType: p.rawType,
      label: p.label ?? '',
      offset: table.offset + p.firstLba * table.sectorSize,
      size: p.sizeBytes,
      sha256: '',
    });
    if (p.nested) manifestPartitions(p.nested, `${where}.partition[${p.index}].bsd`, out);
  }
}

/**
 * Bytes hashed per read, into one reused buffer (a fresh 4 MiB one per read cost a page fault per
 * 4 KiB: `sign` of a 512 MiB FFS image 0.68-0.85 -> 0.51-0.54 s, peak RSS 90 -> 58 MB).
 */
const HASH_CHUNK = 1 << 20;

/** One pass over the disk feeding the whole-image hash and every partition's hash. */
async function hashImageAndPartitions(disk: DiskReader, parts: ManifestPartition[]): Promise<string> {
  const image = createHash('sha256');
  const hashes = parts.map(() => createHash('sha256'));
  const buffer = new Uint8Array(HASH_CHUNK);
  for (let at = 0; at < disk.size;) {
    const chunk = buffer.subarray(0, await readInto(disk, at, buffer.subarray(0, Math.min(HASH_CHUNK, disk.size - at))));
    if (!chunk.length) break;
    image.update(chunk);
    const end = at + chunk.length;
    parts.forEach((p, i) => {
      const from = Math.max(at, p.offset);
      const to = Math.min(end, p.offset + p.size);
      if (from < to) hashes[i].update(chunk.subarray(from - at, to - at));
    });
    at = end;
  }
  parts.forEach((p, i) => (p.sha256 = hashes[i].digest('hex')));
  return image.digest('hex');
}

/** The manifest of an image (any container diskmint reads): size, sha256, and every partition, nested ones too. */
export async function imageManifest(imagePath: string): Promise<ImageManifest> {
  const { reader } = await openDisk(imagePath, { syncReads: true }); // read and hashed one chunk at a time (disk-reader.ts syncReads)
  try {
    const { table } = await inspectDisk(reader);
    const partitions: ManifestPartition[] = [];
    manifestPartitions(table, table?.scheme ?? '', partitions);
    const sha256 = await hashImageAndPartitions(reader, partitions);
    return { format: 'diskmint-image-manifest', formatVersion: 1, image: { size: reader.size, sha256 }, scheme: table?.scheme ?? null, partitions };
  } finally {
    await reader.close();
  }
}
