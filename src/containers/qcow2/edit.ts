/**
 * In-place edits of a qcow2 container (QEMU docs/interop/qcow2.txt, "qcow2 spec"), through its
 * own allocation rules: a guest cluster the image already owns (a standard cluster with the
 * COPIED flag and refcount 1) is written where it lies; any other cluster (unallocated, zero,
 * compressed, or shared) gets a new host cluster at the end of the file, filled whole with its
 * old bytes (zeros, the backing file's, the decompressed ones, as `reader` reads them) and the
 * new data; a zero cluster that keeps its own host cluster (v3 bit 0 with an offset, COPIED) is
 * filled whole there, read as zeros until its entry loses bit 0 in group 2. New L2 tables and refcount blocks are new clusters at the end too. Clusters are
 * never reused within a session (a freed one stays free for qemu to reuse), so data a crash
 * could still reach is never overwritten.
 *
 * Crash order (flush), with barriers (every write before one is durable before any after it;
 * between two, writes land in any order and any subset):
 *
 *   group 1  data clusters (written by `write` itself: in place, or new clusters past the end),
 *            new L2 tables, new refcount blocks, refcount increments in existing blocks
 *   BARRIER  (a cut before it: new clusters are unreferenced; counted ones are leaks)
 *   group 1b refcount table entries of the new blocks, in waves: a block whose own cluster is
 *            counted by another new block waits (BARRIER) for that block's entry, so a table
 *            entry never points at a block whose own count is missing
 *   BARRIER
 *   group 2  entries in existing L2 tables, L1 entries (each points at a counted, written cluster)
 *   BARRIER
 *   group 3  refcount decrements of replaced clusters (compressed or shared), once nothing
 *            points at them (a cut before: leaks only)
 *   BARRIER
 *
 * No header field changes: the L1 table has a fixed size and a refcount table that would have
 * to grow is refused at open (edit-open.ts). `reader` is not told of the edit: after a flush,
 * open the image again to read it.
 */
import { DiskmintError } from '../../model/errors.js';
import { fail } from '../../../formats/common/errors.js';
import { l2EntriesPerTable, type Qcow2Header } from '../../../formats/containers/qcow2.js';
import {
  decodeRefcountTableEntry,
  encodeRefcountTableEntry,
  getRefcount,
  refcountsPerBlock,
  setRefcount,
} from '../../../formats/containers/qcow2-refcounts.js';
import { compressedHostClusters, decodeL1Entry, decodeL2Entry, encodeL1Entry, encodeL2Standard, isCopied } from '../../../formats/containers/qcow2-tables.js';
import type { ContainerEditSession, ContainerEditing, ContainerReader, EditableFile } from '../types.js';
import { readExact, readForEdit, u32 } from './edit-open.js';

/** Table writes are batched per 512-byte sector (the unit a disk writes atomically). */
const SECTOR = 512;
/** Data pieces that are contiguous in the file are joined into writes of at most this size. */
const MAX_JOINED_WRITE = 4 * 1024 * 1024;
/** A table (L2 or refcount block, one cluster) held while edited: its bytes, whether it is new, its changed sectors. */
interface HeldTable {
  offset: number;
  bytes: Uint8Array;
  isNew: boolean;
  dirty: Set<number>;
}

function putEntry(bytes: Uint8Array, index: number, [hi, lo]: [number, number]): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  view.setUint32(index * 8, hi);
  view.setUint32(index * 8 + 4, lo);
}

/** Write the changed sectors of `bytes` (a table at file offset `base`), one write per run of adjacent sectors. */
async function writeDirty(file: EditableFile, base: number, bytes: Uint8Array, dirty: Set<number>): Promise<void> {
  const sectors = [...dirty].sort((a, b) => a - b);
  for (let i = 0; i < sectors.length;) {
    let j = i + 1;
    while (j < sectors.length && sectors[j] === sectors[j - 1] + 1) j++;
    const from = sectors[i] * SECTOR;
    await file.write(base + from, bytes.slice(from, Math.min(bytes.length, sectors[j - 1] * SECTOR + SECTOR)));
    i = j;
  }
  dirty.clear();
}

/** Joins data pieces that follow each other in the file into one write. */
class JoinedWriter {
  private parts: Uint8Array[] = [];
  private start = 0;
  private length = 0;
  constructor(private readonly file: EditableFile) {}

  async add(offset: number, data: Uint8Array): Promise<void> {
    if (this.length && (offset !== this.start + this.length || this.length + data.length > MAX_JOINED_WRITE)) await this.flush();
    if (!this.length) this.start = offset;
    this.parts.push(data);
    this.length += data.length;
  }

  async flush(): Promise<void> {
    if (!this.length) return;
    let joined = this.parts[0];
    if (this.parts.length > 1) {
      joined = new Uint8Array(this.length);
      let at = 0;
      for (const p of this.parts) {
        joined.set(p, at);
        at += p.length;
      }
    }
    await this.file.write(this.start, joined);
    this.parts = [];
    this.length = 0;
  }
}

class Qcow2EditSession implements ContainerEditSession {
  private readonly cs: number;
  private readonly l2Entries: number;
  private readonly perBlock: number;
  private readonly order: number;
  /** Next host offset to hand out (the end of the file, rounded up to a cluster). */
  private end: number;
  private readonly l2 = new Map<number, HeldTable>();
  private readonly blocks = new Map<number, HeldTable>();
  private readonly l1Dirty = new Set<number>();
  /** Refcount table indexes of blocks made since the last flush, with the block index counting each one's own cluster. */
  private readonly newBlocks = new Map<number, number>();
  /** Host clusters to decrement once nothing points at them (group 3), with how many references go. */
  private readonly decrements = new Map<number, number>();
  private unsynced = false;
  /** Set when a write failed midway: its in-memory tables may be half done, so nothing more is written. */
  private broken?: Error;

  constructor(
    private readonly file: EditableFile,
    private readonly reader: ContainerReader,
    private readonly h: Qcow2Header,
    private readonly l1: Uint8Array,
    private readonly reftable: Uint8Array,
    /** Host clusters holding metadata (header, L1, refcount table and blocks, L2 tables): never guest data. */
    private readonly metadata: Set<number>,
  ) {
    this.cs = 2 ** h.clusterBits;
    this.l2Entries = l2EntriesPerTable(h.clusterBits);
    this.order = h.refcountOrder;
    this.perBlock = refcountsPerBlock(h.clusterBits, 2 ** h.refcountOrder);
    this.end = Math.ceil(file.size / this.cs) * this.cs;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    const end = offset + data.length;
    if (!Number.isSafeInteger(offset) || offset < 0 || end > this.h.size)
      throw new DiskmintError('BAD_ARGUMENT', `a write of ${data.length} bytes at ${offset} lies outside the ${this.h.size}-byte virtual disk`);
    if (data.length) await this.guarded(() => this.writeClusters(offset, data));
  }

  async flush(): Promise<void> {
    await this.guarded(() => this.flushInOrder());
  }

  /** Runs `step`; once one fails, the in-memory tables may be half updated, so the session refuses to go on. */
  private async guarded(step: () => Promise<void>): Promise<void> {
    if (this.broken) throw new DiskmintError('IO', `an earlier step of this qcow2 edit failed (${this.broken.message}); nothing more is written`);
    try {
      await step();
    } catch (err) {
      this.broken = err as Error;
      throw err;
    }
  }

  private async writeClusters(offset: number, data: Uint8Array): Promise<void> {
    const end = offset + data.length;
    const first = Math.floor(offset / this.cs);
    const count = Math.floor((end - 1) / this.cs) - first + 1;
    const pieceOf = (k: number) => {
      const start = (first + k) * this.cs;
      const from = Math.max(offset, start);
      return { start, from, piece: data.subarray(from - offset, Math.min(end, start + this.cs) - offset) };
    };
    // Every cluster's place is decided (tables read, checked, allocated) and the old bytes of a
    // partly written new cluster read (only the first and last can be) before any byte is written.
    const hosts = new Array<number>(count);
    const wholes = new Map<number, Uint8Array>();
    for (let k = 0; k < count; k++) {
      const t = await this.target(first + k);
      hosts[k] = t.host;
      const { start, from, piece } = pieceOf(k);
      if (!t.fresh || piece.length === this.cs) continue;
      // A new cluster is written whole: its old bytes (as the image reads them now) around the new ones.
      const whole = new Uint8Array(this.cs);
      if (from !== start || from + piece.length < Math.min(this.h.size, start + this.cs))
        whole.set(await this.reader.read(start, Math.min(this.cs, this.h.size - start)));
      whole.set(piece, from - start);
      wholes.set(k, whole);
    }
    const out = new JoinedWriter(this.file);
    for (let k = 0; k < count; k++) {
      const { start, from, piece } = pieceOf(k);
      const whole = wholes.get(k);
      if (whole) await out.add(hosts[k], whole);
      else await out.add(hosts[k] + from - start, piece);
    }
    await out.flush();
    this.unsynced = true;
  }

  /** Where guest cluster `c`'s bytes go: its own cluster (in place), or a new one (`fresh`: written whole). */
  private async target(c: number): Promise<{ host: number; fresh: boolean }> {
    const table = await this.l2Table(Math.floor(c / this.l2Entries));
    const i = c % this.l2Entries;
    const hi = u32(table.bytes, i * 8);
    const lo = u32(table.bytes, i * 8 + 4);
    const e = decodeL2Entry(hi, lo, this.h.clusterBits);
    // A zero cluster may keep a preallocated host cluster (bits 9-55, as a standard descriptor's).
    const own = e.kind === 'normal' ? e.hostOffset : e.kind === 'zero' ? decodeL1Entry(hi, lo) : 0;
    if (own) {
      if (own % this.cs !== 0 || this.metadata.has(own / this.cs) || own >= this.file.size)
        throw fail('qcow2', 'BAD_VALUE', `guest cluster ${c} maps to host offset ${own}, which is not a data cluster of this image: run \`qemu-img check\``);
      if (isCopied(hi) && (await this.refcount(own / this.cs)) === 1) {
        if (e.kind === 'normal') return { host: own, fresh: false };
        this.setL2(table, i, own); // a preallocated zero cluster: written whole, then pointed at as data
        return { host: own, fresh: true };
      }
      await this.release(own / this.cs, own / this.cs, c);
    } else if (e.kind === 'compressed') {
      const { first, last } = compressedHostClusters(e.hostOffset, e.length, this.h.clusterBits);
      await this.release(first, last, c);
    }
    const host = await this.allocate();
    this.setL2(table, i, host);
    return { host, fresh: true };
  }

  private setL2(table: HeldTable, i: number, host: number): void {
    putEntry(table.bytes, i, encodeL2Standard(host));
    table.dirty.add(Math.floor((i * 8) / SECTOR));
  }

  /** Host clusters first..last lose one reference of guest cluster `c` (in group 3). */
  private async release(first: number, last: number, c: number): Promise<void> {
    for (let h = first; h <= last; h++) {
      const pending = this.decrements.get(h) ?? 0;
      if ((await this.refcount(h)) <= pending)
        throw fail('qcow2', 'BAD_VALUE', `host cluster ${h} of guest cluster ${c} has a refcount too small for its references: run \`qemu-img check\``);
      this.decrements.set(h, pending + 1);
    }
  }

  /** The L2 table of L1 entry `t`, read (checked) or made new (an L1 entry to write in group 2). */
  private async l2Table(t: number): Promise<HeldTable> {
    const held = this.l2.get(t);
    if (held) return held;
    const offset = decodeL1Entry(u32(this.l1, t * 8), u32(this.l1, t * 8 + 4));
    let table: HeldTable;
    if (offset === 0) {
      const at = await this.allocate();
      this.metadata.add(at / this.cs);
      table = { offset: at, bytes: new Uint8Array(this.cs), isNew: true, dirty: new Set() };
      putEntry(this.l1, t, encodeL1Entry(at));
      this.l1Dirty.add(Math.floor((t * 8) / SECTOR));
    } else {
      if (offset % this.cs !== 0 || offset + this.cs > this.file.size)
        throw fail('qcow2', 'BAD_VALUE', `L2 table offset ${offset} (L1 entry ${t}) is not a whole cluster inside the file`);
      table = { offset, bytes: await readExact(this.file, offset, this.cs, 'L2 table'), isNew: false, dirty: new Set() };
    }
    this.l2.set(t, table);
    return table;
  }

  /** Refcount block `b`, or undefined when the table has none there (all its counts are 0). */
  private async block(b: number): Promise<HeldTable | undefined> {
    const held = this.blocks.get(b);
    if (held) return held;
    if (b * 8 >= this.reftable.length) return undefined;
    const offset = decodeRefcountTableEntry(u32(this.reftable, b * 8), u32(this.reftable, b * 8 + 4));
    if (offset === 0) return undefined;
    const block = { offset, bytes: await readExact(this.file, offset, this.cs, 'refcount block'), isNew: false, dirty: new Set<number>() };
    this.blocks.set(b, block);
    return block;
  }

  private async refcount(h: number): Promise<number> {
    const block = await this.block(Math.floor(h / this.perBlock));
    return block ? getRefcount(block.bytes, h % this.perBlock, this.order) : 0;
  }

  private async setCount(h: number, value: number): Promise<void> {
    const b = Math.floor(h / this.perBlock);
    const block = (await this.block(b)) ?? (await this.newBlock(b));
    const index = h % this.perBlock;
    setRefcount(block.bytes, index, this.order, value);
    block.dirty.add(Math.floor((index * 2 ** this.order) / 8 / SECTOR));
  }

  /** The next cluster at the end that no refcount claims (qemu skips counted ones: leaks past the end). */
  private async claim(): Promise<number> {
    for (;;) {
      const h = this.end / this.cs;
      this.end += this.cs;
      if ((await this.refcount(h)) === 0) return h;
    }
  }

  /** A new cluster with refcount 1; its host offset. */
  private async allocate(): Promise<number> {
    const h = await this.claim();
    await this.setCount(h, 1);
    return h * this.cs;
  }

  /** A new refcount block for table index `b`, counting its own cluster (there or in the next new block). */
  private async newBlock(b: number): Promise<HeldTable> {
    if (b * 8 >= this.reftable.length) throw new DiskmintError('IO', `the refcount table has no room for refcount block ${b}`);
    const h = await this.claim();
    this.metadata.add(h);
    const block = { offset: h * this.cs, bytes: new Uint8Array(this.cs), isNew: true, dirty: new Set<number>() };
    this.blocks.set(b, block);
    putEntry(this.reftable, b, encodeRefcountTableEntry(block.offset));
    this.newBlocks.set(b, Math.floor(h / this.perBlock));
    await this.setCount(h, 1);
    return block;
  }

  private async flushInOrder(): Promise<void> {
    const tables = [...this.l2.values()];
    if (!this.unsynced && !this.l1Dirty.size && !tables.some((t) => t.dirty.size)) return;
    const f = this.file;
    // Group 1: new tables and blocks whole, increments in existing blocks (data is already written).
    for (const t of this.l2.values()) if (t.isNew) await f.write(t.offset, t.bytes);
    for (const b of this.blocks.values()) {
      if (b.isNew) await f.write(b.offset, b.bytes);
      else await writeDirty(f, b.offset, b.bytes, b.dirty);
    }
    await f.barrier();
    this.unsynced = false;
    // Group 1b: refcount table entries, in waves (see the file comment).
    const waves = new Map<number, number>();
    const waveOf = (b: number): number => {
      const dep = this.newBlocks.get(b)!;
      return dep !== b && this.newBlocks.has(dep) ? waveOf(dep) + 1 : 0;
    };
    for (const b of this.newBlocks.keys()) waves.set(b, waveOf(b));
    for (let w = 0; w <= Math.max(-1, ...waves.values()); w++) {
      const dirty = new Set([...waves].filter(([, wave]) => wave === w).map(([b]) => Math.floor((b * 8) / SECTOR)));
      await writeDirty(f, this.h.refcountTableOffset, this.reftable, dirty);
      await f.barrier();
    }
    for (const b of this.blocks.values()) {
      b.isNew = false;
      b.dirty.clear();
    }
    this.newBlocks.clear();
    // Group 2: entries in existing L2 tables, then L1 entries.
    const pointed = this.l1Dirty.size > 0 || tables.some((t) => !t.isNew && t.dirty.size);
    for (const t of tables) {
      if (!t.isNew) await writeDirty(f, t.offset, t.bytes, t.dirty);
      t.isNew = false;
      t.dirty.clear();
    }
    await writeDirty(f, this.h.l1TableOffset, this.l1, this.l1Dirty);
    if (pointed) await f.barrier();
    // Group 3: decrements of the clusters nothing points at any more.
    if (!this.decrements.size) return;
    for (const [h, n] of [...this.decrements].sort((a, b) => a[0] - b[0])) await this.setCount(h, (await this.refcount(h)) - n);
    this.decrements.clear();
    for (const b of this.blocks.values()) await writeDirty(f, b.offset, b.bytes, b.dirty);
    await f.barrier();
  }
}

export const qcow2Editing: ContainerEditing = {
  async openForEdit(file, reader) {
    const opened = await readForEdit(file);
    if ('refused' in opened) return opened;
    return new Qcow2EditSession(file, reader, opened.h, opened.l1, opened.reftable, opened.metadata);
  },
};
