/** The MBR (primaries, one extended partition, logicals in its EBR chain) as a SchemeHandler. */
import { BOOTCODE_KINDS } from '../../../formats/boot/bootcode-kinds.js';
import { mbrTypeByte } from '../../../formats/schemes/mbr-types.js';
import type { SchemeHandler } from '../handler.js';
import { encodeMbr } from './encode.js';
import { makeMbrProbe } from './probe.js';
import { mbrSlotSupport } from './slots.js';

/** u32 LBA fields: MBR entries address at most 2^32 - 1 sectors. */
export const MBR_MAX_SECTORS = 0xffffffff;
const PRIMARY_SLOTS = 4;

export function resolveMbrType(type: string): { value: { mbrType?: number }; problem?: string } {
  const mbrType = mbrTypeByte(type);
  const bad = mbrType === undefined || mbrType === 0;
  return { value: { mbrType }, problem: bad ? 'is not an MBR type (use a name such as freebsd, efi, fat32-lba, linux, or a byte like 0xa5)' : undefined };
}

export const mbrRawType = (v: { mbrType?: number }): string => `0x${(v.mbrType ?? 0).toString(16).padStart(2, '0')}`;

export const mbrHandler: SchemeHandler = {
  name: 'mbr',
  probeOrder: 2,
  capabilities: {
    guids: false,
    attributes: false,
    activeFlag: true,
    logicals: 'marked',
    diskSignature: 'seeded',
    maxDiskSectors: MBR_MAX_SECTORS,
    bootcode: { bytes: BOOTCODE_KINDS.mbr.maxBytes, what: 'the MBR boot area' },
  },
  defaultAlign: '1M',
  geometry: () => ({ firstUsable: 1, trailerSectors: 0, entries: PRIMARY_SLOTS }),
  resolveType: resolveMbrType,
  rawType: mbrRawType,
  /** Primaries take slots 1-4 in order, the extended partition the next slot when logicals begin; logicals are 5 on. */
  tableIndexes(logical) {
    let slot = 0;
    let next = 5;
    let extended = false;
    return logical.map((l) => {
      if (!l) return ++slot;
      if (!extended) {
        extended = true;
        slot++;
      }
      return next++;
    });
  },
  checkLimits(c) {
    const logicalAt = c.partitions.map((d) => d.logical);
    const primaries = logicalAt.filter((l) => !l).length + (logicalAt.some(Boolean) ? 1 : 0);
    if (primaries > PRIMARY_SLOTS)
      c.problem(
        c.at('partitions'),
        `an MBR holds 4 primary partitions (the extended partition counts as one); this layout needs ${primaries}: mark some "logical": true`,
      );
    const first = logicalAt.indexOf(true);
    const last = logicalAt.lastIndexOf(true);
    for (let i = first; first >= 0 && i <= last; i++) {
      if (!logicalAt[i]) c.problem(c.partitions[i].path, 'logical partitions must follow one another (they share one extended partition)');
    }
    if (c.totalSectors > MBR_MAX_SECTORS) c.problem(c.at('size'), `an MBR addresses at most ${MBR_MAX_SECTORS} sectors; use "scheme": "gpt" for larger disks`);
    if (c.partitions.filter((d) => d.active).length > 1) c.problem(c.at('partitions'), 'more than one partition is marked active');
  },
  encode: encodeMbr,
  /**
   * An MBR says nothing of its sector size: read it both ways (unless told) and keep the reading
   * whose partitions start where something recognisable is (the caller's evidence), as a person
   * with a hex editor would. Ties go to 512, the usual size.
   */
  async probe(disk, opts = {}) {
    if (opts.sectorSize !== undefined) return makeMbrProbe(opts.sectorSize)(disk);
    const at512 = await makeMbrProbe(512)(disk);
    if (!at512?.table.partitions.length || !opts.evidence) return at512;
    const at4096 = await makeMbrProbe(4096)(disk);
    if (!at4096) return at512;
    return (await opts.evidence(at4096)) > (await opts.evidence(at512)) ? at4096 : at512;
  },
  mkimg: { alignToTrack: true },
  slots: mbrSlotSupport,
};
