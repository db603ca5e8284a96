/**
 * XDR-encoded nvlists as OpenZFS packs them (`module/nvpair/nvpair.c`, nvs_xdr_*; type numbers
 * from `include/sys/nvpair.h` data_type_t). Layout of a packed list:
 *   header (4 bytes: encoding 1 = XDR, host endian, 0, 0)            -- top level only
 *   int32 nvl_version, uint32 nvl_nvflag                              -- every (embedded) list
 *   pairs: int32 encoded size, int32 decoded (native) size, string name, int32 type,
 *          int32 nelem, value                                         -- repeated
 *   int32 0, int32 0                                                  -- end of the list
 * All integers are big-endian (XDR); strings are a uint32 length then bytes padded to 4.
 * The parser bounds every length and count by the bytes that remain, so hostile input gives a
 * FormatError, never a crash or a large allocation.
 */
import { view } from '../common/bytes.js';
import { fail } from '../common/errors.js';

const FORMAT = 'nvlist';
/** nvpair.h: NV_ENCODE_XDR. */
export const NV_ENCODE_XDR = 1;
/** nvpair.h: NV_UNIQUE_NAME, NV_UNIQUE_NAME_TYPE. */
export const NV_UNIQUE_NAME = 1;
export const NV_UNIQUE_NAME_TYPE = 2;
/** Deepest nesting of embedded lists accepted (OpenZFS limits recursion similarly). */
const MAX_DEPTH = 64;

/** data_type_t numbers (nvpair.h). */
export const NV_TYPES = {
  boolean: 1,
  byte: 2,
  int16: 3,
  uint16: 4,
  int32: 5,
  uint32: 6,
  int64: 7,
  uint64: 8,
  string: 9,
  byte_array: 10,
  int16_array: 11,
  uint16_array: 12,
  int32_array: 13,
  uint32_array: 14,
  int64_array: 15,
  uint64_array: 16,
  string_array: 17,
  hrtime: 18,
  nvlist: 19,
  nvlist_array: 20,
  boolean_value: 21,
  int8: 22,
  uint8: 23,
  boolean_array: 24,
  int8_array: 25,
  uint8_array: 26,
  double: 27,
} as const;
export type NvType = keyof typeof NV_TYPES;
const TYPE_NAMES = new Map<number, NvType>(Object.entries(NV_TYPES).map(([k, v]) => [v, k as NvType]));

type SmallInt = 'byte' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32';
type SmallIntArray = 'byte_array' | 'int8_array' | 'uint8_array' | 'int16_array' | 'uint16_array' | 'int32_array' | 'uint32_array';

export type NvValue =
  | { type: 'boolean' }
  | { type: 'boolean_value'; value: boolean }
  | { type: SmallInt; value: number }
  | { type: 'int64' | 'uint64' | 'hrtime'; value: bigint }
  | { type: 'double'; value: number }
  | { type: 'string'; value: string }
  | { type: 'boolean_array'; value: boolean[] }
  | { type: SmallIntArray; value: number[] }
  | { type: 'int64_array' | 'uint64_array'; value: bigint[] }
  | { type: 'string_array'; value: string[] }
  | { type: 'nvlist'; value: NvList }
  | { type: 'nvlist_array'; value: NvList[] };

export type NvPair = { name: string } & NvValue;

export interface NvList {
  /** nvl_version (NV_VERSION = 0). */
  version: number;
  /** nvl_nvflag: NV_UNIQUE_NAME (1) for every list ZFS writes. */
  flags: number;
  pairs: NvPair[];
}

/** Integer ranges of the small types (their C types). */
const RANGES: Record<SmallInt, [number, number]> = {
  byte: [0, 0xff],
  uint8: [0, 0xff],
  int8: [-0x80, 0x7f],
  int16: [-0x8000, 0x7fff],
  uint16: [0, 0xffff],
  int32: [-0x80000000, 0x7fffffff],
  uint32: [0, 0xffffffff],
};
const ELEMENT: Record<SmallIntArray, SmallInt> = {
  byte_array: 'byte',
  int8_array: 'int8',
  uint8_array: 'uint8',
  int16_array: 'int16',
  uint16_array: 'uint16',
  int32_array: 'int32',
  uint32_array: 'uint32',
};
/** Native sizes of one element (i_get_value_size in nvpair.c): what the decoded-size field counts. */
const NATIVE_SIZE: Record<NvType, number> = {
  boolean: 0,
  boolean_value: 4,
  byte: 1,
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  int64: 8,
  uint64: 8,
  hrtime: 8,
  double: 8,
  string: 0,
  byte_array: 1,
  int8_array: 1,
  uint8_array: 1,
  int16_array: 2,
  uint16_array: 2,
  int32_array: 4,
  uint32_array: 4,
  boolean_array: 4,
  int64_array: 8,
  uint64_array: 8,
  string_array: 8,
  nvlist: 24,
  nvlist_array: 32,
};

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/* ------------------------------------------------------------------ sizes */

const align4 = (n: number) => (n + 3) & ~3;
const align8 = (n: number) => (n + 7) & ~7;
const byteLength = (s: string) => utf8.encode(s).length;

/** NVP_SIZE_CALC: the native nvpair_t (16 bytes) + name + NUL, then the value, each 8-aligned. */
function nativePairSize(p: NvPair): number {
  const nameSize = byteLength(p.name) + 1;
  let value: number;
  switch (p.type) {
    case 'boolean':
      value = 0;
      break;
    case 'string':
      value = byteLength(p.value) + 1;
      break;
    case 'string_array':
      value = p.value.reduce((n, s) => n + byteLength(s) + 1, 8 * p.value.length);
      break;
    case 'nvlist':
      value = NATIVE_SIZE.nvlist;
      break;
    default:
      value = NATIVE_SIZE[p.type] * ('value' in p && Array.isArray(p.value) ? p.value.length : 1);
  }
  return align8(16 + nameSize) + align8(value);
}

/* ------------------------------------------------------------------ writer */

class Writer {
  private buf = new Uint8Array(1024);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private ensure(n: number) {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  i32(v: number) {
    this.ensure(4);
    this.view.setInt32(this.length, v);
    this.length += 4;
  }
  u32(v: number) {
    this.ensure(4);
    this.view.setUint32(this.length, v >>> 0);
    this.length += 4;
  }
  u64(v: bigint) {
    this.ensure(8);
    this.view.setBigUint64(this.length, BigInt.asUintN(64, v));
    this.length += 8;
  }
  f64(v: number) {
    this.ensure(8);
    this.view.setFloat64(this.length, v);
    this.length += 8;
  }
  raw(b: Uint8Array) {
    this.ensure(align4(b.length));
    this.buf.set(b, this.length);
    this.length += align4(b.length);
  }
  string(s: string) {
    if (s.includes('\0')) throw fail(FORMAT, 'INVALID_ARGUMENT', `nvlist strings cannot hold NUL: ${JSON.stringify(s)}`);
    const b = utf8.encode(s);
    this.u32(b.length);
    this.raw(b);
  }
  setI32(at: number, v: number) {
    this.view.setInt32(at, v);
  }
  bytes() {
    return this.buf.slice(0, this.length);
  }
}

function checkInt(type: SmallInt, v: number, name: string): number {
  const [lo, hi] = RANGES[type];
  if (!Number.isInteger(v) || v < lo || v > hi) throw fail(FORMAT, 'INVALID_ARGUMENT', `${name}: ${v} is not a ${type}`);
  // xdr_char sign-extends a C char (x86, as FreeBSD/amd64 writes it); xdr_short/xdr_int likewise.
  if (type === 'byte' || type === 'uint8') return (v << 24) >> 24;
  return type === 'uint32' || type === 'uint16' ? v >>> 0 : v;
}

function writeList(w: Writer, list: NvList, depth: number): void {
  if (depth > MAX_DEPTH) throw fail(FORMAT, 'INVALID_ARGUMENT', `nvlists nested deeper than ${MAX_DEPTH}`);
  w.i32(list.version);
  w.u32(list.flags);
  for (const p of list.pairs) {
    const start = w.length;
    w.i32(0); // encoded size, patched below
    w.i32(nativePairSize(p));
    w.string(p.name);
    w.i32(NV_TYPES[p.type]);
    switch (p.type) {
      case 'boolean':
        w.i32(0);
        break;
      case 'boolean_value':
        w.i32(1);
        w.i32(p.value ? 1 : 0);
        break;
      case 'byte':
      case 'int8':
      case 'uint8':
      case 'int16':
      case 'uint16':
      case 'int32':
      case 'uint32':
        w.i32(1);
        w.u32(checkInt(p.type, p.value, p.name));
        break;
      case 'int64':
      case 'uint64':
      case 'hrtime':
        w.i32(1);
        w.u64(p.value);
        break;
      case 'double':
        w.i32(1);
        w.f64(p.value);
        break;
      case 'string':
        w.i32(1);
        w.string(p.value);
        break;
      case 'byte_array':
        w.i32(p.value.length);
        w.raw(Uint8Array.from(p.value, (v) => checkInt('byte', v, p.name) & 0xff));
        break;
      case 'int8_array':
      case 'uint8_array':
      case 'int16_array':
      case 'uint16_array':
      case 'int32_array':
      case 'uint32_array': {
        const el = ELEMENT[p.type];
        w.i32(p.value.length);
        w.u32(p.value.length);
        for (const v of p.value) w.u32(checkInt(el, v, p.name));
        break;
      }
      case 'boolean_array':
        w.i32(p.value.length);
        w.u32(p.value.length);
        for (const v of p.value) w.i32(v ? 1 : 0);
        break;
      case 'int64_array':
      case 'uint64_array':
        w.i32(p.value.length);
        w.u32(p.value.length);
        for (const v of p.value) w.u64(v);
        break;
      case 'string_array':
        w.i32(p.value.length);
        for (const s of p.value) w.string(s);
        break;
      case 'nvlist':
        w.i32(1);
        writeList(w, p.value, depth + 1);
        break;
      case 'nvlist_array':
        w.i32(p.value.length);
        for (const l of p.value) writeList(w, l, depth + 1);
        break;
      default:
        throw fail(FORMAT, 'INVALID_ARGUMENT', `unknown nvpair type ${(p as { type: string }).type}`);
    }
    w.setI32(start, w.length - start);
  }
  w.i32(0);
  w.i32(0);
}

/** Pack an nvlist as OpenZFS's nvlist_pack(NV_ENCODE_XDR) does (header says little-endian host). */
export function encodeNvlist(list: NvList): Uint8Array {
  const w = new Writer();
  w.u32((NV_ENCODE_XDR << 24) | (1 << 16));
  writeList(w, list, 0);
  return w.bytes();
}

/* ------------------------------------------------------------------ reader */

class Reader {
  private readonly view: DataView;
  constructor(
    private readonly b: Uint8Array,
    public at: number,
    private readonly end: number,
  ) {
    this.view = view(b);
  }
  get left() {
    return this.end - this.at;
  }
  need(n: number, what: string) {
    if (n > this.left) throw fail(FORMAT, 'TRUNCATED', `${what} needs ${n} bytes at offset ${this.at}, ${this.left} remain`);
  }
  i32(what: string) {
    this.need(4, what);
    const v = this.view.getInt32(this.at);
    this.at += 4;
    return v;
  }
  u32(what: string) {
    this.need(4, what);
    const v = this.view.getUint32(this.at);
    this.at += 4;
    return v;
  }
  u64(what: string) {
    this.need(8, what);
    const v = this.view.getBigUint64(this.at);
    this.at += 8;
    return v;
  }
  f64(what: string) {
    this.need(8, what);
    const v = this.view.getFloat64(this.at);
    this.at += 8;
    return v;
  }
  opaque(n: number, what: string) {
    this.need(align4(n), what);
    const out = this.b.slice(this.at, this.at + n);
    this.at += align4(n);
    return out;
  }
  string(what: string): string {
    const n = this.u32(`${what} length`);
    if (n > this.left) throw fail(FORMAT, 'TOO_LARGE', `${what}: string of ${n} bytes, only ${this.left} remain`);
    const bytes = this.opaque(n, what);
    if (bytes.includes(0)) throw fail(FORMAT, 'BAD_VALUE', `${what}: string holds a NUL byte`);
    try {
      return utf8Strict.decode(bytes);
    } catch {
      throw fail(FORMAT, 'BAD_VALUE', `${what}: string is not valid UTF-8`);
    }
  }
}

function readSmall(type: SmallInt, raw: number, what: string): number {
  // Accept what either char signedness writes (xdr_char stores a C char widened to int).
  if (type === 'byte' || type === 'uint8') {
    if (raw < -0x80 || raw > 0xff) throw fail(FORMAT, 'BAD_VALUE', `${what}: ${raw} is not a ${type}`);
    return raw & 0xff;
  }
  if (type === 'int8') {
    if (raw < -0x80 || raw > 0xff) throw fail(FORMAT, 'BAD_VALUE', `${what}: ${raw} is not an int8`);
    return (raw << 24) >> 24;
  }
  const v = type === 'uint16' || type === 'uint32' ? raw >>> 0 : raw;
  const [lo, hi] = RANGES[type];
  if (v < lo || v > hi) throw fail(FORMAT, 'BAD_VALUE', `${what}: ${v} is not a ${type}`);
  return v;
}

/** xdr_array's count, which must match nelem and fit the remaining bytes. */
function arrayCount(r: Reader, nelem: number, elementBytes: number, what: string): void {
  const count = r.u32(`${what} array count`);
  if (count !== nelem) throw fail(FORMAT, 'BAD_VALUE', `${what}: array count ${count} differs from nelem ${nelem}`);
  if (count * elementBytes > r.left) throw fail(FORMAT, 'TOO_LARGE', `${what}: ${count} elements do not fit in ${r.left} bytes`);
}

function readValue(r: Reader, type: NvType, nelem: number, what: string, depth: number): NvValue {
  const scalar = (expect: number) => {
    if (nelem !== expect) throw fail(FORMAT, 'BAD_VALUE', `${what}: ${type} with ${nelem} elements`);
  };
  // Every element takes at least 4 bytes except in a byte array (1 byte): bound nelem first.
  if (nelem * (type === 'byte_array' ? 1 : 4) > r.left) throw fail(FORMAT, 'TOO_LARGE', `${what}: ${nelem} elements do not fit in ${r.left} bytes`);
  switch (type) {
    case 'boolean':
      scalar(0);
      return { type };
    case 'boolean_value': {
      scalar(1);
      const v = r.i32(what);
      if (v !== 0 && v !== 1) throw fail(FORMAT, 'BAD_VALUE', `${what}: boolean_value ${v}`);
      return { type, value: v === 1 };
    }
    case 'byte':
    case 'int8':
    case 'uint8':
    case 'int16':
    case 'uint16':
    case 'int32':
    case 'uint32':
      scalar(1);
      return { type, value: readSmall(type, r.i32(what), what) };
    case 'int64':
      scalar(1);
      return { type, value: BigInt.asIntN(64, r.u64(what)) };
    case 'uint64':
    case 'hrtime':
      scalar(1);
      return { type, value: type === 'hrtime' ? BigInt.asIntN(64, r.u64(what)) : r.u64(what) };
    case 'double':
      scalar(1);
      return { type, value: r.f64(what) };
    case 'string':
      scalar(1);
      return { type, value: r.string(what) };
    case 'byte_array':
      return { type, value: Array.from(r.opaque(nelem, what)) };
    case 'int8_array':
    case 'uint8_array':
    case 'int16_array':
    case 'uint16_array':
    case 'int32_array':
    case 'uint32_array': {
      arrayCount(r, nelem, 4, what);
      const el = ELEMENT[type];
      return { type, value: Array.from({ length: nelem }, () => readSmall(el, r.i32(what), what)) };
    }
    case 'boolean_array': {
      arrayCount(r, nelem, 4, what);
      return {
        type,
        value: Array.from({ length: nelem }, () => {
          const v = r.i32(what);
          if (v !== 0 && v !== 1) throw fail(FORMAT, 'BAD_VALUE', `${what}: boolean ${v}`);
          return v === 1;
        }),
      };
    }
    case 'int64_array':
    case 'uint64_array': {
      arrayCount(r, nelem, 8, what);
      return { type, value: Array.from({ length: nelem }, () => (type === 'int64_array' ? BigInt.asIntN(64, r.u64(what)) : r.u64(what))) };
    }
    case 'string_array':
      return { type, value: Array.from({ length: nelem }, () => r.string(what)) };
    case 'nvlist':
      scalar(1);
      return { type, value: readList(r, depth + 1) };
    case 'nvlist_array': {
      // Each embedded list is at least 16 bytes (version, flags, terminator).
      if (nelem * 16 > r.left) throw fail(FORMAT, 'TOO_LARGE', `${what}: ${nelem} nvlists do not fit in ${r.left} bytes`);
      return { type, value: Array.from({ length: nelem }, () => readList(r, depth + 1)) };
    }
  }
}

function readList(r: Reader, depth: number): NvList {
  if (depth > MAX_DEPTH) throw fail(FORMAT, 'TOO_LARGE', `nvlists nested deeper than ${MAX_DEPTH}`);
  const version = r.i32('nvl_version');
  const flags = r.u32('nvl_nvflag');
  const pairs: NvPair[] = [];
  for (;;) {
    const start = r.at;
    const encoded = r.i32('encoded size');
    const decoded = r.i32('decoded size');
    if (encoded === 0 && decoded === 0) break;
    // 5 words at least: the two sizes, the name length, the type and nelem.
    if (encoded < 20 || encoded > r.left + 8 || encoded % 4 !== 0)
      throw fail(FORMAT, 'BAD_VALUE', `nvpair at ${start}: encoded size ${encoded} with ${r.left + 8} bytes left`);
    if (decoded < 24) throw fail(FORMAT, 'BAD_VALUE', `nvpair at ${start}: decoded size ${decoded}`);
    const name = r.string(`nvpair name at ${start}`);
    const typeNo = r.i32(`type of ${name}`);
    const type = TYPE_NAMES.get(typeNo);
    if (!type) throw fail(FORMAT, 'BAD_VALUE', `nvpair "${name}": unknown data type ${typeNo}`);
    const nelem = r.i32(`nelem of ${name}`);
    if (nelem < 0) throw fail(FORMAT, 'BAD_VALUE', `nvpair "${name}": negative element count ${nelem}`);
    const pair = { name, ...readValue(r, type, nelem, `nvpair "${name}"`, depth) } as NvPair;
    if (r.at - start !== encoded) {
      throw fail(FORMAT, 'BAD_VALUE', `nvpair "${name}": encoded size ${encoded} but its value ends after ${r.at - start} bytes`);
    }
    if (decoded < nativePairSize(pair)) throw fail(FORMAT, 'BAD_VALUE', `nvpair "${name}": decoded size ${decoded} is smaller than its value`);
    pairs.push(pair);
  }
  return { version, flags, pairs };
}

/**
 * Unpack an XDR nvlist. Bytes after the terminator are ignored (label and boot environment
 * blocks are zero-padded); `end` limits how far the list may reach.
 */
export function decodeNvlist(bytes: Uint8Array, end = bytes.length): NvList {
  if (end > bytes.length) end = bytes.length;
  if (end < 4) throw fail(FORMAT, 'TRUNCATED', 'an nvlist needs a 4-byte header');
  if (bytes[0] !== NV_ENCODE_XDR) throw fail(FORMAT, 'BAD_MAGIC', `nvlist encoding ${bytes[0]} is not XDR (1)`);
  if (bytes[1] > 1) throw fail(FORMAT, 'BAD_VALUE', `nvlist endian byte ${bytes[1]}`);
  return readList(new Reader(bytes, 4, end), 0);
}

/* ------------------------------------------------------------------ helpers */

export function nvlist(pairs: NvPair[] = [], flags = NV_UNIQUE_NAME): NvList {
  return { version: 0, flags, pairs };
}

export function nvFind(list: NvList, name: string): NvPair | undefined {
  return list.pairs.find((p) => p.name === name);
}

export function nvUint64(list: NvList, name: string): bigint | undefined {
  const p = nvFind(list, name);
  return p?.type === 'uint64' ? p.value : undefined;
}

export function nvString(list: NvList, name: string): string | undefined {
  const p = nvFind(list, name);
  return p?.type === 'string' ? p.value : undefined;
}

export function nvChild(list: NvList, name: string): NvList | undefined {
  const p = nvFind(list, name);
  return p?.type === 'nvlist' ? p.value : undefined;
}

/** nvlist_add_* on a unique-name list: any pair of that name goes, the new one is appended. */
export function nvAdd(list: NvList, pair: NvPair): NvList {
  return { ...list, pairs: [...list.pairs.filter((p) => p.name !== pair.name), pair] };
}

export function nvRemove(list: NvList, name: string): NvList {
  return { ...list, pairs: list.pairs.filter((p) => p.name !== name) };
}

/** A plain JSON-able view: bigints as decimal strings, lists as objects (later names win). */
export function nvToJson(list: NvList): Record<string, unknown> {
  const conv = (p: NvPair): unknown => {
    switch (p.type) {
      case 'boolean':
        return true;
      case 'nvlist':
        return nvToJson(p.value);
      case 'nvlist_array':
        return p.value.map(nvToJson);
      case 'int64':
      case 'uint64':
      case 'hrtime':
        return p.value.toString();
      case 'int64_array':
      case 'uint64_array':
        return p.value.map(String);
      default:
        return p.value;
    }
  };
  return Object.fromEntries(list.pairs.map((p) => [p.name, conv(p)]));
}
