/**
 * Ready-made layouts. `nanobsd`: GPT firmware with primary and fallback boot stages, an ESP,
 * two OS slots, cfg, optional swap and data (after FreeBSD's nanobsd and poudriere-image
 * firmware layouts). `nanobsd-mbr`: the classic NanoBSD MBR layout (tools/tools/nanobsd).
 */
import { stat } from 'node:fs/promises';
import { DiskmintError } from '../model/errors.js';
import { BOOTCODE_KINDS } from '../../formats/boot/bootcode-kinds.js';
import type { Layout, PartitionSpec } from './schema.js';
import { FALLBACK_BOOTCODE } from './fallback-selector.js';

export const PRESETS = ['nanobsd', 'nanobsd-mbr'] as const;
export type PresetName = (typeof PRESETS)[number];

export interface PresetOptions {
  /** OS filesystem image for slot 1 (e.g. a UFS image from makefs). */
  os?: string;
  /** Instead of `os`: tree sources (folders, mtree:SPEC[@FOLDER]) for a UFS2 file system made in the build. */
  osFrom?: string[];
  /** Also copy the OS image into slot 2 (default: slot 2 empty). */
  copyOs?: boolean;
  cfg?: string;
  /** Instead of `cfg`: tree sources for a UFS2 file system labelled cfg. */
  cfgFrom?: string[];
  /** Folder for the ESP's FAT volume (GPT preset). */
  esp?: string;
  /** MBR boot code: pmbr (GPT) or boot0/mbr (MBR); "diskmint-fallback" (GPT): diskmint's boot-stage selector. */
  boot?: string;
  /** Boot stage: gptboot for the freebsd-boot partitions (GPT) or boot (boot1+boot2) for BSD slices (MBR). */
  bootStage?: string;
  /** Disk size (default 4G). */
  size?: string;
  /** OS slot size (default 1G). */
  osSize?: string;
  /** Data partition: a size, `rest` (default) or `none`. */
  data?: string;
  /** Swap size; omitted = no swap. */
  swap?: string;
}

/** A layout with placeholders, for `preset show` (users copy and edit it). */
export function presetTemplate(name: PresetName): Layout {
  return presetLayout(name, {
    os: 'os.ufs',
    cfg: 'cfg.ufs',
    esp: 'esp/',
    boot: name === 'nanobsd' ? '/boot/pmbr' : '/boot/boot0',
    bootStage: name === 'nanobsd' ? '/boot/gptboot' : '/boot/boot',
    swap: name === 'nanobsd' ? '1G' : undefined,
  });
}

async function requireFile(path: string | undefined, what: string, flag: string): Promise<string> {
  if (!path) throw new DiskmintError('BAD_ARGUMENT', `the preset needs ${what}: pass ${flag} FILE`);
  const st = await stat(path).catch(() => undefined);
  if (!st?.isFile()) throw new DiskmintError('INPUT', `${flag} ${path}: no such file (${what})`);
  return path;
}

/** Check inputs (boot code is never silently left out) and return the layout. */
export async function presetLayoutChecked(name: PresetName, o: PresetOptions): Promise<Layout> {
  if (name === 'nanobsd') {
    if (o.boot !== FALLBACK_BOOTCODE) await requireFile(o.boot, `protective-MBR boot code (FreeBSD's /boot/pmbr, or ${FALLBACK_BOOTCODE})`, '--boot');
    const stage = await requireFile(o.bootStage, "the boot stage for the freebsd-boot partitions (FreeBSD's /boot/gptboot)", '--boot-stage');
    const { size } = await stat(stage);
    const limit = BOOTCODE_KINDS['freebsd-boot'].maxBytes;
    if (size > limit)
      throw new DiskmintError(
        'BAD_ARGUMENT',
        `--boot-stage ${stage} is ${size} bytes; pmbr loads at most ${limit} bytes (545 KiB) from a freebsd-boot partition`,
      );
    if (size === 0) throw new DiskmintError('BAD_ARGUMENT', `--boot-stage ${stage} is empty`);
    if (o.esp) {
      const st = await stat(o.esp).catch(() => undefined);
      if (!st?.isDirectory()) throw new DiskmintError('INPUT', `--esp ${o.esp} is not a folder`);
    }
  } else {
    await requireFile(o.boot, "MBR boot code (FreeBSD's /boot/boot0 or /boot/mbr)", '--boot');
    await requireFile(o.bootStage, "the BSD boot blocks for the code slices (FreeBSD's /boot/boot)", '--boot-stage');
  }
  if (o.os && o.osFrom?.length) throw new DiskmintError('BAD_ARGUMENT', 'give --os FILE or --os-from SOURCE, not both');
  if (o.cfg && o.cfgFrom?.length) throw new DiskmintError('BAD_ARGUMENT', 'give --cfg FILE or --cfg-from SOURCE, not both');
  if (!o.osFrom?.length) await requireFile(o.os, 'an OS filesystem image for slot 1 (or --os-from a folder)', '--os');
  if (o.cfg) await requireFile(o.cfg, 'the cfg filesystem image', '--cfg');
  return presetLayout(name, o);
}

function presetLayout(name: PresetName, o: PresetOptions): Layout {
  const data: PartitionSpec[] =
    o.data === 'none'
      ? []
      : [{ type: name === 'nanobsd' ? 'freebsd-ufs' : 'freebsd', ...(name === 'nanobsd' ? { label: 'data' } : {}), size: o.data ?? 'rest' }];
  const osSize = o.osSize ?? '1G';
  // A file system image given as a file, or made from tree sources during the build (ufs contents).
  const os: PartitionSpec['contents'] = o.osFrom?.length ? { ufs: { from: o.osFrom } } : { file: o.os! };
  const cfg: PartitionSpec['contents'] = o.cfgFrom?.length ? { ufs: { from: o.cfgFrom, label: 'cfg' } } : o.cfg ? { file: o.cfg } : undefined;
  if (name === 'nanobsd') {
    const stage = { file: o.bootStage! };
    return {
      scheme: 'gpt',
      size: o.size ?? '4G',
      bootcode: o.boot,
      partitions: [
        { type: 'freebsd-boot', label: 'gptboot0', size: '545K', contents: stage },
        { type: 'freebsd-boot', label: 'gptboot1', size: '545K', contents: stage },
        { type: 'efi', label: 'efiboot0', size: '64M', contents: { fat: { ...(o.esp ? { from: o.esp } : {}), type: '32', label: 'EFISYS' } } },
        { type: 'freebsd-ufs', label: 'os1', size: osSize, attributes: ['bootme'], contents: os },
        { type: 'freebsd-ufs', label: 'os2', size: osSize, ...(o.copyOs ? { contents: os } : {}) },
        { type: 'freebsd-ufs', label: 'cfg', size: '32M', ...(cfg ? { contents: cfg } : {}) },
        ...(o.swap ? [{ type: 'freebsd-swap', label: 'swap', size: o.swap }] : []),
        ...data,
      ],
    };
  }
  // NanoBSD: 63 sectors x 16 heads, slices on track boundaries, the OS in each code slice's 'a'
  // partition at offset 16 (after the 8 KiB boot area), cfg NANO_CONFSIZE 2048 sectors.
  const codeSlice = (withOs: boolean): PartitionSpec => ({
    type: 'freebsd',
    size: osSize,
    contents: {
      image: {
        scheme: 'bsd',
        align: '16s',
        bootcode: o.bootStage,
        partitions: [{ type: '4.2BSD', size: 'rest', ...(withOs ? { contents: os } : {}) }],
      },
    },
  });
  return {
    scheme: 'mbr',
    size: o.size ?? '4G',
    align: '63s',
    geometry: { heads: 16, sectors: 63 },
    bootcode: o.boot,
    partitions: [
      { ...codeSlice(true), active: true },
      codeSlice(o.copyOs === true),
      { type: 'freebsd', size: '2048s', ...(cfg ? { contents: cfg } : {}) },
      ...data,
    ],
  };
}
