/**
 * In-place edits of a monolithicSparse VMDK (a hosted sparse extent with its descriptor
 * embedded: VMware "Virtual Disk Format 1.1", "Hosted Sparse Extent Header" and "Grain Tables
 * and Grain Directories"), allocating as qemu's block/vmdk.c does: a write into a grain the
 * image already stores goes straight there; a grain it does not store (GTE 0, or the
 * zeroed-grain GTE 1) is appended whole at the end of the file, filled with its old bytes (the
 * parent's for a delta disk, zeros for a zeroed grain), and its grain table entry (GTE), in the
 * grain table and in the redundant one, waits in memory for `flush`. A grain directory entry of
 * 0 (no table yet) gets a new grain table and redundant table at the end, written whole.
 *
 * The crash order of `flush` (a barrier is fdatasync: every write before it is durable before
 * any write after it starts; the writes between two barriers may land in any order, or not):
 *
 *   grains written in place, new grains at the end (issued by `write`), new grain tables whole
 *   BARRIER   (a stop here leaves grains no table names yet: leaked space, old bytes read)
 *   GTE sectors of existing grain tables and redundant tables, GD and RGD sectors naming new tables
 *   BARRIER   (each GTE names a grain that is durable: each grain reads old or new)
 *   the descriptor's CID digits (a new content ID, so delta disks on this one notice the change)
 *   BARRIER
 *
 * qemu-img check looks only for grains past the end of the file, which no order here produces.
 * Streamed (compressed) extents, flat extents and descriptor files are refused (`editableHeader`).
 */
import { DiskmintError } from '../../model/errors.js';
import { crc32 } from '../../model/crc32.js';
import { fail } from '../../../formats/common/errors.js';
import type { ContainerEditSession, ContainerEditing, ContainerReader, EditableFile, InPlaceRefusal } from '../types.js';
import {
  ENTRIES_PER_SECTOR,
  FLAG_MARKERS,
  FLAG_REDUNDANT_GT,
  FLAG_ZEROED_GRAIN_GTE,
  MAX_ENTRY_SECTOR,
  SECTOR,
  decodeSparseHeader,
  decodeU32Table,
  encodeCidDigits,
  encodeTableSector,
  encodeU32Table,
  gdEntryCount,
  gdSectors,
  gtSectors,
  hasSparseMagic,
  isCompressed,
  locateDescriptorCid,
  type SparseHeader,
} from '../../../formats/containers/vmdk.js';
import { CID_NOPARENT, MAX_DESCRIPTOR_BYTES, decodeDescriptor } from '../../../formats/containers/vmdk-descriptor.js';

/** block/vmdk.c VMDK_GTE_ZEROED: with the zeroed-grain flag, GTE 1 reads as zeros. */
const GTE_ZEROED = 1;

/** One grain table and its redundant copy (spec: both name the same grains). */
interface TablePair {
  gt: Uint32Array;
  rgt?: Uint32Array;
}

/** Where the descriptor's CID digits are in the file, and their value. */
interface CidSpot {
  at: number;
  width: number;
  value: number;
}

async function readTable(file: EditableFile, sector: number, count: number, what: string): Promise<Uint32Array> {
  const bytes = await file.read(sector * SECTOR, count * 4);
  if (bytes.length < count * 4) throw fail('vmdk', 'TRUNCATED', `${what} at sector ${sector} lies past the end of the file`);
  return decodeU32Table(bytes, count);
}

/** The header of `reader`'s sparse extent when it can be edited in place (monolithicSparse), else why not. */
function editableHeader(h: SparseHeader | undefined, reader: ContainerReader): SparseHeader | InPlaceRefusal {
  const createType = reader.subformat ?? 'monolithicSparse';
  if (h && (isCompressed(h) || h.gdOffset === 'end' || h.flags & FLAG_MARKERS)) {
    return {
      refused:
        'a streamOptimized VMDK holds deflated grains written once, in stream order, with its grain directory in a footer; none of them can be rewritten in place',
      rewriteKeepsEverything: true,
    };
  }
  if (!h || h.capacity === 0) {
    if (createType === 'monolithicFlat') {
      return {
        refused: 'a monolithicFlat VMDK keeps its data in the flat extent file its descriptor names, and only the descriptor is open for writing',
        rewriteKeepsEverything: true,
      };
    }
    return {
      refused: `a ${createType} VMDK spreads its data over the extent files its descriptor names; only the descriptor is open for writing, and a rewrite into one file would change its layout`,
      rewriteKeepsEverything: false,
    };
  }
  if (h.version === 3) {
    // block/vmdk.c vmdk_open_vmdk4: uncompressed version 3 (changed block tracking, VMware KB
    // 2064959) opens read-only; its tracking would not see our writes.
    return {
      refused: 'a version 3 sparse VMDK (changed block tracking) opens read-only in qemu: writes in place would bypass its change tracking',
      rewriteKeepsEverything: true,
    };
  }
  return h;
}

/** The CID digits of the embedded descriptor, and refusal when a parent link was not followed. */
async function descriptorFacts(file: EditableFile, h: SparseHeader, reader: ContainerReader): Promise<{ cid?: CidSpot; refused?: InPlaceRefusal }> {
  if (h.descriptorOffset === 0 || h.descriptorSize === 0) return {};
  const at = h.descriptorOffset * SECTOR;
  const bytes = await file.read(at, Math.min(h.descriptorSize * SECTOR, MAX_DESCRIPTOR_BYTES));
  if (!bytes.some((b) => b !== 0)) return {};
  const d = decodeDescriptor(bytes);
  if (d.parentCid !== CID_NOPARENT && d.parentFileNameHint !== undefined && reader.details().parent === undefined) {
    const refused = `the VMDK is a delta disk of "${d.parentFileNameHint}", which was not opened: its new grains could not be filled from it`;
    return { refused: { refused, rewriteKeepsEverything: false } };
  }
  const spot = locateDescriptorCid(bytes);
  return spot ? { cid: { at: at + spot.start, width: spot.end - spot.start, value: spot.value } } : {};
}

/**
 * The next content ID: a CRC-32 of the old one and of this flush's writes (offsets, lengths and
 * bytes), kept to the old digits' width so the descriptor's text does not move, and never the
 * old value or CID_NOPARENT. Deterministic where qemu draws a random one (vmdk_write_cid).
 */
function nextCid(old: CidSpot, editCrc: number): number {
  const bound = 16 ** old.width;
  const seed = new Uint8Array(8);
  new DataView(seed.buffer).setUint32(0, old.value, true);
  new DataView(seed.buffer).setUint32(4, editCrc, true);
  let cid = crc32(seed) % bound;
  while (cid === old.value || cid === CID_NOPARENT) cid = (cid + 1) % bound;
  return cid;
}

class SparseEditSession implements ContainerEditSession {
  private readonly grainBytes: number;
  private readonly tables = new Map<number, TablePair>();
  /** New grains' GTEs (grain -> sector), visible after the next flush. */
  private readonly pending = new Map<number, number>();
  /** Grain directory entries with no table yet, whose new tables the next flush writes. */
  private readonly newTables = new Set<number>();
  /** Per existing table: the sectors whose GTEs changed. */
  private readonly dirtySectors = new Map<number, Set<number>>();
  private nextSector: number;
  /** The first sector after the header, descriptor and both directories: no grain lies before it. */
  private readonly metadataEnd: number;
  private written = false;
  private editCrc = 0;

  constructor(
    private readonly file: EditableFile,
    private readonly reader: ContainerReader,
    private readonly h: SparseHeader,
    private readonly gd: Uint32Array,
    private readonly rgd: Uint32Array | undefined,
    private cid: CidSpot | undefined,
  ) {
    this.grainBytes = h.grainSize * SECTOR;
    // block/vmdk.c vmdk_add_extent: new grains start at the file's length rounded up to a grain.
    this.nextSector = Math.ceil(Math.ceil(file.size / SECTOR) / h.grainSize) * h.grainSize;
    const dirSectors = gdSectors(h);
    this.metadataEnd = Math.max(1, h.descriptorOffset + h.descriptorSize, (h.gdOffset as number) + dirSectors, rgd ? h.rgdOffset + dirSectors : 0);
  }

  private async table(t: number): Promise<TablePair | undefined> {
    if (this.gd[t] === 0) return undefined;
    let pair = this.tables.get(t);
    if (!pair) {
      const n = this.h.numGTEsPerGT;
      const gt = await readTable(this.file, this.gd[t], n, `grain table ${t}`);
      const rgt = this.rgd && this.rgd[t] !== 0 ? await readTable(this.file, this.rgd[t], n, `redundant grain table ${t}`) : undefined;
      pair = { gt, rgt };
      this.tables.set(t, pair);
    }
    return pair;
  }

  /** The grain's sector in the file, 0 when unallocated, -1 for a zeroed grain. */
  private async gte(g: number): Promise<number> {
    const mine = this.pending.get(g);
    if (mine !== undefined) return mine;
    const t = Math.floor(g / this.h.numGTEsPerGT);
    const e = (await this.table(t))?.gt[g % this.h.numGTEsPerGT] ?? 0;
    if (e === GTE_ZEROED && this.h.flags & FLAG_ZEROED_GRAIN_GTE) return -1;
    if (e !== 0 && e * SECTOR >= this.file.size) throw fail('vmdk', 'TRUNCATED', `grain ${g} at sector ${e} lies past the end of the file`);
    if (e !== 0 && e < this.metadataEnd) throw fail('vmdk', 'BAD_VALUE', `grain ${g} at sector ${e} overlaps the header, descriptor or grain directories`);
    return e;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + data.length > this.reader.size) {
      throw new DiskmintError('BAD_ARGUMENT', `vmdk: a write of ${data.length} bytes at ${offset} lies outside the ${this.reader.size}-byte disk`);
    }
    if (data.length === 0) return;
    const first = Math.floor(offset / this.grainBytes);
    const last = Math.floor((offset + data.length - 1) / this.grainBytes);
    // Every lookup before any write, so a write that cannot fit in u32 sectors changes nothing.
    const sectors: number[] = [];
    let fresh = 0;
    const tablesBefore = this.newTables.size;
    const tablesNeeded = new Set<number>();
    for (let g = first; g <= last; g++) {
      const s = await this.gte(g);
      sectors.push(s);
      if (s <= 0) {
        fresh++;
        const t = Math.floor(g / this.h.numGTEsPerGT);
        if (this.gd[t] === 0) tablesNeeded.add(t);
      }
    }
    const tableSectors = (tablesBefore + tablesNeeded.size) * gtSectors(this.h.numGTEsPerGT) * (this.rgd ? 2 : 1);
    if (fresh > 0 && this.nextSector + fresh * this.h.grainSize + tableSectors > MAX_ENTRY_SECTOR + 1) {
      throw new DiskmintError('BAD_ARGUMENT', 'vmdk: the edit would need grains past sector 2^32 (2 TiB), which grain tables cannot name');
    }
    this.written = true;
    this.editCrc = crc32(data, crc32(u64Pair(offset, data.length), this.editCrc));
    let run: { at: number; from: number; to: number } | undefined; // data[from, to) goes to file offset `at`
    const flushRun = async () => {
      if (run) await this.file.write(run.at, data.subarray(run.from, run.to));
      run = undefined;
    };
    for (let g = first; g <= last; g++) {
      const grainStart = g * this.grainBytes;
      const from = Math.max(offset, grainStart) - offset;
      const to = Math.min(offset + data.length, grainStart + this.grainBytes) - offset;
      let sector = sectors[g - first];
      if (sector <= 0) {
        const zeroed = sector < 0;
        sector = this.allocate(g);
        if (to - from < this.grainBytes) {
          await flushRun();
          const whole = await this.oldGrain(grainStart, zeroed);
          whole.set(data.subarray(from, to), offset + from - grainStart);
          await this.file.write(sector * SECTOR, whole);
          continue;
        }
      }
      const at = sector * SECTOR + (offset + from - grainStart);
      if (run && run.at + (run.to - run.from) === at && run.to === from) run.to = to;
      else {
        await flushRun();
        run = { at, from, to };
      }
    }
    await flushRun();
  }

  /** A new grain at the end of the file for grain `g`; its GTE waits for flush. */
  private allocate(g: number): number {
    const sector = this.nextSector;
    this.nextSector += this.h.grainSize;
    this.pending.set(g, sector);
    const t = Math.floor(g / this.h.numGTEsPerGT);
    if (this.gd[t] === 0) this.newTables.add(t);
    else {
      const dirty = this.dirtySectors.get(t) ?? new Set<number>();
      dirty.add(Math.floor((g % this.h.numGTEsPerGT) / ENTRIES_PER_SECTOR));
      this.dirtySectors.set(t, dirty);
    }
    return sector;
  }

  /** A grain's old bytes, whole: zeros for a zeroed grain (qemu does not copy the parent's), else what the reader reads (the parent's for a delta disk). */
  private async oldGrain(grainStart: number, zeroed: boolean): Promise<Uint8Array> {
    const whole = new Uint8Array(this.grainBytes);
    if (!zeroed) whole.set(await this.reader.read(grainStart, Math.min(this.grainBytes, this.reader.size - grainStart)));
    return whole;
  }

  async flush(): Promise<void> {
    if (!this.written) return;
    const per = this.h.numGTEsPerGT;
    const gtSecs = gtSectors(per);
    // Group 1 (the grains went out in `write`): new tables, whole, after the last grain.
    const dirtyDirectory = new Set<number>();
    for (const t of [...this.newTables].sort((a, b) => a - b)) {
      const gt = new Uint32Array(per);
      for (const [g, s] of this.pending) if (Math.floor(g / per) === t) gt[g % per] = s;
      const gtAt = this.nextSector;
      this.nextSector += gtSecs;
      await this.file.write(gtAt * SECTOR, encodeU32Table(gt, gtSecs));
      let rgt: Uint32Array | undefined;
      if (this.rgd) {
        rgt = gt.slice();
        this.rgd[t] = this.nextSector;
        this.nextSector += gtSecs;
        await this.file.write(this.rgd[t] * SECTOR, encodeU32Table(rgt, gtSecs));
      }
      this.gd[t] = gtAt;
      this.tables.set(t, { gt, rgt });
      dirtyDirectory.add(Math.floor(t / ENTRIES_PER_SECTOR));
    }
    await this.file.barrier();
    // Group 2: the GTEs naming the new grains, and the directory entries naming the new tables.
    for (const [g, s] of this.pending) {
      const t = Math.floor(g / per);
      if (this.newTables.has(t)) continue;
      const pair = this.tables.get(t)!;
      pair.gt[g % per] = s;
      if (pair.rgt) pair.rgt[g % per] = s;
    }
    for (const [t, dirty] of [...this.dirtySectors].sort((a, b) => a[0] - b[0])) {
      const pair = this.tables.get(t)!;
      for (const k of [...dirty].sort((a, b) => a - b)) {
        await this.file.write(this.gd[t] * SECTOR + k * SECTOR, encodeTableSector(pair.gt, k));
        if (pair.rgt && this.rgd) await this.file.write(this.rgd[t] * SECTOR + k * SECTOR, encodeTableSector(pair.rgt, k));
      }
    }
    const gdAt = this.h.gdOffset as number;
    for (const k of [...dirtyDirectory].sort((a, b) => a - b)) {
      await this.file.write(gdAt * SECTOR + k * SECTOR, encodeTableSector(this.gd, k));
      if (this.rgd) await this.file.write(this.h.rgdOffset * SECTOR + k * SECTOR, encodeTableSector(this.rgd, k));
    }
    if (this.pending.size > 0) await this.file.barrier();
    // Group 3: a new content ID in the descriptor (block/vmdk.c vmdk_write_cid, on the first write).
    if (this.cid) {
      const cid = nextCid(this.cid, this.editCrc);
      await this.file.write(this.cid.at, encodeCidDigits(cid, this.cid.width));
      this.cid = { ...this.cid, value: cid };
      await this.file.barrier();
    }
    this.pending.clear();
    this.newTables.clear();
    this.dirtySectors.clear();
    this.written = false;
    this.editCrc = 0;
  }
}

function u64Pair(a: number, b: number): Uint8Array {
  const out = new Uint8Array(16);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(a), true);
  dv.setBigUint64(8, BigInt(b), true);
  return out;
}

export const vmdkEditing: ContainerEditing = {
  async openForEdit(file, reader) {
    const head = await file.read(0, SECTOR);
    const h = editableHeader(hasSparseMagic(head) ? decodeSparseHeader(head) : undefined, reader);
    if ('refused' in h) return h;
    const facts = await descriptorFacts(file, h, reader);
    if (facts.refused) return facts.refused;
    const entries = gdEntryCount(h);
    const gd = await readTable(file, h.gdOffset as number, entries, 'grain directory');
    const rgd = h.flags & FLAG_REDUNDANT_GT && h.rgdOffset > 0 ? await readTable(file, h.rgdOffset, entries, 'redundant grain directory') : undefined;
    return new SparseEditSession(file, reader, h, gd, rgd, facts.cid);
  },
};
