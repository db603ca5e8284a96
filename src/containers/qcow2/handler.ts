/**
 * The qcow2 container (QEMU docs/interop/qcow2.txt, "qcow2 spec"): detection, a reader that
 * walks the active L1/L2 tables, and the writer in qcow2-writer.ts. Internal snapshots are
 * ignored (only the active L1 table is read); external data files are read when the caller
 * allows them; backing files are read when the caller allows them (clusters the image does not
 * allocate read from the backing image, as qemu reads a chain); encryption and extended L2
 * entries are refused (FormatError).
 */
import { constants as zlibConstants, inflateRawSync } from 'node:zlib';
import { readInto, type DiskReader } from '../../model/disk-reader.js';
import { FormatError, fail } from '../../../formats/common/errors.js';
import { DiskmintError } from '../../model/errors.js';
import {
  QCOW2_COMPRESSION,
  QCOW2_HEADER_PROBE_BYTES,
  QCOW2_INCOMPAT,
  QCOW2_KNOWN_INCOMPAT_BITS,
  QCOW2_MAGIC,
  l2EntriesPerTable,
  decodeQcow2Extensions,
  decodeQcow2Header,
  validateQcow2Layout,
  type Qcow2Extensions,
  type Qcow2Header,
} from '../../../formats/containers/qcow2.js';
import { decodeL1Entry, decodeL2Entry, type Qcow2L2Entry } from '../../../formats/containers/qcow2-tables.js';
import { zstdDecompress } from '../../io/zstd.js';
import type { ContainerHandler, ContainerReader, OpenContext } from '../types.js';
import { unionOfRanges } from '../blocks.js';
import { QCOW2_OPTION_KEYS, writeQcow2 } from './writer.js';
import { qcow2Editing } from './edit.js';

/** L2 tables kept in memory (each one cluster). */
const L2_CACHE_TABLES = 64;

/** Read exactly `length` bytes at `offset` of the image file, or fail naming `what`. */
async function readExact(file: DiskReader, offset: number, length: number, what: string): Promise<Uint8Array> {
  const bytes = await file.read(offset, length);
  if (bytes.length !== length) throw fail('qcow2', 'TRUNCATED', `${what} at ${offset} (${length} bytes) runs past the end of the file`);
  return bytes;
}

function featureName(ext: Qcow2Extensions, bit: number): string {
  const named = ext.featureNames.find((f) => f.type === 0 && f.bit === bit);
  return named ? `"${named.name}" (bit ${bit})` : `bit ${bit}`;
}

/** Refuse what we cannot read faithfully (qcow2 spec, "Header": incompatible_features, crypt_method, backing file). */
function checkSupported(h: Qcow2Header, ext: Qcow2Extensions, ctx: OpenContext): void {
  const unknown = h.incompatibleFeatures.filter((b) => b >= QCOW2_KNOWN_INCOMPAT_BITS);
  if (unknown.length)
    throw fail('qcow2', 'BAD_VALUE', `unknown incompatible feature ${unknown.map((b) => featureName(ext, b)).join(', ')}: cannot open ${ctx.path}`);
  if (h.incompatibleFeatures.includes(QCOW2_INCOMPAT.extendedL2)) throw fail('qcow2', 'BAD_VALUE', 'extended L2 entries (subclusters) are not supported');
  if (h.incompatibleFeatures.includes(QCOW2_INCOMPAT.externalData)) {
    if (!ctx.allowExternalData)
      throw fail('qcow2', 'BAD_VALUE', `image uses an external data file (${ext.externalDataFile ?? 'unnamed'}); external data files are refused`);
    if (ext.externalDataFile === undefined) throw fail('qcow2', 'BAD_VALUE', 'external data file bit is set but the image names no data file');
  }
  if (h.cryptMethod !== 0) throw fail('qcow2', 'BAD_VALUE', `encrypted images (crypt_method ${h.cryptMethod}) are not supported`);
}

/** The backing file's name ("Header", bytes 8-19: not NUL-terminated, at most 1023 bytes), or undefined. */
async function backingName(file: DiskReader, h: Qcow2Header): Promise<string | undefined> {
  if (h.backingFileOffset === 0) return undefined;
  if (h.backingFileSize === 0 || h.backingFileSize > 1023) throw fail('qcow2', 'BAD_VALUE', `backing file name of ${h.backingFileSize} bytes (1 to 1023)`);
  return new TextDecoder().decode(await readExact(file, h.backingFileOffset, h.backingFileSize, 'backing file name'));
}

/**
 * Length of the zstd frame at the start of `data` (RFC 8878 section 3.1.1) and its declared
 * content size. Compressed clusters are followed by unrelated bytes up to the sector end, so
 * the frame must be cut out before it is decoded.
 */
export function zstdFrameExtent(data: Uint8Array): { length: number; contentSize?: number } {
  const need = (n: number) => {
    if (n > data.length) throw fail('qcow2', 'TRUNCATED', 'zstd frame runs past the compressed cluster');
  };
  need(6);
  const view = new DataView(data.buffer, data.byteOffset, data.length);
  if (view.getUint32(0, true) !== 0xfd2fb528) throw fail('qcow2', 'BAD_MAGIC', 'compressed cluster is not a zstd frame');
  const fhd = data[4];
  const fcsFlag = fhd >> 6;
  const singleSegment = (fhd >> 5) & 1;
  if (fhd & 0x08) throw fail('qcow2', 'BAD_VALUE', 'zstd frame header has its reserved bit set');
  let at = 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][fhd & 3];
  const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag];
  need(at + fcsBytes);
  let contentSize: number | undefined;
  if (fcsBytes === 1) contentSize = data[at];
  else if (fcsBytes === 2) contentSize = view.getUint16(at, true) + 256;
  else if (fcsBytes === 4) contentSize = view.getUint32(at, true);
  else if (fcsBytes === 8) {
    const hi = view.getUint32(at + 4, true);
    contentSize = hi >= 0x200000 ? Number.MAX_SAFE_INTEGER : hi * 0x100000000 + view.getUint32(at, true);
  }
  at += fcsBytes;
  for (;;) {
    need(at + 3);
    const bh = data[at] | (data[at + 1] << 8) | (data[at + 2] << 16);
    const type = (bh >> 1) & 3;
    const size = bh >>> 3;
    if (type === 3) throw fail('qcow2', 'BAD_VALUE', 'zstd block has the reserved type');
    at += 3 + (type === 1 ? 1 : size);
    need(at);
    if (bh & 1) break;
  }
  if (fhd & 0x04) at += 4; // Content_Checksum
  need(at);
  return { length: at, contentSize };
}

class Qcow2Reader implements ContainerReader {
  readonly format = 'qcow2' as const;
  readonly subformat: string;
  readonly size: number;
  private readonly cs: number;
  private readonly l2Entries: number;
  private readonly l2Cache = new Map<number, Uint32Array>();
  private lastCompressed?: { hostOffset: number; data: Uint8Array };

  constructor(
    private readonly file: DiskReader,
    /** Where guest data lives: the image itself, or its external data file (incompatible bit 2). */
    private readonly data: DiskReader | undefined,
    private readonly h: Qcow2Header,
    private readonly ext: Qcow2Extensions,
    /** The active L1 table as (hi, lo) pairs. */
    private readonly l1: Uint32Array,
    /** The backing image (its own chain included) and its name, when there is one and it is allowed. */
    private readonly backing?: { reader: ContainerReader; name: string },
  ) {
    this.size = h.size;
    this.subformat = `v${h.version}`;
    this.cs = 2 ** h.clusterBits;
    this.l2Entries = l2EntriesPerTable(h.clusterBits);
  }

  details(): Record<string, string | number | boolean> {
    const h = this.h;
    return {
      version: h.version,
      compat: h.version === 3 ? '1.1' : '0.10',
      cluster_size: this.cs,
      compression_type: h.compressionType === QCOW2_COMPRESSION.zstd ? 'zstd' : 'zlib',
      l1_size: h.l1Size,
      refcount_bits: 2 ** h.refcountOrder,
      header_length: h.headerLength,
      snapshots: h.nbSnapshots,
      dirty: h.incompatibleFeatures.includes(QCOW2_INCOMPAT.dirty),
      corrupt: h.incompatibleFeatures.includes(QCOW2_INCOMPAT.corrupt),
      lazy_refcounts: h.compatibleFeatures.includes(0),
      ...(this.ext.backingFormat !== undefined ? { backing_format: this.ext.backingFormat } : {}),
      ...(this.data ? { data_file: this.ext.externalDataFile! } : {}),
      ...(this.backing ? { backing_file: this.backing.name } : {}),
    };
  }

  /** The L2 table at `offset`, checked and cached (LRU of L2_CACHE_TABLES). */
  private async l2Table(offset: number): Promise<Uint32Array> {
    const cached = this.l2Cache.get(offset);
    if (cached) {
      this.l2Cache.delete(offset);
      this.l2Cache.set(offset, cached);
      return cached;
    }
    if (offset % this.cs !== 0) throw fail('qcow2', 'BAD_VALUE', `L2 table offset ${offset} is not cluster aligned`);
    if (offset < this.cs) throw fail('qcow2', 'BAD_VALUE', `L2 table offset ${offset} points into the header cluster`);
    if (offset + this.cs > this.file.size) throw fail('qcow2', 'TRUNCATED', `L2 table at ${offset} lies past the end of the file (${this.file.size} bytes)`);
    const bytes = await readExact(this.file, offset, this.cs, 'L2 table');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    const table = new Uint32Array(this.cs / 4);
    for (let i = 0; i < table.length; i++) table[i] = view.getUint32(i * 4);
    if (this.l2Cache.size >= L2_CACHE_TABLES) this.l2Cache.delete(this.l2Cache.keys().next().value!);
    this.l2Cache.set(offset, table);
    return table;
  }

  /** The L2 table that maps guest cluster `c`, or undefined where its L1 entry is unallocated. */
  private async tableOf(c: number): Promise<Uint32Array | undefined> {
    const l1Index = Math.floor(c / this.l2Entries);
    const l2Offset = decodeL1Entry(this.l1[l1Index * 2], this.l1[l1Index * 2 + 1]);
    return l2Offset === 0 ? undefined : this.l2Table(l2Offset);
  }

  /** The mapping of guest cluster `c` in `table` (its L2 table, from tableOf), checked. */
  private entryIn(table: Uint32Array | undefined, c: number): Qcow2L2Entry {
    if (!table) return { kind: 'unallocated' };
    const i = (c % this.l2Entries) * 2;
    const e = decodeL2Entry(table[i], table[i + 1], this.h.clusterBits);
    if (this.data) {
      // "The offset field in the Standard Cluster Descriptor must match the guest offset and neither
      // compressed clusters nor internal snapshots are supported" (qcow2 spec, incompatible bit 2).
      if (e.kind === 'compressed') throw fail('qcow2', 'BAD_VALUE', `guest cluster ${c} is compressed, which an external data file does not allow`);
      if (e.kind === 'normal' && e.hostOffset !== c * this.cs)
        throw fail('qcow2', 'BAD_VALUE', `guest cluster ${c} maps to ${e.hostOffset} in the external data file, not to its own offset`);
    } else if (e.kind === 'normal') {
      if (e.hostOffset % this.cs !== 0) throw fail('qcow2', 'BAD_VALUE', `data cluster offset ${e.hostOffset} (guest cluster ${c}) is not cluster aligned`);
      if (e.hostOffset < this.cs) throw fail('qcow2', 'BAD_VALUE', `data cluster of guest cluster ${c} points into the header cluster`);
      if (e.hostOffset >= this.file.size)
        throw fail('qcow2', 'TRUNCATED', `data cluster at ${e.hostOffset} (guest cluster ${c}) lies past the end of the file`);
    } else if (e.kind === 'compressed') {
      if (e.hostOffset < this.cs) throw fail('qcow2', 'BAD_VALUE', `compressed cluster of guest cluster ${c} points into the header cluster`);
      if (e.hostOffset >= this.file.size)
        throw fail('qcow2', 'TRUNCATED', `compressed cluster at ${e.hostOffset} (guest cluster ${c}) lies past the end of the file`);
    }
    return e;
  }

  /** Inflate or zstd-decode one compressed cluster to exactly cluster_size bytes. */
  private async decompress(hostOffset: number, length: number): Promise<Uint8Array> {
    if (this.lastCompressed?.hostOffset === hostOffset) return this.lastCompressed.data;
    // The last sector may run past a file that qemu did not pad: read what exists.
    const packed = await this.file.read(hostOffset, Math.min(length, this.file.size - hostOffset));
    let data: Uint8Array;
    try {
      if (this.h.compressionType === QCOW2_COMPRESSION.zstd) {
        const frame = zstdFrameExtent(packed);
        if (frame.contentSize !== this.cs)
          throw fail('qcow2', 'BAD_VALUE', `zstd frame declares ${frame.contentSize ?? 'no'} content size, not one cluster (${this.cs})`);
        data = await zstdDecompress(packed.subarray(0, frame.length), this.cs);
      } else {
        // Raw deflate (qemu: windowBits -12); data after the end of the stream is the next cluster's.
        data = inflateRawSync(packed, { maxOutputLength: this.cs, finishFlush: zlibConstants.Z_SYNC_FLUSH });
      }
    } catch (err) {
      if (err instanceof FormatError) throw err;
      throw fail('qcow2', 'BAD_VALUE', `compressed cluster at ${hostOffset} does not decompress: ${(err as Error).message}`);
    }
    if (data.length !== this.cs) throw fail('qcow2', 'BAD_VALUE', `compressed cluster at ${hostOffset} decompresses to ${data.length} bytes, not ${this.cs}`);
    this.lastCompressed = { hostOffset, data };
    return data;
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const start = Math.min(Math.max(0, offset), this.size);
    const end = Math.min(this.size, start + Math.max(0, length));
    // A caller's buffer holds old bytes: unallocated and zero clusters are zeroed below.
    const reused = into !== undefined && into.length >= end - start;
    const out = reused ? into.subarray(0, end - start) : new Uint8Array(end - start);
    // Contiguous normal clusters are gathered into one file read, straight into `out`.
    let pending: { host: number; at: number; n: number } | undefined;
    const flush = async () => {
      if (!pending) return;
      const target = out.subarray(pending.at, pending.at + pending.n);
      const n = await readInto(this.data ?? this.file, pending.host, target);
      target.fill(0, n); // a short read at the end of the file reads as zeros
      pending = undefined;
    };
    // The L2 table is looked up once per table's span, each cluster's entry decoded from it.
    let table: { index: number; entries: Uint32Array | undefined } | undefined;
    for (let at = start; at < end;) {
      const c = Math.floor(at / this.cs);
      const within = at - c * this.cs;
      const n = Math.min(end - at, this.cs - within);
      const index = Math.floor(c / this.l2Entries);
      if (table?.index !== index) table = { index, entries: await this.tableOf(c) };
      const e = this.entryIn(table.entries, c);
      if (e.kind === 'normal') {
        const host = e.hostOffset + within;
        if (pending && pending.host + pending.n === host) pending.n += n;
        else {
          await flush();
          pending = { host, at: at - start, n };
        }
      } else {
        await flush();
        if (e.kind === 'compressed') out.set((await this.decompress(e.hostOffset, e.length)).subarray(within, within + n), at - start);
        else if (e.kind === 'unallocated' && this.backing) {
          // Not allocated here: the backing image's bytes (zeros past its end, as qemu reads a shorter backing file).
          const part = out.subarray(at - start, at - start + n);
          const have = Math.max(0, Math.min(n, this.backing.reader.size - at));
          const got = have > 0 ? await readInto(this.backing.reader, at, part.subarray(0, have)) : 0;
          part.fill(0, got);
        } else if (reused) out.fill(0, at - start, at - start + n);
      }
      at += n;
    }
    await flush();
    return out;
  }

  allocatedRanges(): AsyncIterable<{ offset: number; length: number }> {
    const own = this.presentRanges();
    return this.backing ? unionOfRanges(own, clipRanges(this.backing.reader.allocatedRanges(), this.size)) : own;
  }

  /**
   * Where clusters hold data (normal or compressed), ascending, neighbours joined, clipped to the
   * disk: each L2 table read once and its entries decoded in one synchronous pass.
   */
  private async *presentRanges(): AsyncGenerator<{ offset: number; length: number }> {
    const clusters = Math.ceil(this.size / this.cs);
    let run: { offset: number; length: number } | undefined;
    for (let t = 0; t < this.h.l1Size && t * this.l2Entries < clusters; t++) {
      const first = t * this.l2Entries;
      const table = await this.tableOf(first);
      if (!table) continue;
      const found: { offset: number; length: number }[] = [];
      for (let c = first; c < Math.min(first + this.l2Entries, clusters); c++) {
        const kind = this.entryIn(table, c).kind;
        if (kind !== 'normal' && kind !== 'compressed') continue;
        const offset = c * this.cs;
        const length = Math.min(this.cs, this.size - offset);
        if (run && run.offset + run.length === offset) run.length += length;
        else {
          if (run) found.push(run);
          run = { offset, length };
        }
      }
      yield* found;
    }
    if (run) yield run;
  }

  async close(): Promise<void> {
    await this.backing?.reader.close();
    await this.data?.close();
    await this.file.close();
  }
}

/** `ranges` cut at `size` (a backing image may be larger than the image on top). */
async function* clipRanges(ranges: AsyncIterable<{ offset: number; length: number }>, size: number): AsyncGenerator<{ offset: number; length: number }> {
  for await (const r of ranges) {
    if (r.offset >= size) return;
    yield { offset: r.offset, length: Math.min(r.length, size - r.offset) };
  }
}

async function openQcow2(file: DiskReader, ctx: OpenContext): Promise<ContainerReader> {
  const probe = await file.read(0, QCOW2_HEADER_PROBE_BYTES);
  const h = decodeQcow2Header(probe);
  const cs = 2 ** h.clusterBits;
  // Header and extensions live in the first cluster ("Header extensions"); a short file is tolerated here.
  const cluster0 = await file.read(0, cs);
  if (h.headerLength > cluster0.length) throw fail('qcow2', 'TRUNCATED', `header_length ${h.headerLength} runs past the end of the file`);
  const ext = decodeQcow2Extensions(cluster0, h.headerLength);
  checkSupported(h, ext, ctx);
  const backingFile = await backingName(file, h);
  if (backingFile !== undefined && (!ctx.allowBacking || !ctx.openBacking)) {
    throw fail('qcow2', 'BAD_VALUE', `image has a backing file "${backingFile}"; backing files are refused (--allow-backing reads the chain)`);
  }
  validateQcow2Layout(h, file.size);
  const l1Bytes = await readExact(file, h.l1TableOffset, h.l1Size * 8, 'L1 table');
  const view = new DataView(l1Bytes.buffer, l1Bytes.byteOffset, l1Bytes.length);
  const l1 = new Uint32Array(h.l1Size * 2);
  for (let i = 0; i < l1.length; i++) l1[i] = view.getUint32(i * 4);
  // qemu never points two active L1 entries at one L2 table; refusing it bounds the walk by the file's metadata.
  const seen = new Set<number>();
  for (let t = 0; t < h.l1Size; t++) {
    const l2 = decodeL1Entry(l1[t * 2], l1[t * 2 + 1]);
    if (l2 === 0) continue;
    if (seen.has(l2)) throw fail('qcow2', 'LOOP', `L2 table at ${l2} is referenced by more than one L1 entry`);
    seen.add(l2);
  }
  let data: DiskReader | undefined;
  if (h.incompatibleFeatures.includes(QCOW2_INCOMPAT.externalData)) {
    try {
      data = await ctx.openSibling(ext.externalDataFile!);
    } catch (err) {
      if (err instanceof FormatError) throw err;
      throw new DiskmintError('INPUT', `cannot open the external data file "${ext.externalDataFile}" of ${ctx.path}: ${(err as Error).message}`);
    }
  }
  let backing: { reader: ContainerReader; name: string } | undefined;
  if (backingFile !== undefined) {
    try {
      backing = { reader: await ctx.openBacking!(backingFile, ext.backingFormat), name: backingFile };
    } catch (err) {
      await data?.close();
      throw err;
    }
  }
  return new Qcow2Reader(file, data, h, ext, l1, backing);
}

export const qcow2Handler: ContainerHandler = {
  format: 'qcow2',
  compresses: true,
  extensions: ['.qcow2'],
  optionKeys: QCOW2_OPTION_KEYS,
  async detect(file) {
    try {
      const magic = await file.read(0, 4);
      return magic.length === 4 && new DataView(magic.buffer, magic.byteOffset, 4).getUint32(0) === QCOW2_MAGIC;
    } catch {
      return false;
    }
  },
  open: openQcow2,
  write: writeQcow2,
  editing: qcow2Editing,
};
