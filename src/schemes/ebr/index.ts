/** A bare EBR chain (mkimg -s ebr: an extended partition's contents) as a SchemeHandler. */
import { DEFAULT_MAX_LOGICALS } from '../../../formats/schemes/mbr.js';
import type { SchemeHandler } from '../handler.js';
import { encodeEbr } from '../mbr/encode.js';
import { MBR_MAX_SECTORS, mbrRawType, resolveMbrType } from '../mbr/index.js';
import { probeBareEbrChain } from './probe.js';

export const ebrHandler: SchemeHandler = {
  name: 'ebr',
  probeOrder: 1,
  capabilities: {
    guids: false,
    attributes: false,
    activeFlag: false,
    logicals: 'all',
    maxDiskSectors: MBR_MAX_SECTORS,
    // A chain of one or two partitions reads as an MBR (see probe.ts).
    readsAs: ['mbr'],
    bootcode: { bytes: 0, what: 'an EBR chain (it has no boot area)' },
  },
  defaultAlign: '1M',
  // The first EBR is sector 0, each partition follows its own EBR.
  geometry: () => ({ firstUsable: 0, trailerSectors: 0, entries: DEFAULT_MAX_LOGICALS }),
  resolveType: resolveMbrType,
  rawType: mbrRawType,
  // Read as an MBR: the first partition is 1, the rest 5 on.
  tableIndexes: (logical) => logical.map((_, i) => (i === 0 ? 1 : 4 + i)),
  checkLimits(c) {
    if (c.totalSectors > MBR_MAX_SECTORS) c.problem(c.at('size'), `an EBR chain addresses at most ${MBR_MAX_SECTORS} sectors`);
    if (c.partitions.length > c.entries) c.problem(c.at('partitions'), `an EBR chain of more than ${c.entries} partitions is not read back by diskmint`);
    if (c.diskSignatureGiven) c.problem(c.at('diskSignature'), 'an EBR chain has no disk signature (only an MBR has)');
  },
  encode: encodeEbr,
  /** At the given sector size, else 512 then 4096. */
  async probe(disk, opts = {}) {
    for (const size of opts.sectorSize !== undefined ? [opts.sectorSize] : [512, 4096]) {
      const read = await probeBareEbrChain(disk, size);
      if (read) return read;
    }
    return null;
  },
  mkimg: { alignToTrack: true, roundSizeToTrack: true },
};
