/** `verify --boot` on boot-stage fallback (src/ops/boot/findings.ts): warnings and the one error. */
import { join } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildImage, verifyImage } from '../../src/index.js';
import { openDisk } from '../../src/io/open-disk.js';
import { readBootStages } from '../../src/ops/boot/read.js';
import { tempDir } from '../helpers/golden.js';
import { buildFallbackImage, fallbackLayout, stageFile } from '../helpers/boot-commands-image.js';

let dir = '';
let stage = '';
beforeAll(() => {
  dir = tempDir('diskmint-boot-verify-');
  stage = stageFile(dir, 'a.bin', 30_000, 5);
});

const codes = async (img: string) => {
  const r = await verifyImage(img, { boot: true });
  return r.findings.filter((f) => f.code.startsWith('boot.') && f.severity !== 'info').map((f) => `${f.severity} ${f.code}`);
};

async function offsets(img: string): Promise<number[]> {
  const { reader } = await openDisk(img);
  try {
    return (await readBootStages(reader)).stages.map((s) => s.offset);
  } finally {
    await reader.close();
  }
}

describe('verify --boot, boot-stage fallback', () => {
  it('a fresh selector image has no boot warning', async () => {
    const img = await buildFallbackImage(dir, stage, 'ok.img');
    expect(await codes(img)).toEqual([]);
  });

  it('one stage only, the selector missing', async () => {
    const one = join(dir, 'one.img');
    await buildImage(fallbackLayout(stage, { partitions: [{ type: 'freebsd-boot', size: '128K', contents: { file: stage } }] }), { output: one });
    expect(await codes(one)).toEqual(['warning boot.stage-single']);
    const plain = join(dir, 'plain.img');
    await buildImage(fallbackLayout(stage, { bootcode: undefined }), { output: plain });
    expect(await codes(plain)).toContain('warning boot.selector-missing');
  });

  it('a damaged or emptied backup is a warning; no loadable stage is an error', async () => {
    const img = await buildFallbackImage(dir, stage, 'damaged.img');
    const [a, b] = await offsets(img);
    const bytes = readFileSync(img);
    bytes[b + 1000] ^= 0xff;
    writeFileSync(img, bytes);
    expect(await codes(img)).toEqual(['warning boot.backup-mismatch']);
    bytes.fill(0, b, b + 512);
    writeFileSync(img, bytes);
    expect(await codes(img)).toEqual(['warning boot.backup-empty']);
    bytes[a + 7] ^= 0xff;
    writeFileSync(img, bytes);
    expect(await codes(img)).toEqual(['error boot.no-loadable-stage']);
  });

  it('a backup partition larger than 558,080 bytes is a warning', async () => {
    const img = join(dir, 'large.img');
    const layout = fallbackLayout(stage);
    layout.partitions[1].size = '1M';
    await buildImage(layout, { output: img });
    expect(await codes(img)).toEqual(['warning boot.backup-too-large']);
  });
});
