/**
 * Per-partition resolution: type names to scheme values, attributes, labels, contents files.
 * Each problem becomes a LayoutProblem naming the JSON path, collected before anything is written.
 */
import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { gptTypeGuid } from '../../formats/schemes/gpt-types.js';
import { encodeGptAttributes } from '../../formats/schemes/gpt-attributes.js';
import { mbrTypeByte } from '../../formats/schemes/mbr-types.js';
import { BSD_FSTYPES } from '../../formats/schemes/bsd.js';
import { FormatError } from '../../formats/common/errors.js';
import type { Layout, PartitionSpec } from './schema.js';

export class LayoutProblems {
  readonly list: string[] = [];
  add(path: string, message: string): void {
    this.list.push(`${path}: ${message}`);
  }
}

export interface ResolvedType {
  gptType?: string;
  mbrType?: number;
  bsdFstype?: number;
}

export function resolveType(scheme: Layout['scheme'], p: PartitionSpec, path: string, problems: LayoutProblems): ResolvedType {
  const shown = JSON.stringify(p.type);
  if (scheme === 'gpt') {
    const gptType = gptTypeGuid(p.type);
    if (!gptType) problems.add(`${path}.type`, `${shown} is not a GPT type (use a name such as freebsd-ufs, efi, linux-data, or a GUID)`);
    return { gptType };
  }
  if (scheme === 'mbr' || scheme === 'ebr') {
    const mbrType = mbrTypeByte(p.type);
    if (mbrType === undefined || mbrType === 0) problems.add(`${path}.type`, `${shown} is not an MBR type (use a name such as freebsd, efi, fat32-lba, linux, or a byte like 0xa5)`);
    return { mbrType };
  }
  const key = Object.keys(BSD_FSTYPES).find((k) => k.toLowerCase() === p.type.toLowerCase());
  const raw = /^(?:0x[0-9a-f]+|[0-9]+)$/i.test(p.type) ? Number(p.type) : undefined;
  const bsdFstype = key !== undefined ? BSD_FSTYPES[key] : raw !== undefined && raw <= 255 ? raw : undefined;
  if (bsdFstype === undefined) problems.add(`${path}.type`, `${shown} is not a BSD fstype (use 4.2BSD, swap, ZFS, unused or a number)`);
  return { bsdFstype };
}

/** Fields that only some schemes have. */
export function checkSchemeFields(scheme: Layout['scheme'], p: PartitionSpec, path: string, problems: LayoutProblems): void {
  const gptOnly: Array<keyof PartitionSpec> = ['label', 'uuid', 'attributes'];
  if (scheme !== 'gpt') {
    for (const k of gptOnly) if (p[k] !== undefined) problems.add(`${path}.${k}`, `${scheme.toUpperCase()} partitions have no ${k}; only GPT does`);
  }
  if (scheme !== 'mbr') {
    for (const k of ['active', 'logical'] as const) if (p[k] !== undefined) problems.add(`${path}.${k}`, `only MBR partitions have "${k}"`);
  }
  if (scheme === 'gpt' && p.label !== undefined && p.label.length > 36) {
    problems.add(`${path}.label`, `${JSON.stringify(p.label)} is ${p.label.length} UTF-16 code units; a GPT name holds at most 36`);
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
