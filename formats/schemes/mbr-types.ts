/**
 * MBR partition type bytes and their names.
 *
 * Sources: FreeBSD `sys/sys/disk/mbr.h` (DOSPTYP_*), FreeBSD mkimg aliases (`usr.bin/mkimg/mbr.c`,
 * `ebr.c`: ebr, efi, fat16b, fat32, fat32lba, freebsd), gpart alias names (`sys/geom/part/g_part.c`:
 * linux-data, linux-swap, linux-lvm, linux-raid, ms-ntfs ...) and the util-linux fdisk type list
 * (`include/pt-mbr-partnames.h`) for the rest.
 */

/** [type byte, canonical name, ...aliases]. The canonical name is what mbrTypeName returns. */
const TYPE_TABLE: ReadonlyArray<readonly [number, string, ...string[]]> = [
  [0x01, 'fat12'],
  [0x04, 'fat16-small'],
  [0x05, 'extended', 'ebr', 'ext', 'dos-extended'], // DOSPTYP_EXT; mkimg ALIAS_EBR
  [0x06, 'fat16', 'fat16b'], // DOSPTYP_FAT16; mkimg ALIAS_FAT16B
  [0x07, 'ntfs', 'ms-ntfs', 'exfat', 'hpfs'], // DOSPTYP_NTFS
  [0x0b, 'fat32'], // DOSPTYP_FAT32
  [0x0c, 'fat32-lba', 'fat32lba'], // DOSPTYP_FAT32LBA
  [0x0e, 'fat16-lba', 'fat16lba'],
  [0x0f, 'extended-lba', 'extlba', 'win95-extended'], // DOSPTYP_EXTLBA
  [0x11, 'hidden-fat12'],
  [0x14, 'hidden-fat16-small'],
  [0x16, 'hidden-fat16'],
  [0x17, 'hidden-ntfs'],
  [0x1b, 'hidden-fat32'],
  [0x1c, 'hidden-fat32-lba'],
  [0x1e, 'hidden-fat16-lba'],
  [0x27, 'windows-recovery'],
  [0x41, 'prep-boot'], // DOSPTYP_PPCBOOT
  [0x42, 'ms-ldm'], // DOSPTYP_LDM
  [0x4d, 'qnx4'],
  [0x63, 'gnu-hurd'],
  [0x6c, 'dragonfly'], // DOSPTYP_DFLYBSD
  [0x81, 'minix'],
  [0x82, 'linux-swap'], // DOSPTYP_LINSWP
  [0x83, 'linux', 'linux-data'], // DOSPTYP_LINUX; gpart linux-data
  [0x85, 'linux-extended'],
  [0x8e, 'linux-lvm'], // DOSPTYP_LINLVM
  [0xa5, 'freebsd', '386bsd'], // DOSPTYP_386BSD
  [0xa6, 'openbsd'],
  [0xa8, 'apple-ufs'], // DOSPTYP_APPLE_UFS
  [0xa9, 'netbsd'],
  [0xab, 'apple-boot'], // DOSPTYP_APPLE_BOOT
  [0xaf, 'apple-hfs', 'hfs'], // DOSPTYP_HFS
  [0xbe, 'solaris-boot'],
  [0xbf, 'solaris'],
  [0xda, 'non-fs-data'],
  [0xee, 'protective', 'gpt', 'pmbr'], // DOSPTYP_PMBR
  [0xef, 'efi', 'esp'], // DOSPTYP_EFI
  [0xfb, 'vmfs'], // DOSPTYP_VMFS
  [0xfc, 'vmkdiag'], // DOSPTYP_VMKDIAG
  [0xfd, 'linux-raid'], // DOSPTYP_LINRAID
];

function buildNameMap(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [type, ...names] of TYPE_TABLE) for (const name of names) out[name] = type;
  return out;
}

/** Every known name (canonical names and aliases, lower case) -> type byte. */
export const MBR_TYPES: Readonly<Record<string, number>> = Object.freeze(buildNameMap());

const CANONICAL_NAMES: ReadonlyMap<number, string> = new Map(TYPE_TABLE.map(([type, name]) => [type, name]));

/**
 * Type byte for a name or raw value. Accepted: a known name (case-insensitive), a number
 * 0-255, hex text `0xa5` or bare `a5` / `83` (bare digits are hex, as in sfdisk scripts), and
 * gpart's `!N` form (decimal, or hex with `0x`). Anything else gives undefined.
 */
export function mbrTypeByte(nameOrRaw: string | number): number | undefined {
  if (typeof nameOrRaw === 'number') {
    return Number.isInteger(nameOrRaw) && nameOrRaw >= 0 && nameOrRaw <= 0xff ? nameOrRaw : undefined;
  }
  const text = nameOrRaw.trim().toLowerCase();
  if (Object.prototype.hasOwnProperty.call(MBR_TYPES, text)) return MBR_TYPES[text];
  let value: number | undefined;
  if (/^!0x[0-9a-f]{1,2}$/.test(text)) value = parseInt(text.slice(3), 16);
  else if (/^![0-9]{1,3}$/.test(text)) value = parseInt(text.slice(1), 10);
  else if (/^0x[0-9a-f]{1,2}$/.test(text)) value = parseInt(text.slice(2), 16);
  else if (/^[0-9a-f]{1,2}$/.test(text)) value = parseInt(text, 16);
  return value !== undefined && value <= 0xff ? value : undefined;
}

/** Canonical name of a type byte, undefined when unknown. */
export function mbrTypeName(type: number): string | undefined {
  return CANONICAL_NAMES.get(type);
}
