/**
 * `diskmint zfs ...` and verify's ZFS checks: read a vdev's four labels as `zdb -l` does, show
 * the boot environment, and write a one-time boot request as FreeBSD's zfsbootcfg does
 * (libzfsbootenv lzbe_set_boot_device(lzbe_add) + vdev_label_write_bootenv), offline, on a
 * whole disk or a partition (`IMG[:N]`) of any image diskmint reads.
 */
import { DiskmintError } from '../model/errors.js';
import { FormatError } from '../../formats/common/errors.js';
import { FREEBSD_ZFS_TYPE } from '../../formats/schemes/gpt-types.js';
import { sliceDiskReader, type DiskReader } from '../model/disk-reader.js';
import { openDisk } from '../io/open-disk.js';
import { allTables } from './inspect.js';
import { parseImageSpec, partitionRange } from './image-spec.js';
import { openImageEditor, type EditorOptions } from '../io/image-editor.js';
import { finding, type Finding } from '../model/findings.js';
import type { PartitionTable } from '../schemes/types.js';
import {
  activeUberblock,
  BOOTENV_OFFSET,
  encodeBootenvBlock,
  LABEL_SIZE,
  labelOffsets,
  decodeLabel,
  summariseConfig,
  VB_NVLIST,
  VDEV_BOOT_MAGIC,
  type OldBootHeader,
  type Bootenv,
  type LabelSummary,
  type Uberblock,
  type ZfsLabel,
} from '../../formats/fs/zfs-label.js';
import { nvAdd, nvlist, nvRemove, nvString, nvToJson, encodeNvlist, type NvList } from '../../formats/fs/nvlist.js';

/** Boot environment keys (OpenZFS include/sys/zfs_bootenv.h). */
export const BOOTENV_VERSION = 'version';
export const FREEBSD_BOOTONCE = 'freebsd:bootonce';
export const FREEBSD_BOOTONCE_USED = 'freebsd:bootonce-used';
export const FREEBSD_NVSTORE = 'freebsd:nvstore';
export const GRUB_ENVMAP = 'grub:envmap';

/** Partition types that hold ZFS vdevs: GPT freebsd-zfs, GPT Solaris/Apple ZFS (Linux), BSD fstype 27. */
const ZFS_TYPES = new Set([FREEBSD_ZFS_TYPE, '6a898cc3-1dd2-11b2-99a6-080020736631', '27']);

/**
 * Label write order for a boot request: the even labels (0 at the start, 2 at the end) then
 * the odd ones (1, 3), as spa_sync's vdev_config_sync orders label writes. Each label's block
 * is sealed by its own checksum, so an interrupted write leaves at most one torn (invalid)
 * block, and every stopping point keeps at least two valid labels holding the same request,
 * one at each end of the vdev: before write 2 labels 1, 2 and 3 hold the old request; before
 * write 3, labels 1 and 3 (old); before write 4, labels 0 and 2 (new); after it, all four.
 * A write barrier (fdatasync) follows every write, so the disk cannot reorder them: no two
 * labels are ever in flight at once, and those stopping points are the only ones there are.
 */
export const BOOTENV_WRITE_ORDER = [0, 2, 1, 3] as const;

export interface ZfsLabelSet {
  /** Size of the vdev (disk or partition) in bytes. */
  vdevSize: number;
  labels: ZfsLabel[];
  /** Labels that could not be read at all (too short). */
  missing: number[];
}

/** Read and parse the four labels of a vdev. */
export async function readZfsLabels(vdev: DiskReader): Promise<ZfsLabelSet> {
  const offsets = labelOffsets(vdev.size);
  const labels: ZfsLabel[] = [];
  const missing: number[] = [];
  for (const [index, offset] of offsets.entries()) {
    const bytes = await vdev.read(offset, LABEL_SIZE);
    if (bytes.length !== LABEL_SIZE) missing.push(index);
    else labels.push(decodeLabel(bytes, index, offset));
  }
  return { vdevSize: vdev.size, labels, missing };
}

/** True when any label holds an nvlist with a valid checksum: this is a ZFS vdev. */
export function isZfsVdev(set: ZfsLabelSet): boolean {
  return set.labels.some((l) => l.config && l.configChecksum.valid);
}

/** The boot environment the kernel would read: the first label whose block checksum holds. */
export function currentBootenv(set: ZfsLabelSet): Bootenv | undefined {
  return set.labels.find((l) => l.bootenv.checksum.valid)?.bootenv;
}

/** The environment as vdev_label_read_bootenv presents it (a VB_RAW block becomes version 0 + grub:envmap). */
export function bootenvAsNvlist(be: Bootenv): NvList {
  if (be.version === VB_NVLIST && be.nvlist) return be.nvlist.pairs.reduce((l, p) => nvAdd(l, p), nvlist());
  if (be.raw !== undefined)
    return nvlist([
      { name: BOOTENV_VERSION, type: 'uint64', value: 0n },
      { name: GRUB_ENVMAP, type: 'string', value: be.raw },
    ]);
  return nvlist([{ name: BOOTENV_VERSION, type: 'uint64', value: VB_NVLIST }]);
}

/** zfsbootcfg's descriptor: a value starting with `zfs:` as given, else `zfs:VALUE:`. */
export function bootonceDescriptor(value: string): string {
  return value.startsWith('zfs:') ? value : `zfs:${value}:`;
}

/** The pool a `zfs:POOL/...:` descriptor names, if it has that form. */
export function descriptorPool(value: string): string | undefined {
  const m = /^zfs:([^/:@]+)/.exec(value);
  return m?.[1];
}

/* ------------------------------------------------------------ opening IMG[:N] */

/** The vdev `IMG[:N]` names inside an open disk, and its byte offset there. */
async function vdevOf(disk: DiskReader, spec: string): Promise<{ vdev: DiskReader; base: number }> {
  const { path, partition } = parseImageSpec(spec);
  if (partition === undefined) return { vdev: disk, base: 0 };
  const { offset: base, size } = await partitionRange(disk, path, partition);
  return { vdev: sliceDiskReader(disk, base, size), base };
}

async function withLabels<T>(spec: string, fn: (set: ZfsLabelSet) => T): Promise<T> {
  const { reader } = await openDisk(parseImageSpec(spec).path);
  try {
    const { vdev } = await vdevOf(reader, spec);
    const set = await readOrExplain(vdev, spec);
    return fn(set);
  } finally {
    await reader.close();
  }
}

async function readOrExplain(vdev: DiskReader, spec: string): Promise<ZfsLabelSet> {
  let set: ZfsLabelSet;
  try {
    set = await readZfsLabels(vdev);
  } catch (err) {
    if (err instanceof FormatError) throw new DiskmintError('NOT_A_DISK', `${spec}: ${err.message}`);
    throw err;
  }
  if (!isZfsVdev(set)) throw new DiskmintError('NOT_A_DISK', `${spec}: no ZFS label with a valid checksum (is it a ZFS vdev? pick a partition with IMG:N)`);
  return set;
}

/* ------------------------------------------------------------ zfs label */

export interface LabelReport {
  index: number;
  offset: number;
  checksumValid: boolean;
  summary?: LabelSummary;
  config?: Record<string, unknown>;
  error?: string;
  uberblocks: number;
  validUberblocks: number;
}

export interface ZfsLabelsReport {
  spec: string;
  vdevSize: number;
  labels: LabelReport[];
  /** The labels with a valid checksum agree on pool name, guids, txg and state. */
  agree: boolean;
  disagreements: string[];
  activeUberblock?: Uberblock;
}

const SUMMARY_KEYS: (keyof LabelSummary)[] = ['name', 'poolGuid', 'guid', 'txg', 'state', 'version'];

function disagreements(set: ZfsLabelSet): string[] {
  const good = set.labels.filter((l) => l.config && l.configChecksum.valid);
  const out: string[] = [];
  const sums = good.map((l) => summariseConfig(l.config!));
  for (const k of SUMMARY_KEYS) {
    const values = [...new Set(sums.map((s) => String(s[k])))];
    if (values.length > 1) out.push(`${k}: ${good.map((l, i) => `label ${l.index} ${String(sums[i][k])}`).join(', ')}`);
  }
  const envs = set.labels.filter((l) => l.bootenv.checksum.valid).map((l) => bootenvKey(l.bootenv));
  if (new Set(envs).size > 1) out.push('boot environment differs between labels');
  return out;
}

function bootenvKey(b: Bootenv): string {
  if (b.oldBootHeader) return `old:${b.oldBootHeader.endian}:${b.oldBootHeader.version}:${b.oldBootHeader.offset}:${b.oldBootHeader.size}`;
  return `${b.version}:${b.raw ?? ''}:${b.nvlist ? Buffer.from(encodeNvlist(b.nvlist)).toString('hex') : (b.error ?? '')}`;
}

export function describeLabels(spec: string, set: ZfsLabelSet): ZfsLabelsReport {
  const diffs = disagreements(set);
  return {
    spec,
    vdevSize: set.vdevSize,
    labels: set.labels.map((l) => ({
      index: l.index,
      offset: l.offset,
      checksumValid: l.configChecksum.valid,
      ...(l.config ? { summary: summariseConfig(l.config), config: nvToJson(l.config) } : { error: l.configError }),
      uberblocks: l.uberblocks.length,
      validUberblocks: l.uberblocks.filter((u) => u.checksumValid).length,
    })),
    agree: diffs.length === 0 && set.missing.length === 0 && set.labels.every((l) => l.configChecksum.valid),
    disagreements: diffs,
    activeUberblock: activeUberblock(set.labels.flatMap((l) => l.uberblocks)),
  };
}

/** `zfs label IMG[:N]`: the four labels, whether each checksum holds and they agree, the active uberblock. */
export function zfsLabels(spec: string): Promise<ZfsLabelsReport> {
  return withLabels(spec, (set) => describeLabels(spec, set));
}

/* ------------------------------------------------------------ zfs bootenv */

export interface ZfsBootenvReport {
  spec: string;
  /** Label the environment was read from (the first with a valid checksum). */
  fromLabel?: number;
  version?: bigint;
  bootonce?: string;
  bootonceUsed?: string;
  /** The whole environment, as the kernel presents it. */
  env?: Record<string, unknown>;
  /**
   * Set when the label holds the old vdev_boot_header_t (VDEV_BOOT_MAGIC, pools of 2006-2008)
   * where newer pools keep the boot environment: there is then no environment, and no version.
   */
  oldBootHeader?: OldBootHeader;
  labels: { index: number; checksumValid: boolean; version?: bigint; oldBootHeader?: boolean; bootonce?: string; error?: string }[];
  agree: boolean;
}

export function describeBootenv(spec: string, set: ZfsLabelSet): ZfsBootenvReport {
  const from = set.labels.find((l) => l.bootenv.checksum.valid);
  const env = from && bootenvAsNvlist(from.bootenv);
  const valid = set.labels.filter((l) => l.bootenv.checksum.valid);
  return {
    spec,
    fromLabel: from?.index,
    ...(from?.bootenv.oldBootHeader ? { oldBootHeader: from.bootenv.oldBootHeader } : { version: from?.bootenv.version }),
    bootonce: env && nvString(env, FREEBSD_BOOTONCE),
    bootonceUsed: env && nvString(env, FREEBSD_BOOTONCE_USED),
    env: env && nvToJson(env),
    labels: set.labels.map((l) => ({
      index: l.index,
      checksumValid: l.bootenv.checksum.valid,
      ...(l.bootenv.oldBootHeader ? { oldBootHeader: true } : { version: l.bootenv.version }),
      ...(l.bootenv.nvlist ? { bootonce: nvString(l.bootenv.nvlist, FREEBSD_BOOTONCE) } : {}),
      ...(l.bootenv.error ? { error: l.bootenv.error } : {}),
    })),
    agree: valid.length === set.labels.length && new Set(valid.map((l) => bootenvKey(l.bootenv))).size <= 1,
  };
}

/** `zfs bootenv IMG[:N]`. */
export function zfsBootenv(spec: string): Promise<ZfsBootenvReport> {
  return withLabels(spec, (set) => describeBootenv(spec, set));
}

/* ------------------------------------------------------------ zfs bootonce */

export interface SetBootonceResult {
  spec: string;
  pool?: string;
  /** The value now stored under freebsd:bootonce (undefined after a clear). */
  bootonce?: string;
  previous?: string;
  labelsWritten: number[];
  env: Record<string, unknown>;
  warnings: string[];
}

/** The environment zfsbootcfg would write: lzbe_add semantics on the current environment. */
export function nextBootenv(current: Bootenv | undefined, value: string | undefined): NvList {
  let env = current && current.version === VB_NVLIST && current.nvlist ? bootenvAsNvlist(current) : nvlist();
  env = nvAdd(env, { name: BOOTENV_VERSION, type: 'uint64', value: VB_NVLIST });
  return value ? nvAdd(env, { name: FREEBSD_BOOTONCE, type: 'string', value: bootonceDescriptor(value) }) : nvRemove(env, FREEBSD_BOOTONCE);
}

/**
 * Write (or with `value` undefined/empty, remove) the one-time boot request in all four labels'
 * boot environment blocks; everything else in each label is left byte-for-byte. Written label by
 * label in BOOTENV_WRITE_ORDER with a write barrier after each (raw images and containers edited
 * in place alike; a container that must be rewritten is replaced whole at commit).
 */
export async function zfsSetBootonce(spec: string, value: string | undefined, opts: EditorOptions = {}): Promise<SetBootonceResult> {
  const { path } = parseImageSpec(spec);
  const editor = await openImageEditor(path, opts); // locks the image until close
  try {
    const { vdev, base } = await vdevOf(editor.disk, spec);
    const set = await readOrExplain(vdev, spec);
    const current = currentBootenv(set);
    const old = current?.oldBootHeader;
    if (old) {
      // The old header fills the block where a boot environment would go: writing one replaces it.
      throw new DiskmintError(
        'BAD_ARGUMENT',
        `${spec}: the labels hold an old vdev_boot_header (version ${old.version}, a pool of 2006-2008), not a boot environment: no boot loader that reads freebsd:bootonce boots this pool, and writing one would overwrite that header; nothing was changed (zpool upgrade the pool first)`,
      );
    }
    const env = nextBootenv(current, value);
    const pool = set.labels.map((l) => l.config && nvString(l.config, 'name')).find((n) => n !== undefined);
    const stored = nvString(env, FREEBSD_BOOTONCE);
    const warnings: string[] = [];
    const named = stored && descriptorPool(stored);
    if (named && pool && named !== pool) warnings.push(`${stored} names pool "${named}", but this vdev belongs to pool "${pool}"`);
    const endian = set.labels.find((l) => l.configChecksum.valid)?.configChecksum.endian ?? 'little';
    const offsets = labelOffsets(vdev.size);
    let blocks: Uint8Array[];
    try {
      blocks = offsets.map((o) => encodeBootenvBlock(env, o + BOOTENV_OFFSET, endian));
    } catch (err) {
      if (err instanceof FormatError) throw new DiskmintError('BAD_ARGUMENT', `${spec}: ${err.message}`);
      throw err;
    }
    for (const i of BOOTENV_WRITE_ORDER) {
      await editor.writeBytes(base + offsets[i] + BOOTENV_OFFSET, blocks[i]);
      await editor.barrier();
    }
    await editor.commit();
    const previous = current && nvString(bootenvAsNvlist(current), FREEBSD_BOOTONCE);
    return { spec, pool, bootonce: stored, previous, labelsWritten: [...BOOTENV_WRITE_ORDER], env: nvToJson(env), warnings };
  } finally {
    await editor.close();
  }
}

/* ------------------------------------------------------------ verify */

/** Findings for one vdev's labels. */
export function labelFindings(set: ZfsLabelSet, where: string): Finding[] {
  const out: Finding[] = [];
  for (const i of set.missing) out.push(finding('error', 'zfs.label-missing', `label ${i} lies past the end of the device`, where));
  for (const l of set.labels) {
    if (!l.config) out.push(finding('error', 'zfs.label-unreadable', `label ${l.index} nvlist does not unpack: ${l.configError}`, where));
    else if (!l.configChecksum.valid)
      out.push(finding('error', 'zfs.label-checksum', `label ${l.index} nvlist checksum is ${l.configChecksum.endian ? 'wrong' : 'missing'}`, where));
    if (!l.bootenv.checksum.endian) out.push(finding('warning', 'zfs.bootenv-unsealed', `label ${l.index} boot environment block has no checksum`, where));
    else if (!l.bootenv.checksum.valid) out.push(finding('error', 'zfs.bootenv-checksum', `label ${l.index} boot environment checksum is wrong`, where));
    const old = l.bootenv.oldBootHeader;
    if (old)
      out.push(
        finding(
          'info',
          'zfs.old-boot-header',
          `label ${l.index} holds an old vdev_boot_header (magic 0x${VDEV_BOOT_MAGIC.toString(16)}, version ${old.version}, boot area at byte ${old.offset}, ${old.size} bytes, ${old.endian}-endian) where newer pools keep a boot environment; it has none`,
          where,
        ),
      );
    if (!l.uberblocks.some((u) => u.checksumValid))
      out.push(finding('error', 'zfs.uberblock-none', `label ${l.index} has no uberblock with a valid checksum`, where));
  }
  for (const d of disagreements(set)) out.push(finding('warning', 'zfs.labels-disagree', `labels disagree: ${d}`, where));
  const good = set.labels.find((l) => l.config && l.configChecksum.valid);
  const pool = good && summariseConfig(good.config!).name;
  const be = currentBootenv(set);
  const once = be && nvString(bootenvAsNvlist(be), FREEBSD_BOOTONCE);
  const named = once && descriptorPool(once);
  if (once && pool && named !== pool) {
    out.push(
      finding(
        'error',
        'zfs.bootonce-other-pool',
        `one-time boot request "${once}" names ${named ? `pool "${named}"` : 'no pool'}, but this vdev belongs to pool "${pool}"`,
        where,
      ),
    );
  }
  if (good) {
    const s = summariseConfig(good.config!);
    const ub = activeUberblock(set.labels.flatMap((l) => l.uberblocks));
    const valid = set.labels.filter((l) => l.configChecksum.valid).map((l) => l.index);
    out.push(
      finding(
        'info',
        'zfs.pool',
        `ZFS pool "${s.name}" (guid ${s.poolGuid}, version ${s.version}), labels ${valid.join(', ')} valid, active uberblock txg ${ub?.txg ?? 'none'}${once ? `, bootonce ${once}` : ''}`,
        where,
      ),
    );
  }
  return out;
}

/**
 * verify's ZFS checks: every freebsd-zfs (or Solaris/Apple ZFS GPT, BSD fstype 27) partition,
 * or the whole disk when it carries ZFS labels itself.
 */
export async function zfsFindings(reader: DiskReader, table: PartitionTable | null): Promise<Finding[]> {
  const out: Finding[] = [];
  const check = async (vdev: DiskReader, where: string, expectZfs: boolean) => {
    let set: ZfsLabelSet;
    try {
      set = await readZfsLabels(vdev);
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
      if (expectZfs) out.push(finding('warning', 'zfs.too-small', `ZFS partition cannot hold four labels: ${err.message}`, where));
      return;
    }
    if (!set.labels.some((l) => l.config || l.configChecksum.endian)) {
      if (expectZfs) out.push(finding('info', 'zfs.no-labels', 'ZFS partition holds no ZFS label (empty?)', where));
      return;
    }
    out.push(...labelFindings(set, where));
  };
  let found = false;
  for (const t of allTables(table)) {
    for (const p of t.partitions) {
      if (!ZFS_TYPES.has(p.rawType.toLowerCase())) continue;
      found = true;
      await check(sliceDiskReader(reader, t.offset + p.firstLba * t.sectorSize, p.sizeBytes), `${t.scheme}.partition[${p.index}].zfs`, true);
    }
  }
  if (!found && reader.size >= 4 * LABEL_SIZE) await check(reader, 'zfs', false);
  return out;
}
