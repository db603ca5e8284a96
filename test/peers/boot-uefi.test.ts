/**
 * UEFI boot, end to end: a GPT image built by diskmint whose ESP is a FAT32 volume (the
 * layout's `fat` contents kind, made by diskmint from a folder) holding
 * EFI/BOOT/BOOTX64.EFI, a GRUB made at test time by grub-mkstandalone with an embedded
 * grub.cfg that writes DISKMINT-UEFI-OK to the serial port and halts. OVMF (QEMU, TCG)
 * must find the ESP through the GPT, read the FAT volume and run the loader from the
 * removable-media path, for the raw image and for diskmint's qcow2 and VMDK
 * (monolithicSparse) conversions of it.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildImage, convertImage, type Layout } from '../../src/index.js';
import { tempDir } from '../helpers/golden.js';
import { requireFile, requirePeer } from '../helpers/peer.js';
import { OVMF_CODE, OVMF_VARS, bootAndWaitForMarker, describeBoot, runLimited, type BootOptions } from '../helpers/qemu.js';

const GRUB_EFI_MODULES = '/usr/lib/grub/x86_64-efi';
const MARKER = 'DISKMINT-UEFI-OK';
/** Per boot. OVMF under TCG takes ~10 s here on an idle machine; leave room for a busy one. */
const BOOT_TIMEOUT_MS = 150_000;

/**
 * The marker is assembled by GRUB from a variable, so it only reaches the serial port when
 * GRUB really ran the script (the literal text is in no file on the disk).
 */
const GRUB_CFG = [
  'serial --unit=0 --speed=115200',
  'terminal_input serial',
  'terminal_output serial',
  'set diskmint_result=OK',
  'echo "DISKMINT-UEFI-${diskmint_result}"',
  'halt',
  '',
].join('\n');

/** A small standalone GRUB for x86_64 UEFI: just the modules the script needs. */
function makeGrubEfi(cfgPath: string, out: string): void {
  const r = spawnSync(
    'grub-mkstandalone',
    [
      '-O',
      'x86_64-efi',
      '--modules=serial terminal echo halt',
      '--install-modules=normal configfile echo serial terminal halt',
      '--locales=',
      '--fonts=',
      '--themes=',
      '-o',
      out,
      `boot/grub/grub.cfg=${cfgPath}`,
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`grub-mkstandalone failed (${r.status ?? r.signal}): ${r.stdout}${r.stderr}${r.error ?? ''}`);
}

describe('UEFI boot (OVMF, FAT32 ESP from the fat contents kind, GRUB BOOTX64.EFI)', () => {
  it('prints the marker on the serial port from raw, qcow2 and VMDK images', { timeout: 400_000 }, async (ctx) => {
    if (
      !requirePeer('qemu-system-x86_64', 'qemu-system-x86') ||
      !requirePeer('grub-mkstandalone', 'grub-common') ||
      !requireFile(GRUB_EFI_MODULES, 'grub-efi-amd64-bin') ||
      !requireFile(OVMF_CODE, 'ovmf') ||
      !requireFile(OVMF_VARS, 'ovmf')
    ) {
      ctx.skip();
      return;
    }
    const dir = tempDir('diskmint-boot-uefi-');
    try {
      const cfg = join(dir, 'grub.cfg');
      await writeFile(cfg, GRUB_CFG);
      const espTree = join(dir, 'esp');
      await mkdir(join(espTree, 'EFI', 'BOOT'), { recursive: true });
      const loader = join(espTree, 'EFI', 'BOOT', 'BOOTX64.EFI');
      makeGrubEfi(cfg, loader);
      expect((await stat(loader)).size).toBeGreaterThan(0);

      const layout: Layout = {
        scheme: 'gpt',
        seed: 'boot-uefi-test',
        partitions: [{ type: 'efi', label: 'ESP', size: '64M', contents: { fat: { from: 'esp', type: '32', label: 'EFISYS' } } }],
      };
      const raw = join(dir, 'uefi.img');
      const qcow2 = join(dir, 'uefi.qcow2');
      const vmdk = join(dir, 'uefi.vmdk');
      await buildImage(layout, { output: raw, baseDir: dir });
      await convertImage(raw, qcow2);
      await convertImage(raw, vmdk, { options: { subformat: 'monolithicSparse' } });

      const boots: BootOptions[] = [
        { disk: raw, format: 'raw', firmware: 'uefi', marker: MARKER, timeoutMs: BOOT_TIMEOUT_MS },
        { disk: qcow2, format: 'qcow2', firmware: 'uefi', marker: MARKER, timeoutMs: BOOT_TIMEOUT_MS },
        { disk: vmdk, format: 'vmdk', firmware: 'uefi', marker: MARKER, timeoutMs: BOOT_TIMEOUT_MS },
      ];
      // Two at a time: one TCG vCPU thread each on a 2-core CI machine.
      const results = await runLimited(
        2,
        boots.map((b) => () => bootAndWaitForMarker(b)),
      );
      results.forEach((r, i) => {
        console.log(`UEFI boot ${boots[i].format}: ${r.found ? 'marker' : r.reason} after ${r.ms} ms`);
        expect.soft(r.found, describeBoot(boots[i], r)).toBe(true);
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
