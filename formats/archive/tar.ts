/**
 * tar headers: POSIX ustar and pax (IEEE Std 1003.1-2017, pax "ustar Interchange Format" and
 * "pax Extended Header"), GNU long names ('L', 'K') and GNU base-256 numbers. Header by header,
 * so an archive of any size streams: the caller reads 512-byte blocks and extension data and
 * skips member data (`TarReader`); `readTarEntries` does the same over bytes in memory.
 * `encodeTarHeaders` writes a member's headers (a pax 'x' header when ustar cannot hold it).
 */
import { fail } from '../common/errors.js';
import { flagNames, parseFlagNames } from './file-flags.js';

export const TAR_BLOCK = 512;
/** Extension headers larger than this are refused (real ones hold a few long names). */
export const MAX_TAR_EXTENSION = 1 << 20;

export type TarEntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarTime {
  sec: number;
  nsec: number;
}

export interface TarEntry {
  /** As the archive spells it (pax path, GNU long name, or ustar prefix/name). */
  path: string;
  type: TarEntryType;
  /** Permission bits with setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Bytes of member data after the header (regular files; 0 for most others). */
  size: number;
  mtime: TarTime;
  atime?: TarTime;
  ctime?: TarTime;
  /** pax LIBARCHIVE.creationtime. */
  birthtime?: TarTime;
  /** Hard links: the earlier member; symlinks: the target. */
  linkname: string;
  devmajor: number;
  devminor: number;
  /** FreeBSD st_flags from SCHILY.fflags. */
  flags: number;
}

export type TarStep =
  | { kind: 'end' }
  /** Read `size` bytes after this header and give them to `extension()`; then skip to the next block. */
  | { kind: 'extension'; size: number }
  /** A member; its data (`entry.size` bytes, padded to 512) follows the header. */
  | { kind: 'entry'; entry: TarEntry };

// ustar header fields (pax, "ustar Interchange Format": offset, length).
const NAME = [0, 100] as const;
const MODE = [100, 8] as const;
const UID = [108, 8] as const;
const GID = [116, 8] as const;
const SIZE = [124, 12] as const;
const MTIME = [136, 12] as const;
const CHKSUM = [148, 8] as const;
const TYPEFLAG = 156;
const LINKNAME = [157, 100] as const;
const MAGIC = [257, 6] as const;
const UNAME = [265, 32] as const;
const GNAME = [297, 32] as const;
const DEVMAJOR = [329, 8] as const;
const DEVMINOR = [337, 8] as const;
const PREFIX = [345, 155] as const;

const TYPES: Record<string, TarEntryType> = { '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo' };

const utf8 = new TextDecoder('utf-8');
const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

function text(block: Uint8Array, [at, len]: readonly [number, number]): string {
  const field = block.subarray(at, at + len);
  const end = field.indexOf(0);
  return utf8.decode(end < 0 ? field : field.subarray(0, end));
}

/** An octal field (spaces/NULs around it) or a GNU base-256 one (first byte 0x80 or 0xff). */
function numeric(block: Uint8Array, [at, len]: readonly [number, number], what: string, allowNegative = false): number {
  const field = block.subarray(at, at + len);
  if (field[0] === 0x80 || field[0] === 0xff) {
    const negative = field[0] === 0xff;
    if (negative && !allowNegative) throw fail('tar', 'BAD_VALUE', `the ${what} field holds a negative base-256 number`);
    let v = 0;
    for (const b of field.subarray(1)) {
      v = v * 256 + (negative ? 255 - b : b);
      if (v > Number.MAX_SAFE_INTEGER) throw fail('tar', 'TOO_LARGE', `the ${what} field holds a number beyond 2^53`);
    }
    return negative ? -(v + 1) : v;
  }
  const s = String.fromCharCode(...field).replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw fail('tar', 'BAD_VALUE', `the ${what} field ${JSON.stringify(s)} is not an octal number`);
  return parseInt(s, 8);
}

/** The ustar checksum: every byte summed with the checksum field taken as eight spaces. */
function checksums(block: Uint8Array): [number, number] {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < TAR_BLOCK; i++) {
    const b = i >= CHKSUM[0] && i < CHKSUM[0] + CHKSUM[1] ? 0x20 : block[i];
    unsigned += b;
    signed += b > 127 ? b - 256 : b; // some historic tars summed signed chars
  }
  return [unsigned, signed];
}

/** pax extended header records: "%d %s=%s\n", the length counting the whole record. */
export function parsePaxRecords(data: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    if (data[at] === 0) break; // padding after the records
    let sp = at;
    while (sp < data.length && sp - at < 20 && data[sp] >= 0x30 && data[sp] <= 0x39) sp++;
    const len = Number(String.fromCharCode(...data.subarray(at, sp)));
    if (sp === at || data[sp] !== 0x20 || len < sp - at + 4 || at + len > data.length || data[at + len - 1] !== 0x0a)
      throw fail('tar', 'BAD_VALUE', `a pax extended header record at byte ${at} is malformed`);
    const record = utf8.decode(data.subarray(sp + 1, at + len - 1));
    const eq = record.indexOf('=');
    if (eq <= 0) throw fail('tar', 'BAD_VALUE', `the pax record ${JSON.stringify(record.slice(0, 60))} has no keyword`);
    out.set(record.slice(0, eq), record.slice(eq + 1));
    at += len;
  }
  return out;
}

/** A pax time: decimal seconds with an optional fraction, possibly negative. */
export function parsePaxTime(value: string, key: string): TarTime {
  const m = /^(-?)(\d{1,16})(?:\.(\d+))?$/.exec(value);
  if (!m) throw fail('tar', 'BAD_VALUE', `the pax ${key} ${JSON.stringify(value.slice(0, 40))} is not a time`);
  const whole = Number(m[2]);
  const nsec = Number((m[3] ?? '').slice(0, 9).padEnd(9, '0'));
  if (m[1] !== '-') return { sec: whole, nsec };
  return nsec === 0 ? { sec: -whole, nsec: 0 } : { sec: -whole - 1, nsec: 1e9 - nsec };
}

function paxInteger(value: string, key: string): number {
  if (!/^\d{1,16}$/.test(value) || Number(value) > Number.MAX_SAFE_INTEGER)
    throw fail('tar', 'BAD_VALUE', `the pax ${key} ${JSON.stringify(value.slice(0, 40))} is not a whole number`);
  return Number(value);
}

/** Reads an archive header by header; keeps the pax global headers and pending extensions. */
export class TarReader {
  private readonly global = new Map<string, string>();
  private local = new Map<string, string>();
  private longName?: string;
  private longLink?: string;
  private pending?: string;

  header(block: Uint8Array): TarStep {
    if (block.length < TAR_BLOCK) throw fail('tar', 'TRUNCATED', 'the archive ends inside a header');
    if (this.pending !== undefined) throw fail('tar', 'INVALID_ARGUMENT', 'extension data was not given before the next header');
    if (block.every((b) => b === 0)) return { kind: 'end' };
    const stored = numeric(block, CHKSUM, 'checksum');
    if (!checksums(block).includes(stored)) throw fail('tar', 'BAD_CHECKSUM', 'a header checksum does not match: this is not a tar archive or it is damaged');
    const type = String.fromCharCode(block[TYPEFLAG]);
    const size = numeric(block, SIZE, 'size');
    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      if (size > MAX_TAR_EXTENSION) throw fail('tar', 'TOO_LARGE', `an extension header of ${size} bytes (at most ${MAX_TAR_EXTENSION})`);
      this.pending = type;
      return { kind: 'extension', size };
    }
    if (type === 'S' || [...this.local.keys(), ...this.global.keys()].some((k) => k.startsWith('GNU.sparse')))
      throw fail('tar', 'BAD_VALUE', 'sparse members (GNU tar --sparse) are not supported: make the archive without --sparse');
    const kind = TYPES[type] ?? (type === 'V' ? undefined : null);
    if (kind === null) throw fail('tar', 'BAD_VALUE', `member type ${JSON.stringify(type)} is not supported`);
    const entry = kind === undefined ? undefined : this.entry(block, kind, size);
    this.local = new Map();
    this.longName = this.longLink = undefined;
    // A GNU volume label ('V') names no member: skip it like an extension.
    return entry ? { kind: 'entry', entry } : this.skipLabel(size);
  }

  private skipLabel(size: number): TarStep {
    this.pending = 'V';
    return { kind: 'extension', size };
  }

  /** The data of the extension header `header()` asked for. */
  extension(data: Uint8Array): void {
    const type = this.pending;
    this.pending = undefined;
    if (type === 'x') for (const [k, v] of parsePaxRecords(data)) this.local.set(k, v);
    else if (type === 'g') for (const [k, v] of parsePaxRecords(data)) this.global.set(k, v);
    else if (type === 'L' || type === 'K') {
      const end = data.indexOf(0);
      const name = utf8.decode(end < 0 ? data : data.subarray(0, end));
      if (type === 'L') this.longName = name;
      else this.longLink = name;
    }
  }

  private entry(block: Uint8Array, ustarType: TarEntryType, headerSize: number): TarEntry {
    const pax = new Map([...this.global, ...this.local]);
    const magic = text(block, MAGIC);
    const gnu = magic === 'ustar ' || (block[MAGIC[0] + 5] === 0x20 && magic.startsWith('ustar'));
    const prefix = magic.startsWith('ustar') && !gnu ? text(block, PREFIX) : '';
    const path = this.longName ?? (prefix ? `${prefix}/${text(block, NAME)}` : text(block, NAME));
    let type = ustarType;
    if (type === 'file' && path.endsWith('/')) type = 'dir'; // pre-POSIX tars mark folders by a trailing '/'
    const e: TarEntry = {
      path,
      type,
      mode: numeric(block, MODE, 'mode') & 0o7777,
      uid: numeric(block, UID, 'uid'),
      gid: numeric(block, GID, 'gid'),
      uname: text(block, UNAME),
      gname: text(block, GNAME),
      size: headerSize,
      mtime: { sec: numeric(block, MTIME, 'mtime', true), nsec: 0 },
      linkname: this.longLink ?? text(block, LINKNAME),
      devmajor: type === 'char' || type === 'block' ? numeric(block, DEVMAJOR, 'devmajor') : 0,
      devminor: type === 'char' || type === 'block' ? numeric(block, DEVMINOR, 'devminor') : 0,
      flags: 0,
    };
    for (const [key, value] of pax) {
      if (key === 'path') e.path = value;
      else if (key === 'linkpath') e.linkname = value;
      else if (key === 'size') e.size = paxInteger(value, key);
      else if (key === 'uid' || key === 'gid') e[key] = paxInteger(value, key);
      else if (key === 'uname' || key === 'gname') e[key] = value;
      else if (key === 'mtime' || key === 'atime' || key === 'ctime') e[key] = parsePaxTime(value, key);
      else if (key === 'LIBARCHIVE.creationtime') e.birthtime = parsePaxTime(value, key);
      else if (key === 'SCHILY.fflags') e.flags = parseFlagNames(value, 'tar');
      else if (key === 'SCHILY.devmajor') e.devmajor = paxInteger(value, key);
      else if (key === 'SCHILY.devminor') e.devminor = paxInteger(value, key);
    }
    if (e.path === '') throw fail('tar', 'BAD_VALUE', 'a member has an empty name');
    return e;
  }
}

/** Bytes of `size` rounded up to whole blocks. */
export const tarPadded = (size: number): number => Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;

/** Every member of an archive in memory, with where its data starts. */
export function readTarEntries(bytes: Uint8Array): Array<TarEntry & { dataOffset: number }> {
  const reader = new TarReader();
  const out: Array<TarEntry & { dataOffset: number }> = [];
  let at = 0;
  for (;;) {
    if (at + TAR_BLOCK > bytes.length) {
      if (at === bytes.length && out.length > 0) return out; // no end blocks: tolerated, as GNU tar does
      throw fail('tar', 'TRUNCATED', `the archive ends inside a header at byte ${at}`);
    }
    const step = reader.header(bytes.subarray(at, at + TAR_BLOCK));
    at += TAR_BLOCK;
    if (step.kind === 'end') return out;
    const size = step.kind === 'extension' ? step.size : step.entry.size;
    if (at + size > bytes.length) throw fail('tar', 'TRUNCATED', `the archive ends inside member data at byte ${bytes.length}`);
    if (step.kind === 'extension') reader.extension(bytes.subarray(at, at + size));
    else out.push({ ...step.entry, dataOffset: at });
    at += tarPadded(size);
  }
}

// ---- writing (fixtures and round-trip tests) ----

const TYPE_FLAG: Record<TarEntryType, string> = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };
const utf8Bytes = (s: string) => new TextEncoder().encode(s);

function putText(block: Uint8Array, [at, len]: readonly [number, number], s: string): boolean {
  const b = utf8Bytes(s);
  block.set(b.subarray(0, len), at);
  return b.length <= len;
}

function putOctal(block: Uint8Array, [at, len]: readonly [number, number], v: number): boolean {
  const fits = Number.isInteger(v) && v >= 0 && v < 8 ** (len - 1);
  block.set(ascii(`${(fits ? v : 0).toString(8).padStart(len - 1, '0')}\0`), at);
  return fits;
}

const paxTime = (t: TarTime) =>
  t.nsec === 0 ? String(t.sec) : t.sec >= 0 ? `${t.sec}.${String(t.nsec).padStart(9, '0')}` : `-${-t.sec - 1}.${String(1e9 - t.nsec).padStart(9, '0')}`;

/** A pax record "%d key=value\n" (the length counts its own digits). */
export function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const n = utf8Bytes(body).length;
  let len = n + String(n).length;
  if (String(len).length !== String(n).length) len = n + String(len).length;
  return `${len}${body}`;
}

function ustarBlock(e: TarEntry, type: string, size: number, name: string): { block: Uint8Array; pax: Map<string, string> } {
  const block = new Uint8Array(TAR_BLOCK);
  const pax = new Map<string, string>();
  let stored = name;
  const nameBytes = utf8Bytes(name);
  if (nameBytes.length > 100) {
    // Split at a '/' so the prefix holds at most 155 bytes and the name at most 100.
    const cut = name.lastIndexOf('/', 155);
    if (cut > 0 && utf8Bytes(name.slice(cut + 1)).length <= 100 && utf8Bytes(name.slice(0, cut)).length <= 155) {
      putText(block, PREFIX, name.slice(0, cut));
      stored = name.slice(cut + 1);
    } else pax.set('path', name);
  }
  putText(block, NAME, stored);
  putOctal(block, MODE, e.mode);
  if (!putOctal(block, UID, e.uid)) pax.set('uid', String(e.uid));
  if (!putOctal(block, GID, e.gid)) pax.set('gid', String(e.gid));
  if (!putOctal(block, SIZE, size)) pax.set('size', String(size));
  if (!putOctal(block, MTIME, e.mtime.sec) || e.mtime.nsec !== 0) pax.set('mtime', paxTime(e.mtime));
  block[TYPEFLAG] = type.charCodeAt(0);
  if (!putText(block, LINKNAME, e.linkname)) pax.set('linkpath', e.linkname);
  block.set(ascii('ustar\x0000'), MAGIC[0]);
  if (!putText(block, UNAME, e.uname)) pax.set('uname', e.uname);
  if (!putText(block, GNAME, e.gname)) pax.set('gname', e.gname);
  if (!putOctal(block, DEVMAJOR, e.devmajor)) pax.set('SCHILY.devmajor', String(e.devmajor));
  if (!putOctal(block, DEVMINOR, e.devminor)) pax.set('SCHILY.devminor', String(e.devminor));
  return { block, pax };
}

function sealChecksum(block: Uint8Array): Uint8Array {
  block.set(ascii(`${checksums(block)[0].toString(8).padStart(6, '0')}\0 `), CHKSUM[0]);
  return block;
}

/** A member's header blocks (a pax 'x' header and its data first when needed), without its data. */
export function encodeTarHeaders(e: TarEntry): Uint8Array {
  const { block, pax } = ustarBlock(e, TYPE_FLAG[e.type], e.size, e.path);
  if (e.atime) pax.set('atime', paxTime(e.atime));
  if (e.ctime) pax.set('ctime', paxTime(e.ctime));
  if (e.birthtime) pax.set('LIBARCHIVE.creationtime', paxTime(e.birthtime));
  if (e.flags) pax.set('SCHILY.fflags', flagNames(e.flags));
  if (pax.size === 0) return sealChecksum(block);
  const records = utf8Bytes([...pax].map(([k, v]) => paxRecord(k, v)).join(''));
  const x = ustarBlock({ ...e, mtime: { sec: Math.max(0, e.mtime.sec), nsec: 0 }, linkname: '' }, 'x', records.length, 'PaxHeader').block;
  const out = new Uint8Array(TAR_BLOCK + tarPadded(records.length) + TAR_BLOCK);
  out.set(sealChecksum(x), 0);
  out.set(records, TAR_BLOCK);
  out.set(sealChecksum(block), TAR_BLOCK + tarPadded(records.length));
  return out;
}
