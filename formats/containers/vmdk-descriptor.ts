/**
 * The VMDK text descriptor (VMware "Virtual Disk Format 1.1", section "The Descriptor File"):
 * header keys (version, CID, parentCID, createType, parentFileNameHint), extent lines
 * (`RW <sectors> <type> "<file>" [<offset>]`) and the disk database (`ddb.key = "value"`).
 */
import { latin1 } from '../common/bytes.js';
import { fail } from '../common/errors.js';

/** Descriptors are small text files; anything bigger is refused before parsing. */
export const MAX_DESCRIPTOR_BYTES = 1 << 20;
export const MAX_EXTENTS = 4096;
/** parentCID value meaning "no parent" (spec: CID_NOPARENT). */
export const CID_NOPARENT = 0xffffffff;

export type ExtentAccess = 'RW' | 'RDONLY' | 'NOACCESS';
/** Spec extent types; VMFSRAW/VMFSRDM are raw device maps (refused by the reader). */
export type ExtentType = 'FLAT' | 'SPARSE' | 'ZERO' | 'VMFS' | 'VMFSSPARSE' | 'VMFSRDM' | 'VMFSRAW' | 'SESPARSE';
const EXTENT_TYPES = new Set<string>(['FLAT', 'SPARSE', 'ZERO', 'VMFS', 'VMFSSPARSE', 'VMFSRDM', 'VMFSRAW', 'SESPARSE']);

export interface ExtentLine {
  access: ExtentAccess;
  sectors: number;
  type: ExtentType;
  /** File name as written (relative to the descriptor's folder); '' for ZERO extents. */
  file: string;
  /** Sector offset inside the file (FLAT/VMFS), else 0. */
  offset: number;
}

export interface Descriptor {
  version: number;
  cid: number;
  parentCid: number;
  createType: string;
  parentFileNameHint?: string;
  extents: ExtentLine[];
  /** `ddb.*` keys, unquoted. */
  ddb: Record<string, string>;
}

function unquote(v: string): string {
  const t = v.trim();
  return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t;
}

function parseHex32(value: string, key: string): number {
  if (!/^[0-9a-fA-F]{1,8}$/.test(value)) throw fail('vmdk', 'BAD_VALUE', `descriptor ${key}="${value}" is not a 32-bit hex number`);
  return parseInt(value, 16);
}

const EXTENT_RE = /^(RW|RDONLY|NOACCESS)\s+(\d+)\s+([A-Z]+)(?:\s+"([^"]*)"(?:\s+(\d+))?)?\s*$/;

/** Decode descriptor text (bytes up to the first NUL). */
export function decodeDescriptor(bytes: Uint8Array): Descriptor {
  if (bytes.length > MAX_DESCRIPTOR_BYTES) throw fail('vmdk', 'TOO_LARGE', `descriptor of ${bytes.length} bytes exceeds ${MAX_DESCRIPTOR_BYTES}`);
  const nul = bytes.indexOf(0);
  const text = latin1(bytes, 0, nul < 0 ? bytes.length : nul);
  const d: Descriptor = { version: 1, cid: 0, parentCid: CID_NOPARENT, createType: '', extents: [], ddb: {} };
  let sawCreateType = false;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '').trim();
    if (!line || line.startsWith('#')) continue;
    const ext = EXTENT_RE.exec(line);
    if (ext) {
      if (d.extents.length >= MAX_EXTENTS) throw fail('vmdk', 'TOO_LARGE', `descriptor lists more than ${MAX_EXTENTS} extents`);
      const sectors = Number(ext[2]);
      if (!Number.isSafeInteger(sectors) || sectors <= 0 || sectors > 2 ** 44)
        throw fail('vmdk', 'BAD_VALUE', `extent size "${ext[2]}" sectors is out of range`);
      if (!EXTENT_TYPES.has(ext[3])) throw fail('vmdk', 'BAD_VALUE', `unknown extent type ${ext[3]}`);
      const type = ext[3] as ExtentType;
      if (type !== 'ZERO' && ext[4] === undefined) throw fail('vmdk', 'BAD_VALUE', `${type} extent line has no file name`);
      const offset = ext[5] === undefined ? 0 : Number(ext[5]);
      if (!Number.isSafeInteger(offset) || offset > 2 ** 44) throw fail('vmdk', 'BAD_VALUE', `extent offset "${ext[5]}" is out of range`);
      if (offset && type !== 'FLAT' && type !== 'VMFS') throw fail('vmdk', 'BAD_VALUE', `${type} extent must not have an offset`);
      d.extents.push({ access: ext[1] as ExtentAccess, sectors, type, file: ext[4] ?? '', offset });
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) {
      if (/^(RW|RDONLY|NOACCESS)\s/.test(line)) throw fail('vmdk', 'BAD_VALUE', `malformed extent line: ${line.slice(0, 80)}`);
      continue; // tolerate unknown text as VMware does
    }
    const key = line.slice(0, eq).trim();
    const value = unquote(line.slice(eq + 1));
    if (key.startsWith('ddb.')) d.ddb[key.slice(4)] = value;
    else if (key === 'version') d.version = Number(value);
    else if (key === 'CID') d.cid = parseHex32(value, key);
    else if (key === 'parentCID') d.parentCid = parseHex32(value, key);
    else if (key === 'createType') {
      d.createType = value;
      sawCreateType = true;
    } else if (key === 'parentFileNameHint') d.parentFileNameHint = value;
  }
  if (!sawCreateType) throw fail('vmdk', 'BAD_VALUE', 'descriptor has no createType');
  return d;
}

/** True when `name` stays inside the descriptor's folder (no absolute path, drive or `..`). */
export function isSafeExtentName(name: string): boolean {
  if (name === '' || name.startsWith('/') || name.startsWith('\\') || /^[A-Za-z]:/.test(name)) return false;
  return !name.split(/[\\/]/).some((c) => c === '..');
}

export interface DescriptorSpec {
  cid: number;
  createType: string;
  extents: ExtentLine[];
  hwVersion: string;
  cylinders: number;
  heads: number;
  sectors: number;
  adapterType: string;
  toolsVersion?: string;
}

/** Descriptor text in the layout qemu-img writes (block/vmdk.c desc_template). */
export function encodeDescriptor(s: DescriptorSpec): string {
  const ext = s.extents
    .map((e) => `${e.access} ${e.sectors} ${e.type}${e.type === 'ZERO' ? '' : ` "${e.file}"`}${e.type === 'FLAT' ? ` ${e.offset}` : ''}\n`)
    .join('');
  return (
    '# Disk DescriptorFile\n' +
    'version=1\n' +
    `CID=${s.cid.toString(16).padStart(8, '0')}\n` +
    'parentCID=ffffffff\n' +
    `createType="${s.createType}"\n` +
    '\n# Extent description\n' +
    ext +
    '\n# The Disk Data Base\n#DDB\n\n' +
    `ddb.virtualHWVersion = "${s.hwVersion}"\n` +
    `ddb.geometry.cylinders = "${s.cylinders}"\n` +
    `ddb.geometry.heads = "${s.heads}"\n` +
    `ddb.geometry.sectors = "${s.sectors}"\n` +
    `ddb.adapterType = "${s.adapterType}"\n` +
    (s.toolsVersion !== undefined ? `ddb.toolsVersion = "${s.toolsVersion}"\n` : '')
  );
}

/**
 * Descriptor geometry as QEMU computes it (block/vmdk.c vmdk_co_do_create): 63 sectors,
 * 16 heads for IDE and 255 for SCSI adapters (what VMware uses), cylinders = floor(size /
 * (63 * heads * 512)), capped at 16383 for IDE as VMware's ATA geometry is (QEMU does not cap).
 */
export function descriptorGeometry(sizeBytes: number, adapterType: string): { cylinders: number; heads: number; sectors: number } {
  const heads = adapterType === 'ide' ? 16 : 255;
  let cylinders = Math.floor(sizeBytes / (63 * heads * 512));
  if (adapterType === 'ide') cylinders = Math.min(cylinders, 16383);
  return { cylinders, heads, sectors: 63 };
}
