/**
 * "One edit session per command" for a container that cannot be edited in place (issue 17): a
 * streamOptimized VMDK gets `slot write --bootonce` in one rewrite (strace counts the renames
 * onto it), the read-back running on the complete temp file before the rename; a check that
 * fails there leaves the old file as it was and no temp file behind.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { convertImage, inspectImage } from '../../src/index.js';
import { writeAtomically } from '../../src/io/atomic-output.js';
import { writeFully } from '../../src/io/write-fully.js';
import { BUNDLE, requireFreshBundle } from '../helpers/cli.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer } from '../helpers/peer.js';
import { abImage } from '../helpers/ab-image.js';

describe('a container that must be rewritten is rewritten once per command', () => {
  it('slot write --bootonce of a streamOptimized VMDK: one rename onto it, data and bootonce both there', async () => {
    requirePeer('strace', 'strace');
    requireFreshBundle();
    const dir = tempDir('diskmint-once-');
    const raw = await abImage(dir);
    const img = join(dir, 'ab.vmdk');
    await convertImage(raw, img, { format: 'vmdk', options: 'subformat=streamOptimized' });
    const data = join(dir, 'os.bin');
    writeFileSync(data, Buffer.alloc(1 << 20, 0x77));
    const log = join(dir, 'renames.strace');
    const r = spawnSync(
      'strace',
      ['-f', '-qq', '-o', log, '-e', 'trace=rename,renameat,renameat2', process.execPath, BUNDLE, 'slot', 'write', img, 'os2', '--from', data, '--bootonce'],
      {
        encoding: 'utf8',
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const ontoImage = readFileSync(log, 'utf8')
      .split('\n')
      .filter((l) => /rename/.test(l) && l.includes(`"${img}"`));
    expect(ontoImage).toHaveLength(1);
    const os2 = (await inspectImage(img)).table!.partitions.find((p) => p.label === 'os2')!;
    expect(os2.attributes).toEqual(expect.arrayContaining(['bootonce', 'bootme']));
  });

  it('a check that fails before the rename leaves the target and no temp file', async () => {
    const dir = tempDir('diskmint-once-');
    const target = join(dir, 'out.bin');
    writeFileSync(target, 'old');
    const check = async (temp: string) => {
      expect(readFileSync(temp, 'utf8')).toBe('new'); // the complete temp file is what is checked
      throw new Error('read-back mismatch');
    };
    await expect(writeAtomically(target, (h) => writeFully(h, new TextEncoder().encode('new'), 0), { beforeCommit: check })).rejects.toThrow(
      /read-back mismatch/,
    );
    expect(readFileSync(target, 'utf8')).toBe('old');
    expect(readdirSync(dir)).toEqual(['out.bin']);
  });
});
