/**
 * Sizes as layouts spell them: bytes (`4096`), binary units (`512K`, `1M`, `1G`, `2T`, also
 * `KiB`...), sectors (`2048s`), a share of the disk (`25%`) or `rest`.
 */
export type SizeSpec =
  { kind: 'bytes'; bytes: number } | { kind: 'sectors'; sectors: number } | { kind: 'percent'; percent: number } | { kind: 'rest' } | { kind: 'auto' };

export const SIZE_PATTERN = '^(?:[0-9]+(?:\\.[0-9]+)?\\s*(?:[kKmMgGtTpP](?:i?[bB])?|[bB]|[sS])?|[0-9]+(?:\\.[0-9]+)?%|rest|auto)$';
export const SIZE_HINT = 'use e.g. 512K, 1G, 2T, 2048s, 100%, rest';

const UNIT_SHIFT: Record<string, number> = { '': 0, b: 0, k: 10, m: 20, g: 30, t: 40, p: 50 };

/** Parse a size; returns undefined when the text is not a size. */
export function parseSizeSpec(value: string | number): SizeSpec | undefined {
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && value >= 0 ? { kind: 'bytes', bytes: value } : undefined;
  }
  const text = value.trim();
  if (text === 'rest') return { kind: 'rest' };
  if (text === 'auto') return { kind: 'auto' };
  const pct = /^([0-9]+(?:\.[0-9]+)?)%$/.exec(text);
  if (pct) {
    const percent = Number(pct[1]);
    return percent > 0 && percent <= 100 ? { kind: 'percent', percent } : undefined;
  }
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([kKmMgGtTpP](?:i?[bB])?|[bB]|[sS])?$/.exec(text);
  if (!m) return undefined;
  const unit = (m[2] ?? '').toLowerCase();
  if (unit === 's') {
    const sectors = Number(m[1]);
    return Number.isSafeInteger(sectors) ? { kind: 'sectors', sectors } : undefined;
  }
  const bytes = Number(m[1]) * 2 ** UNIT_SHIFT[unit[0] ?? ''];
  return Number.isSafeInteger(bytes) ? { kind: 'bytes', bytes } : undefined;
}

/**
 * A size in bytes (`65536`, `64K`, `2M`, `1MiB`, `0.5M`), as parseSizeSpec reads it: not
 * sectors, a share or `rest`. The one grammar for byte sizes in options (qcow2's cluster_size,
 * VHDX's block_size and log_size, fat create's --size).
 */
export function parseByteSize(value: string | number): number | undefined {
  const spec = parseSizeSpec(value);
  return spec?.kind === 'bytes' ? spec.bytes : undefined;
}

/** Human form of a byte count: `512 KiB`, `1.5 GiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const text = i === 0 || Number.isInteger(v) ? String(v) : v.toFixed(v < 10 ? 2 : 1).replace(/\.?0+$/, '');
  return `${text} ${units[i]}`;
}
