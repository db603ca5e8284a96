import type { DiskReader } from '../model/disk-reader.js';
import type { Finding } from '../model/findings.js';

/** A partition as `info` shows it, whatever the scheme. */
export interface TablePartition {
  /** 1-based: GPT entry slot, MBR 1-4 primaries and 5+ logicals, BSD a=1, b=2, c=3 ... */
  index: number;
  /** Scheme-specific name when known: `freebsd-ufs`, `fat32-lba`, `4.2BSD` ... else the raw type. */
  typeName: string;
  /** Raw type: GUID text (GPT), `0xa5` (MBR), fstype number as text (BSD). */
  rawType: string;
  /** GPT name; BSD partition letter. */
  label?: string;
  /** In sectors of the table's sectorSize, relative to the start of the table's disk/slice. */
  firstLba: number;
  /** Inclusive. */
  lastLba: number;
  sizeBytes: number;
  /** GPT attribute names (unnamed bits as `bitN`). */
  attributes?: string[];
  /** GPT raw attributes as 0x-prefixed 16-digit hex. */
  attributesRaw?: string;
  guid?: string;
  /** MBR active (bootable) flag. */
  active?: boolean;
  /** MBR: true for a logical partition inside the extended partition. */
  logical?: boolean;
  /** A table found inside this partition (MBR slice -> BSD label). Filled in by inspect. */
  nested?: PartitionTable;
  /** What the partition holds (ufs2, fat32, zfs, empty ...), by its superblock. Filled in by inspectImage. */
  filesystem?: { kind: string; label?: string };
}

export interface PartitionTable {
  scheme: 'gpt' | 'mbr' | 'bsd' | 'ebr';
  sectorSize: number;
  /** Byte offset of this table's disk or slice inside the whole image (0 for the outer table). */
  offset: number;
  /** Size in bytes of the disk or slice this table describes. */
  diskBytes: number;
  diskGuid?: string;
  diskSignature?: string;
  firstUsableLba?: number;
  lastUsableLba?: number;
  entryCount?: number;
  partitions: TablePartition[];
  /**
   * A GPT whose sector 0 is a hybrid MBR (a 0xEE protective entry beside real partitions, as
   * Boot Camp and `sgdisk -h` write): what MBR-only tools and BIOS boot code see instead.
   */
  hybridMbr?: PartitionTable;
}

/** What a probe found: the table (from the best valid copy) and every verify finding. */
export interface TableReadResult {
  table: PartitionTable;
  findings: Finding[];
}

/** Returns null when the disk does not carry this scheme at all. Never throws on bad bytes. */
export type TableProbe = (disk: DiskReader) => Promise<TableReadResult | null>;
