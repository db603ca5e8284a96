/**
 * What is known about each kind of boot code: where it lives and how large it may be.
 * Layout validation and `verify` read these limits from here and nowhere else.
 */
export interface BootcodeKind {
  name: string;
  /** Where the code lives. */
  where: string;
  /** Largest file accepted. */
  maxBytes: number;
  /** Bytes actually copied from the file (the rest of the area belongs to the table). */
  copiedBytes: number;
  source: string;
}

export const BOOTCODE_KINDS = {
  /** MBR / protective-MBR code: bytes 0..445 of sector 0 (table at 446, 0x55AA at 510). */
  mbr: {
    name: 'MBR boot code (mbr, boot0, pmbr)',
    where: 'sector 0, bytes 0-445 (440 code + disk signature + 2 reserved)',
    maxBytes: 512,
    copiedBytes: 446,
    source: 'FreeBSD usr.bin/mkimg/mbr.c and gpt.c copy DOSPARTOFF (446) bytes; sys/sys/disk/mbr.h',
  },
  /** BSD boot area (boot1 + boot2), with the label at sector 1 inside it. */
  bsd: {
    name: 'BSD boot area (boot)',
    where: 'slice bytes 0-8191; the disklabel at byte 512 (LABELSECTOR 1) is overwritten',
    maxBytes: 8192,
    copiedBytes: 8192,
    source: 'FreeBSD sys/sys/disk/bsd.h BBSIZE 8192; usr.bin/mkimg/bsd.c',
  },
  /** gptboot in a freebsd-boot partition, loaded whole by pmbr at 0x7c00 below 0x90000. */
  'freebsd-boot': {
    name: 'freebsd-boot partition contents (gptboot, gptzfsboot)',
    where: 'the first freebsd-boot GPT partition, loaded whole by pmbr',
    maxBytes: 0x90000 - 0x7c00, // 558,080 bytes = 545 KiB: stand/i386/pmbr/pmbr.S "Boot loader too large"
    copiedBytes: 0x90000 - 0x7c00,
    source: 'FreeBSD stand/i386/pmbr/pmbr.S',
  },
  /**
   * diskmint's fallback selector (bootcode/SELECTOR.md): fallback-mbr.bin loads sectors 1..16
   * of the first BIOS-boot partition at 0000:1000 (bootcode/fallback-mbr.asm, K = 16); sector 0
   * of that partition is the stage table (formats/boot/stage-table.ts).
   */
  'diskmint-selector': {
    name: 'diskmint fallback selector (fallback-stage2.bin)',
    where: 'the first BIOS-boot GPT partition, sectors 1-16 (sector 0: the stage table)',
    maxBytes: 16 * 512, // K = 16 sectors, loaded at 0x1000 below the CRC table at 0x3000
    copiedBytes: 16 * 512,
    source: 'bootcode/fallback-mbr.asm (K), bootcode/README.md (memory map)',
  },
} as const satisfies Record<string, BootcodeKind>;
