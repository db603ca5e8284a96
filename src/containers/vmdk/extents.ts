/**
 * VMDK extents as the reader sees them: the hosted sparse extent (grain directory and tables,
 * compressed grains and stream markers, bounded caches of both), and flat and zero extents.
 * Each fills its part of a read and lists its allocated ranges; structures are
 * formats/containers/vmdk.ts.
 */
import { inflateAsync } from '../../io/zlib-async.js';
import { fail } from '../../../formats/common/errors.js';
import { readInto, type DiskReader } from '../../model/disk-reader.js';
import {
  FLAG_MARKERS,
  FLAG_ZEROED_GRAIN_GTE,
  GRAIN_MARKER_SIZE,
  SECTOR,
  decodeU32Table,
  gdEntryCount,
  isCompressed,
  decodeMarker,
  decodeSparseHeader,
  decodeStreamFooter,
  type SparseHeader,
} from '../../../formats/containers/vmdk.js';

const GT_CACHE = 64; // grain tables kept per extent (2 KiB each with 512 entries)
const GRAIN_CACHE = 4; // inflated grains kept per extent

export type Range = { offset: number; length: number };

export interface Extent {
  /** Virtual byte offset and length of the extent. */
  start: number;
  length: number;
  /** Fill `out` with extent bytes from `offset` (extent-relative). */
  readInto(offset: number, out: Uint8Array): Promise<void>;
  ranges(): AsyncGenerator<Range>;
  /** Delta disks: unallocated grains read from the parent at the same virtual offset. */
  parent?: DiskReader;
}

/** Map as a bounded LRU: a hit moves to the back; inserts drop the front past `max`. */
function lruGet<K, V>(m: Map<K, V>, k: K): V | undefined {
  const v = m.get(k);
  if (v !== undefined) {
    m.delete(k);
    m.set(k, v);
  }
  return v;
}
function lruSet<K, V>(m: Map<K, V>, k: K, v: V, max: number): void {
  m.set(k, v);
  if (m.size > max) m.delete(m.keys().next().value as K);
}

/** A hosted sparse extent (monolithicSparse, streamOptimized, twoGbMaxExtentSparse pieces). */
export class SparseExtent implements Extent {
  private readonly gtCache = new Map<number, Uint32Array>();
  private readonly grainCache = new Map<number, Uint8Array>();
  private readonly grainBytes: number;
  parent?: DiskReader;

  constructor(
    readonly start: number,
    readonly length: number,
    private readonly file: DiskReader,
    readonly h: SparseHeader,
    private readonly gd: Uint32Array,
    private readonly name: string,
  ) {
    this.grainBytes = h.grainSize * SECTOR;
  }

  static async open(file: DiskReader, start: number, length: number, name: string): Promise<SparseExtent> {
    let h = decodeSparseHeader(await file.read(0, SECTOR));
    if (h.gdOffset === 'end') {
      // Stream-optimized: the footer (third sector from the end) holds the real gdOffset.
      const end = Math.floor(file.size / SECTOR) * SECTOR;
      if (end < 4 * SECTOR) throw fail('vmdk', 'TRUNCATED', `${name}: stream-optimized extent too short for its footer`);
      h = decodeStreamFooter(await file.read(end - 3 * SECTOR, 3 * SECTOR));
    }
    const entries = gdEntryCount(h);
    const gdAt = (h.gdOffset as number) * SECTOR;
    if (entries > 0 && gdAt + entries * 4 > file.size)
      throw fail('vmdk', 'TRUNCATED', `${name}: grain directory at sector ${h.gdOffset} lies past the end of the file`);
    const gd = entries ? decodeU32Table(await file.read(gdAt, entries * 4), entries) : new Uint32Array(0);
    for (let t = 0; t < entries; t++) {
      if (gd[t] !== 0 && gd[t] * SECTOR + h.numGTEsPerGT * 4 > file.size) {
        throw fail('vmdk', 'TRUNCATED', `${name}: grain table ${t} at sector ${gd[t]} lies past the end of the file`);
      }
    }
    return new SparseExtent(start, length, file, h, gd, name);
  }

  private async gt(t: number): Promise<Uint32Array | undefined> {
    if (t >= this.gd.length || this.gd[t] === 0) return undefined;
    const hit = lruGet(this.gtCache, t);
    if (hit) return hit;
    const n = this.h.numGTEsPerGT;
    const gt = decodeU32Table(await this.file.read(this.gd[t] * SECTOR, n * 4), n);
    lruSet(this.gtCache, t, gt, GT_CACHE);
    return gt;
  }

  private async gte(g: number): Promise<number> {
    const gt = await this.gt(Math.floor(g / this.h.numGTEsPerGT));
    const e = gt ? gt[g % this.h.numGTEsPerGT] : 0;
    if (e === 1 && this.h.flags & FLAG_ZEROED_GRAIN_GTE) return 0;
    if (e !== 0 && e * SECTOR >= this.file.size) throw fail('vmdk', 'TRUNCATED', `${this.name}: grain ${g} at sector ${e} lies past the end of the file`);
    return e;
  }

  /** Whole inflated grain (compressed extents). */
  private async inflated(g: number, sector: number): Promise<Uint8Array> {
    const hit = lruGet(this.grainCache, g);
    if (hit) return hit;
    const at = sector * SECTOR;
    const maxCompressed = 2 * this.grainBytes + 4096;
    let data: Uint8Array;
    if (this.h.flags & FLAG_MARKERS) {
      const m = decodeMarker(await this.file.read(at, 16));
      if (m.kind !== 'grain') throw fail('vmdk', 'BAD_VALUE', `${this.name}: grain ${g} points at a metadata marker, not a grain marker`);
      if (m.size > maxCompressed) throw fail('vmdk', 'TOO_LARGE', `${this.name}: compressed grain ${g} claims ${m.size} bytes (grain is ${this.grainBytes})`);
      if (m.lba !== g * this.h.grainSize)
        throw fail('vmdk', 'BAD_VALUE', `${this.name}: grain marker at sector ${sector} says LBA ${m.lba}, expected ${g * this.h.grainSize}`);
      data = await this.file.read(at + GRAIN_MARKER_SIZE, m.size);
      if (data.length < m.size) throw fail('vmdk', 'TRUNCATED', `${this.name}: compressed grain ${g} runs past the end of the file`);
    } else {
      data = await this.file.read(at, maxCompressed);
    }
    let out: Uint8Array;
    try {
      out = new Uint8Array(await inflateAsync(data, { maxOutputLength: this.grainBytes }));
    } catch (err) {
      throw fail('vmdk', 'BAD_VALUE', `${this.name}: compressed grain ${g} does not inflate to at most one grain: ${(err as Error).message}`);
    }
    if (out.length < this.grainBytes) {
      const full = new Uint8Array(this.grainBytes); // VMware may store a short last grain
      full.set(out);
      out = full;
    }
    lruSet(this.grainCache, g, out, GRAIN_CACHE);
    return out;
  }

  async readInto(offset: number, out: Uint8Array): Promise<void> {
    for (let done = 0; done < out.length;) {
      const pos = offset + done;
      const g = Math.floor(pos / this.grainBytes);
      const inGrain = pos - g * this.grainBytes;
      const n = Math.min(out.length - done, this.grainBytes - inGrain);
      const dst = out.subarray(done, done + n);
      const sector = pos < this.h.capacity * SECTOR ? await this.gte(g) : 0;
      if (sector === 0) {
        const from = this.parent ? await this.parent.read(this.start + pos, n) : new Uint8Array(0);
        dst.set(from);
        dst.fill(0, from.length);
      } else if (isCompressed(this.h)) dst.set((await this.inflated(g, sector)).subarray(inGrain, inGrain + n));
      else dst.fill(0, await readInto(this.file, sector * SECTOR + inGrain, dst));
      done += n;
    }
  }

  async *ranges(): AsyncGenerator<Range> {
    const per = this.h.numGTEsPerGT;
    for (let t = 0; t < this.gd.length; t++) {
      const gt = await this.gt(t);
      if (!gt) continue;
      for (let i = 0; i < per; i++) {
        const e = gt[i];
        if (e === 0 || (e === 1 && this.h.flags & FLAG_ZEROED_GRAIN_GTE)) continue;
        const offset = (t * per + i) * this.grainBytes;
        const end = Math.min(this.length, this.h.capacity * SECTOR);
        if (offset >= end) return;
        yield { offset, length: Math.min(this.grainBytes, end - offset) };
      }
    }
  }
}

export function flatExtent(start: number, length: number, file: DiskReader, fileOffset: number): Extent {
  return {
    start,
    length,
    async readInto(offset, out) {
      out.fill(0, await readInto(file, fileOffset + offset, out));
    },
    async *ranges() {
      // Past the end of its file a flat extent reads as zeros (as qemu reads it): not data. A
      // descriptor that claims 2 TiB over a small file then converts in a moment, not by
      // reading 2 TiB of nothing.
      const stored = Math.min(length, Math.max(0, file.size - fileOffset));
      if (stored > 0) yield { offset: 0, length: stored };
    },
  };
}

export function zeroExtent(start: number, length: number): Extent {
  return {
    start,
    length,
    async readInto(_o, out) {
      out.fill(0);
    },
    async *ranges() {},
  };
}
