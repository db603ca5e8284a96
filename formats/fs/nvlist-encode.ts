/** Encoding an nvlist as OpenZFS's XDR packing does (nvlist-types.ts describes the layout). */
import { fail } from '../common/errors.js';
import {
  FORMAT,
  MAX_DEPTH,
  RANGES,
  ELEMENT,
  NATIVE_SIZE,
  utf8,
  align4,
  align8,
  byteLength,
  NV_ENCODE_XDR,
  NV_TYPES,
  type NvPair,
  type NvList,
  type SmallInt,
} from './nvlist-types.js';

/** NVP_SIZE_CALC: the native nvpair_t (16 bytes) + name + NUL, then the value, each 8-aligned. */
export function nativePairSize(p: NvPair): number {
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
