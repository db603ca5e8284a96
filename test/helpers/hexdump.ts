/**
 * `hexdump -C` text of bytes and back, as FreeBSD mkimg's goldens are stored: 16 bytes a line,
 * a line repeating the one before it written once as `*`, the length on the last line.
 * fixtures/mkimg/hex2bin.py decodes these too.
 */

const hex2 = (b: number) => b.toString(16).padStart(2, '0');
const hex8 = (n: number) => n.toString(16).padStart(8, '0');

export function hexdumpC(bytes: Uint8Array): string {
  const lines: string[] = [];
  let previous: Uint8Array | undefined;
  let starred = false;
  for (let at = 0; at < bytes.length; at += 16) {
    const row = bytes.subarray(at, Math.min(at + 16, bytes.length));
    if (previous && row.length === 16 && sameBytes(row, previous)) {
      if (!starred) lines.push('*');
      starred = true;
      continue;
    }
    starred = false;
    previous = row;
    let hex = '';
    for (let i = 0; i < 16; i++) hex += (i === 8 ? ' ' : '') + (i < row.length ? ` ${hex2(row[i])}` : '   ');
    let text = '';
    for (const b of row) text += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.';
    lines.push(`${hex8(at)} ${hex}  |${text}|`);
  }
  if (bytes.length) lines.push(hex8(bytes.length));
  return lines.length ? lines.join('\n') + '\n' : '';
}

/** The bytes a `hexdump -C` text stands for. */
export function parseHexdumpC(text: string): Uint8Array {
  const lines = text.split('\n').filter((l) => l !== '');
  if (!lines.length) return new Uint8Array(0);
  const size = parseInt(lines[lines.length - 1], 16);
  const out = new Uint8Array(size);
  let last: { at: number; row: number[] } | undefined;
  let starFrom = -1;
  for (const line of lines.slice(0, -1)) {
    if (line === '*') {
      starFrom = last ? last.at + 16 : 0;
      continue;
    }
    const at = parseInt(line.slice(0, 8), 16);
    const row = line
      .slice(8, 58)
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map((h) => parseInt(h, 16));
    if (starFrom >= 0 && last) for (let p = starFrom; p < at; p += 16) out.set(last.row, p);
    starFrom = -1;
    out.set(row, at);
    last = { at, row };
  }
  if (starFrom >= 0 && last) for (let p = starFrom; p < size; p += 16) out.set(last.row.slice(0, size - p), p);
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
