/**
 * The one JSON printer of every `--json` output: two-space indented, one trailing newline, and
 * 64-bit values (bigints: GPT attributes, ZFS guids and txgs) as decimal strings, as zdb
 * prints them and as `BigInt(text)` reads them back.
 */
import { printOut } from './output.js';

/** JSON text of `value`, bigints as decimal strings. */
export function toJson(value: unknown): string {
  return `${JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`;
}

/** Print `value` as JSON (to standard output unless `print` says otherwise). */
export function printJson(value: unknown, print: (text: string) => void = printOut): void {
  print(toJson(value));
}
