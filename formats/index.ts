/**
 * diskmint's codecs, as one entry (`diskmint/formats`): partition tables, VM disk containers,
 * file-system structures and boot logic, bytes in and bytes out. Pure: no I/O, no Node
 * built-ins, so it bundles for a browser as it is. Parsers throw only FormatError.
 */
export * from './common/errors.js';
export * from './common/bytes.js';
export * from './common/crc32.js';
export * from './common/crc32c.js';
export * from './common/guid.js';
export * from './common/compression.js';
export * from './common/zstd-frame.js';
export * from './common/xz-container.js';

export * from './schemes/gpt.js';
export * from './schemes/gpt-types.js';
export * from './schemes/gpt-attributes.js';
export * from './schemes/mbr.js';
export * from './schemes/mbr-types.js';
export * from './schemes/chs.js';
export * from './schemes/bsd.js';

export * from './containers/qcow2.js';
export * from './containers/qcow2-refcounts.js';
export * from './containers/qcow2-tables.js';
export * from './containers/vmdk.js';
export * from './containers/vmdk-descriptor.js';
export * from './containers/vhd.js';
export * from './containers/vhdx.js';
export * from './containers/vhdx-bat.js';
export * from './containers/vhdx-log.js';
export * from './containers/vhdx-metadata.js';

export * from './fs/fat-boot.js';
export * from './fs/fat-fsinfo.js';
export * from './fs/fat-dir.js';
export * from './fs/fat-names.js';
export * from './fs/fat-table.js';
export * from './fs/ufs.js';
export * from './fs/nvlist.js';
export * from './fs/zfs-label.js';
export * from './fs/mtree.js';

export * from './boot/gptboot.js';

export * from './bmap/bmap.js';

export * from './archive/tar.js';
export * from './archive/file-flags.js';
export * from './archive/archive-path.js';
