/**
 * The layout file: JSON validated with zod. `layoutJsonSchema()` publishes the same rules as
 * JSON Schema for editors (`diskmint schema`). Every error names its JSON path and value.
 */
import * as z from 'zod';
import { DiskmintError } from '../model/errors.js';
import { SIZE_HINT, SIZE_PATTERN } from '../model/size.js';

const size = z.union([z.number().int().nonnegative(), z.string().regex(new RegExp(SIZE_PATTERN))]);
const guid = z.string().regex(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/);

const fileContents = z.strictObject({ file: z.string().min(1).describe('Path relative to the layout file') });
const zeroContents = z.strictObject({ zero: z.literal(true).describe('Fill the partition with zeros') });
const fatContents = z.strictObject({
  fat: z.strictObject({
    from: z.string().min(1).optional().describe('Folder whose tree the volume holds, relative to the layout file (omitted: an empty volume)'),
    type: z
      .union([z.enum(['auto', '12', '16', '32']), z.literal(12), z.literal(16), z.literal(32)])
      .optional()
      .describe('FAT type; auto chooses by size as mkfs.fat does'),
    label: z.string().max(11).optional().describe('Volume label, up to 11 characters'),
    keepTimes: z.boolean().optional().describe("Stamp entries with the files' own times instead of SOURCE_DATE_EPOCH / the FAT epoch"),
  }),
});

const ufsContents = z.strictObject({
  ufs: z.strictObject({
    from: z
      .union([z.string().min(1), z.array(z.string().min(1))])
      .optional()
      .describe(
        'Folders, tarballs (tar, tar.gz, tar.xz, tar.zst, tar.bz2: owners, modes and flags from the archive) or mtree:SPEC[@FOLDER] (METALOG), layered in order, relative to the layout file (omitted: an empty file system)',
      ),
    label: z.string().optional().describe('Volume label, fs_volname (/dev/ufs/LABEL), up to 31 bytes'),
    size: size.optional().describe('File system size (default: the whole partition)'),
    blockSize: z.number().int().optional().describe('Block size, 4096 to 32768 (default 32768)'),
    fragSize: z.number().int().optional().describe('Fragment size, block size / 8 to block size (default 4096)'),
    softupdates: z.boolean().optional().describe('Enable soft updates (default off, as makefs)'),
  }),
});

export const PartitionSchema = z.strictObject({
  type: z.string().min(1).describe('gpart-style type name (freebsd-ufs, efi, ...), a GPT GUID, an MBR type byte (0xa5) or BSD fstype'),
  label: z.string().optional().describe('GPT partition name (up to 36 UTF-16 code units)'),
  size: size.optional().describe('Size, `rest`, a percentage; omitted = size of the contents'),
  offset: size.optional().describe('Start, from the start of the disk or slice'),
  uuid: guid.optional().describe('GPT unique partition GUID; default derives from the seed'),
  attributes: z
    .array(z.union([z.string(), z.number().int().min(0).max(63)]))
    .optional()
    .describe('GPT attributes: names (bootme, bootonce, bootfailed, required, no-block-io, legacy-bios-bootable), bit numbers or 0x hex'),
  active: z.boolean().optional().describe('MBR active (bootable) flag'),
  logical: z.boolean().optional().describe('MBR: place inside the extended partition'),
  get contents() {
    return z.union([fileContents, zeroContents, z.strictObject({ image: LayoutSchema }), fatContents, ufsContents]).optional();
  },
});

export const LayoutSchema = z.strictObject({
  $schema: z.string().optional(),
  scheme: z
    .enum(['gpt', 'mbr', 'bsd', 'ebr'])
    .describe('Partition table: gpt, mbr, bsd (disklabel), or ebr (a bare EBR chain, the contents of an extended partition, as mkimg -s ebr)'),
  size: size.optional().describe('Disk size, or `auto` (default) for just enough'),
  sectorSize: z.union([z.literal(512), z.literal(4096)]).optional(),
  align: size.optional().describe('Partition alignment (default 1M; 4K inside a BSD label)'),
  seed: z.union([z.string(), z.number()]).optional().describe('Seed for GUIDs and signatures'),
  bootcode: z
    .string()
    .optional()
    .describe(
      'Boot code file: MBR boot area (<= 446 of 512 bytes) or BSD boot area (<= 8 KiB); or "diskmint-fallback" (GPT): diskmint\'s boot-stage selector, with a 64 KiB BIOS-boot partition "selector" added',
    ),
  entries: z.number().int().min(1).max(4096).optional().describe('GPT entry array size (default 128)'),
  diskGuid: guid.optional(),
  diskSignature: z.union([z.number().int().min(0).max(0xffffffff), z.string().regex(/^0x[0-9a-fA-F]{1,8}$/)]).optional(),
  geometry: z.strictObject({ heads: z.number().int().min(1).max(255), sectors: z.number().int().min(1).max(63) }).optional(),
  get partitions() {
    return z.array(PartitionSchema);
  },
});

export type PartitionSpec = z.infer<typeof PartitionSchema>;
export type Layout = z.infer<typeof LayoutSchema>;

/** JSON Schema (draft 2020-12) for layout files. */
export function layoutJsonSchema(): object {
  return { title: 'diskmint layout', ...z.toJSONSchema(LayoutSchema, { io: 'input' }) };
}

/** `partitions[3].contents.file` */
export function formatJsonPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : out ? `.${String(key)}` : String(key);
  return out || '(root)';
}

function valueAt(root: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v: unknown = root;
  for (const key of path) v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[key] : undefined;
  return v;
}

const SIZE_KEYS = new Set(['size', 'offset', 'align']);

/** Validate parsed JSON as a layout; throws DiskmintError('LAYOUT') listing every problem. */
export function parseLayout(json: unknown): Layout {
  const tooDeep = pathDeeperThan(json, MAX_LAYOUT_DEPTH);
  if (tooDeep) {
    const problem = `${formatJsonPath(tooDeep)}: nested more than ${MAX_LAYOUT_DEPTH} levels deep; no layout needs that many`;
    throw new DiskmintError('LAYOUT', problem, [problem]);
  }
  const result = LayoutSchema.safeParse(json);
  if (result.success) return result.data;
  const problems = result.error.issues.flatMap((issue) => describeIssue(json, issue));
  throw new DiskmintError('LAYOUT', problems.join('\n'), [...new Set(problems)]);
}

const CONTENT_KINDS = ['file', 'zero', 'image', 'fat', 'ufs'];

/** Deeper JSON than this is refused before validation (recursion in zod and in messages). */
const MAX_LAYOUT_DEPTH = 64;

/** The path of a value nested deeper than `limit` arrays and objects, found without recursion. */
function pathDeeperThan(root: unknown, limit: number): PropertyKey[] | undefined {
  const stack: Array<{ value: unknown; path: PropertyKey[] }> = [{ value: root, path: [] }];
  while (stack.length) {
    const { value, path } = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    if (path.length >= limit) return path;
    for (const [key, child] of Object.entries(value)) stack.push({ value: child, path: [...path, Array.isArray(value) ? Number(key) : key] });
  }
  return undefined;
}

/** A value as JSON for a message, cut short: two levels, five items, 60 characters of a string. */
function showValue(value: unknown, depth = 0): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (value === null || typeof value !== 'object') return String(JSON.stringify(value) ?? value);
  const entries = Object.entries(value);
  const [open, close] = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
  if (entries.length === 0) return `${open}${close}`;
  if (depth >= 2) return `${open}...${close}`;
  const shown = entries.slice(0, 5).map(([k, v]) => (Array.isArray(value) ? '' : `${JSON.stringify(k)}:`) + showValue(v, depth + 1));
  if (entries.length > 5) shown.push('...');
  return `${open}${shown.join(',')}${close}`;
}

function describeIssue(root: unknown, issue: z.core.$ZodIssue, prefix: readonly PropertyKey[] = []): string[] {
  if (prefix.length) issue = { ...issue, path: [...prefix, ...issue.path] };
  const value = valueAt(root, issue.path);
  // A contents union: report the problems of the branch the user meant (by its key).
  if (issue.code === 'invalid_union' && value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    const branch = keys.length === 1 ? CONTENT_KINDS.indexOf(keys[0]) : -1;
    if (branch >= 0 && issue.errors[branch]?.length) {
      return issue.errors[branch].flatMap((inner) => describeIssue(root, inner, issue.path));
    }
  }
  return [describeLeafIssue(issue, value)];
}

function describeLeafIssue(issue: z.core.$ZodIssue, value: unknown): string {
  const path = formatJsonPath(issue.path);
  const shown = value === undefined ? 'missing' : showValue(value);
  const last = issue.path[issue.path.length - 1];
  if (typeof last === 'string' && SIZE_KEYS.has(last) && value !== undefined) {
    return `${path}: ${shown} is not a size (${SIZE_HINT})`;
  }
  if (issue.code === 'unrecognized_keys') {
    return `${path}: unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  }
  if (last === 'contents' && issue.code === 'invalid_union') {
    return `${path}: ${shown} is not valid contents (use {"file": "path"}, {"zero": true}, {"image": {...}}, {"fat": {"from": "dir/"}} or {"ufs": {"from": ["dir/"]}})`;
  }
  return `${path}: ${shown} ${value === undefined ? '(required)' : `is invalid: ${issue.message}`}`;
}
