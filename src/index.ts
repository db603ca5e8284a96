/**
 * diskmint's library API: every CLI command is one of these functions first, and `openImage`
 * is the handle that reads, edits and converts one image. Internals (atomic writes, container
 * registries, readers' helpers) are not exported: import them from their modules in src/ if you
 * must, knowing they may change.
 */
export { openImage } from './ops/image.js';
export type { Image, OpenImageOptions, ImageVerifyOptions, ImageConvertOptions, ImageSlotWriteOptions, ProgressCallback } from './ops/image.js';
export { buildImage, planImage, withPlannedImage, loadLayout, summarisePlan } from './ops/build.js';
export type { BuildOptions, BuildResult, BuildSummary, BuiltPartition } from './ops/build.js';
export { inspectImage, inspectDisk, allTables } from './ops/inspect.js';
export type { ImageInspection, InspectOptions } from './ops/inspect.js';
export { verifyImage, alignmentFindings } from './ops/verify/verify.js';
export { repairImage, type RepairResult } from './ops/repair.js';
export type { VerifyOptions, VerifyReport } from './ops/verify/verify.js';
export { parseLayout, layoutJsonSchema, LayoutSchema } from './layout/schema.js';
export type { Layout, PartitionSpec } from './layout/schema.js';
export type { PlannedImage, PlannedPartition } from './layout/plan.js';
export { VirtualDisk } from './model/extents.js';
export type { DataExtent, ExtentSource, DataRun } from './model/extents.js';
export { writeRawImage } from './containers/raw/writer.js';
export type { ProgressReporter } from './io/progress.js';
export { openDisk } from './io/open-disk.js';
export { onTempNotice } from './io/temp-files.js';
export type { DiskReader } from './model/disk-reader.js';
export { memoryDiskReader, sliceDiskReader } from './model/disk-reader.js';
export type { Finding, Severity } from './model/findings.js';
export type { PartitionTable, TablePartition } from './schemes/types.js';
export { DiskmintError, FormatError } from './model/errors.js';
export { parseSizeSpec, formatBytes } from './model/size.js';
export { convertImage } from './ops/convert.js';
export { replayVhdxLog } from './containers/vhdx/replay.js';
export type { VhdxLogReplayResult } from './containers/vhdx/replay.js';
export { compareImages } from './ops/compare.js';
export type { CompareOptions, CompareResult } from './ops/compare.js';
export type { ConvertOptions, ConvertResult } from './ops/convert.js';
export { writeImage } from './io/write-image.js';
export type { WriteImageOptions, WriteImageResult } from './io/write-image.js';
export type { OpenDiskOptions, OpenedDisk } from './io/open-disk.js';
export type { ContainerFormat, ContainerReader } from './containers/types.js';
export { parseMkimgArgs, mkimgLayout } from './ops/mkimg.js';
export { slotStatus, slotWrite, slotBootonce, slotConfirm, slotActivate } from './ops/slots/slots.js';
export type { SlotStatus, SlotInfo, SlotWriteOptions, SlotWriteResult, SlotRef } from './ops/slots/slots.js';
export { slotSimulate, parseOutcomes } from './ops/slots/simulate.js';
export { presetLayoutChecked, presetTemplate, PRESETS } from './layout/presets.js';
export type { PresetOptions, PresetName } from './layout/presets.js';
export { createFatImage, listFat, catFat, extractFat, openFatVolume } from './ops/fat.js';
export { signImage } from './ops/sign.js';
export { verifyImageSignature } from './ops/sign-verify.js';
export { imageManifest } from './ops/sign-manifest.js';
export { writeKeyPair, generateKeyPair } from './ops/sign-keys.js';
export { createBundle } from './ops/bundle/create.js';
export { openBundle, bundleTargetCheck } from './ops/bundle/open.js';
export { zfsLabels, zfsBootenv } from './ops/zfs.js';
export { zfsSetBootonce } from './ops/zfs-bootonce.js';
export { zfsFindings } from './ops/zfs-findings.js';
export { buildFatVolume, minimumFatSize, treeFromFolder, treeFromObject, openFat } from './fs/fat/index.js';
export type { FatBuildOptions, FatVolume, FatTreeNode, FatReader, FatDirEntry, FatProblem } from './fs/fat/index.js';
export { openUfsVolume } from './ops/ufs/open.js';
export { listUfs } from './ops/ufs/ls.js';
export { catUfs } from './ops/ufs/cat.js';
export { extractUfs } from './ops/ufs/extract.js';
export { checkUfs } from './ops/ufs/check.js';
export { openUfs } from './fs/ufs/read.js';
export type { UfsReader, UfsEntry, UfsProblem } from './fs/ufs/read-types.js';
export type { UfsStat, UfsInode, UfsFileKind, UfsTime } from './fs/ufs/inode-types.js';
export type { UfsExtractReport } from './fs/ufs/read-extract.js';
export { createUfs } from './ops/ufs/create.js';
export type { UfsCreateOptions, UfsCreateResult } from './ops/ufs/create.js';
export { buildUfsVolume } from './fs/ufs/build.js';
export type { UfsBuildOptions, UfsVolume } from './fs/ufs/build.js';
export { flashImage, FlashInterrupted } from './ops/flash/flash.js';
export type { FlashOptions, FlashResult, FlashConfirmation, FlashProgress, FlashPhase, FlashTarget } from './ops/flash/flash.js';
export { createBmap, readBmapFile, blockMapOf } from './ops/bmap.js';
export type { CreateBmapOptions, CreateBmapResult } from './ops/bmap.js';
export { parseBmap, writeBmap } from '../formats/bmap/bmap.js';
export type { BlockMap, BmapRange, BmapChecksumType } from '../formats/bmap/bmap.js';
export { bootStatus, bootSimulate, bootUpdate, bootConfirm, installSelector } from './ops/boot/index.js';
export type {
  BootStatus,
  BootStageInfo,
  BootSimulation,
  BootUpdateOptions,
  BootUpdateResult,
  BootConfirmResult,
  InstallSelectorResult,
} from './ops/boot/index.js';
