/**
 * `verify --boot`: the boot chain of a FreeBSD-style image. MBR boot code and 0x55AA; each
 * freebsd-boot partition non-empty and within what pmbr loads (stand/i386/pmbr/pmbr.S: below
 * 0x90000 from 0x7c00, 558,080 bytes); primary and fallback boot stages compared; exactly one
 * default OS slot; slot attributes consistent (FreeBSD sys/sys/disk/gpt.h bits 57-59); whether a
 * boot-stage update can fall back (src/ops/boot/findings.ts, diskmint's selector).
 */
import { BOOTCODE_KINDS } from '../../../formats/boot/bootcode-kinds.js';
import { finding, type Finding } from '../../model/findings.js';
import type { DiskReader } from '../../model/disk-reader.js';
import type { PartitionTable } from '../../schemes/types.js';
import { hashRange } from '../slots/slots.js';
import { FREEBSD_BOOT_TYPE, FREEBSD_UFS_TYPE } from '../../../formats/schemes/gpt-types.js';
import { findScheme } from '../../schemes/registry.js';
import { stageFallbackFindings } from '../boot/findings.js';

const BOOTME = 1n << 59n;
const BOOTONCE = 1n << 58n;
const BOOTFAILED = 1n << 57n;
/** MBR code area: bytes 0-439 (the disk signature follows at 440). */
const MBR_CODE_BYTES = 440;

export async function bootChainFindings(disk: DiskReader, table: PartitionTable | null): Promise<Finding[]> {
  const out: Finding[] = [];
  if (!table) return out;
  const sector0 = await disk.read(0, 512);
  if (sector0[510] !== 0x55 || sector0[511] !== 0xaa)
    out.push(finding('error', 'boot.mbr-signature', 'sector 0 lacks 0x55AA: no BIOS will run its boot code', 'boot'));
  if (sector0.subarray(0, MBR_CODE_BYTES).every((b) => b === 0)) {
    out.push(finding('warning', 'boot.mbr-code', 'sector 0 holds no boot code: BIOS (legacy) boot is impossible; UEFI may still boot from the ESP', 'boot'));
  } else {
    out.push(finding('info', 'boot.mbr-code', `sector 0 holds boot code (sha256 ${(await hashRange(disk, 0, MBR_CODE_BYTES)).slice(0, 12)})`, 'boot'));
  }
  // The rest is the pmbr + gptboot chain: freebsd-boot stages and the slot attributes.
  if (!findScheme(table.scheme)?.capabilities.gptboot) return out;
  const fallback = await stageFallbackFindings(disk);
  // With diskmint's selector, an empty or oversized stage is skipped, not loaded: the fallback findings judge them.
  const selector = fallback.selectorInstalled;
  const ss = table.sectorSize;
  const stages = table.partitions.filter((p) => p.rawType === FREEBSD_BOOT_TYPE);
  const limit = BOOTCODE_KINDS['freebsd-boot'].maxBytes;
  const hashes: string[] = [];
  for (const [i, p] of stages.entries()) {
    const where = `${table.scheme}.partition[${p.index}]`;
    const role = i === 0 ? 'primary boot stage' : `fallback boot stage ${i}`;
    const hash = await hashRange(disk, p.firstLba * ss, p.sizeBytes);
    hashes.push(hash);
    const head = await disk.read(p.firstLba * ss, Math.min(p.sizeBytes, 65536));
    if (!selector && head.every((b) => b === 0))
      out.push(finding('error', 'boot.stage-empty', `freebsd-boot partition ${p.index} (${role}) is empty: pmbr would load zeros`, where));
    if (!selector && p.sizeBytes > limit) {
      out.push(
        finding(
          'error',
          'boot.stage-too-large',
          `freebsd-boot partition ${p.index} (${role}) is ${p.sizeBytes} bytes; pmbr loads the whole partition and fails above ${limit} bytes (545 KiB)`,
          where,
        ),
      );
    }
    out.push(
      finding('info', 'boot.stage', `freebsd-boot partition ${p.index}${p.label ? ` "${p.label}"` : ''} is the ${role} (sha256 ${hash.slice(0, 12)})`, where),
    );
  }
  if (stages.length >= 2) {
    const same = hashes.every((h) => h === hashes[0]);
    out.push(
      finding(
        same || selector ? 'info' : 'warning',
        'boot.stage-fallback',
        same
          ? 'primary and fallback boot stages are identical'
          : selector
            ? 'the boot stages differ (an update under the fallback selector)'
            : 'primary and fallback boot stages differ: a fallback should be a known-good copy',
        'boot',
      ),
    );
  }
  out.push(...fallback.findings);
  const slots = table.partitions.filter((p) => p.rawType === FREEBSD_UFS_TYPE && p.label !== 'cfg' && p.label !== 'data');
  const attrs = (p: (typeof slots)[number]) => BigInt(p.attributesRaw ?? '0');
  const defaults = slots.filter((p) => (attrs(p) & BOOTME) !== 0n && (attrs(p) & BOOTONCE) === 0n);
  if (defaults.length !== 1 && slots.length) {
    out.push(
      finding(
        'warning',
        'boot.default-slot',
        defaults.length === 0
          ? 'no OS slot has bootme alone: gptboot falls back to the first freebsd-ufs partition, and only on its first try'
          : `${defaults.length} OS slots have bootme (${defaults.map((p) => p.index).join(', ')}); gptboot takes the first`,
        'boot',
      ),
    );
  }
  for (const p of table.partitions) {
    const a = attrs(p);
    const where = `${table.scheme}.partition[${p.index}]`;
    const selectorReads = selector && p.rawType === FREEBSD_BOOT_TYPE;
    if ((a & (BOOTME | BOOTONCE | BOOTFAILED)) !== 0n && p.rawType !== FREEBSD_UFS_TYPE && !selectorReads) {
      out.push(finding('warning', 'boot.attributes-ignored', `partition ${p.index} carries boot attributes but is not freebsd-ufs; gptboot ignores it`, where));
    }
    if ((a & BOOTFAILED) !== 0n)
      out.push(
        finding(
          'warning',
          'boot.slot-failed',
          `partition ${p.index} is marked bootfailed: its last one-time boot failed (\`${selectorReads ? 'boot' : 'slot'} confirm\` clears it)`,
          where,
        ),
      );
    if ((a & (BOOTONCE | BOOTME)) === BOOTONCE) {
      out.push(
        finding(
          'warning',
          'boot.bootonce-pending',
          `partition ${p.index} has bootonce without bootme: it was tried and not confirmed; ${selectorReads ? 'the selector' : 'gptboot'} will mark it bootfailed`,
          where,
        ),
      );
    }
  }
  return out;
}
