/** The GUID Partition Table (UEFI 2.10 section 5.3) as a SchemeHandler. */
import { BOOTCODE_KINDS } from '../../../bootcode/kinds.js';
import { gptTypeGuid } from '../../../formats/schemes/gpt-types.js';
import type { SchemeHandler } from '../handler.js';
import { encodeGpt } from './encode.js';
import { probeGpt } from './probe.js';
import { gptSlots } from './slots.js';

/** Table 5-6: PartitionName is 36 UTF-16 code units. */
const NAME_UNITS = 36;

export const gptHandler: SchemeHandler = {
  name: 'gpt',
  probeOrder: 0,
  capabilities: {
    labels: { maxLength: NAME_UNITS },
    guids: true,
    attributes: true,
    activeFlag: false,
    diskSignature: 'given',
    gptboot: true,
    bootcode: { bytes: BOOTCODE_KINDS.mbr.maxBytes, what: 'the protective MBR boot area' },
  },
  defaultAlign: '1M',
  geometry(sectorSize, entries = 128) {
    // UEFI 2.10 section 5.3: LBA 0 protective MBR, LBA 1 header, then the entry array (128-byte entries).
    const entrySectors = Math.ceil((entries * 128) / sectorSize);
    return { firstUsable: 2 + entrySectors, trailerSectors: 1 + entrySectors, entries };
  },
  resolveType(type) {
    const gptType = gptTypeGuid(type);
    return { value: { gptType }, problem: gptType ? undefined : 'is not a GPT type (use a name such as freebsd-ufs, efi, linux-data, or a GUID)' };
  },
  rawType: (v) => v.gptType ?? '',
  tableIndexes: (logical) => logical.map((_, i) => i + 1),
  checkLimits(c) {
    if (c.partitions.length > c.entries) c.problem(c.at('entries'), `${c.entries} entries cannot hold ${c.partitions.length} partitions`);
  },
  encode: encodeGpt,
  probe: (disk) => probeGpt(disk),
  describe: (t) => (t.entryCount !== undefined ? [`${t.entryCount} entries`] : []),
  mkimg: {},
  slots: gptSlots,
};
