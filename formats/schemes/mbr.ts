/**
 * MBR sector codec and the extended partition's EBR chain.
 *
 * Layout (FreeBSD `sys/sys/disk/mbr.h`): boot code from byte 0, disk serial number (Windows
 * "disk signature") at DOSDSNOFF 440, 4 entries of DOSPARTSIZE 16 bytes at DOSPARTOFF 446,
 * DOSMAGIC 0xAA55 (bytes 0x55 0xAA) at DOSMAGICOFFSET 510.
 *
 * EBR chain (Linux `block/partitions/msdos.c` parse_extended, util-linux libfdisk `dos.c`): the
 * first EBR sits at the start of the extended partition; in each EBR the first data entry is a
 * logical partition whose start is relative to that EBR, and the first extended-type entry links
 * to the next EBR, its start relative to the start of the extended partition.
 */
import { encodeChs, DEFAULT_GEOMETRY, type Geometry } from './chs.js';
import { putU32le, u32le } from '../common/bytes.js';
import { fail } from '../common/errors.js';

/** Bytes in an MBR/EBR sector (the table structure; 4096-byte disks use only the first 512). */
export const MBR_SECTOR_BYTES = 512;
/** DOSDSNOFF: Windows disk signature offset. */
const DISK_SIGNATURE_OFFSET = 440;
/** Two bytes after the disk signature, usually zero (0x5a5a = copy-protected in Windows). */
const RESERVED_OFFSET = 444;
/** DOSPARTOFF: first partition entry. */
export const PARTITION_TABLE_OFFSET = 446;
/** DOSPARTSIZE. */
const ENTRY_BYTES = 16;
/** NDOSPART. */
export const PRIMARY_SLOTS = 4;
/** DOSMAGICOFFSET. */
const BOOT_SIGNATURE_OFFSET = 510;
/** Status byte of an active (bootable) entry. */
const STATUS_ACTIVE = 0x80;
/** DOSPTYP_EXT: the type sfdisk ('Extended') and EBR link entries use. */
const TYPE_EXTENDED = 0x05;
const U32_MAX = 0xffffffff;

export interface MbrEntry {
  active: boolean;
  status: number;
  type: number;
  startLba: number;
  sectors: number;
  chsStart: [number, number, number];
  chsEnd: [number, number, number];
}

export interface MbrSector {
  /** Bytes 0..439. */
  bootcode: Uint8Array;
  /** u32 LE at 440. */
  diskSignature: number;
  /** u16 LE at 444. */
  reserved: number;
  /** 4 slots, null when the type byte is 0. */
  entries: (MbrEntry | null)[];
  /** 0x55 0xAA at 510. */
  hasBootSignature: boolean;
}

export interface MbrEntrySpec {
  type: number;
  startLba: number;
  sectors: number;
  active?: boolean;
}

/** DOSPTYP_EXT 0x05, DOSPTYP_EXTLBA 0x0f and Linux extended 0x85. */
export const EXTENDED_TYPES: ReadonlySet<number> = new Set([0x05, 0x0f, 0x85]);

function parseEntry(b: Uint8Array, off: number): MbrEntry | null {
  const type = b[off + 4];
  if (type === 0) return null;
  return {
    active: b[off] === STATUS_ACTIVE,
    status: b[off],
    type,
    startLba: u32le(b, off + 8),
    sectors: u32le(b, off + 12),
    chsStart: [b[off + 1], b[off + 2], b[off + 3]],
    chsEnd: [b[off + 5], b[off + 6], b[off + 7]],
  };
}

/** Decode the first 512 bytes of a sector. Throws FormatError TRUNCATED if shorter, nothing else. */
export function decodeMbrSector(sector: Uint8Array): MbrSector {
  if (sector.length < MBR_SECTOR_BYTES) {
    throw fail('mbr', 'TRUNCATED', `MBR sector needs ${MBR_SECTOR_BYTES} bytes, got ${sector.length}`);
  }
  const entries: (MbrEntry | null)[] = [];
  for (let i = 0; i < PRIMARY_SLOTS; i++) entries.push(parseEntry(sector, PARTITION_TABLE_OFFSET + i * ENTRY_BYTES));
  return {
    bootcode: sector.slice(0, DISK_SIGNATURE_OFFSET),
    diskSignature: u32le(sector, DISK_SIGNATURE_OFFSET),
    reserved: sector[RESERVED_OFFSET] | (sector[RESERVED_OFFSET + 1] << 8),
    entries,
    hasBootSignature: sector[BOOT_SIGNATURE_OFFSET] === 0x55 && sector[BOOT_SIGNATURE_OFFSET + 1] === 0xaa,
  };
}

function checkU32(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > U32_MAX) throw fail('mbr', 'INVALID_ARGUMENT', `${what} ${value} does not fit in 32 bits`);
}

function checkType(type: number): void {
  if (!Number.isInteger(type) || type < 0 || type > 0xff) throw fail('mbr', 'INVALID_ARGUMENT', `partition type ${type} is not a byte`);
}

/** One raw entry: stored start/size may be relative (EBR) while CHS is always absolute. */
interface RawEntry {
  status: number;
  type: number;
  storedStart: number;
  storedSectors: number;
  absoluteStart: number;
}

function writeEntry(sector: Uint8Array, slot: number, e: RawEntry, g: Geometry): void {
  checkType(e.type);
  checkU32(e.storedStart, 'partition start');
  checkU32(e.storedSectors, 'partition size');
  const off = PARTITION_TABLE_OFFSET + slot * ENTRY_BYTES;
  const last = e.absoluteStart + Math.max(0, e.storedSectors - 1);
  sector[off] = e.status;
  sector.set(encodeChs(e.absoluteStart, g), off + 1);
  sector[off + 4] = e.type;
  sector.set(encodeChs(last, g), off + 5);
  putU32le(sector, off + 8, e.storedStart);
  putU32le(sector, off + 12, e.storedSectors);
}

function emptySectorWithSignature(): Uint8Array {
  const sector = new Uint8Array(MBR_SECTOR_BYTES);
  sector[BOOT_SIGNATURE_OFFSET] = 0x55;
  sector[BOOT_SIGNATURE_OFFSET + 1] = 0xaa;
  return sector;
}

function primaryEntry(spec: MbrEntrySpec): RawEntry {
  return {
    status: spec.active ? STATUS_ACTIVE : 0,
    type: spec.type,
    storedStart: spec.startLba,
    storedSectors: spec.sectors,
    absoluteStart: spec.startLba,
  };
}

/**
 * A 512-byte MBR. The first 446 bytes of `bootcode` are copied from byte 0 (FreeBSD mkimg
 * `mbr.c` copies DOSPARTOFF bytes, so a 512-byte pmbr's first 446 land); `diskSignature`, when
 * given, then overwrites bytes 440..443. CHS values from `geometry` (default 255x63).
 */
export function encodeMbrSector(spec: {
  bootcode?: Uint8Array;
  diskSignature?: number;
  entries: ReadonlyArray<MbrEntrySpec | null>;
  geometry?: Geometry;
}): Uint8Array {
  if (spec.entries.length > PRIMARY_SLOTS) throw fail('mbr', 'INVALID_ARGUMENT', `an MBR holds ${PRIMARY_SLOTS} entries, got ${spec.entries.length}`);
  const g = spec.geometry ?? DEFAULT_GEOMETRY;
  const sector = emptySectorWithSignature();
  if (spec.bootcode) sector.set(spec.bootcode.subarray(0, PARTITION_TABLE_OFFSET), 0);
  if (spec.diskSignature !== undefined) {
    checkU32(spec.diskSignature, 'disk signature');
    putU32le(sector, DISK_SIGNATURE_OFFSET, spec.diskSignature);
  }
  spec.entries.forEach((e, slot) => {
    if (e) writeEntry(sector, slot, primaryEntry(e), g);
  });
  return sector;
}

export interface MbrTablesSpec {
  bootcode?: Uint8Array;
  diskSignature?: number;
  geometry?: Geometry;
  primaries: ReadonlyArray<MbrEntrySpec>;
  /** slot is 1-based; default: the first slot the primaries leave free. type default 0x05. */
  extended?: { startLba: number; sectors: number; type?: number; slot?: number };
  logicals?: ReadonlyArray<MbrEntrySpec & { ebrLba: number }>;
}

/**
 * MBR plus EBR chain. Primaries fill slots 1..4 in order (around `extended.slot` when given);
 * the extended partition (type 0x05 unless told) defaults to [first EBR, end of last logical].
 * The first logical's EBR must be at the extended partition's start (that is where readers
 * begin the chain); each EBR lies inside the extended partition before its logical. EBR entry 1
 * = the logical (start relative to its EBR), entry 2 = link to the next EBR (type 0x05, start
 * relative to the extended partition, size from that EBR to the end of its logical), as
 * util-linux sfdisk writes them. An extended partition with no logicals gets an empty EBR.
 * Returns every sector to write: the MBR at LBA 0, then the EBRs in chain order.
 */
export function encodeMbrTables(spec: MbrTablesSpec): Array<{ lba: number; bytes: Uint8Array }> {
  const g = spec.geometry ?? DEFAULT_GEOMETRY;
  const logicals = spec.logicals ?? [];
  let extended = spec.extended;
  if (!extended && logicals.length > 0) {
    const start = logicals[0].ebrLba;
    const end = Math.max(...logicals.map((l) => l.startLba + l.sectors));
    extended = { startLba: start, sectors: end - start };
  }
  const slots: (MbrEntrySpec | null)[] = [null, null, null, null];
  const needed = spec.primaries.length + (extended ? 1 : 0);
  if (needed > PRIMARY_SLOTS) throw fail('mbr', 'INVALID_ARGUMENT', `${needed} primary entries (extended included) do not fit in ${PRIMARY_SLOTS} slots`);
  let extendedSlot = -1;
  if (extended) {
    checkU32(extended.startLba, 'extended partition start');
    checkU32(extended.sectors, 'extended partition size');
    if (extended.slot !== undefined) {
      if (!Number.isInteger(extended.slot) || extended.slot < 1 || extended.slot > PRIMARY_SLOTS) {
        throw fail('mbr', 'INVALID_ARGUMENT', `extended slot ${extended.slot} is not 1-${PRIMARY_SLOTS}`);
      }
      extendedSlot = extended.slot - 1;
    }
  }
  let next = 0;
  for (const p of spec.primaries) {
    while (next === extendedSlot) next++;
    slots[next++] = p;
  }
  if (extended) {
    if (extendedSlot < 0) extendedSlot = slots.indexOf(null);
    slots[extendedSlot] = { type: extended.type ?? TYPE_EXTENDED, startLba: extended.startLba, sectors: extended.sectors };
  }
  const mbr = encodeMbrSector({ bootcode: spec.bootcode, diskSignature: spec.diskSignature, entries: slots, geometry: g });
  const out = [{ lba: 0, bytes: mbr }];
  if (!extended) return out;
  if (extended.type !== undefined && !EXTENDED_TYPES.has(extended.type)) {
    throw fail('mbr', 'INVALID_ARGUMENT', `extended partition type 0x${extended.type.toString(16)} is not an extended type`);
  }
  return [...out, ...encodeEbrChain({ start: extended.startLba, sectors: extended.sectors, logicals, geometry: g })];
}

/**
 * The EBR chain of an extended partition of `sectors` sectors from LBA `start`: one EBR per
 * logical partition (entry 1 the logical, entry 2 the link to the next EBR; see encodeMbrTables),
 * or a single empty EBR when there are none. A bare chain with `start` 0 is what FreeBSD mkimg's
 * `ebr` scheme writes: an image meant to be an extended partition's contents.
 */
export function encodeEbrChain(spec: {
  start: number;
  sectors: number;
  logicals: ReadonlyArray<MbrEntrySpec & { ebrLba: number }>;
  geometry?: Geometry;
}): Array<{ lba: number; bytes: Uint8Array }> {
  const g = spec.geometry ?? DEFAULT_GEOMETRY;
  const { start, logicals } = spec;
  checkLogicals(logicals, start, start + spec.sectors);
  if (logicals.length === 0) return [{ lba: start, bytes: emptySectorWithSignature() }];
  return logicals.map((l, i) => {
    const ebr = emptySectorWithSignature();
    writeEntry(ebr, 0, { ...primaryEntry(l), storedStart: l.startLba - l.ebrLba }, g);
    const following = logicals[i + 1];
    if (following) {
      writeEntry(
        ebr,
        1,
        {
          status: 0,
          type: TYPE_EXTENDED,
          storedStart: following.ebrLba - start,
          storedSectors: following.startLba + following.sectors - following.ebrLba,
          absoluteStart: following.ebrLba,
        },
        g,
      );
    }
    return { lba: l.ebrLba, bytes: ebr };
  });
}

function checkLogicals(logicals: ReadonlyArray<MbrEntrySpec & { ebrLba: number }>, extStart: number, extEnd: number): void {
  if (logicals.length > 0 && logicals[0].ebrLba !== extStart) {
    throw fail('mbr', 'INVALID_ARGUMENT', `the first EBR (LBA ${logicals[0].ebrLba}) must sit at the extended partition's start (LBA ${extStart})`);
  }
  const ebrs = new Set<number>();
  for (const l of logicals) {
    checkU32(l.ebrLba, 'EBR LBA');
    checkU32(l.startLba, 'logical partition start');
    checkU32(l.sectors, 'logical partition size');
    if (ebrs.has(l.ebrLba)) throw fail('mbr', 'INVALID_ARGUMENT', `two logical partitions share the EBR at LBA ${l.ebrLba}`);
    ebrs.add(l.ebrLba);
    if (l.ebrLba < extStart || l.ebrLba >= l.startLba || l.startLba + l.sectors > extEnd) {
      throw fail(
        'mbr',
        'INVALID_ARGUMENT',
        `logical partition ${l.startLba}+${l.sectors} with EBR at ${l.ebrLba} does not fit the extended partition ${extStart}-${extEnd - 1}`,
      );
    }
  }
  for (const e of ebrs) {
    for (const l of logicals) {
      if (e >= l.startLba && e < l.startLba + l.sectors)
        throw fail('mbr', 'INVALID_ARGUMENT', `EBR at LBA ${e} lies inside logical partition ${l.startLba}+${l.sectors}`);
    }
  }
}

// ---- reading the chain ----

export interface LogicalPartition {
  ebrLba: number;
  /** startLba made absolute. */
  entry: MbrEntry;
}

/** How a chain walk ended. 'end': last EBR had no link; the others are problems. */
export type EbrChainStop = 'end' | 'loop' | 'no-signature' | 'unreadable' | 'too-many';

export interface EbrChainResult {
  logicals: LogicalPartition[];
  stop: EbrChainStop;
  /** The EBR where the walk stopped (for 'loop': the LBA the link pointed back to). */
  stopLba?: number;
  /** LBAs of every EBR read, in chain order. */
  ebrLbas: number[];
}

/** Default bound on EBRs followed (Linux and libfdisk follow at most a few hundred). */
export const DEFAULT_MAX_LOGICALS = 128;

/**
 * The walk as a generator: yields the LBA of each EBR it needs, receives its bytes (undefined
 * when unreadable), returns the result. Sync and async drivers share it.
 */
function* ebrChainSteps(extendedStart: number, maxLogicals: number): Generator<number, EbrChainResult, Uint8Array | undefined> {
  const logicals: LogicalPartition[] = [];
  const ebrLbas: number[] = [];
  const visited = new Set<number>();
  let lba = extendedStart;
  for (;;) {
    if (ebrLbas.length >= maxLogicals) return { logicals, stop: 'too-many', stopLba: lba, ebrLbas };
    visited.add(lba);
    ebrLbas.push(lba);
    const bytes = yield lba;
    if (!bytes || bytes.length < MBR_SECTOR_BYTES) return { logicals, stop: 'unreadable', stopLba: lba, ebrLbas };
    const ebr = decodeMbrSector(bytes);
    if (!ebr.hasBootSignature) return { logicals, stop: 'no-signature', stopLba: lba, ebrLbas };
    const used = ebr.entries.filter((e): e is MbrEntry => e !== null && e.sectors > 0);
    const data = used.find((e) => !EXTENDED_TYPES.has(e.type));
    if (data) logicals.push({ ebrLba: lba, entry: { ...data, startLba: lba + data.startLba } });
    const link = used.find((e) => EXTENDED_TYPES.has(e.type));
    if (!link) return { logicals, stop: 'end', ebrLbas };
    const nextLba = extendedStart + link.startLba;
    if (visited.has(nextLba)) return { logicals, stop: 'loop', stopLba: nextLba, ebrLbas };
    lba = nextLba;
  }
}

/** Walk the chain, reporting how it ended instead of throwing (for verify). */
export async function walkEbrChainAsync(
  readSector: (lba: number) => Promise<Uint8Array | undefined>,
  extendedStart: number,
  maxLogicals = DEFAULT_MAX_LOGICALS,
): Promise<EbrChainResult> {
  const steps = ebrChainSteps(extendedStart, maxLogicals);
  let step = steps.next();
  while (!step.done) step = steps.next(await readSector(step.value));
  return step.value;
}

/**
 * Walk the EBR chain from the extended partition's start with a synchronous sector callback
 * (pre-read the sectors or serve them from a cache; walkEbrChainAsync takes an async one).
 * Follows at most maxLogicals EBRs. Stops quietly at an EBR without 0x55AA (as Linux does).
 * Throws FormatError LOOP when a link points at an EBR already visited, TOO_LARGE past
 * maxLogicals, TRUNCATED when the callback has no sector.
 */
export function walkEbrChain(
  readSector: (lba: number) => Uint8Array | undefined,
  extendedStart: number,
  maxLogicals = DEFAULT_MAX_LOGICALS,
): LogicalPartition[] {
  const steps = ebrChainSteps(extendedStart, maxLogicals);
  let step = steps.next();
  while (!step.done) step = steps.next(readSector(step.value));
  const r = step.value;
  if (r.stop === 'loop') throw fail('mbr', 'LOOP', `EBR chain loops back to LBA ${r.stopLba}`);
  if (r.stop === 'too-many') throw fail('mbr', 'TOO_LARGE', `EBR chain longer than ${maxLogicals} records`);
  if (r.stop === 'unreadable') throw fail('mbr', 'TRUNCATED', `EBR at LBA ${r.stopLba} cannot be read`);
  return r.logicals;
}
