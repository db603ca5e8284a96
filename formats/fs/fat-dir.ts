/**
 * FAT directory entries (fatgen103 section 6 "FAT Directory Structure"), VFAT long names
 * (section 7 "FAT Long Directory Entries") and Windows-style 8.3 alias generation (section 7,
 * "The Basis-Name Generation Algorithm" and "The Numeric-Tail Generation Algorithm").
 * Pure: bytes in, bytes out.
 */
import { view } from '../common/bytes.js';
import { fail } from '../common/errors.js';

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
/** DIR_NTRes case bits used by Windows NT for all-lower-case base / extension (not in fatgen103). */
export const NT_LOWER_BASE = 0x08;
export const NT_LOWER_EXT = 0x10;
/** DIR_Name[0] markers: 0xE5 free, 0x00 free and nothing follows, 0x05 stands for a real 0xE5. */
export const ENTRY_FREE = 0xe5;
export const ENTRY_END = 0x00;
/** LDIR_Ord: the last (first stored) long entry is or-ed with 0x40; at most 20 entries (255 units). */
const LAST_LONG_ENTRY = 0x40;
const LFN_UNITS_PER_ENTRY = 13;
export const MAX_LONG_NAME = 255;
/** Offsets of the 13 UTF-16 units in a long entry: LDIR_Name1 (5), LDIR_Name2 (6), LDIR_Name3 (2). */
const LFN_UNIT_OFFSETS = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

/** Characters fatgen103 allows in a short name besides A-Z and 0-9 (bytes > 127 are left out: we stay ASCII). */
const SHORT_SPECIALS = new Set("$%'-_@~`!(){}^#&".split(''));
/** Short-name characters and the dot, either case (ASCII names are checked by these at once). */
const SHORT_NAME_CHARS = /^[A-Za-z0-9$%'\-_@~`!(){}^#&.]*$/;
const ASCII = /^[\x00-\x7f]*$/;
/** Characters a long name may not contain (fatgen103 section 7), control characters included. */
const LONG_FORBIDDEN = /[\x00-\x1f\x7f"*/:<>?\\|]/;

/** Throws INVALID_ARGUMENT when FAT cannot hold `name` as a long file name. */
export function validateLongName(name: string): void {
  const refused = (why: string) => `FAT cannot hold the name ${JSON.stringify(name)}: ${why}`;
  if (name.length === 0) throw fail('fat', 'INVALID_ARGUMENT', refused('it is empty'));
  if (name === '.' || name === '..') throw fail('fat', 'INVALID_ARGUMENT', refused('"." and ".." are reserved'));
  if (name.length > MAX_LONG_NAME) throw fail('fat', 'INVALID_ARGUMENT', refused(`it is ${name.length} UTF-16 units long, at most ${MAX_LONG_NAME} allowed`));
  const bad = LONG_FORBIDDEN.exec(name)?.[0];
  if (bad !== undefined) {
    throw fail(
      'fat',
      'INVALID_ARGUMENT',
      refused(bad < ' ' || bad === '\x7f' ? 'it contains a control character' : `it contains the reserved character ${JSON.stringify(bad)}`),
    );
  }
  if (name.endsWith('.') || name.endsWith(' ')) throw fail('fat', 'INVALID_ARGUMENT', refused('it ends with a dot or a space'));
}

/** The key names are compared by: FAT looks names up without regard to case. */
export function caseFoldName(name: string): string {
  if (ASCII.test(name)) return name.toUpperCase(); // one-to-one for ASCII: the common case, fast
  // Simple (one-to-one) case mapping like the volume's up-case table: 'ß' stays 'ß'.
  let out = '';
  for (const ch of name) {
    const up = ch.toUpperCase();
    out += up.length === ch.length ? up : ch;
  }
  return out;
}

export interface ShortNamePlan {
  /** DIR_Name: 11 bytes as text, base padded to 8, extension to 3. */
  name11: string;
  /** NT case bits for DIR_NTRes. */
  ntCase: number;
  /** The long name to store in LFN entries, or undefined when the short name says it all. */
  longName?: string;
}

function isShortChar(ch: string): boolean {
  if (ch.length !== 1) return false; // e.g. 'ß'.toUpperCase() === 'SS'
  return (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || SHORT_SPECIALS.has(ch);
}

function caseOf(part: string): 'lower' | 'upper' | 'mixed' | 'none' {
  const hasLower = part !== part.toUpperCase();
  const hasUpper = part !== part.toLowerCase();
  return hasLower && hasUpper ? 'mixed' : hasLower ? 'lower' : hasUpper ? 'upper' : 'none';
}

/**
 * When `name` is a legal 8.3 name as it stands (up to case), its short form and case bits;
 * else undefined. Lower-case base or extension use the NT case bits; mixed case needs an LFN.
 */
export function exactShortName(name: string): ShortNamePlan | undefined {
  const dot = name.indexOf('.');
  const base = dot < 0 ? name : name.slice(0, dot);
  const ext = dot < 0 ? '' : name.slice(dot + 1);
  if (base.length < 1 || base.length > 8 || ext.length > 3 || ext.includes('.') || (dot >= 0 && ext.length === 0)) return undefined;
  if (ASCII.test(name) ? !SHORT_NAME_CHARS.test(name) : [...name].some((ch) => ch !== '.' && !isShortChar(ch.toUpperCase()))) return undefined;
  const name11 = base.toUpperCase().padEnd(8, ' ') + ext.toUpperCase().padEnd(3, ' ');
  const bc = caseOf(base);
  const ec = caseOf(ext);
  if (bc === 'mixed' || ec === 'mixed') return { name11, ntCase: 0, longName: name };
  return { name11, ntCase: (bc === 'lower' ? NT_LOWER_BASE : 0) | (ec === 'lower' ? NT_LOWER_EXT : 0) };
}

/**
 * The basis name of fatgen103's algorithm: upper-cased, spaces and leading periods stripped,
 * characters a short name cannot hold turned into '_', base to 8 and extension to 3 characters
 * (the extension from after the last period). Returns base and extension unpadded.
 */
export function basisName(name: string): { base: string; ext: string } {
  const map = (s: string) => {
    let out = '';
    for (const ch of ASCII.test(s) ? s.toUpperCase() : s) {
      if (ch === ' ' || ch === '.') continue;
      const up = ch.toUpperCase();
      out += isShortChar(up) ? up : '_';
    }
    return out;
  };
  const stripped = name.replace(/^[. ]+/, '');
  const lastDot = stripped.lastIndexOf('.');
  const base = map(lastDot < 0 ? stripped : stripped.slice(0, lastDot)).slice(0, 8);
  const ext = lastDot < 0 ? '' : map(stripped.slice(lastDot + 1)).slice(0, 3);
  return { base: base || '_', ext };
}

/**
 * Assign short names to the names of one folder, Windows-style: names that are legal 8.3 keep
 * their own short name; the others get `BASIS~N.EXT` with the smallest N (1..999999) not taken
 * in the folder. `names` must already be unique without regard to case.
 */
export function assignShortNames(names: readonly string[]): ShortNamePlan[] {
  const taken = new Set<string>();
  const plans: (ShortNamePlan | undefined)[] = names.map((n) => exactShortName(n));
  for (const p of plans) if (p) taken.add(p.name11);
  // The last ~N given to each basis name: the next one's search starts after it (every smaller N
  // was taken then and still is), so a folder of 40000 similar names costs 40000 steps, not 8e8.
  const lastTail = new Map<string, number>();
  return names.map((name, i) => {
    const exact = plans[i];
    if (exact) return exact;
    const { base, ext } = basisName(name);
    const basis = `${base}.${ext}`;
    for (let n = (lastTail.get(basis) ?? 0) + 1; n <= 999999; n++) {
      const tail = `~${n}`;
      const name11 = (base.slice(0, 8 - tail.length) + tail).padEnd(8, ' ') + ext.padEnd(3, ' ');
      if (!taken.has(name11)) {
        taken.add(name11);
        lastTail.set(basis, n);
        return { name11, ntCase: 0, longName: name };
      }
    }
    throw fail('fat', 'INVALID_ARGUMENT', `no free short name for ${JSON.stringify(name)}`);
  });
}

/** fatgen103 section 7: the checksum of the 11-byte short name that every LFN entry carries. */
export function lfnChecksum(name11: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + name11[i]) & 0xff;
  return sum;
}

export function shortNameBytes(name11: string): Uint8Array {
  const out = new Uint8Array(11);
  for (let i = 0; i < 11; i++) out[i] = name11.charCodeAt(i) & 0xff;
  return out;
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

/** Characters dosfstools' fsck.fat refuses anywhere in a short name (check.c, bad_name). */
const SHORT_NAME_BAD_CHARS = '*?<>|"\\/:';

/**
 * Why an 11-byte short name is invalid, by fsck.fat's rule (dosfstools check.c, bad_name):
 * a control character or DEL, one of `*?<>|"\/:`, a leading space (an empty name is all
 * spaces), or a space inside the base or the extension. Bytes >= 0x80 are valid (code page
 * characters). Undefined when the name is valid.
 */
export function shortNameProblem(name11: Uint8Array): string | undefined {
  for (let i = 0; i < 11; i++) {
    const b = name11[i];
    if (b < 0x20 || b === 0x7f) return `it holds the control character 0x${b.toString(16).padStart(2, '0')}`;
    if (SHORT_NAME_BAD_CHARS.includes(String.fromCharCode(b))) return `it holds the character ${JSON.stringify(String.fromCharCode(b))}`;
  }
  if (name11.subarray(0, 11).every((b) => b === 0x20)) return 'it is empty';
  if (name11[0] === 0x20) return 'it starts with a space';
  const inner = (from: number, to: number) => /^[^ ]* +[^ ]/.test(decodeOem(name11.subarray(from, to)));
  if (inner(0, 8) || inner(8, 11)) return 'it has a space inside';
  return undefined;
}

/**
 * The name an invalid short name is listed and extracted under: each character fsck.fat refuses
 * (and each space but the padding) becomes '_', an empty base becomes '_'; so ' AB.TXT' is
 * '_AB.TXT', an empty name '_' and 'A>B.TXT' 'A_B.TXT'. The caller makes it unique in its folder.
 */
export function safeShortName(name11: Uint8Array): string {
  const part = (from: number, to: number) =>
    [...decodeOem(name11.subarray(from, to)).replace(/ +$/, '')]
      .map((ch) => (ch.charCodeAt(0) <= 0x20 || ch.charCodeAt(0) === 0x7f || SHORT_NAME_BAD_CHARS.includes(ch) ? '_' : ch))
      .join('');
  const base = part(0, 8) || '_';
  const ext = part(8, 11);
  return ext ? `${base}.${ext}` : base;
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

/**
 * Short names are in the OEM code page. We write only ASCII; names with bytes >= 0x80 (mtools
 * and mkfs.fat default to code page 850) are decoded as CP850.
 */
const CP850_HIGH = 'ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜø£Ø×ƒáíóúñÑªº¿®¬½¼¡«»░▒▓│┤ÁÂÀ©╣║╗╝¢¥┐└┴┬├─┼ãÃ╚╔╩╦╠═╬¤ðÐÊËÈıÍÎÏ┘┌█▄¦Ì▀ÓßÔÒõÕµþÞÚÛÙýÝ¯´\u00ad±‗¾¶§÷¸°¨·¹³²■\u00a0';

export function decodeOem(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b < 0x80 ? String.fromCharCode(b) : CP850_HIGH[b - 0x80];
  return s;
}

/** Validate a volume label and return its 11-byte padded upper-case form. */
export function normalizeLabel(label: string): string {
  const refused = (why: string) => `volume label ${JSON.stringify(label)}: ${why}`;
  if (label.length > 11) throw fail('fat', 'INVALID_ARGUMENT', refused('at most 11 characters'));
  if (label.startsWith(' ')) throw fail('fat', 'INVALID_ARGUMENT', refused('it may not start with a space'));
  const up = label.toUpperCase();
  for (const ch of up) {
    const c = ch.charCodeAt(0);
    // mkfs.fat refuses these in labels (validate_volume_label).
    if (c < 0x20 || c > 0x7e || '*?.,;:/\\|+=<>[]"'.includes(ch))
      throw fail('fat', 'INVALID_ARGUMENT', refused(`the character ${JSON.stringify(ch)} is not allowed`));
  }
  return up.padEnd(11, ' ');
}
