/**
 * The contract between the engine and each partition scheme (GPT, MBR, EBR, BSD), after FreeBSD
 * mkimg's `struct mkimg_scheme` and qemu's BlockDriver: what the scheme can hold (limits and
 * capabilities), where its tables sit (geometry), how layout type names map to its type values,
 * how a plan becomes table bytes (encode), how a table is found and checked (probe), and the
 * in-place edits it supports (slots). Each scheme lives in src/schemes/<scheme>/ and exports
 * one handler from its index.ts; src/schemes/registry.ts lists them, one line each.
 *
 * The plan types below are structural: layout/plan.ts's PlannedImage satisfies TablePlan, so
 * schemes/ never imports layout/.
 */
import type { SlotEntry } from '../../formats/boot/gptboot.js';
import type { DiskReader } from '../model/disk-reader.js';
import type { PartitionTable, TablePartition, TableReadResult } from './types.js';

export type SchemeName = PartitionTable['scheme'];

/** A layout type name resolved to the scheme's value (one of these is set). */
export interface ResolvedType {
  gptType?: string;
  mbrType?: number;
  bsdFstype?: number;
}

export interface TableGeometry {
  /** First sector a partition may use. */
  firstUsable: number;
  /** Sectors the table needs at the end of the disk (GPT backup array + header). */
  trailerSectors: number;
  /** Entry count: GPT entries, MBR slots, EBR chain length, BSD slots. */
  entries: number;
}

/** What a scheme can hold; the engine asks these instead of comparing scheme names. */
export interface SchemeCapabilities {
  /** Partition names (GPT: 36 UTF-16 code units). */
  labels?: { maxLength: number };
  /** Partition GUIDs and a disk GUID. */
  guids: boolean;
  /** 64-bit partition attributes (GPT bootme, bootonce ...). */
  attributes: boolean;
  /** A per-partition active (bootable) flag. */
  activeFlag: boolean;
  /** Logical partitions: 'marked' when the layout marks them (MBR), 'all' when every partition is one (a bare EBR chain). */
  logicals?: 'marked' | 'all';
  /** The 32-bit disk signature at byte 440: 'seeded' derives one when the layout gives none, 'given' only writes a given one. */
  diskSignature?: 'seeded' | 'given';
  /** Largest disk the table addresses, in sectors (u32 LBAs). */
  maxDiskSectors?: number;
  /** The label of a partition that stands for the whole disk (BSD `c`), not a data partition. */
  rawPartitionLabel?: string;
  /** Tables this scheme's images are also read as (a short bare EBR chain reads as an MBR). */
  readsAs?: readonly SchemeName[];
  /** Booted by FreeBSD's pmbr and gptboot: freebsd-boot stages, bootme/bootonce/bootfailed attributes (verify --boot checks them). */
  gptboot?: boolean;
  /** Boot code area: its size in bytes (0: none) and its name for messages. */
  bootcode: { bytes: number; what: string };
}

/** A partition of a plan, as the encoder needs it (layout/plan.ts's PlannedPartition satisfies it). */
export interface TablePlanPartition extends ResolvedType {
  index: number;
  startLba: number;
  sectors: number;
  label?: string;
  bsdLetter?: string;
  guid?: string;
  attributes: bigint;
  active: boolean;
  logical: boolean;
  ebrLba?: number;
}

/** A planned table (layout/plan.ts's PlannedImage satisfies it). */
export interface TablePlan {
  sectorSize: number;
  totalSectors: number;
  diskGuid?: string;
  diskSignature?: number;
  entries: number;
  geometry: { heads: number; sectorsPerTrack: number };
  bootcode?: Uint8Array;
  partitions: readonly TablePlanPartition[];
  extended?: { startLba: number; sectors: number; slot: number };
}

/** Bytes to place at a byte offset of the disk. */
export interface TableBytes {
  offset: number;
  bytes: Uint8Array;
}

/** The per-scheme limit checks of a layout, with a place to put problems. */
export interface LimitCheck {
  partitions: ReadonlyArray<{ path: string; logical: boolean; active: boolean }>;
  totalSectors: number;
  entries: number;
  diskSignatureGiven: boolean;
  /** The JSON path of a layout field (`partitions`, `size` ...). */
  at(field: string): string;
  problem(path: string, message: string): void;
}

/** mkimg's per-scheme metadata rules (usr.bin/mkimg/<scheme>.c `metadata` callbacks). */
export interface MkimgRules {
  /** Partitions start on track boundaries (mbr.c, ebr.c) rather than block boundaries. */
  alignToTrack?: boolean;
  /** A partition's size is rounded up to whole tracks (ebr.c). */
  roundSizeToTrack?: boolean;
  /** The image ends on a cylinder boundary, past the boot area (bsd.c SCHEME_META_IMG_END). */
  endOnCylinder?: { minBytes: number };
}

/** Options for probing. */
export interface ProbeOptions {
  /** Logical sector size to read with, for schemes whose table does not say (MBR, EBR). */
  sectorSize?: number;
  /**
   * How much a reading's partitions look like what they claim (file systems found where they
   * start ...), to choose between sector sizes. Supplied by the caller: schemes/ does not
   * read file systems.
   */
  evidence?(read: TableReadResult): Promise<number>;
}

/** Where an editor writes (io/image-editor.ts's ImageEditor satisfies it). */
export interface TableWriter {
  readonly disk: DiskReader;
  writeBytes(offset: number, bytes: Uint8Array): Promise<void>;
  /**
   * A write barrier: every write issued before it is durable before any write issued after it
   * starts (raw images: fdatasync; containers, rewritten whole and renamed at commit: nothing).
   */
  barrier(): Promise<void>;
}

/** A firmware slot (an OS partition of an A/B image) as the scheme sees it. */
export interface SchemeSlot {
  index: number;
  label: string;
  type: string;
  attributes: string[];
  /** First sector of the slot's data, in `sectorSize` sectors. */
  firstLba: number;
  /** Byte offset and size of the slot's data. */
  offset: number;
  sizeBytes: number;
  /** The slot that boots when no one-time request is pending. */
  isDefault: boolean;
}

export interface SchemeSlots {
  slots: SchemeSlot[];
  /** What the boot code would boot next, and why. */
  next: { index?: number; label?: string; reason: string };
  /** Boot stage partitions in order (GPT freebsd-boot): byte offset and size. */
  bootStages: Array<{ index: number; label: string; offset: number; sizeBytes: number }>;
}

/**
 * A/B slots on this scheme (NanoBSD): GPT through gptboot's attributes, MBR through the active
 * flag. `table` is the probed table (its sector size is the detected one).
 */
export interface SlotSupport {
  read(disk: DiskReader, table: PartitionTable): Promise<SchemeSlots>;
  /** The slot `ref` names, refused when it boots by default unless `force`; checked before anything is written. */
  target(
    disk: DiskReader,
    table: PartitionTable,
    ref: number | string,
    opts: { force?: boolean; bootonce?: boolean },
  ): Promise<{ index: number; label: string; offset: number; sizeBytes: number }>;
  /** Make `ref` the permanent default. */
  activate(editor: TableWriter, table: PartitionTable, ref: number | string): Promise<void>;
  /** One-time boots (gptboot's bootonce): request one, confirm after a good boot. */
  oneTimeBoot?: {
    /** The table's entries as gptboot sees them (for `slot simulate`). */
    entries(disk: DiskReader): Promise<SlotEntry[]>;
    request(editor: TableWriter, ref: number | string): Promise<SlotEntry[]>;
    /** What rc.d/gptboot does after a good boot; returns its log lines. */
    confirm(editor: TableWriter): Promise<string[]>;
  };
  /** Without oneTimeBoot: what `slot confirm` says, and why `slot bootonce` is refused. */
  noOneTimeBoot?: { confirm: string; bootonce: string };
}

export interface SchemeHandler {
  name: SchemeName;
  /** Lower probes first (GPT before a bare EBR chain before MBR before BSD). */
  probeOrder: number;
  capabilities: SchemeCapabilities;
  /** Alignment when the layout gives none. */
  defaultAlign: string;
  /** Where the tables sit for a layout with `entries` (GPT) at this sector size. */
  geometry(sectorSize: number, entries?: number): TableGeometry;
  /** A layout type name (or raw value) to the scheme's value; `problem` (after the quoted name) when it is none. */
  resolveType(type: string): { value: ResolvedType; problem?: string };
  /** The raw type text a resolved type probes back as (`0xa5`, a GUID, an fstype number). */
  rawType(value: ResolvedType): string;
  /** Table indexes of the partitions, in layout order, given which are logical. */
  tableIndexes(logical: readonly boolean[]): number[];
  /** BSD: the letter of the i-th partition. */
  partitionLetter?(i: number): string;
  /** Partition-count and size limits of a layout. */
  checkLimits(c: LimitCheck): void;
  /** The table bytes of a plan (partition contents are placed by the caller). */
  encode(plan: TablePlan): TableBytes[];
  /** Find the table; null when the disk does not carry this scheme. Never throws on bad bytes. */
  probe(disk: DiskReader, opts?: ProbeOptions): Promise<TableReadResult | null>;
  /** Partition types (raw type text, lower case) whose contents hold a table of this scheme (BSD labels in MBR 0xa5 slices). */
  nestedIn?: ReadonlySet<string>;
  /** Text for `info`'s table header beyond the common fields. */
  describe?(t: PartitionTable): string[];
  mkimg: MkimgRules;
  slots?: SlotSupport;
}

/** True for partitions that are not data partitions: the BSD raw `c` and an MBR extended container. */
export function isContainerPartition(handler: SchemeHandler | undefined, p: TablePartition): boolean {
  return p.typeName === 'extended' || (handler?.capabilities.rawPartitionLabel !== undefined && p.label === handler.capabilities.rawPartitionLabel);
}
