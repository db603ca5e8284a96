/**
 * `diskmint zfs ...` and verify's ZFS checks: read a vdev's four labels as `zdb -l` does, show
 * the boot environment, and write a one-time boot request as FreeBSD's zfsbootcfg does
 * (libzfsbootenv lzbe_set_boot_device(lzbe_add) + vdev_label_write_bootenv), offline, on a
 * whole disk or a partition (`IMG[:N]`) of any image diskmint reads. This file reads the labels
 * and reports them (`zfs label`, `zfs bootenv`); writing the boot request is zfs-bootonce.ts and
 * verify's findings are zfs-findings.ts.
 */
import { DiskmintError } from '../model/errors.js';
import { FormatError } from '../../formats/common/errors.js';
import { sliceDiskReader, type DiskReader } from '../model/disk-reader.js';
import { openDisk } from '../io/open-disk.js';
import { parseImageSpec, partitionRange } from './image-spec.js';
import {
  activeUberblock,
  LABEL_SIZE,
  labelOffsets,
  decodeLabel,
  summariseConfig,
  VB_NVLIST,
  type OldBootHeader,
  type Bootenv,
  type LabelSummary,
  type Uberblock,
  type ZfsLabel,
} from '../../formats/fs/zfs-label.js';
import { nvAdd, nvlist, nvString, nvToJson, encodeNvlist, type NvList } from '../../formats/fs/nvlist.js';

/** Boot environment keys (OpenZFS include/sys/zfs_bootenv.h). */
export const BOOTENV_VERSION = 'version';
export const FREEBSD_BOOTONCE = 'freebsd:bootonce';
export const FREEBSD_BOOTONCE_USED = 'freebsd:bootonce-used';
export const FREEBSD_NVSTORE = 'freebsd:nvstore';
export const GRUB_ENVMAP = 'grub:envmap';

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

/** The pool a `zfs:POOL/...:` descriptor names, if it has that form. */
export function descriptorPool(value: string): string | undefined {
  const m = /^zfs:([^/:@]+)/.exec(value);
  return m?.[1];
}

/* ------------------------------------------------------------ opening IMG[:N] */

/** The vdev `IMG[:N]` names inside an open disk, and its byte offset there. */
export async function vdevOf(disk: DiskReader, spec: string): Promise<{ vdev: DiskReader; base: number }> {
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

export async function readOrExplain(vdev: DiskReader, spec: string): Promise<ZfsLabelSet> {
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

export function disagreements(set: ZfsLabelSet): string[] {
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
