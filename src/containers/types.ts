/**
 * The contract between the engine and each container format (raw, qcow2, VMDK, VHD, VHDX).
 * A handler detects its format by content, opens it as a sparse virtual disk, and writes a
 * virtual disk (an extent map) into a ByteSink. Codecs for the on-disk structures live in
 * formats/containers/; the handler in src/containers/<format>/ does the I/O.
 */
import type { DiskReader } from '../model/disk-reader.js';
import type { VirtualDisk } from '../model/extents.js';
import type { ByteSink } from '../io/sink.js';

export type ContainerFormat = 'raw' | 'qcow2' | 'vmdk' | 'vhd' | 'vhdx';

/** An open image, read as its virtual disk. */
export interface ContainerReader extends DiskReader {
  readonly format: ContainerFormat;
  /** e.g. 'monolithicSparse', 'streamOptimized', 'dynamic', 'fixed', 'v3'. */
  readonly subformat?: string;
  /**
   * Ranges that may hold data, ascending and disjoint; everything else reads as zeros. Cost
   * follows the metadata, not the virtual size (a 1 TiB image with little data answers fast).
   */
  allocatedRanges(): AsyncIterable<{ offset: number; length: number }>;
  /**
   * Where a raw image may hold data, known without reading a byte (the kernel's map, or the whole
   * file): wider than allocatedRanges, which reads these to drop the zero blocks. A reader that
   * reads its data anyway (compare, bmap) takes these instead, so each byte is read once.
   */
  dataRanges?(): AsyncIterable<{ offset: number; length: number }>;
  /** Format facts for `info` (cluster size, compression type, adapter type, ...). */
  details(): Record<string, string | number | boolean>;
}

export interface OpenContext {
  /** Path of the image (for messages and for VMDK descriptors' sibling extents). */
  path: string;
  /** qcow2 backing files / VMDK parent links are refused unless allowed. */
  allowBacking?: boolean;
  /** qcow2 external data files are refused unless allowed. */
  allowExternalData?: boolean;
  /**
   * Open a file named in a descriptor, resolved inside the image's own folder. Absolute paths
   * and `..` components are refused with a FormatError before anything is opened.
   */
  openSibling(name: string): Promise<DiskReader>;
  /**
   * Open the image a qcow2 backing file names (only asked when allowBacking is set): `name` as the
   * image stores it, resolved against the image's own folder when relative (as qemu-img does);
   * `format` the one the image records (qcow2's backing_format, qemu's driver names), which the
   * content must match. The chain is bounded (a loop, or one deeper than 16 images, is a
   * FormatError). Absent where no chain may be followed.
   */
  openBacking?(name: string, format?: string): Promise<ContainerReader>;
}

export interface WriteContext {
  /** qemu-img style `-o key=value` options, already split; unknown keys are refused by the handler. */
  options: Readonly<Record<string, string>>;
  /**
   * Compress data where the format can (`-c`): the algorithm asked for (`--compression`; when
   * undefined the handler chooses, e.g. from qcow2's compression_type) and level. What is
   * compressed, how and when a compressed block is kept is the handler's policy.
   */
  compress?: { algorithm?: 'deflate' | 'zstd'; level?: number };
  /**
   * Compression threads (default: every core); a handler that compresses makes its compressor
   * with this many. Output bytes never depend on it.
   */
  threads?: number;
  /** Final output path ('-' for a pipe); VMDK monolithicFlat names its extent after it. */
  outputPath: string;
  /** A second output file written beside the main one (monolithicFlat's -flat.vmdk), renamed with it. */
  createSiblingOutput(name: string): Promise<ByteSink>;
  /** Called with bytes of virtual disk processed, for progress bars. */
  onProgress?(doneBytes: number, totalBytes: number): void;
}

export interface ContainerHandler {
  format: ContainerFormat;
  /** File name extensions that select this format for output (`.qcow2`, `.vmdk` ...). */
  extensions: readonly string[];
  /** Option keys (qemu-img names) the writer accepts. */
  optionKeys: readonly string[];
  /** Whether the format can hold compressed data at all (`-c`); which subformats do, and how, is the writer's policy. */
  compresses: boolean;
  /** Cheap check of magic bytes (raw, the fallback, accepts any file). Never throws on short or odd files. */
  detect(file: DiskReader): Promise<boolean>;
  /** Open for reading. Throws FormatError (typed, naming the problem) on bad input. */
  open(file: DiskReader, ctx: OpenContext): Promise<ContainerReader>;
  /**
   * Refuse, before anything is read or written, an output this writer cannot make: its `-o`
   * options, an encoder this install lacks (raw .xz). Commands call it first (write-image.ts
   * refuseUnwritableOutput); absent: `write` is the first to say.
   */
  checkOutput?(outputPath: string, options: Readonly<Record<string, string>>): void;
  /** Write `disk` as this format. Forward-only unless `sink.seekable`; throws a DiskmintError when a pipe can't work. */
  write(disk: VirtualDisk, sink: ByteSink, ctx: WriteContext): Promise<void>;
  /** In-place edits (absent: every edit rewrites the container to a temp file and renames it). */
  editing?: ContainerEditing;
}

/**
 * The container's own file, opened for writing in place (src/io/image-editor.ts makes it).
 * Every write goes through here, so tests can count and stop writes, and crash-order tests see
 * the groups between barriers.
 */
export interface EditableFile extends DiskReader {
  /** The file's current length (grows as writes land past it). */
  readonly size: number;
  /** pwrite the whole of `data` at `offset` (may extend the file). */
  write(offset: number, data: Uint8Array): Promise<void>;
  /** fdatasync: every write issued so far is durable before any later write is issued. */
  barrier(): Promise<void>;
}

/**
 * One in-place edit of a container, through the format's own allocation rules (qcow2 clusters
 * and refcounts, VMDK grain tables, VHD/VHDX BAT). `write` may put data into clusters/grains/
 * blocks that are already the image's own at once, and data for new ones at the end of the file;
 * the table updates that make new data visible wait for `flush`, which issues them in crash-safe
 * order (data and new tables, barrier, table entries, barrier, headers, barrier), so a stop at
 * any moment, with the writes since the last barrier landing in any order, leaves a container
 * that reads as either the old or the new bytes of each write and passes `qemu-img check`
 * (leaked clusters at most). After `flush` a freshly opened reader sees every write.
 */
export interface ContainerEditSession {
  /** Write virtual-disk bytes (any offset and length inside the virtual size). */
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Make every write so far durable and visible, in crash-safe order (see above). */
  flush(): Promise<void>;
}

/**
 * Why an image cannot be edited in place (streamOptimized VMDK, a qcow2 with internal snapshots,
 * a full refcount table ...): the editor then rewrites it to a temp file and renames it, keeping
 * owner and mode. `keepsEverything` false means the rewrite would lose something (snapshots,
 * a log): the edit is refused with `reason` instead.
 */
export interface InPlaceRefusal {
  refused: string;
  /** false: a rewrite would drop something the user has (the edit is refused). */
  rewriteKeepsEverything: boolean;
}

export interface ContainerEditing {
  /**
   * Start an in-place edit. `reader` is the container opened on the same file (for the old bytes
   * of a partly written cluster, and for the format's options); `file` writes into it.
   */
  openForEdit(file: EditableFile, reader: ContainerReader): Promise<ContainerEditSession | InPlaceRefusal>;
}
