/**
 * VHDX container (fixed and dynamic; differencing disks are refused), detected and read here,
 * written by writer.ts. Structures live in formats/containers/vhdx.ts; section numbers are
 * [MS-VHDX]'s. A log that needs replaying is replayed in memory (log.ts) before anything else is
 * read; replay.ts applies it in place, on request only.
 */
import { readInto, type DiskReader } from '../../model/disk-reader.js';
import { fail } from '../../../formats/common/errors.js';
import { decodeGuid } from '../../../formats/common/guid.js';
import { u64 } from '../../../formats/common/bytes.js';
import {
  BAT_REGION,
  META,
  METADATA_REGION,
  MIB,
  PAYLOAD,
  VHDX_MAX_VIRTUAL_SIZE,
  VHDX_METADATA_TABLE_SIZE,
  VHDX_REGION_OFFSETS,
  VHDX_REGION_TABLE_SIZE,
  decodeCreator,
  decodeRegionTable,
  isVhdxIdentifier,
  type VhdxRegion,
} from '../../../formats/containers/vhdx.js';
import { batGeometry, decodeBatEntry, payloadEntryIndex } from '../../../formats/containers/vhdx-bat.js';
import { decodeMetadataTable } from '../../../formats/containers/vhdx-metadata.js';
import { rangesOfBlocks, readThroughBlocks } from '../blocks.js';
import type { ContainerHandler, ContainerReader } from '../types.js';
import { writeVhdx } from './writer.js';
import { vhdxEditing } from './edit.js';
import { currentHeader, findLogToReplay, readExact, replayedFile } from './log.js';

async function detectVhdx(file: DiskReader): Promise<boolean> {
  try {
    return isVhdxIdentifier(await file.read(0, 8));
  } catch {
    return false;
  }
}

/** A range of the file that one structure owns: payload and sector bitmap blocks must stay out of it. */
interface FileRange {
  start: number;
  end: number;
  name: string;
}

/**
 * The ranges of the file the VHDX structures own (2.2: the 1 MiB header section with the
 * headers and region tables; the log; each region, BAT and metadata among them), as qemu's
 * block/vhdx.c registers them: every region table entry is checked against those registered
 * before it, so no two overlap.
 */
class OwnedRanges {
  private readonly ranges: FileRange[] = [];

  add(start: number, length: number, name: string): void {
    const hit = this.overlapping(start, length);
    if (hit) throw fail('vhdx', 'BAD_VALUE', `VHDX ${name} (${start}-${start + length}) overlaps the ${hit.name} (${hit.start}-${hit.end})`);
    const at = this.ranges.findIndex((r) => r.start > start);
    this.ranges.splice(at < 0 ? this.ranges.length : at, 0, { start, end: start + length, name });
  }

  /** The owned range that [start, start + length) overlaps, if any (ranges are disjoint and sorted: a binary search). */
  overlapping(start: number, length: number): FileRange | undefined {
    const end = start + length;
    let lo = 0;
    let hi = this.ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ranges[mid].end <= start) lo = mid + 1;
      else hi = mid;
    }
    const r = this.ranges[lo];
    return r && r.start < end && length > 0 ? r : undefined;
  }
}

function region(regions: VhdxRegion[], guid: string, name: string, file: DiskReader): VhdxRegion {
  const found = regions.filter((x) => x.guid === guid);
  if (found.length === 0) throw fail('vhdx', 'BAD_VALUE', `VHDX region table has no ${name} region`);
  if (found.length > 1) throw fail('vhdx', 'BAD_VALUE', `VHDX region table has ${found.length} ${name} regions (2.2.3.2: one)`);
  const r = found[0];
  if (r.fileOffset % MIB !== 0 || r.length % MIB !== 0 || r.length === 0 || r.fileOffset < MIB || r.fileOffset + r.length > file.size) {
    throw fail('vhdx', 'BAD_VALUE', `VHDX ${name} region at ${r.fileOffset} (${r.length} bytes) is misaligned or outside the file`);
  }
  return r;
}

async function openVhdx(input: DiskReader): Promise<ContainerReader> {
  const ident = await readExact(input, 0, 520, 'file identifier');
  if (!isVhdxIdentifier(ident)) throw fail('vhdx', 'BAD_MAGIC', 'no VHDX file identifier "vhdxfile"');
  const { header } = await currentHeader(input);
  // 2.3.3: a valid log is replayed before anything else is read; in memory, the input untouched.
  const replay = await findLogToReplay(input, header);
  const file = replay ? replayedFile(input, replay) : input;
  let regions: VhdxRegion[];
  try {
    regions = decodeRegionTable(await readExact(file, VHDX_REGION_OFFSETS[0], VHDX_REGION_TABLE_SIZE, 'region table 1'), 'region table 1');
  } catch (e1) {
    try {
      regions = decodeRegionTable(await readExact(file, VHDX_REGION_OFFSETS[1], VHDX_REGION_TABLE_SIZE, 'region table 2'), 'region table 2');
    } catch {
      throw e1;
    }
  }
  const unknown = regions.find((r) => r.required && r.guid !== BAT_REGION && r.guid !== METADATA_REGION);
  if (unknown) throw fail('vhdx', 'BAD_VALUE', `VHDX requires region ${unknown.guid}, which diskmint does not know`);
  const batR = region(regions, BAT_REGION, 'BAT', file);
  const metaR = region(regions, METADATA_REGION, 'metadata', file);
  // 2.2 / 2.3 / 2.2.3: the header section, the log and every region own their bytes; none overlaps another.
  const owned = new OwnedRanges();
  owned.add(0, MIB, 'header section');
  if (header.logLength > 0) owned.add(header.logOffset, header.logLength, 'log');
  for (const [i, r] of regions.entries()) {
    const name = r.guid === BAT_REGION ? 'BAT region' : r.guid === METADATA_REGION ? 'metadata region' : `region ${r.guid}`;
    owned.add(r.fileOffset, r.length, `region table entry ${i} (${name})`);
  }

  // 2.6: metadata table and the required items.
  const table = decodeMetadataTable(await readExact(file, metaR.fileOffset, VHDX_METADATA_TABLE_SIZE, 'metadata table'));
  const items = new Map<string, Uint8Array>();
  for (const e of table) {
    if (e.itemId === META.parentLocator) throw fail('vhdx', 'BAD_VALUE', 'differencing VHDX (it has a parent locator) is not supported');
    const known = (Object.values(META) as string[]).includes(e.itemId);
    if (!known) {
      if (e.isRequired) throw fail('vhdx', 'BAD_VALUE', `VHDX requires metadata item ${e.itemId}, which diskmint does not know`);
      continue;
    }
    if (e.length > 64) throw fail('vhdx', 'BAD_VALUE', `VHDX metadata item ${e.itemId} is ${e.length} bytes long, more than any known item`);
    if (e.offset < VHDX_METADATA_TABLE_SIZE || e.offset + e.length > metaR.length) {
      throw fail('vhdx', 'BAD_VALUE', `VHDX metadata item ${e.itemId} at ${e.offset} (${e.length} bytes) is outside the metadata region`);
    }
    items.set(e.itemId, await readExact(file, metaR.fileOffset + e.offset, e.length, 'metadata item'));
  }
  const item = (id: string, name: string, len: number): DataView => {
    const b = items.get(id);
    if (!b) throw fail('vhdx', 'BAD_VALUE', `VHDX metadata lacks the required ${name} item`);
    if (b.length < len) throw fail('vhdx', 'BAD_VALUE', `VHDX ${name} item is ${b.length} bytes, not ${len}`);
    return new DataView(b.buffer, b.byteOffset, b.length);
  };
  const fp = item(META.fileParameters, 'File Parameters', 8);
  const bs = fp.getUint32(0, true);
  const fpFlags = fp.getUint32(4, true);
  if ((fpFlags & 2) !== 0) throw fail('vhdx', 'BAD_VALUE', 'differencing VHDX (HasParent is set) is not supported');
  if (bs < MIB || bs > 256 * MIB || (bs & (bs - 1)) !== 0) throw fail('vhdx', 'BAD_VALUE', `VHDX block size ${bs} is not a power of two from 1 MiB to 256 MiB`);
  const size = u64(item(META.virtualDiskSize, 'Virtual Disk Size', 8), 0, true);
  if (size > VHDX_MAX_VIRTUAL_SIZE) throw fail('vhdx', 'TOO_LARGE', `VHDX virtual size ${size} is larger than 64 TiB`);
  const lss = item(META.logicalSectorSize, 'Logical Sector Size', 4).getUint32(0, true);
  const pss = item(META.physicalSectorSize, 'Physical Sector Size', 4).getUint32(0, true);
  if (lss !== 512 && lss !== 4096) throw fail('vhdx', 'BAD_VALUE', `VHDX logical sector size ${lss} is not 512 or 4096`);
  if (pss !== 512 && pss !== 4096) throw fail('vhdx', 'BAD_VALUE', `VHDX physical sector size ${pss} is not 512 or 4096`);
  const idBytes = items.get(META.virtualDiskId);
  if (!idBytes || idBytes.length < 16) throw fail('vhdx', 'BAD_VALUE', 'VHDX metadata lacks the required Virtual Disk ID item');

  // 2.5: the BAT must hold every entry; each present block must lie inside the file.
  const { ratio, dataBlocks, totalEntries } = batGeometry(size, bs, lss);
  if (totalEntries * 8 > batR.length) {
    throw fail('vhdx', 'BAD_VALUE', `VHDX BAT region of ${batR.length} bytes is too small for ${totalEntries} entries`);
  }
  // The BAT is read in 1 MiB pages (at most 16 kept), so a 64 TiB disk costs no 512 MiB table in memory.
  const PAGE = MIB;
  const pages = new Map<number, DataView>();
  const page = async (p: number): Promise<DataView> => {
    let dv = pages.get(p);
    if (!dv) {
      const b = await readExact(file, batR.fileOffset + p * PAGE, Math.min(PAGE, batR.length - p * PAGE), 'BAT');
      dv = new DataView(b.buffer, b.byteOffset, b.length);
      if (pages.size >= 16) pages.delete(pages.keys().next().value!);
      pages.set(p, dv);
    }
    return dv;
  };
  const entryAt = async (index: number) => {
    const byte = index * 8;
    const p = Math.floor(byte / PAGE);
    return decodeBatEntry(await page(p), byte - p * PAGE);
  };
  /** Payload entries in order, a page at a time (no await per entry). */
  async function* payloadEntries(): AsyncGenerator<Array<{ i: number; state: number; fileOffset: number }>> {
    let batch: Array<{ i: number; state: number; fileOffset: number }> = [];
    let current = -1;
    let dv: DataView | undefined;
    for (let i = 0; i < dataBlocks; i++) {
      const byte = payloadEntryIndex(i, ratio) * 8;
      const p = Math.floor(byte / PAGE);
      if (p !== current) {
        if (batch.length) yield batch;
        batch = [];
        dv = await page(p);
        current = p;
      }
      batch.push({ i, ...decodeBatEntry(dv!, byte - p * PAGE) });
    }
    if (batch.length) yield batch;
  }
  let present = 0;
  // 2.5.1.1: only FULLY_PRESENT blocks have data here; PARTIALLY_PRESENT needs a parent.
  for await (const batch of payloadEntries()) {
    for (const { i, state, fileOffset } of batch) {
      if (state === PAYLOAD.fullyPresent) {
        present++;
        // As qemu (vhdx_check_bat_entries): the whole block, even the last one, stays out of every structure.
        const hit = owned.overlapping(fileOffset, bs);
        if (hit) {
          throw fail(
            'vhdx',
            'BAD_VALUE',
            `VHDX BAT entry ${payloadEntryIndex(i, ratio)} (payload block ${i}) at ${fileOffset}-${fileOffset + bs} overlaps the ${hit.name} (${hit.start}-${hit.end})`,
          );
        }
        if (fileOffset + Math.min(bs, size - i * bs) > file.size) {
          throw fail('vhdx', 'BAD_VALUE', `VHDX payload block ${i} at ${fileOffset} lies outside the file (${file.size} bytes)`);
        }
      } else if (state === PAYLOAD.partiallyPresent) {
        throw fail('vhdx', 'BAD_VALUE', `VHDX payload block ${i} is PARTIALLY_PRESENT, which only differencing disks may use`);
      } else if (state === 4) {
        throw fail('vhdx', 'BAD_VALUE', `VHDX payload block ${i} has undefined state 4`);
      }
    }
  }
  // 2.5.1.2: a present sector bitmap block (1 MiB) must lie in the file, outside every structure too (qemu
  // does not look at them; a disk without a parent never reads them, but one that overlaps is damage).
  for (let k = 0; k * (ratio + 1) + ratio < totalEntries; k++) {
    const index = k * (ratio + 1) + ratio;
    const { state, fileOffset } = await entryAt(index);
    if (state !== PAYLOAD.fullyPresent) continue; // SB_BLOCK_PRESENT is 6 too
    const hit = owned.overlapping(fileOffset, MIB);
    if (fileOffset < MIB || fileOffset + MIB > file.size || hit) {
      const where = hit ? `overlaps the ${hit.name} (${hit.start}-${hit.end})` : `lies outside the file (${file.size} bytes)`;
      throw fail('vhdx', 'BAD_VALUE', `VHDX BAT entry ${index} (sector bitmap block ${k}) at ${fileOffset}-${fileOffset + MIB} ${where}`);
    }
  }
  const subformat = (fpFlags & 1) !== 0 ? 'fixed' : 'dynamic';
  // NOT_PRESENT, UNDEFINED, ZERO and UNMAPPED blocks read as zeros in a disk without a parent.
  const fillFromPayload = async (i: number, within: number, data: Uint8Array) => {
    const e = await entryAt(payloadEntryIndex(i, ratio));
    if (e.state !== PAYLOAD.fullyPresent) return;
    if ((await readInto(file, e.fileOffset + within, data)) !== data.length) {
      throw fail('vhdx', 'TRUNCATED', `VHDX payload block ${i} at ${e.fileOffset} runs past the end of the file`);
    }
  };
  return {
    format: 'vhdx',
    subformat,
    size,
    close: () => file.close(),
    read: (offset, len, into) => readThroughBlocks(size, bs, offset, len, fillFromPayload, into),
    allocatedRanges() {
      const present = async function* () {
        for await (const batch of payloadEntries()) for (const { i, state } of batch) if (state === PAYLOAD.fullyPresent) yield i;
      };
      return rangesOfBlocks(present(), bs, size);
    },
    details: () => ({
      blockSize: bs,
      logicalSectorSize: lss,
      physicalSectorSize: pss,
      leaveBlocksAllocated: (fpFlags & 1) !== 0,
      virtualDiskId: decodeGuid(idBytes, 0),
      creator: decodeCreator(ident),
      headerSequence: header.sequenceNumber.toString(),
      logLength: header.logLength,
      ...(replay ? { logReplayedInMemory: replay.entries.length } : {}),
      presentBlocks: present,
    }),
  };
}

export const vhdxHandler: ContainerHandler = {
  format: 'vhdx',
  compresses: false,
  extensions: ['.vhdx'],
  optionKeys: ['subformat', 'block_size', 'log_size'],
  detect: detectVhdx,
  open: (file) => openVhdx(file),
  write: writeVhdx,
  editing: vhdxEditing,
};
