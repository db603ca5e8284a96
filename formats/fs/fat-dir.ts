/**
 * FAT directory entries (fatgen103 section 6 "FAT Directory Structure") and the VFAT long-name
 * entries before them (section 7 "FAT Long Directory Entries"): encode, decode, DOS dates.
 * Which names are legal and how short names are chosen is fat-names.ts. Pure: bytes in, bytes out.
 */
import { view } from '../common/bytes.js';
import { NT_LOWER_BASE, NT_LOWER_EXT, decodeOem, safeShortName, shortNameBytes, shortNameProblem, type ShortNamePlan } from './fat-names.js';

export const DIR_ENTRY_BYTES = 32;
/** DIR_Attr bits (fatgen103 section 6). */
export const ATTR_READ_ONLY = 0x01;
export const ATTR_HIDDEN = 0x02;
export const ATTR_SYSTEM = 0x04;
export const ATTR_VOLUME_ID = 0x08;
export const ATTR_DIRECTORY = 0x10;
export const ATTR_ARCHIVE = 0x20;
/** ATTR_LONG_NAME = READ_ONLY | HIDDEN | SYSTEM | VOLUME_ID (section 7). */
export const ATTR_LONG_NAME = 0x0f;
/** DIR_Name[0] markers: 0xE5 free, 0x00 free and nothing follows, 0x05 stands for a real 0xE5. */
export const ENTRY_FREE = 0xe5;
export const ENTRY_END = 0x00;
/** LDIR_Ord: the last (first stored) long entry is or-ed with 0x40; at most 20 entries (255 units). */
const LAST_LONG_ENTRY = 0x40;
const LFN_UNITS_PER_ENTRY = 13;
/** Offsets of the 13 UTF-16 units in a long entry: LDIR_Name1 (5), LDIR_Name2 (6), LDIR_Name3 (2). */
const LFN_UNIT_OFFSETS = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

/** fatgen103 section 7: the checksum of the 11-byte short name that every LFN entry carries. */
export function lfnChecksum(name11: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + name11[i]) & 0xff;
  return sum;
}

/** Number of 32-byte entries a name takes: its LFN entries plus the short entry. */
export function entriesFor(plan: ShortNamePlan): number {
  return 1 + (plan.longName === undefined ? 0 : Math.ceil(plan.longName.length / LFN_UNITS_PER_ENTRY));
}

/** DOS date and time of a moment, in UTC (fatgen103 section 6.1); clamped to 1980..2107. */
export function dosDateTime(when: Date): { date: number; time: number; tenths: number } {
  let t = when.getTime();
  if (!Number.isFinite(t)) t = Date.UTC(1980, 0, 1);
  const d = new Date(Math.min(Math.max(t, Date.UTC(1980, 0, 1)), Date.UTC(2107, 11, 31, 23, 59, 59)));
  const date = ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate();
  const time = (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (d.getUTCSeconds() >> 1);
  // DIR_CrtTimeTenth: count of 10 ms units 0..199 on top of the 2-second resolution.
  const tenths = (d.getUTCSeconds() & 1) * 100 + Math.floor(d.getUTCMilliseconds() / 10);
  return { date, time, tenths };
}

export function fromDosDateTime(date: number, time: number): Date {
  const day = date & 0x1f;
  const month = (date >> 5) & 0x0f;
  return new Date(
    Date.UTC(
      1980 + (date >> 9),
      Math.max(1, Math.min(12, month)) - 1,
      Math.max(1, day),
      (time >> 11) % 24,
      ((time >> 5) & 0x3f) % 60,
      ((time & 0x1f) * 2) % 60,
    ),
  );
}

export interface ShortEntryFields {
  name11: string;
  attr: number;
  ntCase?: number;
  cluster: number;
  size: number;
  mtime: Date;
}

/** Encode one 32-byte short entry into `out` at `at`. */
export function encodeShortEntry(out: Uint8Array, at: number, f: ShortEntryFields): void {
  const v = view(out);
  const name = shortNameBytes(f.name11);
  if (name[0] === ENTRY_FREE) name[0] = 0x05; // fatgen103: a real 0xE5 is stored as 0x05
  out.set(name, at);
  out[at + 11] = f.attr; // DIR_Attr
  out[at + 12] = f.ntCase ?? 0; // DIR_NTRes
  const { date, time, tenths } = dosDateTime(f.mtime);
  out[at + 13] = tenths; // DIR_CrtTimeTenth
  v.setUint16(at + 14, time, true); // DIR_CrtTime
  v.setUint16(at + 16, date, true); // DIR_CrtDate
  v.setUint16(at + 18, date, true); // DIR_LstAccDate
  v.setUint16(at + 20, f.cluster >>> 16, true); // DIR_FstClusHI
  v.setUint16(at + 22, time, true); // DIR_WrtTime
  v.setUint16(at + 24, date, true); // DIR_WrtDate
  v.setUint16(at + 26, f.cluster & 0xffff, true); // DIR_FstClusLO
  v.setUint32(at + 28, f.size >>> 0, true); // DIR_FileSize
}

/** Encode the LFN entries for `longName` (stored before its short entry, last part first). */
export function encodeLongEntries(out: Uint8Array, at: number, longName: string, name11: string): number {
  const count = Math.ceil(longName.length / LFN_UNITS_PER_ENTRY);
  const checksum = lfnChecksum(shortNameBytes(name11));
  const v = view(out);
  for (let k = 0; k < count; k++) {
    const ord = count - k; // physical order: highest ordinal first
    const e = at + k * DIR_ENTRY_BYTES;
    out[e] = ord | (ord === count ? LAST_LONG_ENTRY : 0); // LDIR_Ord
    out[e + 11] = ATTR_LONG_NAME; // LDIR_Attr
    out[e + 12] = 0; // LDIR_Type
    out[e + 13] = checksum; // LDIR_Chksum
    v.setUint16(e + 26, 0, true); // LDIR_FstClusLO must be zero
    for (let u = 0; u < LFN_UNITS_PER_ENTRY; u++) {
      const idx = (ord - 1) * LFN_UNITS_PER_ENTRY + u;
      // The name is NUL-terminated when it does not fill the last entry, then padded with 0xFFFF.
      const unit = idx < longName.length ? longName.charCodeAt(idx) : idx === longName.length ? 0 : 0xffff;
      v.setUint16(e + LFN_UNIT_OFFSETS[u], unit, true);
    }
  }
  return count;
}

export interface DecodedDirEntry {
  /** The long name when a valid LFN set precedes the entry, else the short name with NT case applied. */
  name: string;
  /** The short name as 'BASE.EXT'. */
  shortName: string;
  name11: Uint8Array;
  attr: number;
  cluster: number;
  size: number;
  mtime: Date;
  /** Index of the short entry in the directory. */
  index: number;
  /** True when an LFN set was present but did not match (orphaned or bad checksum). */
  badLfn: boolean;
  /** Why the stored 8.3 name is invalid (`shortNameProblem`), when it is. */
  badShortName?: string;
  /** True when `name` is not the stored name but `safeShortName` of it (an invalid 8.3 name and no long name). */
  renamed: boolean;
}

/**
 * Decode the entries of a directory's bytes (skipping free entries and volume labels unless
 * `withLabels`). Stops at the first 0x00 entry. Never throws on content: a broken LFN set
 * falls back to the short name and sets `badLfn`.
 */
export function decodeDirEntries(bytes: Uint8Array, opts: { withLabels?: boolean } = {}): DecodedDirEntry[] {
  const out: DecodedDirEntry[] = [];
  const v = view(bytes);
  let lfnUnits: number[][] = [];
  let lfnSum = -1;
  let lfnExpect = 0;
  let lfnBroken = false;
  const resetLfn = () => {
    lfnUnits = [];
    lfnSum = -1;
    lfnExpect = 0;
  };
  for (let i = 0; (i + 1) * DIR_ENTRY_BYTES <= bytes.length; i++) {
    const e = i * DIR_ENTRY_BYTES;
    const first = bytes[e];
    if (first === ENTRY_END) break;
    if (first === ENTRY_FREE) {
      if (lfnExpect) lfnBroken = true;
      resetLfn();
      continue;
    }
    const attr = bytes[e + 11];
    if ((attr & 0x3f) === ATTR_LONG_NAME) {
      const ord = first & 0x3f;
      const units: number[] = [];
      for (const off of LFN_UNIT_OFFSETS) units.push(v.getUint16(e + off, true));
      if (first & LAST_LONG_ENTRY) {
        if (lfnExpect) lfnBroken = true;
        resetLfn();
        if (ord >= 1 && ord <= 20) {
          lfnExpect = ord;
          lfnSum = bytes[e + 13];
          lfnUnits[ord - 1] = units;
        } else lfnBroken = true;
      } else if (lfnExpect && ord === lfnExpect - countFilled(lfnUnits) && bytes[e + 13] === lfnSum && ord >= 1) {
        lfnUnits[ord - 1] = units;
      } else {
        lfnBroken = true;
        resetLfn();
      }
      continue;
    }
    const name11 = bytes.slice(e, e + 11);
    if (name11[0] === 0x05) name11[0] = ENTRY_FREE;
    let name: string | undefined;
    let badLfn = lfnBroken;
    if (lfnExpect) {
      if (countFilled(lfnUnits) === lfnExpect && lfnChecksum(bytes.subarray(e, e + 11)) === lfnSum) name = unitsToName(lfnUnits);
      else badLfn = true;
    }
    resetLfn();
    lfnBroken = false;
    if (attr & ATTR_VOLUME_ID && !(attr & ATTR_DIRECTORY)) {
      if (opts.withLabels) out.push(makeEntry(name11, undefined, attr, v, e, i, false));
      continue;
    }
    out.push(makeEntry(name11, name, attr, v, e, i, badLfn));
  }
  return out;
}

function countFilled(units: number[][]): number {
  let n = 0;
  for (const u of units) if (u) n++;
  return n;
}

function unitsToName(parts: number[][]): string | undefined {
  const all: number[] = [];
  for (const p of parts) all.push(...p);
  let end = all.indexOf(0);
  if (end < 0) end = all.length;
  const s = String.fromCharCode(...all.slice(0, end));
  return s.length > 0 ? s : undefined;
}

function makeEntry(name11: Uint8Array, longName: string | undefined, attr: number, v: DataView, e: number, index: number, badLfn: boolean): DecodedDirEntry {
  const ntCase = v.getUint8(e + 12);
  const latin = (from: number, to: number) => decodeOem(name11.subarray(from, to)).replace(/ +$/, '');
  const base = latin(0, 8);
  const ext = latin(8, 11);
  const shortName = ext ? `${base}.${ext}` : base;
  const cased = (ntCase & NT_LOWER_BASE ? base.toLowerCase() : base) + (ext ? '.' + (ntCase & NT_LOWER_EXT ? ext.toLowerCase() : ext) : '');
  const badShortName = shortNameProblem(name11);
  const renamed = longName === undefined && badShortName !== undefined;
  return {
    name: longName ?? (renamed ? safeShortName(name11) : cased),
    shortName,
    name11,
    attr,
    cluster: v.getUint16(e + 20, true) * 0x10000 + v.getUint16(e + 26, true),
    size: v.getUint32(e + 28, true),
    mtime: fromDosDateTime(v.getUint16(e + 24, true), v.getUint16(e + 22, true)),
    index,
    badLfn,
    ...(badShortName !== undefined ? { badShortName } : {}),
    renamed,
  };
}
