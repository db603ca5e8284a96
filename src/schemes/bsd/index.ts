/** The BSD disklabel (FreeBSD sys/sys/disk/bsd.h) as a SchemeHandler, on its own or inside a slice. */
import { BOOTCODE_KINDS } from '../../../bootcode/kinds.js';
import { BSD_BOOT_AREA, BSD_FSTYPES } from '../../../formats/schemes/bsd.js';
import { FREEBSD_TYPE } from '../../../formats/schemes/gpt-types.js';
import type { SchemeHandler } from '../handler.js';
import { encodeBsd } from './encode.js';
import { probeBsd } from './probe.js';

/** BSD partition letters in slot order, without 'c' (the raw partition; FreeBSD bsd.h RAW_PART 2). 20 slots in all. */
export const BSD_LETTERS = 'abdefghijklmnopqrst';

export const bsdHandler: SchemeHandler = {
  name: 'bsd',
  probeOrder: 3,
  capabilities: {
    guids: false,
    attributes: false,
    activeFlag: false,
    rawPartitionLabel: 'c',
    bootcode: { bytes: BOOTCODE_KINDS.bsd.maxBytes, what: 'the BSD boot area' },
  },
  defaultAlign: '4K',
  // The boot area (8 KiB, label inside) precedes the first partition.
  geometry: (sectorSize) => ({ firstUsable: Math.ceil(BSD_BOOT_AREA / sectorSize), trailerSectors: 0, entries: 20 }),
  resolveType(type) {
    const key = Object.keys(BSD_FSTYPES).find((k) => k.toLowerCase() === type.toLowerCase());
    const raw = /^(?:0x[0-9a-f]+|[0-9]+)$/i.test(type) ? Number(type) : undefined;
    const bsdFstype = key !== undefined ? BSD_FSTYPES[key] : raw !== undefined && raw <= 255 ? raw : undefined;
    return { value: { bsdFstype }, problem: bsdFstype === undefined ? 'is not a BSD fstype (use 4.2BSD, swap, ZFS, unused or a number)' : undefined };
  },
  rawType: (v) => String(v.bsdFstype),
  tableIndexes: (logical) => logical.map((_, i) => BSD_LETTERS.charCodeAt(i) - 96),
  partitionLetter: (i) => BSD_LETTERS[i],
  checkLimits(c) {
    if (c.partitions.length > BSD_LETTERS.length) c.problem(c.at('partitions'), `a BSD label holds at most ${BSD_LETTERS.length} partitions besides c`);
  },
  encode: encodeBsd,
  probe: (disk) => probeBsd(disk),
  // MBR type 0xa5 (FreeBSD slice) and GPT `freebsd` partitions hold BSD labels (FreeBSD mbr.h, gpt.h).
  nestedIn: new Set(['0xa5', FREEBSD_TYPE]),
  mkimg: { endOnCylinder: { minBytes: 8192 } },
};
