/**
 * Opening a VMDK as a sparse disk: the sparse header or descriptor file, the extents a
 * descriptor lists (extents.ts) assembled into one reader, and the parent chain of delta disks
 * (CIDs checked, depth bounded). Also detection, which a parent's opening needs.
 */
import { fail } from '../../../formats/common/errors.js';
import type { DiskReader } from '../../model/disk-reader.js';
import type { ContainerReader, OpenContext } from '../types.js';
import { unionOfRanges } from '../blocks.js';
import { SECTOR, hasSparseMagic, isCompressed, decodeSparseHeader } from '../../../formats/containers/vmdk.js';
import { CID_NOPARENT, MAX_DESCRIPTOR_BYTES, isSafeExtentName, decodeDescriptor, type Descriptor } from '../../../formats/containers/vmdk-descriptor.js';
import { SparseExtent, flatExtent, zeroExtent, type Extent, type Range } from './extents.js';

async function readDescriptorBytes(file: DiskReader, at: number, max: number): Promise<Uint8Array> {
  const n = Math.min(max, Math.max(0, file.size - at));
  if (n > MAX_DESCRIPTOR_BYTES) throw fail('vmdk', 'TOO_LARGE', `descriptor of ${n} bytes exceeds ${MAX_DESCRIPTOR_BYTES}`);
  return file.read(at, n);
}

const MAX_PARENT_DEPTH = 16;

/** Delta disks (parentCID != CID_NOPARENT with a parentFileNameHint): refused unless allowed. */
async function openParent(d: Descriptor | undefined, ctx: OpenContext, depth: number): Promise<ContainerReader | undefined> {
  if (!d || d.parentCid === CID_NOPARENT || d.parentFileNameHint === undefined) return undefined;
  const hint = d.parentFileNameHint;
  if (!ctx.allowBacking) throw fail('vmdk', 'BAD_VALUE', `image has a parent link to "${hint}" (delta disk); parents are refused unless allowed`);
  if (depth >= MAX_PARENT_DEPTH) throw fail('vmdk', 'LOOP', `parent chain deeper than ${MAX_PARENT_DEPTH} (loop?) at "${hint}"`);
  if (!isSafeExtentName(hint)) throw fail('vmdk', 'BAD_VALUE', `parent file "${hint}" is outside the image's folder`);
  const file = await ctx.openSibling(hint);
  try {
    if (!(await detect(file))) throw fail('vmdk', 'BAD_MAGIC', `parent "${hint}" is not a VMDK`);
    const parent = await openAt(file, { ...ctx, path: hint }, depth + 1);
    if (parentCid(parent) !== d.parentCid) {
      await parent.close();
      throw fail('vmdk', 'BAD_VALUE', `parent "${hint}" has CID ${parentCid(parent)?.toString(16)}, the image expects ${d.parentCid.toString(16)}`);
    }
    return parent;
  } catch (err) {
    await file.close().catch(() => {});
    throw err;
  }
}

const CIDS = new WeakMap<ContainerReader, number>();
const parentCid = (r: ContainerReader) => CIDS.get(r);

async function openExtents(d: Descriptor, ctx: OpenContext, opened: DiskReader[]): Promise<Extent[]> {
  const extents: Extent[] = [];
  let start = 0;
  for (const line of d.extents) {
    const length = line.sectors * SECTOR;
    if (line.access === 'NOACCESS') throw fail('vmdk', 'BAD_VALUE', `extent "${line.file}" is NOACCESS`);
    if (line.type === 'ZERO') extents.push(zeroExtent(start, length));
    else {
      if (!isSafeExtentName(line.file)) throw fail('vmdk', 'BAD_VALUE', `extent file "${line.file}" is outside the descriptor's folder`);
      if (line.type !== 'FLAT' && line.type !== 'VMFS' && line.type !== 'SPARSE')
        throw fail('vmdk', 'BAD_VALUE', `extent type ${line.type} ("${line.file}") is not supported`);
      const f = await ctx.openSibling(line.file);
      opened.push(f);
      if (line.type === 'SPARSE') {
        if (!hasSparseMagic(await f.read(0, 4))) throw fail('vmdk', 'BAD_MAGIC', `sparse extent "${line.file}" lacks the KDMV magic`);
        extents.push(await SparseExtent.open(f, start, length, line.file));
      } else extents.push(flatExtent(start, length, f, line.offset * SECTOR));
    }
    start += length;
    if (start > Number.MAX_SAFE_INTEGER / 2) throw fail('vmdk', 'TOO_LARGE', 'extents add up to an absurd size');
  }
  return extents;
}

function detailsOf(createType: string, d: Descriptor | undefined, extents: Extent[]): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = { createType, extents: extents.length };
  const sparse = extents.find((e): e is SparseExtent => e instanceof SparseExtent);
  if (sparse) {
    out.grainSize = sparse.h.grainSize * SECTOR;
    out.compression = isCompressed(sparse.h) ? 'deflate' : 'none';
    out.version = sparse.h.version;
  }
  if (d) {
    out.cid = d.cid.toString(16).padStart(8, '0');
    if (d.ddb.adapterType) out.adapterType = d.ddb.adapterType;
    const g = d.ddb;
    if (g['geometry.cylinders']) out.geometry = `${g['geometry.cylinders']}/${g['geometry.heads']}/${g['geometry.sectors']}`;
    if (g.virtualHWVersion) out.hwVersion = g.virtualHWVersion;
  }
  return out;
}

function containerReader(
  file: DiskReader,
  extents: Extent[],
  createType: string,
  d: Descriptor | undefined,
  opened: DiskReader[],
  parent?: ContainerReader,
): ContainerReader {
  const size = extents.reduce((s, e) => s + e.length, 0);
  for (const e of extents) e.parent = parent;
  async function* own() {
    for (const e of extents) for await (const r of e.ranges()) yield { offset: e.start + r.offset, length: r.length };
  }
  async function* clipped(src: AsyncIterable<Range>) {
    for await (const r of src) if (r.offset < size) yield { offset: r.offset, length: Math.min(r.length, size - r.offset) };
  }
  const reader: ContainerReader = {
    format: 'vmdk',
    subformat: createType,
    size,
    async read(offset, length, into) {
      const start = Math.min(Math.max(0, offset), size);
      const n = Math.min(size - start, Math.max(0, length));
      const out = into && into.length >= n ? into.subarray(0, n) : new Uint8Array(n); // every extent fills its part
      const end = start + out.length;
      for (const e of extents) {
        const from = Math.max(start, e.start);
        const to = Math.min(end, e.start + e.length);
        if (from < to) await e.readInto(from - e.start, out.subarray(from - start, to - start));
      }
      return out;
    },
    async *allocatedRanges() {
      yield* unionOfRanges(own(), parent ? clipped(parent.allocatedRanges()) : undefined);
    },
    details: () => ({ ...detailsOf(createType, d, extents), ...(parent ? { parent: d?.parentFileNameHint ?? '' } : {}) }),
    async close() {
      await parent?.close();
      for (const f of opened) await f.close();
      await file.close();
    },
  };
  if (d) CIDS.set(reader, d.cid);
  return reader;
}

export function open(file: DiskReader, ctx: OpenContext): Promise<ContainerReader> {
  return openAt(file, ctx, 0);
}

async function openAt(file: DiskReader, ctx: OpenContext, depth: number): Promise<ContainerReader> {
  const opened: DiskReader[] = [];
  let parent: ContainerReader | undefined;
  try {
    const head = await file.read(0, SECTOR);
    let d: Descriptor | undefined;
    let extents: Extent[];
    if (hasSparseMagic(head)) {
      const h = decodeSparseHeader(head);
      if (h.descriptorOffset > 0 && h.descriptorSize > 0) {
        const max = Math.min(h.descriptorSize * SECTOR, MAX_DESCRIPTOR_BYTES);
        const text = await readDescriptorBytes(file, h.descriptorOffset * SECTOR, h.capacity === 0 ? MAX_DESCRIPTOR_BYTES : max);
        // Extent files of split images carry an empty descriptor area: nothing to parse there.
        if (text.some((b) => b !== 0)) d = decodeDescriptor(text);
      }
      parent = await openParent(d, ctx, depth);
      if (h.capacity === 0 && d && d.extents.length > 0)
        extents = await openExtents(d, ctx, opened); // descriptor-only sparse header
      else extents = [await SparseExtent.open(file, 0, h.capacity * SECTOR, ctx.path)];
    } else {
      if (file.size > MAX_DESCRIPTOR_BYTES) throw fail('vmdk', 'TOO_LARGE', `descriptor file of ${file.size} bytes exceeds ${MAX_DESCRIPTOR_BYTES}`);
      d = decodeDescriptor(await readDescriptorBytes(file, 0, MAX_DESCRIPTOR_BYTES));
      if (d.extents.length === 0) throw fail('vmdk', 'BAD_VALUE', 'descriptor lists no extents');
      parent = await openParent(d, ctx, depth);
      extents = await openExtents(d, ctx, opened);
    }
    const sparse0 = extents[0] instanceof SparseExtent ? extents[0] : undefined;
    const createType = d?.createType || (sparse0 && isCompressed(sparse0.h) ? 'streamOptimized' : 'monolithicSparse');
    return containerReader(file, extents, createType, d, opened, parent);
  } catch (err) {
    await parent?.close().catch(() => {});
    for (const f of opened) await f.close().catch(() => {});
    throw err;
  }
}

export async function detect(file: DiskReader): Promise<boolean> {
  try {
    const head = await file.read(0, 1024);
    if (hasSparseMagic(head)) return true;
    if (file.size > MAX_DESCRIPTOR_BYTES) return false;
    // The descriptor is the text up to the first NUL, as qemu reads it: qemu-img pads descriptor
    // files with NULs, and when it rewrites the CID with fewer hex digits (no leading zeros), the
    // old text's last bytes stay behind that NUL ("...\0\n").
    const nul = head.indexOf(0);
    const text = Buffer.from(nul < 0 ? head : head.subarray(0, nul)).toString('latin1');
    if (/[\x01-\x08\x0b\x0c\x0e-\x1f]/.test(text)) return false; // binary, not a text descriptor
    return text.includes('# Disk DescriptorFile') || /(^|\n)\s*createType\s*=/.test(text);
  } catch {
    return false;
  }
}
