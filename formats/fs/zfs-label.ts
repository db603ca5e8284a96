/**
 * ZFS vdev labels (OpenZFS `include/sys/vdev_impl.h`, `module/zfs/vdev_label.c`,
 * `include/sys/zio_checksum.h`, `include/sys/uberblock_impl.h`).
 *
 * vdev_label_t (256 KiB): vl_pad1 (8 KiB) | vl_be: boot environment (8 KiB) |
 * vl_vdev_phys: XDR nvlist (112 KiB) | vl_uberblock: ring (128 KiB).
 * Labels 0 and 1 sit at 0 and 256 KiB, labels 2 and 3 at psize - 512 KiB and psize - 256 KiB,
 * psize = the vdev size rounded down to 256 KiB (vdev_label_offset(); zdb's dump_label()).
 * The boot environment, the nvlist and each uberblock slot end in a zio_eck_t (magic + SHA-256)
 * checked as ZIO_CHECKSUM_LABEL: the digest is taken with the checksum slot holding the
 * verifier {byte offset of the block on the vdev, 0, 0, 0} (zio_checksum_label_verifier()).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { view } from '../common/bytes.js';
import { FormatError, fail } from '../common/errors.js';
import { nvChild, nvFind, nvUint64, encodeNvlist, decodeNvlist, type NvList } from './nvlist.js';

const FORMAT = 'zfs-label';
/** sizeof (vdev_label_t), VDEV_LABELS (vdev_impl.h). */
export const LABEL_SIZE = 256 * 1024;
export const LABEL_COUNT = 4;
/** VDEV_PAD_SIZE; offsetof(vdev_label_t, vl_be). */
export const BOOTENV_OFFSET = 8 * 1024;
export const BOOTENV_SIZE = 8 * 1024;
/** offsetof(vdev_label_t, vl_vdev_phys); VDEV_PHYS_SIZE. */
export const PHYS_OFFSET = 16 * 1024;
export const PHYS_SIZE = 112 * 1024;
/** offsetof(vdev_label_t, vl_uberblock); VDEV_UBERBLOCK_RING. */
export const UBERBLOCK_OFFSET = 128 * 1024;
export const UBERBLOCK_RING = 128 * 1024;
/** UBERBLOCK_SHIFT and MAX_UBERBLOCK_SHIFT (vdev_impl.h): slot = 1 << clamp(ashift, 10, 13). */
const UBERBLOCK_SHIFT = 10;
const MAX_UBERBLOCK_SHIFT = 13;
/** sizeof (zio_eck_t): zec_magic (8) + zec_cksum (32); ZEC_MAGIC (zio_checksum.h). */
export const ECK_SIZE = 40;
export const ZEC_MAGIC = 0x0210da7ab10c7a11n;
/** UBERBLOCK_MAGIC (uberblock_impl.h). */
export const UBERBLOCK_MAGIC = 0x00bab10cn;
/** vdev_boot_envblock_t: vbe_version (big-endian u64) then vbe_bootenv; VB_RAW, VB_NVLIST (vdev_impl.h). */
export const VB_RAW = 0n;
export const VB_NVLIST = 1n;
/**
 * VDEV_BOOT_MAGIC and VDEV_BOOT_VERSION: before the boot environment block (OpenZFS 2.0,
 * vdev_boot_envblock_t), the same 8 KiB of each label held a vdev_boot_header_t: vb_magic,
 * vb_version, vb_offset and vb_size (the embedded boot area), u64s in the pool's native byte
 * order (OpenSolaris/illumos uts/common/fs/zfs/sys/vdev_impl.h, as GRUB's zfs/vdev_impl.h still
 * has it). Pools made then (version 1, 2006) still carry it.
 */
export const VDEV_BOOT_MAGIC = 0x2f5b007b10cn;

/** sizeof (vbe_bootenv). */
export const BOOTENV_PAYLOAD = BOOTENV_SIZE - 8 - ECK_SIZE;

/** psize and the four label offsets of a vdev of `size` bytes. */
export function labelOffsets(size: number): number[] {
  const psize = Math.floor(size / LABEL_SIZE) * LABEL_SIZE;
  if (psize < LABEL_COUNT * LABEL_SIZE) throw fail(FORMAT, 'TRUNCATED', `a vdev of ${size} bytes cannot hold four 256 KiB labels`);
  return [0, LABEL_SIZE, psize - 2 * LABEL_SIZE, psize - LABEL_SIZE];
}

export type Endian = 'little' | 'big';

function u64(b: Uint8Array, at: number, endian: Endian): bigint {
  return view(b).getBigUint64(at, endian === 'little');
}

/** The digest stored as four native 64-bit words, each the big-endian reading of 8 digest bytes. */
function labelChecksum(block: Uint8Array, offset: number, endian: Endian): Uint8Array {
  const copy = new Uint8Array(block);
  const at = copy.length - 32;
  copy.fill(0, at);
  new DataView(copy.buffer).setBigUint64(at, BigInt(offset), endian === 'little');
  const digest = view(sha256(copy));
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) ov.setBigUint64(i * 8, digest.getBigUint64(i * 8, false), endian === 'little');
  return out;
}

export interface EmbeddedCheck {
  /** Magic found in this byte order; null when the block has no zio_eck magic. */
  endian: Endian | null;
  valid: boolean;
}

/** Check a block's embedded ZIO_CHECKSUM_LABEL (zio_checksum_error_impl). */
export function checkEmbedded(block: Uint8Array, offset: number): EmbeddedCheck {
  if (block.length < ECK_SIZE) throw fail(FORMAT, 'TRUNCATED', `a checksummed block needs ${ECK_SIZE} bytes`);
  const at = block.length - ECK_SIZE;
  const endian: Endian | null = u64(block, at, 'little') === ZEC_MAGIC ? 'little' : u64(block, at, 'big') === ZEC_MAGIC ? 'big' : null;
  if (!endian) return { endian: null, valid: false };
  const want = labelChecksum(block, offset, endian);
  const have = block.subarray(block.length - 32);
  return { endian, valid: want.every((v, i) => v === have[i]) };
}

/** Write the zio_eck_t of a block at `offset` on the vdev (zio_checksum_compute, embedded). */
export function sealEmbedded(block: Uint8Array, offset: number, endian: Endian = 'little'): Uint8Array {
  const out = new Uint8Array(block);
  new DataView(out.buffer).setBigUint64(out.length - ECK_SIZE, ZEC_MAGIC, endian === 'little');
  out.set(labelChecksum(out, offset, endian), out.length - 32);
  return out;
}

/* ------------------------------------------------------------ boot environment */

export interface Bootenv {
  /** vbe_version as stored (big-endian). */
  version: bigint;
  checksum: EmbeddedCheck;
  /** VB_RAW: the text (GRUB's envmap), up to its first NUL. */
  raw?: string;
  /** VB_NVLIST: the list as stored. */
  nvlist?: NvList;
  /** Why an nvlist block did not unpack. */
  error?: string;
  /** The block is an old vdev_boot_header_t (VDEV_BOOT_MAGIC), not a boot environment: its fields. */
  oldBootHeader?: OldBootHeader;
}

export interface OldBootHeader {
  /** The byte order vb_magic was found in (the pool's native order). */
  endian: Endian;
  /** vb_version (VDEV_BOOT_VERSION was 1). */
  version: bigint;
  /** vb_offset and vb_size: the embedded boot area, in bytes from the start of the vdev. */
  offset: bigint;
  size: bigint;
}

/** Parse the 8 KiB boot environment block of a label at vdev byte `offset`. */
export function decodeBootenv(block: Uint8Array, offset: number): Bootenv {
  if (block.length !== BOOTENV_SIZE) throw fail(FORMAT, 'TRUNCATED', `boot environment block is ${block.length} bytes, not ${BOOTENV_SIZE}`);
  const checksum = checkEmbedded(block, offset);
  const version = u64(block, 0, 'big');
  const payload = block.subarray(8, 8 + BOOTENV_PAYLOAD);
  for (const endian of ['big', 'little'] as const) {
    if (u64(block, 0, endian) !== VDEV_BOOT_MAGIC) continue;
    const oldBootHeader = { endian, version: u64(block, 8, endian), offset: u64(block, 16, endian), size: u64(block, 24, endian) };
    return { version, checksum, oldBootHeader };
  }
  if (version === VB_RAW) {
    const end = payload.indexOf(0);
    return { version, checksum, raw: new TextDecoder().decode(payload.subarray(0, end < 0 ? payload.length : end)) };
  }
  if (version === VB_NVLIST) {
    try {
      return { version, checksum, nvlist: decodeNvlist(payload) };
    } catch (err) {
      if (err instanceof FormatError) return { version, checksum, error: err.message };
      throw err;
    }
  }
  return { version, checksum, error: `unknown boot environment version ${version}` };
}

/** An 8 KiB block holding `env` as vdev_label_write_bootenv() writes VB_NVLIST, sealed for `offset`. */
export function encodeBootenvBlock(env: NvList, offset: number, endian: Endian = 'little'): Uint8Array {
  const packed = encodeNvlist(env);
  // vdev_label_write_bootenv refuses nvsize >= sizeof (vbe_bootenv) (E2BIG).
  if (packed.length >= BOOTENV_PAYLOAD) throw fail(FORMAT, 'INVALID_ARGUMENT', `boot environment of ${packed.length} bytes exceeds ${BOOTENV_PAYLOAD - 1}`);
  const block = new Uint8Array(BOOTENV_SIZE);
  new DataView(block.buffer).setBigUint64(0, VB_NVLIST, false);
  block.set(packed, 8);
  return sealEmbedded(block, offset, endian);
}

/** A 112 KiB vdev_phys block holding `config`, sealed for vdev byte `offset` (vdev_label_init/sync). */
export function encodeConfigBlock(config: NvList, offset: number, endian: Endian = 'little'): Uint8Array {
  const packed = encodeNvlist(config);
  if (packed.length > PHYS_SIZE - ECK_SIZE) throw fail(FORMAT, 'INVALID_ARGUMENT', `label nvlist of ${packed.length} bytes exceeds ${PHYS_SIZE - ECK_SIZE}`);
  const block = new Uint8Array(PHYS_SIZE);
  block.set(packed);
  return sealEmbedded(block, offset, endian);
}

/* ------------------------------------------------------------ uberblocks */

export interface Uberblock {
  /** Slot number in the ring and byte offset of the slot on the vdev. */
  slot: number;
  offset: number;
  endian: Endian;
  version: bigint;
  txg: bigint;
  guidSum: bigint;
  /** Seconds since 1970. */
  timestamp: bigint;
  checksumValid: boolean;
}

/** Slot size for a top-level vdev's ashift (VDEV_UBERBLOCK_SHIFT). */
export function uberblockSlotSize(ashift: number): number {
  return 1 << Math.min(Math.max(ashift, UBERBLOCK_SHIFT), MAX_UBERBLOCK_SHIFT);
}

/** Every slot of a ring with an uberblock magic (either byte order); empty slots are skipped. */
export function decodeUberblockRing(ring: Uint8Array, ringOffset: number, ashift: number): Uberblock[] {
  if (ring.length !== UBERBLOCK_RING) throw fail(FORMAT, 'TRUNCATED', `uberblock ring is ${ring.length} bytes, not ${UBERBLOCK_RING}`);
  const size = uberblockSlotSize(ashift);
  const out: Uberblock[] = [];
  for (let slot = 0; slot < UBERBLOCK_RING / size; slot++) {
    const b = ring.subarray(slot * size, (slot + 1) * size);
    const endian: Endian | null = u64(b, 0, 'little') === UBERBLOCK_MAGIC ? 'little' : u64(b, 0, 'big') === UBERBLOCK_MAGIC ? 'big' : null;
    if (!endian) continue;
    const offset = ringOffset + slot * size;
    const check = checkEmbedded(b, offset);
    out.push({
      slot,
      offset,
      endian,
      version: u64(b, 8, endian),
      txg: u64(b, 16, endian),
      guidSum: u64(b, 24, endian),
      timestamp: u64(b, 32, endian),
      checksumValid: check.valid && check.endian === endian,
    });
  }
  return out;
}

/** vdev_uberblock_compare: highest txg, then latest timestamp, among valid uberblocks. */
export function activeUberblock(ubs: Uberblock[]): Uberblock | undefined {
  let best: Uberblock | undefined;
  for (const u of ubs) {
    if (!u.checksumValid) continue;
    if (!best || u.txg > best.txg || (u.txg === best.txg && u.timestamp > best.timestamp)) best = u;
  }
  return best;
}

/* ------------------------------------------------------------ labels */

export interface ZfsLabel {
  index: number;
  /** Byte offset of the label on the vdev. */
  offset: number;
  /** The vdev_phys nvlist; undefined when it does not unpack (see configError). */
  config?: NvList;
  configError?: string;
  configChecksum: EmbeddedCheck;
  bootenv: Bootenv;
  uberblocks: Uberblock[];
}

/** Parse one 256 KiB label read from vdev byte `offset`. */
export function decodeLabel(bytes: Uint8Array, index: number, offset: number): ZfsLabel {
  if (bytes.length !== LABEL_SIZE) throw fail(FORMAT, 'TRUNCATED', `label ${index} is ${bytes.length} bytes, not ${LABEL_SIZE}`);
  const phys = bytes.subarray(PHYS_OFFSET, PHYS_OFFSET + PHYS_SIZE);
  const configChecksum = checkEmbedded(phys, offset + PHYS_OFFSET);
  let config: NvList | undefined;
  let configError: string | undefined;
  try {
    config = decodeNvlist(phys, PHYS_SIZE - ECK_SIZE);
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    configError = err.message;
  }
  const ashift = config ? Number(nvUint64(nvChild(config, 'vdev_tree') ?? config, 'ashift') ?? 9n) : 9;
  return {
    index,
    offset,
    config,
    configError,
    configChecksum,
    bootenv: decodeBootenv(bytes.subarray(BOOTENV_OFFSET, BOOTENV_OFFSET + BOOTENV_SIZE), offset + BOOTENV_OFFSET),
    uberblocks: decodeUberblockRing(bytes.subarray(UBERBLOCK_OFFSET, UBERBLOCK_OFFSET + UBERBLOCK_RING), offset + UBERBLOCK_OFFSET, ashift > 63 ? 9 : ashift),
  };
}

/** The facts zdb -l prints first, from a label's nvlist. */
export interface LabelSummary {
  name?: string;
  version?: bigint;
  state?: bigint;
  txg?: bigint;
  poolGuid?: bigint;
  guid?: bigint;
  topGuid?: bigint;
  hostname?: string;
  vdevType?: string;
  ashift?: bigint;
  asize?: bigint;
}

export function summariseConfig(c: NvList): LabelSummary {
  const tree = nvChild(c, 'vdev_tree');
  const str = (l: NvList | undefined, k: string) => {
    const p = l && nvFind(l, k);
    return p?.type === 'string' ? p.value : undefined;
  };
  return {
    name: str(c, 'name'),
    version: nvUint64(c, 'version'),
    state: nvUint64(c, 'state'),
    txg: nvUint64(c, 'txg'),
    poolGuid: nvUint64(c, 'pool_guid'),
    guid: nvUint64(c, 'guid'),
    topGuid: nvUint64(c, 'top_guid'),
    hostname: str(c, 'hostname'),
    vdevType: str(tree, 'type'),
    ashift: tree && nvUint64(tree, 'ashift'),
    asize: tree && nvUint64(tree, 'asize'),
  };
}
