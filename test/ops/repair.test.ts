/**
 * `diskmint repair`: a damaged or stale GPT copy is rewritten from the good one (sgdisk judges),
 * the backup moved to the end of a grown disk as `sgdisk -e` does; neither copy valid is refused
 * with exit 2; two whole copies are left alone. Raw and containers.
 */
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { convertImage, inspectImage, repairImage, verifyImage } from '../../src/index.js';
import { slotBootonce } from '../../src/ops/slots/slots.js';
import { tempDir } from '../helpers/golden.js';
import { diskmint } from '../helpers/cli.js';
import { abImage } from '../helpers/ab-image.js';
import { requirePeer, runPeer, runPeerOk } from '../helpers/peer.js';

const SS = 512;

const lastLba = (img: string) => readFileSync(img).length / SS - 1;
const primaryEntries = (img: string) => readFileSync(img).subarray(2 * SS, 34 * SS);
const backupEntries = (img: string) => readFileSync(img).subarray((lastLba(img) - 32) * SS, lastLba(img) * SS);
const staleFindings = async (img: string) => (await verifyImage(img)).findings.filter((f) => f.code === 'gpt.stale-copy').map((f) => f.message);

function damage(img: string, lba: number): void {
  const b = readFileSync(img);
  b.fill(0x5a, lba * SS + 16, lba * SS + 20); // the header CRC field
  writeFileSync(img, b);
}

describe('diskmint repair', () => {
  it('a damaged primary is rewritten from the backup: verify names it, sgdisk -v is clean after, the entries are the backup\u2019s', async () => {
    requirePeer('sgdisk', 'gdisk');
    const dir = tempDir('diskmint-repair-');
    const img = await abImage(dir);
    const good = Buffer.from(backupEntries(img));
    const b = readFileSync(img);
    b.fill(0xff, 2 * SS + 200, 2 * SS + 220); // inside the primary entry array: its CRC fails
    writeFileSync(img, b);
    expect(runPeer('sgdisk', ['-v', img]).out).not.toContain('No problems found');
    expect(await staleFindings(img)).toEqual([expect.stringMatching(/^The primary GPT copy is damaged; the backup copy is whole: `diskmint repair`/)]);
    const r = await repairImage(img);
    expect(r.rewrote).toEqual(['primary']);
    expect(r.message).toMatch(/rewrote the primary \(damaged\) GPT copy from the backup/);
    expect(runPeer('sgdisk', ['-v', img]).out).toContain('No problems found');
    expect(Buffer.compare(primaryEntries(img), good)).toBe(0);
    expect(await staleFindings(img)).toEqual([]);
    expect((await repairImage(img)).rewrote).toEqual([]);
  });

  it('a damaged backup header and a stale backup (entries of an older edit) are rewritten from the primary', async () => {
    requirePeer('sgdisk', 'gdisk');
    const dir = tempDir('diskmint-repair-');
    const img = await abImage(dir);
    damage(img, lastLba(img));
    expect(await staleFindings(img)).toEqual([expect.stringMatching(/^The backup GPT copy is damaged/)]);
    expect((await repairImage(img)).rewrote).toEqual(['backup']);
    expect(runPeer('sgdisk', ['-v', img]).out).toContain('No problems found');

    // Stale: an edit whose primary landed while the backup kept the old (whole) copy.
    const before = Buffer.from(readFileSync(img));
    await slotBootonce(img, 'os2');
    const after = readFileSync(img);
    const n = lastLba(img);
    after.set(before.subarray((n - 32) * SS), (n - 32) * SS); // the old backup entries and header
    writeFileSync(img, after);
    expect(await staleFindings(img)).toEqual([expect.stringMatching(/^The backup GPT copy is out of date/)]);
    const r = await repairImage(img);
    expect(r.rewrote).toEqual(['backup']);
    expect(r.message).toMatch(/the backup \(out of date\)/);
    expect(runPeer('sgdisk', ['-v', img]).out).toContain('No problems found');
    expect(Buffer.compare(backupEntries(img), primaryEntries(img))).toBe(0);
    expect(runPeerOk('sgdisk', ['-i', '2', img])).toContain('Attribute flags: 0C00000000000000');
  });

  it('a grown disk: the backup moves to the last sector (as sgdisk -e), the usable area grows with it', async () => {
    requirePeer('sgdisk', 'gdisk');
    const dir = tempDir('diskmint-repair-');
    const img = await abImage(dir);
    const oldLast = lastLba(img);
    truncateSync(img, readFileSync(img).length + 4 * 1024 * 1024);
    expect(runPeer('sgdisk', ['-v', img]).out).not.toContain('No problems found');
    const r = await repairImage(img);
    expect(r.movedBackup).toEqual({ from: oldLast, to: lastLba(img) });
    expect(runPeer('sgdisk', ['-v', img]).out).toContain('No problems found');
    expect(readFileSync(img).readUInt32LE(446 + 12)).toBe(lastLba(img)); // the protective MBR covers the disk, as sgdisk -e leaves it
    expect(runPeerOk('sgdisk', ['-p', img])).toContain(`last usable sector is ${lastLba(img) - 33}`);
    expect((await verifyImage(img)).findings.filter((f) => f.code.startsWith('gpt.') && f.severity !== 'info')).toEqual([]);
  });

  it('through the CLI: neither copy valid is refused with exit 2 and one sentence, nothing written; whole copies are a no-op', async () => {
    const dir = tempDir('diskmint-repair-');
    const img = await abImage(dir);
    const ok = diskmint(['repair', img]);
    expect(ok.status).toBe(0);
    expect(ok.stdout.toString()).toMatch(/both GPT copies are whole and agree; nothing to repair/);
    damage(img, 1);
    damage(img, lastLba(img));
    const before = readFileSync(img);
    const r = diskmint(['repair', img]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^diskmint: neither GPT copy of .* is valid, so there is no good copy to repair from; nothing was written\n$/);
    expect(Buffer.compare(readFileSync(img), before)).toBe(0);
  });

  it('containers: a qcow2 with a damaged primary is repaired through the editor (qemu-img check clean, sgdisk clean on the raw)', async () => {
    requirePeer('qemu-img', 'qemu-utils');
    requirePeer('sgdisk', 'gdisk');
    const dir = tempDir('diskmint-repair-');
    const raw = await abImage(dir);
    damage(raw, 1);
    const q = join(dir, 'ab.qcow2');
    await convertImage(raw, q, { format: 'qcow2' });
    const r = diskmint(['repair', q]);
    expect(r.stderr).toBe('');
    expect(r.stdout.toString()).toMatch(/rewrote the primary \(damaged\) GPT copy from the backup/);
    expect(runPeer('qemu-img', ['check', q]).status).toBe(0);
    const back = join(dir, 'back.img');
    runPeerOk('qemu-img', ['convert', '-O', 'raw', q, back]);
    expect(runPeer('sgdisk', ['-v', back]).out).toContain('No problems found');
    expect((await inspectImage(q)).table!.partitions.map((p) => p.label)).toEqual(['os1', 'os2']);
  });
});
