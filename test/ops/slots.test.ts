/**
 * A/B slots end to end on real UFS images (Debian's makefs): presets, status, write with
 * read-back, bootonce/confirm/activate as FreeBSD does them, crash-safe table rewrites, and the
 * same commands through qcow2 and VMDK.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildImage, convertImage, inspectImage, verifyImage } from '../../src/index.js';
import { presetLayoutChecked } from '../../src/layout/presets.js';
import { slotActivate, slotBootonce, slotConfirm, slotStatus, slotWrite } from '../../src/ops/slots/slots.js';
import { slotSimulate } from '../../src/ops/slots/simulate.js';
import { openImageEditor } from '../../src/io/image-editor.js';
import { readGptForEdit, writeGptAttributes } from '../../src/schemes/gpt/edit.js';
import { tempDir } from '../helpers/golden.js';
import { havePeer, requirePeer, runPeer, runPeerOk } from '../helpers/peer.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const PMBR = join(ROOT, 'bootcode/diskmint-mbr.bin');
const STAGE = join(ROOT, 'fixtures/demo/boot-stage.bin');
const BOOTME = 1n << 59n;
const BOOTONCE = 1n << 58n;

let dir = '';
let osA = '';
let osB = '';

/** Two real UFS2 images from makefs; without makefs (dev machine) the suite is skipped. */
beforeAll(() => {
  if (!requirePeer('makefs', 'makefs')) return;
  dir = tempDir('diskmint-slots-');
  for (const name of ['a', 'b']) {
    mkdirSync(join(dir, name, 'etc'), { recursive: true });
    writeFileSync(join(dir, name, 'etc', 'version'), `os ${name}\n`);
    writeFileSync(join(dir, name, 'etc', 'blob'), Buffer.alloc(name === 'a' ? 50_000 : 120_000, name));
    runPeerOk('makefs', ['-t', 'ffs', '-B', 'little', '-o', 'version=2', '-s', '8m', join(dir, `${name}.ufs`), join(dir, name)]);
  }
  osA = join(dir, 'a.ufs');
  osB = join(dir, 'b.ufs');
});

async function nanobsd(name = 'fw.img', extra: Record<string, string> = {}): Promise<string> {
  const out = join(dir, name);
  const layout = await presetLayoutChecked('nanobsd', { os: osA, boot: PMBR, bootStage: STAGE, size: '160M', osSize: '16M', ...extra });
  await buildImage(layout, { output: out, baseDir: dir });
  return out;
}

const sha256File = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const attrsOf = async (img: string) => Object.fromEntries((await slotStatus(img, { hash: false })).slots.map((s) => [s.label, s.attributes.join(',') || '-']));

describe('nanobsd preset and slot status', () => {
  it('builds two boot stages, an ESP, os1 with bootme, and reports real UFS2 superblocks', async (ctx) => {
    if (!osA) return ctx.skip();
    const img = await nanobsd();
    const s = await slotStatus(img);
    expect(s.bootStages.map((b) => b.label)).toEqual(['gptboot0', 'gptboot1']);
    expect(s.bootStages[0].sha256).toBe(s.bootStages[1].sha256);
    expect(s.slots.map((x) => [x.label, x.attributes.join(','), x.filesystem.kind, x.isDefault])).toEqual([
      ['os1', 'bootme', 'ufs2', true],
      ['os2', '', 'empty', false],
      ['cfg', '', 'empty', false],
      ['data', '', 'empty', false],
    ]);
    expect(s.next).toMatchObject({ index: 4, label: 'os1' });
    const info = await inspectImage(img);
    expect(info.table!.partitions.map((p) => p.filesystem)).toEqual([
      { kind: 'unknown' },
      { kind: 'unknown' },
      { kind: 'fat32', label: 'EFISYS' },
      { kind: 'ufs2' },
      { kind: 'empty' },
      { kind: 'empty' },
      { kind: 'empty' },
    ]);
    expect(s.next.reason).toMatch(/bootme/);
    const report = await verifyImage(img, { boot: true });
    expect(report.errors).toBe(0);
    expect(report.findings.map((f) => f.code)).toEqual(expect.arrayContaining(['boot.mbr-code', 'boot.stage', 'boot.stage-fallback']));
  });

  it('refuses to build without boot code, naming what to pass', async (ctx) => {
    if (!osA) return ctx.skip();
    await expect(presetLayoutChecked('nanobsd', { os: osA, bootStage: STAGE })).rejects.toThrow(/--boot FILE/);
    await expect(presetLayoutChecked('nanobsd', { os: osA, boot: PMBR })).rejects.toThrow(/--boot-stage FILE/);
    const big = join(dir, 'huge-gptboot');
    writeFileSync(big, Buffer.alloc(558_081, 1));
    await expect(presetLayoutChecked('nanobsd', { os: osA, boot: PMBR, bootStage: big })).rejects.toThrow(/545 KiB/);
  });
});

describe('an upgrade, as a device sees it', () => {
  it('write os2 with bootonce, peers see bits 58+59; a failed trial falls back; a good one is confirmed and activated', async (ctx) => {
    if (!osA) return ctx.skip();
    const img = await nanobsd('upgrade.img');
    await expect(slotWrite(img, 'os1', osB)).rejects.toThrow(/boots by default/);
    const r = await slotWrite(img, 'os2', osB, { bootonce: true });
    expect(r).toMatchObject({ slot: 5, label: 'os2', bytes: 8 << 20, bootonce: true });
    expect(await attrsOf(img)).toMatchObject({ os1: 'bootme', os2: 'bootonce,bootme' });
    const st = await slotStatus(img);
    expect(st.slots[1].filesystem.kind).toBe('ufs2');
    expect(st.next.index).toBe(5);
    if (requirePeer('sgdisk', 'gdisk')) {
      expect(runPeerOk('sgdisk', ['-i', '5', img])).toContain('Attribute flags: 0C00000000000000');
      expect(runPeer('sgdisk', ['-v', img]).out).toContain('No problems found');
    }
    if (requirePeer('sfdisk', 'fdisk')) {
      const p = JSON.parse(runPeerOk('sfdisk', ['--json', img])).partitiontable.partitions[4];
      expect(p.attrs).toBe('GUID:58,59');
    }
    // A failed trial: gptboot marks os2 bootfailed and boots os1 in the same power cycle.
    const failed = await slotSimulate(img, ['fail', 'ok']);
    expect(failed.steps[0].tried.map((t) => [t.index, t.result])).toEqual([
      [5, 'failed'],
      [4, 'booted'],
    ]);
    expect(failed.steps[0].booted).toBe(4);
    // A good trial: os2 boots once; gptboot cleared bootme before loading it.
    const good = await slotSimulate(img, ['ok'], { confirm: false });
    expect(good.steps[0].booted).toBe(5);
    expect(good.steps[0].after.find((e) => e.index === 5)!.attributes & (BOOTME | BOOTONCE)).toBe(BOOTONCE);
    // Put that state on disk (what gptboot wrote), then confirm as rc.d/gptboot does, then activate.
    const editor = await openImageEditor(img);
    const gpt = await readGptForEdit(editor.disk);
    await writeGptAttributes(editor, gpt, new Map([[5, BOOTONCE]]));
    await editor.commit();
    await editor.close();
    expect(await slotConfirm(img)).toEqual([expect.stringMatching(/os2.*succeeded/)]);
    expect(await attrsOf(img)).toMatchObject({ os1: 'bootme', os2: '-' });
    if (havePeer('sgdisk')) expect(runPeerOk('sgdisk', ['-i', '5', img])).toContain('Attribute flags: 0000000000000000');
    await slotActivate(img, 'os2');
    expect(await attrsOf(img)).toMatchObject({ os1: '-', os2: 'bootme' });
    expect((await slotStatus(img, { hash: false })).next.index).toBe(5);
    if (havePeer('sgdisk')) {
      expect(runPeerOk('sgdisk', ['-i', '4', img])).toContain('Attribute flags: 0000000000000000');
      expect(runPeerOk('sgdisk', ['-i', '5', img])).toContain('Attribute flags: 0800000000000000');
      expect(runPeer('sgdisk', ['-v', img]).out).toContain('No problems found');
    }
    if (havePeer('sfdisk')) {
      const parts = JSON.parse(runPeerOk('sfdisk', ['--json', img])).partitiontable.partitions;
      expect([parts[3].attrs ?? '', parts[4].attrs ?? '']).toEqual(['', 'GUID:59']);
    }
  });

  it('refuses contents larger than the slot and unknown slots; a read-back mismatch is impossible to miss', async (ctx) => {
    if (!osA) return ctx.skip();
    const img = await nanobsd('refuse.img');
    const big = join(dir, 'big.ufs');
    writeFileSync(big, Buffer.alloc(17 << 20, 1));
    await expect(slotWrite(img, 'os2', big)).rejects.toThrow(/larger than slot 5 \(os2\)/);
    await expect(slotWrite(img, 'nope', osB)).rejects.toThrow(/no partition "nope"/);
    await expect(slotWrite(img, 'cfg', osB)).resolves.toMatchObject({ slot: 6 });
    await expect(slotWrite(img, 3, osB)).rejects.toThrow(/not a freebsd-ufs OS slot/);
  });
});

describe('a cut image', () => {
  it('slot edits refuse an image cut short (its backup GPT past the end) and change nothing', async (ctx) => {
    if (!osA) return ctx.skip();
    const img = await nanobsd('cut.img');
    truncateSync(img, statSync(img).size - 64 * 1024); // the backup entries and header are gone
    const before = sha256File(img);
    await expect(slotBootonce(img, 'os2')).rejects.toThrow(/backup GPT belongs at LBA \d+ .*cut short\? Nothing was written/);
    await expect(slotActivate(img, 'os2')).rejects.toThrow(/cut short/);
    await expect(slotWrite(img, 'os2', osB, { bootonce: true })).rejects.toThrow(/cut short/);
    await expect(slotWrite(img, 'data', osB, { force: true })).rejects.toThrow(/past the end of this \d+-byte image/);
    expect(sha256File(img)).toBe(before);
  });
});

describe('crash safety of table rewrites', () => {
  it('stopping the four-write rewrite after each write in turn leaves one valid GPT copy (verify and sgdisk agree)', async (ctx) => {
    if (!osA) return ctx.skip();
    const base = await nanobsd('crash-base.img');
    for (let stopAfter = 0; stopAfter < 4; stopAfter++) {
      const img = join(dir, `crash-${stopAfter}.img`);
      copyFileSync(base, img);
      const crash = new Error(`power lost after write ${stopAfter}`);
      await expect(
        slotBootonce(img, 'os2', {
          beforeWrite: (n) => {
            if (n > stopAfter) throw crash;
          },
        }),
      ).rejects.toBe(crash);
      const info = await inspectImage(img);
      expect(info.table?.partitions.map((p) => p.label)).toEqual(['gptboot0', 'gptboot1', 'efiboot0', 'os1', 'os2', 'cfg', 'data']);
      const codes = info.findings.filter((f) => f.severity === 'error').map((f) => f.code);
      expect(codes.some((c) => c.startsWith('gpt.primary')) && codes.some((c) => c.startsWith('gpt.backup'))).toBe(false);
      const os2 = info.table!.partitions[4].attributes!.join(',');
      expect(['', 'bootonce,bootme']).toContain(os2);
      if (havePeer('sgdisk')) {
        const text = runPeer('sgdisk', ['-v', img]).out;
        expect(text).not.toMatch(/Invalid partition data|both.*(corrupt|damaged)/i);
      }
      // The next edit repairs the damaged copy.
      await slotBootonce(img, 'os2');
      const repaired = await verifyImage(img);
      expect(repaired.findings.filter((f) => f.severity === 'error')).toEqual([]);
      if (havePeer('sgdisk')) expect(runPeer('sgdisk', ['-v', img]).out).toContain('No problems found');
    }
  });
});

describe('slots through containers', () => {
  for (const [fmt, opts] of [
    ['qcow2', undefined],
    ['vmdk', 'subformat=monolithicSparse'],
    ['vmdk', 'subformat=streamOptimized'],
  ] as const) {
    it(`${fmt} ${opts ?? ''}: write, bootonce, status; the container stays valid`, async (ctx) => {
      if (!osA) return ctx.skip();
      const raw = await nanobsd(`c-${fmt}.img`);
      const img = join(dir, `c-${fmt}-${opts ?? 'x'}.${fmt}`.replace(/[=,]/g, '_'));
      await convertImage(raw, img, { format: fmt, options: opts });
      await slotWrite(img, 'os2', osB, { bootonce: true });
      const s = await slotStatus(img);
      expect(s.format).toBe(fmt);
      expect(s.slots.map((x) => x.attributes.join(','))).toEqual(['bootme', 'bootonce,bootme', '', '']);
      expect(s.slots[1].filesystem.kind).toBe('ufs2');
      expect((await slotSimulate(img, ['ok'])).steps[0].booted).toBe(5);
      await slotActivate(img, 'os2');
      expect(await slotConfirm(img)).toEqual([]);
      expect((await slotStatus(img, { hash: false })).slots.map((x) => x.attributes.join(','))).toEqual(['', 'bootme', '', '']);
      if (requirePeer('qemu-img', 'qemu-utils')) {
        expect(runPeer('qemu-img', ['check', img]).status).toBe(0);
        const back = join(dir, `back-${fmt}.img`);
        runPeerOk('qemu-img', ['convert', '-O', 'raw', img, back]);
        const t = (await inspectImage(back)).table!;
        expect(t.partitions[3].attributes).toEqual([]);
        expect(t.partitions[4].attributes).toEqual(['bootme']);
      }
    });
  }
});

describe('nanobsd-mbr', () => {
  it('code slices hold BSD labels; write slice 2 and activate it through the active flag', async (ctx) => {
    if (!osA) return ctx.skip();
    const bootArea = join(dir, 'boot8k');
    writeFileSync(bootArea, Buffer.alloc(8192, 0x42));
    const layout = await presetLayoutChecked('nanobsd-mbr', { os: osA, boot: PMBR, bootStage: bootArea, size: '64M', osSize: '24M' });
    const img = join(dir, 'mbr.img');
    await buildImage(layout, { output: img, baseDir: dir });
    const s = await slotStatus(img);
    expect(s.scheme).toBe('mbr');
    expect(s.slots.map((x) => [x.index, x.filesystem.kind, x.isDefault])).toEqual([
      [1, 'ufs2', true],
      [2, 'empty', false],
    ]);
    await expect(slotWrite(img, 1, osB)).rejects.toThrow(/active/);
    await slotWrite(img, 2, osB);
    await slotActivate(img, 2);
    const after = await slotStatus(img);
    expect(after.slots.map((x) => [x.index, x.filesystem.kind, x.isDefault])).toEqual([
      [1, 'ufs2', false],
      [2, 'ufs2', true],
    ]);
    if (requirePeer('sfdisk', 'fdisk')) {
      const parts = JSON.parse(runPeerOk('sfdisk', ['--json', img])).partitiontable.partitions;
      expect(parts.map((p: { bootable?: boolean }) => p.bootable === true)).toEqual([false, true, false, false]);
    }
  });
});

describe('the boot chain, verified', () => {
  it('verify --boot names primary and fallback stages, catches oversize and differing stages, and slot attribute trouble', async () => {
    const d = tempDir();
    writeFileSync(join(d, 'stage-a'), Buffer.alloc(40_000, 0xa1));
    writeFileSync(join(d, 'stage-b'), Buffer.alloc(40_000, 0xb2));
    const img = join(d, 'chain.img');
    await buildImage(
      {
        scheme: 'gpt',
        size: '64M',
        bootcode: PMBR,
        partitions: [
          { type: 'freebsd-boot', label: 'gptboot0', size: '600K', contents: { file: 'stage-a' } },
          { type: 'freebsd-boot', label: 'gptboot1', size: '512K', contents: { file: 'stage-b' } },
          { type: 'freebsd-ufs', label: 'os1', size: '8M', attributes: ['bootme'] },
          { type: 'freebsd-ufs', label: 'os2', size: '8M', attributes: ['bootme', 'bootfailed'] },
          { type: 'linux-data', size: '4M', attributes: ['bootonce'] },
        ],
      },
      { output: img, baseDir: d },
    );
    const r = await verifyImage(img, { boot: true });
    const byCode = (code: string) => r.findings.filter((f) => f.code === code);
    expect(byCode('boot.stage-too-large').map((f) => f.where)).toEqual(['gpt.partition[1]']);
    expect(byCode('boot.stage-fallback')[0]).toMatchObject({ severity: 'warning', message: expect.stringContaining('differ') });
    expect(byCode('boot.stage').map((f) => f.message)).toEqual([
      expect.stringContaining('primary boot stage'),
      expect.stringContaining('fallback boot stage 1'),
    ]);
    expect(byCode('boot.default-slot')[0].message).toContain('2 OS slots have bootme');
    expect(byCode('boot.slot-failed').map((f) => f.where)).toEqual(['gpt.partition[4]']);
    expect(byCode('boot.attributes-ignored').map((f) => f.where)).toEqual(['gpt.partition[5]']);
    expect(r.ok).toBe(false);
    const plain = await verifyImage(img);
    expect(plain.findings.some((f) => f.code.startsWith('boot.'))).toBe(false);
  });

  it('slot simulate --boot-stage-fails shows the proposed fallback to the second freebsd-boot partition', async (ctx) => {
    if (!osA) return ctx.skip();
    const img = await nanobsd('stages.img');
    const r = await slotSimulate(img, ['ok'], { bootStageFails: 1 });
    expect(r.bootStages!.map((b) => b.stage)).toEqual([1, 2]);
    expect(r.bootStages![1].reason).toMatch(/bootfailed|failed/);
  });
});
