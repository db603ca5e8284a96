/**
 * What `flash` knows of its target before writing: a block device's name, size, model, whether
 * it is a partition, what uses it (mounts, swap, holders such as device-mapper or md) for the
 * device and each of its partitions; or a regular file's size. Read from Linux's sysfs and
 * procfs (Documentation/ABI/stable/sysfs-block, proc(5): mountinfo, swaps), never by ioctl.
 */
import { readFile, readdir, readlink, realpath, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { DiskmintError } from '../../model/errors.js';
import { formatBytes } from '../../model/size.js';

export interface FlashTarget {
  path: string;
  kind: 'block' | 'file';
  /** Bytes the target holds (a block device's size; a file's length). */
  size: number;
  /** Kernel name ('sdb', 'loop3', 'mmcblk0p1'); block devices only. */
  name?: string;
  /** A partition of another device (sysfs `partition` file). */
  isPartition: boolean;
  /** sysfs device/model (USB readers, disks), or a loop device's backing file. */
  model?: string;
  /** Why the target is in use: mounts, swap, holders, of it or its partitions. Empty: free. */
  inUse: string[];
  /**
   * How a block device can make a range read as zeros without being sent them (sysfs queue/
   * write_zeroes_max_bytes, discard_max_bytes: 0 when the device lacks the command).
   */
  zeroing?: { writeZeroes: boolean; discard: boolean };
}

/** Linux's dev_t split (include/linux/kdev_t.h, new_decode_dev: 12-bit major, 20-bit minor). */
export function devNumbers(rdev: number): string {
  const major = Math.floor(rdev / 256) & 0xfff;
  const minor = (rdev & 0xff) | (Math.floor(rdev / 4096) & ~0xff);
  return `${major}:${minor}`;
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

/** /proc/self/mountinfo: "major:minor" -> mount points (proc(5): field 3 is the device, field 5 the mount point). */
async function mountsByDevice(): Promise<Map<string, string[]>> {
  const byDev = new Map<string, string[]>();
  for (const line of (await readText('/proc/self/mountinfo'))?.split('\n') ?? []) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const point = f[4].replace(/\\(\d{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    byDev.set(f[2], [...(byDev.get(f[2]) ?? []), point]);
  }
  return byDev;
}

/** /proc/swaps: the "major:minor" of each swap device in use (swap files live on a mounted file system, found by their mount). */
async function swapDevices(): Promise<Set<string>> {
  const devs = new Set<string>();
  for (const line of (await readText('/proc/swaps'))?.split('\n').slice(1) ?? []) {
    const path = line.split(/\s+/)[0]?.replace(/\\040/g, ' ');
    if (!path) continue;
    try {
      const st = await stat(path);
      if (st.isBlockDevice()) devs.add(devNumbers(st.rdev));
    } catch {
      /* a swap file's path, or one that went away */
    }
  }
  return devs;
}

/** The sysfs folder of a block device and its partitions: (name, "major:minor") pairs, the device first. */
async function deviceAndPartitions(name: string): Promise<Array<{ name: string; dev: string }>> {
  const folder = `/sys/class/block/${name}`;
  const own = await readText(join(folder, 'dev'));
  const all = own ? [{ name, dev: own }] : [];
  for (const entry of await readdir(folder).catch(() => [] as string[])) {
    if (!entry.startsWith(name)) continue; // partitions are subfolders named after the disk (sdb1, loop3p1, mmcblk0p1)
    const dev = await readText(join(folder, entry, 'dev'));
    if (dev && (await readText(join(folder, entry, 'partition')))) all.push({ name: entry, dev });
  }
  return all;
}

/** Look at `path` (a block device or a regular file) without opening it for writing. */
export async function inspectTarget(path: string): Promise<FlashTarget> {
  let st;
  try {
    st = await stat(path);
  } catch {
    throw new DiskmintError('BAD_ARGUMENT', `${path}: no such device or file`);
  }
  if (st.isFile()) return { path, kind: 'file', size: st.size, isPartition: false, inUse: [] };
  if (!st.isBlockDevice()) throw new DiskmintError('BAD_ARGUMENT', `${path} is neither a block device nor a regular file`);
  const dev = devNumbers(st.rdev);
  const sysfs = await readlink(`/sys/dev/block/${dev}`).catch(() => undefined);
  if (!sysfs) throw new DiskmintError('BAD_ARGUMENT', `${path}: block device ${dev} is not in /sys/dev/block (is /sys mounted?)`);
  const name = basename(sysfs);
  const folder = `/sys/class/block/${name}`;
  // sysfs `size` counts 512-byte sectors whatever the logical block size (block/genhd.c, part_size_show).
  const size = Number(await readText(join(folder, 'size'))) * 512;
  const isPartition = (await readText(join(folder, 'partition'))) !== undefined;
  const model = (await readText(join(folder, 'device', 'model'))) || (await readText(join(folder, 'loop', 'backing_file')));
  const inUse: string[] = [];
  const mounts = await mountsByDevice();
  const swaps = await swapDevices();
  for (const d of await deviceAndPartitions(name)) {
    const where = d.name === name ? 'it' : d.name;
    for (const point of mounts.get(d.dev) ?? []) inUse.push(`${where} is mounted on ${point}${point === '/' ? ' (the running system)' : ''}`);
    if (swaps.has(d.dev)) inUse.push(`${where} is in use as swap`);
    const holders = await readdir(`/sys/class/block/${d.name}/holders`).catch(() => [] as string[]);
    if (holders.length) inUse.push(`${where} is held by ${holders.join(', ')}`);
  }
  // A partition's queue is its disk's: the sysfs folder above it (block/partitions/core.c).
  const queue = join(await realpath(folder), isPartition ? '..' : '', 'queue');
  const limit = async (file: string) => Number((await readText(join(queue, file))) ?? 0) > 0;
  const zeroing = { writeZeroes: await limit('write_zeroes_max_bytes'), discard: await limit('discard_max_bytes') };
  return { path, kind: 'block', size, name, isPartition, model, inUse, zeroing };
}

/** What the confirmation names: "/dev/sdb (sdb, Ultra USB 3.0, 29.8 GiB)". */
export function describeTarget(t: FlashTarget): string {
  if (t.kind === 'file') return `${t.path} (a regular file of ${formatBytes(t.size)})`;
  const model = t.model ? `, ${t.model}` : '';
  return `${t.path} (${t.name}${t.isPartition ? ', a partition' : ''}${model}, ${formatBytes(t.size)})`;
}

/**
 * Why `target` must not receive an image of `imageSize` bytes (undefined: it may). `imageHasTable`
 * says whether the image holds a partition table (then the target must be a whole disk) or is
 * a bare file system (then a partition).
 */
export function refusalFor(target: FlashTarget, imageSize: number, imageHasTable: boolean): string | undefined {
  const what = describeTarget(target);
  if (target.inUse.length) return `${what} is in use (${target.inUse.join('; ')}): unmount it first; nothing was written`;
  if (target.size < imageSize) {
    return `${what} is smaller than the image (${imageSize} bytes needed, it holds ${target.size}); nothing was written`;
  }
  if (target.kind === 'block' && target.isPartition && imageHasTable) {
    return `${what} is a partition but the image holds a partition table: give the whole disk; nothing was written`;
  }
  if (target.kind === 'block' && !target.isPartition && !imageHasTable) {
    return `${what} is a whole disk but the image holds no partition table (a bare file system goes to a partition); nothing was written`;
  }
  return undefined;
}
