/**
 * SOURCE_DATE_EPOCH (https://reproducible-builds.org/specs/source-date-epoch/): the one parser
 * every time stamp diskmint writes by default goes through (VHD footers, FAT entries, bundle
 * creation times). Unset or empty: undefined, and the caller uses its own default. Set: a
 * whole number of seconds since 1970, else a BAD_ARGUMENT error naming the variable and value
 * (a typo must not silently give a different, still "reproducible", output).
 */
import { DiskmintError } from './errors.js';

export function sourceDateEpoch(env: Readonly<Record<string, string | undefined>> = process.env): number | undefined {
  const v = env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) {
    throw new DiskmintError('BAD_ARGUMENT', `SOURCE_DATE_EPOCH=${v} is not a whole number of seconds`);
  }
  return Number(v);
}
