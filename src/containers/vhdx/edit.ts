/**
 * In-place edits of a VHDX ([MS-VHDX] v1.00 sections; qemu block/vhdx.c vhdx_co_writev does the
 * same allocation): writes into FULLY_PRESENT payload blocks go where the block lies; a write into
 * any other block (NOT_PRESENT, UNDEFINED, ZERO, UNMAPPED) gets a new block at the end of the file,
 * 1 MiB aligned (2.5.1: FileOffsetMB is in MiB), whose BAT entry becomes FULLY_PRESENT at flush.
 * A disk without a parent reads such blocks as zeros (2.5.1.1), so a new block's old bytes are
 * zeros: the file is grown past the block's end, and the bytes not written read as zeros (a hole),
 * as qemu's bdrv_truncate of the file does.
 *
 * Crash order, with write barriers (fdatasync: every write before one is durable before any write
 * after it starts; between two barriers the writes may land in any order, or some not at all):
 *
 *   the non-current header: SequenceNumber + 1, new FileWriteGuid and DataWriteGuid (2.2.2.1)
 *   BARRIER   (before the first data write, as qemu's vhdx_user_visible_write)
 *   data: into present blocks; into new blocks past the old end of the file (invisible: no BAT
 *   entry names them yet)
 *   BARRIER   (flush: every new block is whole on the disk before anything points at it)
 *   BAT entries, one write per changed 4 KiB BAT sector
 *   BARRIER
 *
 * A stop in the header group leaves the old header current (a torn new one fails its CRC-32C, and
 * 2.2.2.1 takes the valid header with the higher SequenceNumber). A stop in the data group leaves
 * every present block with the old or new bytes of each write (one write per block touched) and
 * new blocks unreferenced (leaked space; `qemu-img check` does not count it). The BAT entries are
 * written directly, not through the log (2.3), and that is crash-safe: an entry is 8 bytes, 8-byte
 * aligned, so it lies inside one 512-byte sector, which a disk writes whole; each entry therefore
 * reads either old (the block's old bytes) or new (FULLY_PRESENT, naming a block made durable by
 * the barrier before), whichever subset of the BAT sectors landed. The log exists to make updates
 * of several sectors atomic together; no edit here needs two entries to change together. LogGuid
 * stays zero, so no reader replays anything over these entries.
 */
import { DiskmintError } from '../../model/errors.js';
import {
  BAT_REGION,
  META,
  METADATA_REGION,
  MIB,
  PAYLOAD,
  VHDX_HEADER_OFFSETS,
  VHDX_METADATA_TABLE_SIZE,
  VHDX_REGION_OFFSETS,
  VHDX_REGION_TABLE_SIZE,
  decodeRegionTable,
  encodeVhdxHeader,
  nextWriteHeader,
  type VhdxHeader,
  type VhdxRegion,
} from '../../../formats/containers/vhdx.js';
import { batGeometry, decodeBatEntry, encodeBatEntry, payloadEntryIndex } from '../../../formats/containers/vhdx-bat.js';
import { decodeMetadataTable } from '../../../formats/containers/vhdx-metadata.js';
import type { ContainerEditSession, ContainerEditing, ContainerReader, EditableFile, InPlaceRefusal } from '../types.js';
import { currentHeader, findLogToReplay, readExact } from './log.js';

/** BAT entries are read and written a sector at a time: 4 KiB, the log's and Hyper-V's unit (2.3). */
const BAT_SECTOR = 4096;
/** BAT sectors kept in memory for looking up states (1 MiB of table). */
const BAT_CACHE_SECTORS = 256;
/** A new block's last bytes, written as zeros when the data does not reach the block's end, so the file covers the whole block. */
const TAIL = 4096;

/** 2.2.3: region table 1, or table 2 when table 1 is damaged (as the handler reads them). */
async function regionTable(file: EditableFile): Promise<VhdxRegion[]> {
  try {
    return decodeRegionTable(await readExact(file, VHDX_REGION_OFFSETS[0], VHDX_REGION_TABLE_SIZE, 'region table 1'), 'region table 1');
  } catch (e1) {
    try {
      return decodeRegionTable(await readExact(file, VHDX_REGION_OFFSETS[1], VHDX_REGION_TABLE_SIZE, 'region table 2'), 'region table 2');
    } catch {
      throw e1;
    }
  }
}

/** 2.6.2.1 File Parameters bit 1 HasParent, or a 2.6.2.6 parent locator: a differencing disk. */
async function hasParent(file: EditableFile, metadata: VhdxRegion): Promise<boolean> {
  const table = decodeMetadataTable(await readExact(file, metadata.fileOffset, VHDX_METADATA_TABLE_SIZE, 'metadata table'));
  if (table.some((e) => e.itemId === META.parentLocator)) return true;
  const fp = table.find((e) => e.itemId === META.fileParameters);
  if (!fp || fp.length < 8) return false; // the handler refuses such a file before any edit
  const flags = await readExact(file, metadata.fileOffset + fp.offset + 4, 4, 'File Parameters');
  return (flags[0] & 2) !== 0;
}

async function openForEdit(file: EditableFile, reader: ContainerReader): Promise<ContainerEditSession | InPlaceRefusal> {
  const { header, slot } = await currentHeader(file);
  const replay = await findLogToReplay(file, header);
  if (replay) {
    return {
      refused: `its log holds ${replay.entries.length} entries a writer never applied (MS-VHDX 2.3.3); \`diskmint repair\` replays them into the file; then edit`,
      rewriteKeepsEverything: false,
    };
  }
  const regions = await regionTable(file);
  const bat = regions.find((r) => r.guid === BAT_REGION);
  const metadata = regions.find((r) => r.guid === METADATA_REGION);
  if (!bat || !metadata) return { refused: 'its region table lacks the BAT or metadata region (MS-VHDX 2.2.3.2)', rewriteKeepsEverything: true };
  if (await hasParent(file, metadata)) {
    return { refused: 'it is a differencing disk (HasParent, MS-VHDX 2.6.2.1), which diskmint cannot write', rewriteKeepsEverything: false };
  }
  const details = reader.details();
  const blockSize = Number(details.blockSize);
  const logicalSectorSize = Number(details.logicalSectorSize);
  const geometry = batGeometry(reader.size, blockSize, logicalSectorSize);
  if (geometry.totalEntries * 8 > bat.length) {
    return {
      refused: `its BAT region (${bat.length} bytes) is too small for the ${geometry.totalEntries} entries of a ${reader.size}-byte disk (MS-VHDX 2.5)`,
      rewriteKeepsEverything: true,
    };
  }
  return new VhdxEditSession(file, header, slot, bat, reader.size, blockSize, geometry.ratio);
}

class VhdxEditSession implements ContainerEditSession {
  /** Payload block → file offset of blocks this session made FULLY_PRESENT (entries, not data). */
  private readonly allocated = new Map<number, number>();
  /** Those whose BAT entries are not written yet (flush writes them). */
  private readonly pending = new Set<number>();
  private readonly batCache = new Map<number, DataView>();
  private headerWritten = false;
  private unflushed = false;
  /** Calls run one at a time: two writes into one hole must not both take the same end of the file. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly file: EditableFile,
    private readonly header: VhdxHeader,
    private readonly headerSlot: number,
    private readonly bat: VhdxRegion,
    private readonly size: number,
    private readonly blockSize: number,
    private readonly ratio: number,
  ) {}

  write(offset: number, data: Uint8Array): Promise<void> {
    return this.serial(() => this.writeNow(offset, data));
  }

  flush(): Promise<void> {
    return this.serial(() => this.flushNow());
  }

  private serial(step: () => Promise<void>): Promise<void> {
    const run = this.queue.then(step);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async writeNow(offset: number, data: Uint8Array): Promise<void> {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + data.length > this.size) {
      throw new DiskmintError('BAD_ARGUMENT', `a write of ${data.length} bytes at ${offset} does not fit in the ${this.size}-byte VHDX disk`);
    }
    if (data.length === 0) return;
    await this.markWritten();
    const bs = this.blockSize;
    for (let at = offset; at < offset + data.length;) {
      const block = Math.floor(at / bs);
      const within = at - block * bs;
      const part = data.subarray(at - offset, Math.min(data.length, (block + 1) * bs - offset));
      const present = await this.presentAt(block);
      if (present !== undefined) {
        await this.file.write(present + within, part);
      } else {
        // A new block past the end (2.5.1: 1 MiB aligned): the data, then zeros to the block's end
        // unless the data reaches it, so the file holds the whole block (qemu checks that it does).
        const start = Math.ceil(this.file.size / MIB) * MIB;
        await this.file.write(start + within, part);
        const end = within + part.length;
        if (end < bs) await this.file.write(start + Math.max(end, bs - TAIL), new Uint8Array(bs - Math.max(end, bs - TAIL)));
        this.allocated.set(block, start);
        this.pending.add(block);
      }
      at += part.length;
    }
    this.unflushed = true;
  }

  private async flushNow(): Promise<void> {
    if (!this.unflushed) return;
    await this.file.barrier(); // the data and the new blocks, before any entry names them
    if (this.pending.size > 0) {
      const sectors = new Map<number, number[]>();
      for (const block of [...this.pending].sort((a, b) => a - b)) {
        const sector = Math.floor((payloadEntryIndex(block, this.ratio) * 8) / BAT_SECTOR);
        sectors.set(sector, [...(sectors.get(sector) ?? []), block]);
      }
      for (const [sector, blocks] of sectors) {
        const old = await this.batSector(sector);
        const bytes = new Uint8Array(old.buffer.slice(old.byteOffset, old.byteOffset + old.byteLength));
        const dv = new DataView(bytes.buffer);
        // 2.5.1.1: FULLY_PRESENT, FileOffsetMB the new block's MiB.
        for (const block of blocks)
          encodeBatEntry(dv, payloadEntryIndex(block, this.ratio) * 8 - sector * BAT_SECTOR, PAYLOAD.fullyPresent, this.allocated.get(block)!);
        await this.file.write(this.bat.fileOffset + sector * BAT_SECTOR, bytes);
        this.batCache.set(sector, dv);
      }
      this.pending.clear();
      await this.file.barrier();
    }
    this.unflushed = false;
  }

  /** Before the first change: the updated header into the other slot, durable before any data (2.2.2.1). */
  private async markWritten(): Promise<void> {
    if (this.headerWritten) return;
    const next = nextWriteHeader(this.header);
    await this.file.write(VHDX_HEADER_OFFSETS[1 - this.headerSlot], encodeVhdxHeader(next));
    await this.file.barrier();
    this.headerWritten = true;
  }

  /** Where payload block `block` lies when it is FULLY_PRESENT (or allocated by this session). */
  private async presentAt(block: number): Promise<number | undefined> {
    const mine = this.allocated.get(block);
    if (mine !== undefined) return mine;
    const byte = payloadEntryIndex(block, this.ratio) * 8;
    const sector = Math.floor(byte / BAT_SECTOR);
    const { state, fileOffset } = decodeBatEntry(await this.batSector(sector), byte - sector * BAT_SECTOR);
    return state === PAYLOAD.fullyPresent ? fileOffset : undefined;
  }

  private async batSector(sector: number): Promise<DataView> {
    let dv = this.batCache.get(sector);
    if (!dv) {
      const b = await readExact(this.file, this.bat.fileOffset + sector * BAT_SECTOR, BAT_SECTOR, 'BAT');
      dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      if (this.batCache.size >= BAT_CACHE_SECTORS) this.batCache.delete(this.batCache.keys().next().value!);
      this.batCache.set(sector, dv);
    }
    return dv;
  }
}

/** The vhdx handler's `editing`. */
export const vhdxEditing: ContainerEditing = { openForEdit };
