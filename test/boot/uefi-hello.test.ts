/**
 * diskmint's own UEFI application (bootcode/uefi-hello.asm): the committed bytes are what nasm
 * makes of the source, and OVMF runs it from the demo's ESP, built by diskmint, printing its line.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildImage, verifyImage } from '../../src/index.js';
import { tempDir } from '../helpers/golden.js';
import { requireFile, requirePeer, runPeerOk } from '../helpers/peer.js';
import { OVMF_CODE, bootAndWaitForMarker, describeBoot } from '../helpers/qemu.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const EFI = join(ROOT, 'bootcode/diskmint-hello.efi');

describe('bootcode/diskmint-hello.efi', () => {
  it('is a 1 KiB PE32+ EFI application that nasm rebuilds byte for byte; the demo ESP carries it', (ctx) => {
    const bytes = readFileSync(EFI);
    expect(bytes.length).toBe(1024);
    expect(bytes.subarray(0, 2).toString()).toBe('MZ');
    const pe = bytes.readUInt32LE(0x3c);
    expect(bytes.subarray(pe, pe + 4).toString('latin1')).toBe('PE\0\0');
    expect(bytes.readUInt16LE(pe + 24)).toBe(0x20b); // PE32+
    expect(bytes.readUInt16LE(pe + 24 + 68)).toBe(10); // Subsystem: EFI_APPLICATION
    expect(readFileSync(join(ROOT, 'fixtures/demo/esp/EFI/BOOT/BOOTX64.EFI')).equals(bytes)).toBe(true);
    if (!requirePeer('nasm', 'nasm')) return ctx.skip();
    const out = join(tempDir(), 'hello.efi');
    runPeerOk('bash', [join(ROOT, 'bootcode/build-uefi-hello.sh'), out]);
    expect(readFileSync(out).equals(bytes)).toBe(true);
  });

  it('OVMF boots it from the demo layout ESP; verify names the loader', { timeout: 200_000 }, async (ctx) => {
    const dir = tempDir();
    const img = join(dir, 'demo.img');
    await buildImage(join(ROOT, 'fixtures/demo/layout.json'), { output: img });
    const report = await verifyImage(img, { expect: join(ROOT, 'fixtures/demo/layout.json') });
    expect(report.findings.map((f) => `${f.severity} ${f.code}`)).toEqual(['info esp.loader']);
    if (!requirePeer('qemu-system-x86_64', 'qemu-system-x86') || !requireFile(OVMF_CODE, 'ovmf')) return ctx.skip();
    const boot = { disk: img, format: 'raw' as const, firmware: 'uefi' as const, marker: 'DISKMINT-UEFI-HELLO', timeoutMs: 150_000 };
    const r = await bootAndWaitForMarker(boot);
    expect(r.found, describeBoot(boot, r)).toBe(true);
  });
});
