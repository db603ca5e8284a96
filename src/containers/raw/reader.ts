/**
 * A raw image read as a container: its bytes are the virtual disk. Allocated ranges come from
 * scanning for non-zero 64 KiB blocks (io/zero-blocks.ts).
 */
import { open } from 'node:fs/promises';
import { readInto, type DiskReader } from '../../model/disk-reader.js';
import type { ContainerReader } from '../types.js';
import { nonZeroSpans } from '../../io/zero-blocks.js';
import { mapOrdered } from '../../io/concurrency.js';

const SCAN_CHUNK = 4 << 20;
const SCAN_DEPTH = 4;

/** A raw file as a container; `path` (when given) is scanned through its own handle and kept as `sourcePath`. */
export function rawContainer(file: DiskReader, path?: string): ContainerReader & { sourcePath?: string } {
  return {
    format: 'raw',
    sourcePath: path,
    size: file.size,
    read: (o, n, into) => file.read(o, n, into),
    close: () => file.close(),
    details: () => ({}),
    async *allocatedRanges() {
      let span: { offset: number; length: number } | undefined; // the range found so far, joined across chunks
      const handle = path ? await open(path, 'r') : undefined;
      // Scan with a few reads in flight (holes still have to be read: Node has no SEEK_DATA).
      const offsets = function* () {
        for (let at = 0; at < file.size; at += SCAN_CHUNK) yield at;
      };
      // Reused buffers: a chunk is released before the read SCAN_DEPTH chunks later starts
      // (mapOrdered starts it when the next chunk is asked for), so one spare is plenty. Fresh
      // memory costs a page fault per 4 KiB, more than the read itself on some VMs.
      const ring: Uint8Array[] = [];
      let chunkNumber = 0;
      const readChunk = async (at: number) => {
        const n = Math.min(SCAN_CHUNK, file.size - at);
        const slot = chunkNumber++ % (SCAN_DEPTH + 1);
        const buf = (ring[slot] ??= new Uint8Array(SCAN_CHUNK)).subarray(0, n);
        if (!handle) return { at, chunk: buf.subarray(0, await readInto(file, at, buf)) };
        const { bytesRead } = await handle.read(buf, 0, n, at);
        return { at, chunk: buf.subarray(0, bytesRead) };
      };
      try {
        for await (const { at, chunk } of mapOrdered(offsets(), SCAN_DEPTH, readChunk)) {
          for (const [start, end] of nonZeroSpans(chunk)) {
            if (span && span.offset + span.length === at + start) span.length += end - start;
            else {
              if (span) yield span;
              span = { offset: at + start, length: end - start };
            }
          }
        }
      } finally {
        await handle?.close();
      }
      if (span) yield span;
    },
  };
}
