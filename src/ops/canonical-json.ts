/**
 * Canonical JSON, the exact bytes a signature covers (manifests here, bundles in bundle/): the
 * subset of RFC 8785 JCS that manifests use. UTF-8; no whitespace; object keys sorted by UTF-16
 * code units (JavaScript's default sort, as JCS does); strings as JSON.stringify writes them;
 * numbers are safe integers only (no floats, no exponents); booleans, null, arrays in their
 * given order; no undefined members.
 */
import { DiskmintError } from '../model/errors.js';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** The canonical JSON text of a value (see the file comment); throws on anything outside the subset. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new DiskmintError('BAD_ARGUMENT', `canonical JSON holds safe integers only, not ${value}`);
    return String(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  throw new DiskmintError('BAD_ARGUMENT', `canonical JSON cannot hold a ${typeof value}`);
}

export const canonicalBytes = (value: unknown): Uint8Array => new TextEncoder().encode(canonicalJson(value));
