/**
 * Per-partition resolution: type names to scheme values, attributes, labels, contents files.
 * Each problem becomes a LayoutProblem naming the JSON path, collected before anything is written.
 */
import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { encodeGptAttributes } from '../../formats/schemes/gpt-attributes.js';
import { FormatError } from '../../formats/common/errors.js';
import type { ResolvedType, SchemeCapabilities } from '../schemes/handler.js';
import { SCHEME_HANDLERS, schemeHandler } from '../schemes/registry.js';
import { listWords } from '../schemes/sectors.js';
import type { Layout, PartitionSpec } from './schema.js';

export type { ResolvedType };

export class LayoutProblems {
  readonly list: string[] = [];
  add(path: string, message: string): void {
    this.list.push(`${path}: ${message}`);
  }
}

export function resolveType(scheme: Layout['scheme'], p: PartitionSpec, path: string, problems: LayoutProblems): ResolvedType {
  const { value, problem } = schemeHandler(scheme).resolveType(p.type);
  if (problem) problems.add(`${path}.type`, `${JSON.stringify(p.type)} ${problem}`);
  return value;
}

/** Which capability each scheme-specific partition field needs. */
const FIELD_CAPABILITIES: Array<[keyof PartitionSpec, (c: SchemeCapabilities) => boolean]> = [
  ['label', (c) => c.labels !== undefined],
  ['uuid', (c) => c.guids],
  ['attributes', (c) => c.attributes],
  ['active', (c) => c.activeFlag],
  ['logical', (c) => c.logicals === 'marked'],
];

/** The schemes that have a field, as messages name them: `GPT`, `MBR`. */
function schemesWith(has: (c: SchemeCapabilities) => boolean): string {
  return listWords(SCHEME_HANDLERS.filter((h) => has(h.capabilities)).map((h) => h.name.toUpperCase()));
}

/** Fields that only some schemes have. */
export function checkSchemeFields(scheme: Layout['scheme'], p: PartitionSpec, path: string, problems: LayoutProblems): void {
  const caps = schemeHandler(scheme).capabilities;
  for (const [k, has] of FIELD_CAPABILITIES.slice(0, 3)) {
    if (!has(caps) && p[k] !== undefined) problems.add(`${path}.${k}`, `${scheme.toUpperCase()} partitions have no ${k}; only ${schemesWith(has)} does`);
  }
  for (const [k, has] of FIELD_CAPABILITIES.slice(3)) {
    if (!has(caps) && p[k] !== undefined) problems.add(`${path}.${k}`, `only ${schemesWith(has)} partitions have "${k}"`);
  }
  const max = caps.labels?.maxLength;
  if (max !== undefined && p.label !== undefined && p.label.length > max) {
    problems.add(`${path}.label`, `${JSON.stringify(p.label)} is ${p.label.length} UTF-16 code units; a ${scheme.toUpperCase()} name holds at most ${max}`);
  }
}

export function resolveAttributes(p: PartitionSpec, path: string, problems: LayoutProblems): bigint {
  if (!p.attributes) return 0n;
  try {
    return encodeGptAttributes(p.attributes);
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    problems.add(`${path}.attributes`, err.message);
    return 0n;
  }
}

/** Absolute path and size of a contents file, or a problem naming the path. */
export async function resolveContentsFile(
  file: string,
  baseDir: string,
  path: string,
  problems: LayoutProblems,
): Promise<{ path: string; size: number } | undefined> {
  const abs = isAbsolute(file) ? file : resolve(baseDir, file);
  try {
    const st = await stat(abs);
    if (!st.isFile()) {
      problems.add(`${path}.contents.file`, `${JSON.stringify(file)} is not a regular file (${abs})`);
      return undefined;
    }
    return { path: abs, size: st.size };
  } catch {
    problems.add(`${path}.contents.file`, `${JSON.stringify(file)} not found (looked for ${abs})`);
    return undefined;
  }
}
