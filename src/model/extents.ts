/**
 * The sparse extent model. A virtual disk is a size plus an ordered list of data extents;
 * everything between them reads as zeros. Writers walk the extents, so cost follows the data,
 * never the virtual size (cf. FreeBSD mkimg's chunked image with holes, usr.bin/mkimg/image.c).
 */
import { DiskmintError } from './errors.js';
import type { DiskReader } from './disk-reader.js';

export type ExtentSource =
  /** Bytes held in memory (tables, labels, small boot code). */
  | { kind: 'bytes'; data: Uint8Array }
  /** A range of a file on disk, read only when written out. */
  | { kind: 'file'; path: string; offset: number }
  /** Another virtual disk nested here (an MBR slice holding a BSD label, ...). */
  | { kind: 'disk'; disk: VirtualDisk; offset: number }
  /** A range of an open disk image (a container being converted), read only when written out. */
  | { kind: 'reader'; reader: DiskReader; offset: number };

export interface DataExtent {
  offset: number;
  length: number;
  source: ExtentSource;
}

/** A leaf run of data: bytes or a file range, at an absolute offset, with nesting flattened. */
export type DataRun =
  | { offset: number; length: number; kind: 'bytes'; data: Uint8Array }
  | { offset: number; length: number; kind: 'file'; path: string; fileOffset: number }
  | { offset: number; length: number; kind: 'reader'; reader: DiskReader; readerOffset: number };

export class VirtualDisk {
  private readonly extents: DataExtent[] = [];

  constructor(readonly size: number) {
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new DiskmintError('BAD_ARGUMENT', `disk size ${size} is not a whole number of bytes`);
    }
  }

  /** Place data at `offset`. Extents must not overlap each other or run past the end. */
  place(offset: number, length: number, source: ExtentSource): this {
    if (length === 0) return this;
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new DiskmintError('BAD_ARGUMENT', `extent at ${offset} of ${length} bytes does not fit in a disk of ${this.size} bytes`);
    }
    // Binary search for the insertion point; the list stays sorted and disjoint.
    let lo = 0;
    let hi = this.extents.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.extents[mid].offset < offset) lo = mid + 1;
      else hi = mid;
    }
    const prev = this.extents[lo - 1];
    const next = this.extents[lo];
    if ((prev && prev.offset + prev.length > offset) || (next && offset + length > next.offset)) {
      throw new DiskmintError('BAD_ARGUMENT', `extent at ${offset} of ${length} bytes overlaps another extent`);
    }
    this.extents.splice(lo, 0, { offset, length, source });
    return this;
  }

  placeBytes(offset: number, data: Uint8Array): this {
    return this.place(offset, data.length, { kind: 'bytes', data });
  }

  /** The top-level extents, in order. */
  list(): readonly DataExtent[] {
    return this.extents;
  }

  /** Leaf data runs in ascending order, nested disks flattened, clipped to [start, end). */
  *runs(start = 0, end = this.size, base = 0): Generator<DataRun> {
    for (const e of this.extents) {
      const from = Math.max(start, e.offset);
      const to = Math.min(end, e.offset + e.length);
      if (from >= to) continue;
      const skip = from - e.offset;
      const s = e.source;
      if (s.kind === 'bytes') {
        yield { offset: base + from, length: to - from, kind: 'bytes', data: s.data.subarray(skip, skip + to - from) };
      } else if (s.kind === 'file') {
        yield { offset: base + from, length: to - from, kind: 'file', path: s.path, fileOffset: s.offset + skip };
      } else if (s.kind === 'reader') {
        yield { offset: base + from, length: to - from, kind: 'reader', reader: s.reader, readerOffset: s.offset + skip };
      } else {
        // Nested disk: its offset 0 sits at e.offset; `s.offset` skips into it.
        const innerStart = s.offset + skip;
        yield* s.disk.runs(innerStart, innerStart + (to - from), base + from - innerStart);
      }
    }
  }

  /** Bytes of data (not holes) after flattening. */
  dataBytes(): number {
    let n = 0;
    for (const r of this.runs()) n += r.length;
    return n;
  }
}
