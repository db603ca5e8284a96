/**
 * GPT partition type GUIDs by the names FreeBSD gpart(8) uses (aliases from
 * sys/geom/part/g_part.c, GUIDs from sys/sys/disk/gpt.h). A few common types gpart has no
 * alias for (linux-home, u-boot-env) carry names in the same style.
 */
import { isGuid } from '../common/guid.js';

export const GPT_TYPES: Readonly<Record<string, string>> = Object.freeze({
  // UEFI 2.10 section 5.3.3 table 5-7
  efi: 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b',
  mbr: '024dee41-33e7-11d3-9d69-0008c781f39f',
  // FreeBSD
  freebsd: '516e7cb4-6ecf-11d6-8ff8-00022d09712b',
  'freebsd-boot': '83bd6b9d-7f41-11dc-be0b-001560b84f0f',
  'freebsd-swap': '516e7cb5-6ecf-11d6-8ff8-00022d09712b',
  'freebsd-ufs': '516e7cb6-6ecf-11d6-8ff8-00022d09712b',
  'freebsd-vinum': '516e7cb8-6ecf-11d6-8ff8-00022d09712b',
  'freebsd-zfs': '516e7cba-6ecf-11d6-8ff8-00022d09712b',
  'freebsd-nandfs': '74ba7dd9-a689-11e1-bd04-00e081286acf',
  // GRUB and firmware
  'bios-boot': '21686148-6449-6e6f-744e-656564454649',
  'prep-boot': '9e1a2d38-c612-4316-aa26-8b49521e5a8b',
  'u-boot-env': '3de21764-95bd-54bd-a5c3-4abe786f38a8',
  'hifive-fsbl': '5b193300-fc78-40cd-8002-e86c45580b47',
  'hifive-bbl': '2e54b353-1271-4842-806f-e436d6af6985',
  // Linux
  'linux-data': '0fc63daf-8483-4772-8e79-3d69d8477de4',
  'linux-swap': '0657fd6d-a4ab-43c4-84e5-0933c84b4f4f',
  'linux-lvm': 'e6d6d379-f507-44c2-a23c-238f2a3df928',
  'linux-raid': 'a19d880f-05fc-4d3b-a006-743f0f84911e',
  'linux-home': '933ac7e1-2eb4-4f13-b844-0e14e2aef915',
  // Microsoft
  'ms-basic-data': 'ebd0a0a2-b9e5-4433-87c0-68b6b72699c7',
  'ms-reserved': 'e3c9e316-0b5c-4db8-817d-f92df00215ae',
  'ms-recovery': 'de94bba4-06d1-4d40-a16a-bfd50179d6ac',
  'ms-ldm-data': 'af9b60a0-1431-4f62-bc68-3311714a69ad',
  'ms-ldm-metadata': '5808c8aa-7e8f-42e0-85d2-e1e90434cfb3',
  'ms-spaces': 'e75caf8f-f680-4cee-afa3-b001e56efc2d',
  // Apple
  'apple-apfs': '7c3457ef-0000-11aa-aa11-00306543ecac',
  'apple-boot': '426f6f74-0000-11aa-aa11-00306543ecac',
  'apple-core-storage': '53746f72-6167-11aa-aa11-00306543ecac',
  'apple-hfs': '48465300-0000-11aa-aa11-00306543ecac',
  'apple-label': '4c616265-6c00-11aa-aa11-00306543ecac',
  'apple-raid': '52414944-0000-11aa-aa11-00306543ecac',
  'apple-raid-offline': '52414944-5f4f-11aa-aa11-00306543ecac',
  'apple-tv-recovery': '5265636f-7665-11aa-aa11-00306543ecac',
  'apple-ufs': '55465300-0000-11aa-aa11-00306543ecac',
  'apple-zfs': '6a898cc3-1dd2-11b2-99a6-080020736631',
  // ChromeOS
  'chromeos-firmware': 'cab6e88e-abf3-4102-a07a-d4bb9be3c1d3',
  'chromeos-kernel': 'fe3a2a5d-4f32-41a7-b725-accc3285a309',
  'chromeos-reserved': '2e0a753d-9e48-43b0-8337-b15192cb1b5e',
  'chromeos-root': '3cb8e202-3b7e-47dd-8a3c-7ff2a13cfcec',
  // NetBSD, OpenBSD, DragonFly
  'netbsd-ccd': '2db519c4-b10f-11dc-b99b-0019d1879648',
  'netbsd-cgd': '2db519ec-b10f-11dc-b99b-0019d1879648',
  'netbsd-ffs': '49f48d5a-b10e-11dc-b99b-0019d1879648',
  'netbsd-lfs': '49f48d82-b10e-11dc-b99b-0019d1879648',
  'netbsd-raid': '49f48daa-b10e-11dc-b99b-0019d1879648',
  'netbsd-swap': '49f48d32-b10e-11dc-b99b-0019d1879648',
  'openbsd-data': '824cc7a0-36a8-11e3-890a-952519ad3f61',
  'dragonfly-label32': '9d087404-1ca5-11dc-8817-01301bb8a9f5',
  'dragonfly-swap': '9d58fdbd-1ca5-11dc-8817-01301bb8a9f5',
  'dragonfly-ufs': '9d94ce7c-1ca5-11dc-8817-01301bb8a9f5',
  'dragonfly-vinum': '9dd4478f-1ca5-11dc-8817-01301bb8a9f5',
  'dragonfly-ccd': 'dbd5211b-1ca5-11dc-8817-01301bb8a9f5',
  'dragonfly-label64': '3d48ce54-1d16-11dc-8696-01301bb8a9f5',
  'dragonfly-legacy': 'bd215ab2-1d16-11dc-8696-01301bb8a9f5',
  'dragonfly-hammer': '61dc63ac-6e38-11dc-8513-01301bb8a9f5',
  'dragonfly-hammer2': '5cbb9ad1-862d-11dc-a94d-01301bb8a9f5',
  // Solaris / illumos
  'solaris-boot': '6a82cb45-1dd2-11b2-99a6-080020736631',
  'solaris-root': '6a85cf4d-1dd2-11b2-99a6-080020736631',
  'solaris-swap': '6a87c46f-1dd2-11b2-99a6-080020736631',
  'solaris-backup': '6a8b642b-1dd2-11b2-99a6-080020736631',
  'solaris-var': '6a8ef2e9-1dd2-11b2-99a6-080020736631',
  'solaris-home': '6a90ba39-1dd2-11b2-99a6-080020736631',
  'solaris-altsec': '6a9283a5-1dd2-11b2-99a6-080020736631',
  'solaris-reserved': '6a945a3b-1dd2-11b2-99a6-080020736631',
  // VMware
  'vmware-vmfs': 'aa31e02a-400f-11db-9590-000c2911d1b8',
  'vmware-vmkdiag': '9d275380-40ad-11db-bf97-000c2911d1b8',
  'vmware-reserved': '9198effc-31c0-11db-8f78-000c2911d1b8',
  'vmware-vsanhdr': '381cfccc-7288-11e0-92ee-000c2911d0b2',
});

/** FreeBSD's OS slot and boot-stage types (gptboot, slot commands, verify): one definition. */
export const FREEBSD_UFS_TYPE = GPT_TYPES['freebsd-ufs'];
export const FREEBSD_BOOT_TYPE = GPT_TYPES['freebsd-boot'];
export const FREEBSD_ZFS_TYPE = GPT_TYPES['freebsd-zfs'];
/** The type of a FreeBSD slice (BSD label inside) as a GPT partition. */
export const FREEBSD_TYPE = GPT_TYPES.freebsd;

const NAME_BY_GUID: ReadonlyMap<string, string> = (() => {
  const m = new Map<string, string>();
  for (const [name, guid] of Object.entries(GPT_TYPES)) if (!m.has(guid)) m.set(guid, name);
  return m;
})();

/** A type name (case-insensitive) or raw GUID text -> lower-case GUID; undefined if neither. */
export function gptTypeGuid(nameOrGuid: string): string | undefined {
  const key = nameOrGuid.trim().toLowerCase();
  if (isGuid(key)) return key;
  return Object.prototype.hasOwnProperty.call(GPT_TYPES, key) ? GPT_TYPES[key] : undefined;
}

/** The gpart-style name of a type GUID, if we know one. */
export function gptTypeName(guid: string): string | undefined {
  return NAME_BY_GUID.get(guid.toLowerCase());
}
