/**
 * Presets with `--os-from` / `--cfg-from`: the OS slot (and cfg) become UFS2 file systems made
 * from tree sources during the build (the layout's ufs contents kind), here the demo's folder
 * and its METALOG-style spec. Read back through diskmint's UFS reader.
 */
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { buildImage, catUfs, checkUfs, listUfs, presetLayoutChecked } from '../../src/index.js';
import { tempDir } from '../helpers/golden.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const TREE = join(ROOT, 'fixtures/demo/os-tree');
const SPEC = join(ROOT, 'fixtures/demo/os.mtree');
const STAGE = join(ROOT, 'fixtures/demo/boot-stage.bin');

async function cat(spec: string, path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  await catUfs(
    spec,
    path,
    new Writable({
      write(chunk: Buffer, _enc, done) {
        parts.push(chunk);
        done();
      },
    }),
  );
  return Buffer.concat(parts);
}

describe('presets made from tree sources', () => {
  it('nanobsd --os-from mtree:SPEC@FOLDER --copy-os --cfg-from FOLDER: both slots the same UFS2, owners and flags from the spec', async () => {
    const dir = tempDir('diskmint-preset-from-');
    const layout = await presetLayoutChecked('nanobsd', {
      osFrom: [`mtree:${SPEC}@${TREE}`],
      copyOs: true,
      cfgFrom: [join(TREE, 'etc')],
      boot: 'diskmint-fallback',
      bootStage: STAGE,
      size: '160M',
      osSize: '8M',
    });
    const img = join(dir, 'fw.img');
    await buildImage(layout, { output: img, baseDir: dir });
    const slot = (await listUfs(`${img}:4`, '/usr/local/bin'))[0];
    expect(slot.name).toBe('hello');
    expect(slot.stat.mode & 0o7777).toBe(0o555);
    expect(slot.stat.flags).toBe(0x20000); // SF_IMMUTABLE (schg), sys/sys/stat.h
    expect([slot.stat.uid, slot.stat.gid]).toEqual([0, 0]);
    const link = (await listUfs(`${img}:4`, '/etc')).find((e) => e.name === 'localtime');
    expect(link?.target).toBe('/usr/share/zoneinfo/UTC');
    expect(await cat(`${img}:5`, '/etc/rc.conf')).toEqual(await readFile(join(TREE, 'etc/rc.conf')));
    expect((await listUfs(`${img}:6`, '/')).map((e) => e.name).sort()).toEqual(['fstab', 'rc.conf']);
    for (const n of [4, 5, 6]) expect(await checkUfs(`${img}:${n}`)).toEqual([]);
    // The two OS slots hold the same tree (their fs_id and inode generations are seeded per
    // partition, so the bytes differ there); cfg holds another.
    const names = async (n: number) => (await listUfs(`${img}:${n}`, '/etc')).map((e) => [e.name, e.stat.size, e.target]);
    expect(await names(5)).toEqual(await names(4));
    expect(await cat(`${img}:5`, '/usr/local/bin/hello')).toEqual(await readFile(join(TREE, 'usr/local/bin/hello')));
  });

  it('refuses --os with --os-from, and a preset with neither', async () => {
    const both = presetLayoutChecked('nanobsd', { os: STAGE, osFrom: [TREE], boot: 'diskmint-fallback', bootStage: STAGE });
    await expect(both).rejects.toThrow('give --os FILE or --os-from SOURCE, not both');
    await expect(presetLayoutChecked('nanobsd', { boot: 'diskmint-fallback', bootStage: STAGE })).rejects.toThrow(/--os-from/);
  });
});
