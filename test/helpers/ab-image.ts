/** The smallest A/B disk the edit tests share: an 8 MiB GPT with os1 (bootme) and os2, 2 MiB each, raw. */
import { join } from 'node:path';
import { buildImage } from '../../src/index.js';

export async function abImage(dir: string, name = 'ab.img'): Promise<string> {
  const img = join(dir, name);
  await buildImage(
    {
      scheme: 'gpt',
      size: '8M',
      partitions: [
        { type: 'freebsd-ufs', label: 'os1', size: '2M', attributes: ['bootme'] },
        { type: 'freebsd-ufs', label: 'os2', size: '2M' },
      ],
    },
    { output: img, baseDir: dir },
  );
  return img;
}
