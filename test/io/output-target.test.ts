/**
 * Outputs never replace what they should not: a command's own input (the image converted, a
 * VMDK extent the output would be written beside, the layout, the image signed, the signing key)
 * or something that is not a regular file (a folder, a FIFO, a device: the temp file's rename
 * would replace it). Each is refused before anything is written, and leaves nothing behind.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildImage, convertImage } from '../../src/index.js';
import { createBundle } from '../../src/ops/bundle/create.js';
import { signImage } from '../../src/ops/sign.js';
import { writeKeyPair } from '../../src/ops/sign-keys.js';
import { slotWrite } from '../../src/ops/slots/slots.js';
import { outputFormatFor, parseOptionString } from '../../src/containers/registry.js';
import { tempDir } from '../helpers/golden.js';

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

async function smallImage(dir: string): Promise<{ img: string; layout: string; data: string }> {
  const data = join(dir, 'data.bin');
  writeFileSync(data, Buffer.alloc(256 << 10, 0x5a));
  const layout = join(dir, 'layout.json');
  writeFileSync(
    layout,
    JSON.stringify({ scheme: 'gpt', size: '4M', partitions: [{ type: 'freebsd-ufs', label: 'os1', size: '1M', contents: { file: 'data.bin' } }] }),
  );
  const img = join(dir, 'disk.img');
  await buildImage(layout, { output: img });
  return { img, layout, data };
}

describe('outputs that would destroy an input, or replace what is not a file', () => {
  it('convert: a raw input named like the VMDK extent the output would write beside it', async () => {
    const dir = tempDir();
    const { img } = await smallImage(dir);
    for (const [extent, subformat] of [
      ['disk-s001.vmdk', 'twoGbMaxExtentSparse'],
      ['disk-flat.vmdk', 'monolithicFlat'],
      ['disk-f001.vmdk', 'twoGbMaxExtentFlat'],
    ]) {
      const input = join(dir, extent);
      writeFileSync(input, readFileSync(img));
      const before = sha(input);
      await expect(convertImage(input, join(dir, 'disk.vmdk'), { options: { subformat } }), subformat).rejects.toThrow(/is .*an input of this command/);
      expect(sha(input), subformat).toBe(before);
      expect(
        readdirSync(dir).filter((f) => f === 'disk.vmdk' || f.endsWith('.tmp')),
        subformat,
      ).toEqual([]);
    }
  });

  it('build -o its own layout or a contents file; sign and bundle create -o their image or key', async () => {
    const dir = tempDir();
    const { img, layout, data } = await smallImage(dir);
    const before = [sha(layout), sha(data), sha(img)];
    await expect(buildImage(layout, { output: layout })).rejects.toThrow(/an input of this command/);
    await expect(buildImage(layout, { output: data })).rejects.toThrow(/an input of this command/);
    const key = await writeKeyPair(join(dir, 'k'));
    const keyBefore = sha(key.privatePath);
    await expect(signImage(img, key.privatePath, { output: key.privatePath })).rejects.toThrow(/an input of this command/);
    await expect(signImage(img, key.privatePath, { output: img })).rejects.toThrow(/an input of this command/);
    await expect(createBundle({ from: data, key: key.privatePath, output: key.privatePath })).rejects.toThrow(/an input of this command/);
    await expect(createBundle({ from: data, output: data })).rejects.toThrow(/an input of this command/);
    expect([sha(layout), sha(data), sha(img), sha(key.privatePath)]).toEqual([...before, keyBefore]);
    // A --detach-dir that cannot be made leaves no .sig behind.
    await expect(signImage(img, key.privatePath, { detachDir: img })).rejects.toThrow();
    expect(readdirSync(dir).filter((f) => f.endsWith('.sig'))).toEqual([]);
  });

  it('a folder or a FIFO as the output is refused, not replaced', async () => {
    const dir = tempDir();
    const { img } = await smallImage(dir);
    const folder = join(dir, 'folder');
    mkdirSync(folder);
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    for (const target of [folder, fifo]) {
      await expect(convertImage(img, target, { format: 'qcow2' })).rejects.toThrow(/is not a regular file/);
      await expect(convertImage(img, target)).rejects.toThrow(/is not a regular file/);
    }
    expect(readdirSync(dir).sort()).toEqual(['data.bin', 'disk.img', 'fifo', 'folder', 'layout.json']);
  });

  it('slot write --from a device is refused (/dev/zero would never end)', async () => {
    const dir = tempDir();
    const { img } = await smallImage(dir);
    const before = sha(img);
    await expect(slotWrite(img, 'os1', '/dev/zero', { force: true })).rejects.toThrow(/not a regular file/);
    expect(sha(img)).toBe(before);
  });

  it('format and option names are looked up as own keys only', () => {
    expect(() => outputFormatFor('__proto__', 'x')).toThrow(/unknown output format "__proto__"/);
    expect(() => outputFormatFor('constructor', 'x')).toThrow(/unknown output format/);
    expect(Object.keys(parseOptionString('__proto__=1,subformat=fixed'))).toEqual(['__proto__', 'subformat']);
  });
});
