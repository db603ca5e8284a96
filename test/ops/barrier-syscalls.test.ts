/**
 * The barriers as the kernel sees them: strace records the built CLI's writes to the image and
 * its fsync/fdatasync calls, and the order of the steps between them must be the documented one
 * (slot data, sync, backup GPT copy, sync, primary copy, sync; ZFS labels 0, 2, 1, 3 each
 * followed by a sync; the MBR active flag after a sync).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { BUNDLE, requireFreshBundle } from '../helpers/cli.js';
import { tempDir } from '../helpers/golden.js';
import { abImage } from '../helpers/ab-image.js';
import { requirePeer } from '../helpers/peer.js';

const SS = 512;

/** Run the CLI under strace; return its writes to `image` (offset, length) and syncs of it, in order. */
function traced(image: string, args: string[]): Array<{ sync: true } | { offset: number; length: number }> {
  requireFreshBundle();
  const log = `${image}.strace`;
  const r = spawnSync('strace', ['-f', '-qq', '-y', '-s', '0', '-e', 'trace=pwrite64,pwritev,fsync,fdatasync', '-o', log, process.execPath, BUNDLE, ...args], {
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  const events: Array<{ sync: true } | { offset: number; length: number }> = [];
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    if (!line.includes(`<${image}>`)) continue;
    const w = /pwrite64\(\d+<[^>]+>, [^,]*, (\d+), (\d+)/.exec(line);
    if (w) events.push({ length: Number(w[1]), offset: Number(w[2]) });
    else if (/\b(fsync|fdatasync)\(/.test(line)) events.push({ sync: true });
    else if (/pwritev\(/.test(line)) throw new Error(`unparsed write: ${line}`);
  }
  return events;
}

/** Events as letters (consecutive repeats collapsed): S a sync, and `name(offset)` for writes. */
function steps(events: ReturnType<typeof traced>, name: (offset: number) => string): string {
  const letters = events.map((e) => ('sync' in e ? 'S' : name(e.offset)));
  return letters.filter((l, i) => l !== letters[i - 1]).join(' ');
}

describe('write barriers, seen through strace', () => {
  it('slot write --bootonce: data, sync, backup GPT copy, sync, primary copy, sync', async () => {
    requirePeer('strace', 'strace');
    const dir = tempDir('diskmint-strace-');
    const img = join(dir, 'ab.img');
    await abImage(dir, basename(img));
    const data = join(dir, 'os.bin');
    writeFileSync(data, Buffer.alloc(1 << 20, 0x77));
    const size = readFileSync(img).length;
    const events = traced(img, ['slot', 'write', img, 'os2', '--from', data, '--bootonce']);
    const name = (o: number) => (o < 34 * SS ? 'primary' : o >= size - 33 * SS ? 'backup' : 'data');
    expect(steps(events, name)).toBe('data S backup S primary S');
  });

  it('zfs bootonce: labels 0, 2, 1, 3, each followed by a sync', () => {
    requirePeer('strace', 'strace');
    const dir = tempDir('diskmint-strace-');
    const img = join(dir, 'pool.img');
    const pool = gunzipSync(readFileSync(new URL('../../fixtures/zfs/pool.img.gz', import.meta.url).pathname));
    writeFileSync(img, pool);
    const size = pool.length;
    const label = (o: number) => `L${o < 256 << 10 ? 0 : o < 512 << 10 ? 1 : o < size - (256 << 10) ? 2 : 3}`;
    expect(steps(traced(img, ['zfs', 'bootonce', img, 'zroot/ROOT/next']), label)).toBe('L0 S L2 S L1 S L3 S');
  });
});
