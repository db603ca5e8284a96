/**
 * VMDK: detect, read (monolithicSparse, streamOptimized, monolithicFlat, twoGbMaxExtent*,
 * vmfs and any descriptor of FLAT/SPARSE/ZERO extents) and write (writer.ts).
 * Structures and bounds: formats/containers/vmdk.ts and formats/containers/vmdk-descriptor.ts.
 */
import { inflateAsync } from '../../io/zlib-async.js';
import { DiskmintError } from '../../model/errors.js';
import { fail } from '../../../formats/common/errors.js';
import { readInto, type DiskReader } from '../../model/disk-reader.js';
import type { ContainerHandler, ContainerReader, OpenContext } from '../types.js';
import { unionOfRanges } from '../blocks.js';
import {
  FLAG_MARKERS,
  FLAG_ZEROED_GRAIN_GTE,
  GRAIN_MARKER_SIZE,
  SECTOR,
  decodeU32Table,
  gdEntryCount,
  hasSparseMagic,
  isCompressed,
  decodeMarker,
  decodeSparseHeader,
  decodeStreamFooter,
  type SparseHeader,
} from '../../../formats/containers/vmdk.js';
import { CID_NOPARENT, MAX_DESCRIPTOR_BYTES, isSafeExtentName, decodeDescriptor, type Descriptor } from '../../../formats/containers/vmdk-descriptor.js';
import { vmdkEditing } from './edit.js';
import { OPTION_KEYS, parseWriteOptions, writeMonolithicFlat, writeMonolithicSparse, writeSplitSparse, writeStreamOptimized } from './writer.js';

const GT_CACHE = 64; // grain tables kept per extent (2 KiB each with 512 entries)
const GRAIN_CACHE = 4; // inflated grains kept per extent

type Range = { offset: number; length: number };

interface Extent {
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
class SparseExtent implements Extent {
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

function flatExtent(start: number, length: number, file: DiskReader, fileOffset: number): Extent {
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

function zeroExtent(start: number, length: number): Extent {
  return {
    start,
    length,
    async readInto(_o, out) {
      out.fill(0);
    },
    async *ranges() {},
  };
}

async function readDescriptorBytes(file: DiskReader, at: number, max: number): Promise<Uint8Array> {
  const n = Math.min(max, Math.max(0, file.size - at));
  if (n > MAX_DESCRIPTOR_BYTES) throw fail('vmdk', 'TOO_LARGE', `descriptor of ${n} bytes exceeds ${MAX_DESCRIPTOR_BYTES}`);
  return file.read(at, n);
}

const MAX_PARENT_DEPTH = 16;

/** Delta disks (parentCID != CID_NOPARENT with a parentFileNameHint): refused unless allowed. */
async function openParent(d: Descriptor | undefined, ctx: OpenContext, depth: number): Promise<ContainerReader | undefined> {
  if (!d || d.parentCid === CID_NOPARENT || d.parentFileNameHint === undefined) return undefined;
  const hint = d.parentFileNameHint;
  if (!ctx.allowBacking) throw fail('vmdk', 'BAD_VALUE', `image has a parent link to "${hint}" (delta disk); parents are refused unless allowed`);
  if (depth >= MAX_PARENT_DEPTH) throw fail('vmdk', 'LOOP', `parent chain deeper than ${MAX_PARENT_DEPTH} (loop?) at "${hint}"`);
  if (!isSafeExtentName(hint)) throw fail('vmdk', 'BAD_VALUE', `parent file "${hint}" is outside the image's folder`);
  const file = await ctx.openSibling(hint);
  try {
    if (!(await detect(file))) throw fail('vmdk', 'BAD_MAGIC', `parent "${hint}" is not a VMDK`);
    const parent = await openAt(file, { ...ctx, path: hint }, depth + 1);
    if (parentCid(parent) !== d.parentCid) {
      await parent.close();
      throw fail('vmdk', 'BAD_VALUE', `parent "${hint}" has CID ${parentCid(parent)?.toString(16)}, the image expects ${d.parentCid.toString(16)}`);
    }
    return parent;
  } catch (err) {
    await file.close().catch(() => {});
    throw err;
  }
}

const CIDS = new WeakMap<ContainerReader, number>();
const parentCid = (r: ContainerReader) => CIDS.get(r);

async function openExtents(d: Descriptor, ctx: OpenContext, opened: DiskReader[]): Promise<Extent[]> {
  const extents: Extent[] = [];
  let start = 0;
  for (const line of d.extents) {
    const length = line.sectors * SECTOR;
    if (line.access === 'NOACCESS') throw fail('vmdk', 'BAD_VALUE', `extent "${line.file}" is NOACCESS`);
    if (line.type === 'ZERO') extents.push(zeroExtent(start, length));
    else {
      if (!isSafeExtentName(line.file)) throw fail('vmdk', 'BAD_VALUE', `extent file "${line.file}" is outside the descriptor's folder`);
      if (line.type !== 'FLAT' && line.type !== 'VMFS' && line.type !== 'SPARSE')
        throw fail('vmdk', 'BAD_VALUE', `extent type ${line.type} ("${line.file}") is not supported`);
      const f = await ctx.openSibling(line.file);
      opened.push(f);
      if (line.type === 'SPARSE') {
        if (!hasSparseMagic(await f.read(0, 4))) throw fail('vmdk', 'BAD_MAGIC', `sparse extent "${line.file}" lacks the KDMV magic`);
        extents.push(await SparseExtent.open(f, start, length, line.file));
      } else extents.push(flatExtent(start, length, f, line.offset * SECTOR));
    }
    start += length;
    if (start > Number.MAX_SAFE_INTEGER / 2) throw fail('vmdk', 'TOO_LARGE', 'extents add up to an absurd size');
  }
  return extents;
}

function detailsOf(createType: string, d: Descriptor | undefined, extents: Extent[]): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = { createType, extents: extents.length };
  const sparse = extents.find((e): e is SparseExtent => e instanceof SparseExtent);
  if (sparse) {
    out.grainSize = sparse.h.grainSize * SECTOR;
    out.compression = isCompressed(sparse.h) ? 'deflate' : 'none';
    out.version = sparse.h.version;
  }
  if (d) {
    out.cid = d.cid.toString(16).padStart(8, '0');
    if (d.ddb.adapterType) out.adapterType = d.ddb.adapterType;
    const g = d.ddb;
    if (g['geometry.cylinders']) out.geometry = `${g['geometry.cylinders']}/${g['geometry.heads']}/${g['geometry.sectors']}`;
    if (g.virtualHWVersion) out.hwVersion = g.virtualHWVersion;
  }
  return out;
}

function containerReader(
  file: DiskReader,
  extents: Extent[],
  createType: string,
  d: Descriptor | undefined,
  opened: DiskReader[],
  parent?: ContainerReader,
): ContainerReader {
  const size = extents.reduce((s, e) => s + e.length, 0);
  for (const e of extents) e.parent = parent;
  async function* own() {
    for (const e of extents) for await (const r of e.ranges()) yield { offset: e.start + r.offset, length: r.length };
  }
  async function* clipped(src: AsyncIterable<Range>) {
    for await (const r of src) if (r.offset < size) yield { offset: r.offset, length: Math.min(r.length, size - r.offset) };
  }
  const reader: ContainerReader = {
    format: 'vmdk',
    subformat: createType,
    size,
    async read(offset, length, into) {
      const start = Math.min(Math.max(0, offset), size);
      const n = Math.min(size - start, Math.max(0, length));
      const out = into && into.length >= n ? into.subarray(0, n) : new Uint8Array(n); // every extent fills its part
      const end = start + out.length;
      for (const e of extents) {
        const from = Math.max(start, e.start);
        const to = Math.min(end, e.start + e.length);
        if (from < to) await e.readInto(from - e.start, out.subarray(from - start, to - start));
      }
      return out;
    },
    async *allocatedRanges() {
      yield* unionOfRanges(own(), parent ? clipped(parent.allocatedRanges()) : undefined);
    },
    details: () => ({ ...detailsOf(createType, d, extents), ...(parent ? { parent: d?.parentFileNameHint ?? '' } : {}) }),
    async close() {
      await parent?.close();
      for (const f of opened) await f.close();
      await file.close();
    },
  };
  if (d) CIDS.set(reader, d.cid);
  return reader;
}

function open(file: DiskReader, ctx: OpenContext): Promise<ContainerReader> {
  return openAt(file, ctx, 0);
}

async function openAt(file: DiskReader, ctx: OpenContext, depth: number): Promise<ContainerReader> {
  const opened: DiskReader[] = [];
  let parent: ContainerReader | undefined;
  try {
    const head = await file.read(0, SECTOR);
    let d: Descriptor | undefined;
    let extents: Extent[];
    if (hasSparseMagic(head)) {
      const h = decodeSparseHeader(head);
      if (h.descriptorOffset > 0 && h.descriptorSize > 0) {
        const max = Math.min(h.descriptorSize * SECTOR, MAX_DESCRIPTOR_BYTES);
        const text = await readDescriptorBytes(file, h.descriptorOffset * SECTOR, h.capacity === 0 ? MAX_DESCRIPTOR_BYTES : max);
        // Extent files of split images carry an empty descriptor area: nothing to parse there.
        if (text.some((b) => b !== 0)) d = decodeDescriptor(text);
      }
      parent = await openParent(d, ctx, depth);
      if (h.capacity === 0 && d && d.extents.length > 0)
        extents = await openExtents(d, ctx, opened); // descriptor-only sparse header
      else extents = [await SparseExtent.open(file, 0, h.capacity * SECTOR, ctx.path)];
    } else {
      if (file.size > MAX_DESCRIPTOR_BYTES) throw fail('vmdk', 'TOO_LARGE', `descriptor file of ${file.size} bytes exceeds ${MAX_DESCRIPTOR_BYTES}`);
      d = decodeDescriptor(await readDescriptorBytes(file, 0, MAX_DESCRIPTOR_BYTES));
      if (d.extents.length === 0) throw fail('vmdk', 'BAD_VALUE', 'descriptor lists no extents');
      parent = await openParent(d, ctx, depth);
      extents = await openExtents(d, ctx, opened);
    }
    const sparse0 = extents[0] instanceof SparseExtent ? extents[0] : undefined;
    const createType = d?.createType || (sparse0 && isCompressed(sparse0.h) ? 'streamOptimized' : 'monolithicSparse');
    return containerReader(file, extents, createType, d, opened, parent);
  } catch (err) {
    await parent?.close().catch(() => {});
    for (const f of opened) await f.close().catch(() => {});
    throw err;
  }
}

async function detect(file: DiskReader): Promise<boolean> {
  try {
    const head = await file.read(0, 1024);
    if (hasSparseMagic(head)) return true;
    if (file.size > MAX_DESCRIPTOR_BYTES) return false;
    // The descriptor is the text up to the first NUL, as qemu reads it: qemu-img pads descriptor
    // files with NULs, and when it rewrites the CID with fewer hex digits (no leading zeros), the
    // old text's last bytes stay behind that NUL ("...\0\n").
    const nul = head.indexOf(0);
    const text = Buffer.from(nul < 0 ? head : head.subarray(0, nul)).toString('latin1');
    if (/[\x01-\x08\x0b\x0c\x0e-\x1f]/.test(text)) return false; // binary, not a text descriptor
    return text.includes('# Disk DescriptorFile') || /(^|\n)\s*createType\s*=/.test(text);
  } catch {
    return false;
  }
}

export const vmdkHandler: ContainerHandler = {
  format: 'vmdk',
  compresses: true,
  extensions: ['.vmdk'],
  optionKeys: OPTION_KEYS,
  editing: vmdkEditing,
  detect,
  open,
  async write(disk, sink, ctx) {
    const o = parseWriteOptions(ctx.options);
    if (o.subformat !== 'streamOptimized' && ctx.compress) {
      throw new DiskmintError('BAD_ARGUMENT', `vmdk: ${o.subformat} cannot hold compressed grains; use -o subformat=streamOptimized`);
    }
    if (ctx.compress?.algorithm !== undefined && ctx.compress.algorithm !== 'deflate') {
      throw new DiskmintError('BAD_ARGUMENT', `vmdk: streamOptimized grains are deflate (zlib) only, not ${ctx.compress.algorithm}`);
    }
    if (disk.size === 0) throw new DiskmintError('BAD_ARGUMENT', 'vmdk: cannot write an empty disk');
    if (o.subformat === 'monolithicSparse') await writeMonolithicSparse(disk, sink, ctx, o);
    else if (o.subformat === 'streamOptimized') await writeStreamOptimized(disk, sink, ctx, o);
    else if (o.subformat === 'twoGbMaxExtentSparse') await writeSplitSparse(disk, sink, ctx, o);
    else await writeMonolithicFlat(disk, sink, ctx, o);
  },
};
