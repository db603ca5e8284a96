/**
 * What a qcow2 in-place edit (edit.ts) reads and checks at open (QEMU docs/interop/qcow2.txt,
 * "qcow2 spec"): the header, the L1 and refcount tables, the clusters that hold metadata, and
 * the images it refuses (with why, and whether a rewrite to a fresh file would keep everything).
 */
import { fail } from '../../../formats/common/errors.js';
import {
  QCOW2_HEADER_PROBE_BYTES,
  QCOW2_INCOMPAT,
  QCOW2_KNOWN_INCOMPAT_BITS,
  decodeQcow2Header,
  validateQcow2Layout,
  type Qcow2Header,
} from '../../../formats/containers/qcow2.js';
import { decodeRefcountTableEntry, refcountsPerBlock } from '../../../formats/containers/qcow2-refcounts.js';
import { decodeL1Entry, isCopied } from '../../../formats/containers/qcow2-tables.js';
import type { EditableFile, InPlaceRefusal } from '../types.js';

/** A big-endian u32 of a table held as bytes. */
export const u32 = (b: Uint8Array, at: number) => ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;

/** autoclear_features bit 0: persistent bitmaps (qcow2 spec, bytes 88-95). */
const AUTOCLEAR_BITMAPS = 0;

/** Why this image cannot be edited in place, or undefined (qcow2 spec, "Header"). */
function refusal(h: Qcow2Header): InPlaceRefusal | undefined {
  const has = (bit: number) => h.incompatibleFeatures.includes(bit);
  const check = 'run `qemu-img check -r all` on it first';
  if (has(QCOW2_INCOMPAT.corrupt)) return { refused: `the qcow2 image is marked corrupt (incompatible bit 1): ${check}`, rewriteKeepsEverything: false };
  if (has(QCOW2_INCOMPAT.dirty))
    return { refused: `the qcow2 image is marked dirty (incompatible bit 0; its refcounts may be stale): ${check}`, rewriteKeepsEverything: false };
  const unknown = h.incompatibleFeatures.filter((b) => b >= QCOW2_KNOWN_INCOMPAT_BITS);
  if (unknown.length) return { refused: `the qcow2 image uses unknown incompatible features (bits ${unknown.join(', ')})`, rewriteKeepsEverything: false };
  if (h.cryptMethod !== 0) return { refused: `the qcow2 image is encrypted (crypt_method ${h.cryptMethod})`, rewriteKeepsEverything: false };
  if (has(QCOW2_INCOMPAT.externalData))
    return { refused: 'the qcow2 image keeps its data in an external data file, which in-place edits do not write', rewriteKeepsEverything: false };
  if (h.nbSnapshots > 0)
    return {
      refused: `the qcow2 image has ${h.nbSnapshots} internal snapshot(s): their clusters are shared and would need copy-on-write, and a rewrite would drop them`,
      rewriteKeepsEverything: false,
    };
  if (h.autoclearFeatures.includes(AUTOCLEAR_BITMAPS))
    return { refused: 'the qcow2 image has persistent dirty bitmaps (autoclear bit 0), which an edit would leave stale', rewriteKeepsEverything: false };
  if (h.autoclearFeatures.length)
    return { refused: `the qcow2 image has unknown autoclear features (bits ${h.autoclearFeatures.join(', ')})`, rewriteKeepsEverything: false };
  if (has(QCOW2_INCOMPAT.extendedL2))
    return {
      refused: 'the qcow2 image uses extended L2 entries (subclusters, incompatible bit 4), which in-place edits do not write',
      rewriteKeepsEverything: true,
    };
  return undefined;
}

/** Read `length` bytes at `offset` or fail naming `what`. */
export async function readExact(file: EditableFile, offset: number, length: number, what: string): Promise<Uint8Array> {
  const bytes = await file.read(offset, length);
  if (bytes.length !== length) throw fail('qcow2', 'TRUNCATED', `${what} at ${offset} (${length} bytes) runs past the end of the file`);
  return bytes;
}

/** Clusters that hold metadata; refuses (FormatError) table offsets outside the file. */
function metadataClusters(h: Qcow2Header, l1: Uint8Array, reftable: Uint8Array, fileSize: number): Set<number> {
  const cs = 2 ** h.clusterBits;
  const out = new Set<number>([0]);
  const span = (offset: number, bytes: number) => {
    for (let c = offset / cs; c < (offset + bytes) / cs; c++) out.add(c);
  };
  if (h.l1Size) span(h.l1TableOffset, h.l1Size * 8);
  span(h.refcountTableOffset, h.refcountTableClusters * cs);
  for (const [table, what, decode] of [
    [l1, 'L2 table', decodeL1Entry],
    [reftable, 'refcount block', decodeRefcountTableEntry],
  ] as const) {
    for (let i = 0; i < table.length / 8; i++) {
      const offset = decode(u32(table, i * 8), u32(table, i * 8 + 4));
      if (offset === 0) continue;
      if (offset % cs !== 0 || offset + cs > fileSize) throw fail('qcow2', 'BAD_VALUE', `${what} ${i} at ${offset} is not a whole cluster inside the file`);
      if (what === 'L2 table' && !isCopied(u32(table, i * 8)))
        throw fail('qcow2', 'BAD_VALUE', `L1 entry ${i} lacks the COPIED flag although the image has no snapshots`);
      if (out.has(offset / cs)) throw fail('qcow2', 'BAD_VALUE', `${what} ${i} at ${offset} overlaps other metadata`);
      out.add(offset / cs);
    }
  }
  return out;
}

/** Whether the refcount table can count every cluster the session could ever add (every guest cluster and L2 table new). */
function refcountTableRoom(h: Qcow2Header, fileSize: number): InPlaceRefusal | undefined {
  const cs = 2 ** h.clusterBits;
  const per = refcountsPerBlock(h.clusterBits, 2 ** h.refcountOrder);
  const clusters = Math.ceil(fileSize / cs) + Math.ceil(h.size / cs) + h.l1Size;
  const blocks = Math.ceil((clusters + Math.ceil(clusters / (per - 1)) + 1) / per);
  const room = (h.refcountTableClusters * cs) / 8;
  if (blocks <= room) return undefined;
  return {
    refused: `the qcow2 refcount table (${h.refcountTableClusters} cluster(s), ${room} refcount blocks) could have to grow to count new clusters, which in-place edits do not do`,
    rewriteKeepsEverything: true,
  };
}

/** What an edit session starts from: the header, the active tables (bytes, edited in memory), the metadata clusters. */
export interface EditableQcow2 {
  h: Qcow2Header;
  l1: Uint8Array;
  reftable: Uint8Array;
  metadata: Set<number>;
}

/** Read and check what an edit needs, or say why this image is not edited in place. */
export async function readForEdit(file: EditableFile): Promise<EditableQcow2 | InPlaceRefusal> {
  const h = decodeQcow2Header(await file.read(0, QCOW2_HEADER_PROBE_BYTES));
  const refused = refusal(h) ?? refcountTableRoom(h, file.size);
  if (refused) return refused;
  validateQcow2Layout(h, file.size);
  const l1 = new Uint8Array(await readExact(file, h.l1TableOffset, h.l1Size * 8, 'L1 table'));
  const reftable = new Uint8Array(await readExact(file, h.refcountTableOffset, h.refcountTableClusters * 2 ** h.clusterBits, 'refcount table'));
  try {
    return { h, l1, reftable, metadata: metadataClusters(h, l1, reftable, file.size) };
  } catch (err) {
    return { refused: `${(err as Error).message}: run \`qemu-img check -r all\` on it first`, rewriteKeepsEverything: false };
  }
}
