/**
 * The library's image handle (openImage): reads, slot edits (in place, or committed once for a
 * container that must be rewritten), convert with a progress callback, and the signature check
 * folded into verify.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { buildImage, convertImage, openImage, signImage, writeKeyPair, type ProgressReporter } from '../../src/index.js';
import { presetLayoutChecked } from '../../src/layout/presets.js';
import { slotStatus } from '../../src/ops/slots/slots.js';
import { cliOutput } from '../../src/cli/output.js';
import { tempDir } from '../helpers/golden.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** A nanobsd preset image (os1 boots by default) in `format`, and an OS file for slot 2. */
async function firmware(format: 'raw' | 'qcow2'): Promise<{ dir: string; img: string; os2: string }> {
  const dir = tempDir();
  writeFileSync(join(dir, 'os1.bin'), Buffer.alloc(1 << 20, 1));
  writeFileSync(join(dir, 'os2.bin'), Buffer.alloc(3 << 19, 2));
  const layout = await presetLayoutChecked('nanobsd', {
    os: join(dir, 'os1.bin'),
    boot: join(ROOT, 'bootcode/diskmint-mbr.bin'),
    bootStage: join(ROOT, 'fixtures/demo/boot-stage.bin'),
    size: '160M',
    osSize: '8M',
  });
  const img = join(dir, format === 'raw' ? 'fw.img' : 'fw.qcow2');
  await buildImage(layout, { output: img, baseDir: dir, progress: false });
  return { dir, img, os2: join(dir, 'os2.bin') };
}

const attributes = async (img: string) =>
  Object.fromEntries((await slotStatus(img, { hash: false })).slots.map((s) => [s.label, s.attributes.join(',') || '-']));

describe('openImage', () => {
  it('a qcow2 is edited in place as each edit runs: the same file, the edits seen at once', async () => {
    const { img } = await firmware('qcow2');
    const before = sha(img);
    const inode = statSync(img).ino;
    const image = await openImage(img);
    expect(image.format).toBe('qcow2');
    await image.bootonce('os2');
    expect((await image.slots()).slots.find((s) => s.label === 'os2')!.attributes).toEqual(['bootonce', 'bootme']);
    expect(sha(img)).not.toBe(before); // written, not held until close
    await image.activate('os2');
    await image.close();
    expect(statSync(img).ino).toBe(inode);
    expect(await attributes(img)).toEqual({ os1: '-', os2: 'bootme', cfg: '-', data: '-' });
    await expect(image.slots()).rejects.toThrow(/closed/);
  });

  it('a streamOptimized VMDK (no in-place edits) collects slot edits and is rewritten once, by close(), with all of them', async () => {
    const { img: qcow2 } = await firmware('qcow2');
    const img = qcow2.replace(/\.qcow2$/, '.vmdk');
    await convertImage(qcow2, img, { format: 'vmdk', options: 'subformat=streamOptimized' });
    const before = sha(img);
    const image = await openImage(img);
    await image.bootonce('os2');
    expect((await image.slots()).slots.find((s) => s.label === 'os2')!.attributes).toEqual(['bootonce', 'bootme']); // pending, seen by the handle
    await image.activate('os2');
    expect(sha(img)).toBe(before); // nothing written yet
    await image.close();
    expect(await attributes(img)).toEqual({ os1: '-', os2: 'bootme', cfg: '-', data: '-' });
  });

  it('a failed edit drops only its own pending edits', async () => {
    const { img } = await firmware('qcow2');
    const image = await openImage(img);
    await image.bootonce('os2');
    await expect(image.activate('nonexistent')).rejects.toThrow(/no partition "nonexistent"/);
    await expect(image.slotWrite('os1', join(ROOT, 'fixtures/demo/layout.json'))).rejects.toThrow(/boots by default/);
    await image.close();
    expect(await attributes(img)).toEqual({ os1: 'bootme', os2: 'bootonce,bootme', cfg: '-', data: '-' });
  });

  for (const format of ['raw', 'qcow2'] as const) {
    it(`slotWrite on ${format}: writes, reads back from the file, then sets bootonce`, async () => {
      const { img, os2 } = await firmware(format);
      const image = await openImage(img);
      const r = await image.slotWrite('os2', os2, { bootonce: true });
      await image.close();
      expect(r).toMatchObject({ slot: 5, label: 'os2', bytes: 3 << 19, bootonce: true });
      expect(r.sha256).toBe(sha(os2));
      expect(await attributes(img)).toEqual({ os1: 'bootme', os2: 'bootonce,bootme', cfg: '-', data: '-' });
      const slot = await openImage(os2);
      expect((await slot.compare(`${img}:5`)).identical).toBe(true); // os2.bin, then zeros
      await slot.close();
    });
  }

  it('inspect and verify read what was committed; verify checks a signature too', async () => {
    const { dir, img } = await firmware('raw');
    const image = await openImage(img);
    const info = await image.inspect();
    expect(info.table!.partitions.map((p) => p.label)).toContain('os2');
    const key = await writeKeyPair(join(dir, 'k'));
    const signed = await signImage(img, key.privatePath, {});
    expect((await image.verify({ signature: signed.signaturePath, pubkey: key.publicPath })).ok).toBe(true);
    await image.activate('os2');
    const after = await image.verify({ signature: signed.signaturePath, pubkey: key.publicPath }); // commits the activation first
    expect(after.ok).toBe(false);
    expect(after.findings.some((f) => f.code.startsWith('signature.'))).toBe(true);
    await expect(image.verify({ signature: signed.signaturePath })).rejects.toThrow(/go together/);
    await image.close();
  });

  it('convert reports progress through the callback only, prints nothing, and writes the same bytes as convertImage', async () => {
    const { dir, img } = await firmware('raw');
    const printed = vi.spyOn(cliOutput, 'err');
    const stderr = vi.spyOn(process.stderr, 'write');
    const calls: Array<[number, number]> = [];
    const image = await openImage(img);
    const r = await image.convert(join(dir, 'a.qcow2'), { progress: (done, total) => calls.push([done, total]) });
    await image.close();
    await convertImage(img, join(dir, 'b.qcow2'), { progress: false });
    expect(sha(join(dir, 'a.qcow2'))).toBe(sha(join(dir, 'b.qcow2')));
    expect(r).toMatchObject({ format: 'qcow2', inputFormat: 'raw' });
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.at(-1)![0]).toBe(calls.at(-1)![1]);
    expect(printed).not.toHaveBeenCalled();
    expect(stderr).not.toHaveBeenCalled();
    printed.mockRestore();
    stderr.mockRestore();
  });

  it('convert also takes a ProgressReporter, as convertImage does: started with the total, told every byte', async () => {
    const { dir, img } = await firmware('raw');
    const events: string[] = [];
    let advanced = 0;
    let total = -1;
    const reporter: ProgressReporter = {
      start: (bytes, label) => {
        total = bytes;
        events.push(`start ${label}`);
      },
      advance: (bytes) => void (advanced += bytes),
      done: () => void events.push('done'),
    };
    const image = await openImage(img);
    await image.convert(join(dir, 'a.vhdx'), { progress: reporter });
    await image.close();
    expect(events).toEqual(['start writing vhdx', 'done']);
    expect(total).toBeGreaterThan(0);
    expect(advanced).toBe(total);
  });

  it('refuses what is not an image when opened', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'empty.img'), '');
    await expect(openImage(join(dir, 'empty.img'))).rejects.toThrow(/empty/);
    expect(statSync(join(dir, 'empty.img')).size).toBe(0);
  });
});
