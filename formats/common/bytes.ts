/**
 * Byte helpers every codec shares: fixed-width integers (little- and big-endian, on a
 * Uint8Array or a DataView), ASCII/Latin-1 and UTF-16LE text in fixed fields, zero checks.
 * Plain Uint8Array and DataView only, so it runs in a browser.
 */

/** A DataView over exactly the bytes of `b` (a subarray's own window, not its whole buffer). */
export function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

export function u16le(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8);
}

export function u32le(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

export function u16be(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}

export function u32be(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

export function putU16le(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
}

export function putU32le(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = (v >>> 16) & 0xff;
  b[at + 3] = (v >>> 24) & 0xff;
}

export function putU16be(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

export function putU32be(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 24) & 0xff;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}

/**
 * A u64 as a JS number: exact up to 2^53 - 1; past it imprecise but still huge, so bounds
 * checks on it still fail. Use safeU64 where a value past 2^53 must be refused.
 */
export function u64(dv: DataView, at: number, littleEndian: boolean): number {
  const lo = dv.getUint32(littleEndian ? at : at + 4, littleEndian);
  const hi = dv.getUint32(littleEndian ? at + 4 : at, littleEndian);
  return hi * 2 ** 32 + lo;
}

/** A u64 as a JS number, or undefined when it passes Number.MAX_SAFE_INTEGER (2^53 - 1). */
export function safeU64(dv: DataView, at: number, littleEndian: boolean): number | undefined {
  const hi = dv.getUint32(littleEndian ? at + 4 : at, littleEndian);
  return hi >= 0x200000 ? undefined : u64(dv, at, littleEndian);
}

/** Store a non-negative integer below 2^64 as a u64 (two u32 halves, no BigInt). */
export function putU64(dv: DataView, at: number, v: number, littleEndian: boolean): void {
  const lo = v % 2 ** 32;
  const hi = Math.floor(v / 2 ** 32);
  dv.setUint32(littleEndian ? at : at + 4, lo, littleEndian);
  dv.setUint32(littleEndian ? at + 4 : at, hi, littleEndian);
}

/** `n` bytes from `at` as Latin-1 text (one character per byte, NULs included). */
export function latin1(b: Uint8Array, at: number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i += 8192) s += String.fromCharCode(...b.subarray(at + i, at + Math.min(n, i + 8192)));
  return s;
}

/** Latin-1 text of a NUL-terminated field of at most `n` bytes (the NUL and what follows dropped). */
export function latin1Z(b: Uint8Array, at: number, n: number): string {
  let s = '';
  for (let i = 0; i < n && at + i < b.length; i++) {
    if (b[at + i] === 0) break;
    s += String.fromCharCode(b[at + i]);
  }
  return s;
}

/**
 * Write `text` one byte per character (the low 8 bits). With `width`, the field is that many
 * bytes: text past it is cut, the rest filled with `pad`; without it, just the text's bytes.
 */
export function putLatin1(out: Uint8Array, at: number, text: string, width = text.length, pad = 0): void {
  for (let i = 0; i < width; i++) out[at + i] = i < text.length ? text.charCodeAt(i) & 0xff : pad;
}

/** True when the bytes at `at` spell `text` (one byte per character). */
export function hasLatin1(b: Uint8Array, at: number, text: string): boolean {
  if (b.length < at + text.length) return false;
  for (let i = 0; i < text.length; i++) if (b[at + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** UTF-16LE text of at most `maxUnits` code units from `at`, up to the first 0 unit (unpaired surrogates kept). */
export function utf16le(b: Uint8Array, at: number, maxUnits: number): string {
  let s = '';
  for (let i = 0; i < maxUnits && at + 2 * i + 1 < b.length; i++) {
    const unit = b[at + 2 * i] | (b[at + 2 * i + 1] << 8);
    if (unit === 0) break;
    s += String.fromCharCode(unit);
  }
  return s;
}

/** Write each UTF-16 code unit of `text` little-endian from `at` (no terminator). */
export function putUtf16le(out: Uint8Array, at: number, text: string): void {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    out[at + 2 * i] = unit & 0xff;
    out[at + 2 * i + 1] = unit >>> 8;
  }
}

/** True when `length` bytes from `at` are all zero (a range past the end counts only what exists). */
export function isZero(b: Uint8Array, at = 0, length = b.length - at): boolean {
  const end = Math.min(b.length, at + length);
  for (let i = at; i < end; i++) if (b[i] !== 0) return false;
  return true;
}

/** True when `a` and `b` hold the same bytes. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** `parts` end to end in one new array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
