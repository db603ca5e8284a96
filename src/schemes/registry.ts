/** The partition schemes diskmint reads and writes: one line each. Probing follows `probeOrder`. */
import { DiskmintError } from '../model/errors.js';
import type { SchemeHandler, SchemeName } from './handler.js';
import { gptHandler } from './gpt/index.js';
import { mbrHandler } from './mbr/index.js';
import { bsdHandler } from './bsd/index.js';
import { ebrHandler } from './ebr/index.js';

/** In the order messages list them. */
export const SCHEME_HANDLERS: readonly SchemeHandler[] = [gptHandler, mbrHandler, bsdHandler, ebrHandler];

/** The order tables are looked for on a disk: a GPT's protective MBR and a bare EBR chain's first EBR also read as an MBR. */
export const PROBE_ORDER: readonly SchemeHandler[] = [...SCHEME_HANDLERS].sort((a, b) => a.probeOrder - b.probeOrder);

export const SCHEME_NAMES: readonly SchemeName[] = SCHEME_HANDLERS.map((h) => h.name);

export function findScheme(name: string): SchemeHandler | undefined {
  return SCHEME_HANDLERS.find((h) => h.name === name);
}

/** The handler of a scheme the types say exists (a layout's, a probed table's). */
export function schemeHandler(name: SchemeName): SchemeHandler {
  const h = findScheme(name);
  if (!h) throw new DiskmintError('BAD_ARGUMENT', `unknown partition scheme "${name}"`);
  return h;
}
