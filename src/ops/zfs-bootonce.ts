/**
 * `diskmint zfs bootonce`: write (or remove) a one-time boot request in a vdev's four boot
 * environment blocks, offline, as FreeBSD's zfsbootcfg does (libzfsbootenv
 * lzbe_set_boot_device(lzbe_add) + vdev_label_write_bootenv), label by label in a torn-write-safe
 * order.
 */
import { DiskmintError } from '../model/errors.js';
import { FormatError } from '../../formats/common/errors.js';
import { parseImageSpec } from './image-spec.js';
import { openImageEditor, type EditorOptions } from '../io/image-editor.js';
import { BOOTENV_OFFSET, encodeBootenvBlock, labelOffsets, VB_NVLIST, type Bootenv } from '../../formats/fs/zfs-label.js';
import { nvAdd, nvlist, nvRemove, nvString, nvToJson, type NvList } from '../../formats/fs/nvlist.js';
import { BOOTENV_VERSION, FREEBSD_BOOTONCE, bootenvAsNvlist, currentBootenv, descriptorPool, readOrExplain, vdevOf } from './zfs.js';

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

/** zfsbootcfg's descriptor: a value starting with `zfs:` as given, else `zfs:VALUE:`. */
export function bootonceDescriptor(value: string): string {
  return value.startsWith('zfs:') ? value : `zfs:${value}:`;
}

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
