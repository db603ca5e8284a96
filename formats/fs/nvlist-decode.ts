/** Decoding an XDR-packed nvlist, every length and count bounded by the bytes that remain (nvlist-types.ts describes the layout). */
import { view } from '../common/bytes.js';
import { fail } from '../common/errors.js';
import { nativePairSize } from './nvlist-encode.js';
import {
  FORMAT,
  MAX_DEPTH,
  TYPE_NAMES,
  RANGES,
  ELEMENT,
  utf8Strict,
  align4,
  NV_ENCODE_XDR,
  type NvType,
  type NvValue,
  type NvPair,
  type NvList,
  type SmallInt,
} from './nvlist-types.js';

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
