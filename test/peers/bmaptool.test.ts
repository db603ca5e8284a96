/**
 * bmap both ways with the real peer (Debian bmap-tools): `bmaptool copy` takes our map and
 * writes the same device as our flash; our flash takes `bmaptool create`'s maps (2.0 with
 * SHA-256, and without checksums) and refuses an image whose data differs from them.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBmap } from '../../formats/bmap/bmap.js';
import { requirePeer } from '../helpers/peer.js';
import { attachLoop, detachAll, hashOf, requireLoopDevices } from '../helpers/loop-device.js';
import { diskmint } from '../helpers/cli.js';

const MiB = 1 << 20;
const SIZE = 40 * MiB;
const dir = mkdtempSync(join(tmpdir(), 'diskmint-bmaptool-'));
let ready = false;
const image = join(dir, 'card.img');

function device(name: string, fill = 0x55): string {
  const path = join(dir, name);
  writeFileSync(path, Buffer.alloc(SIZE, fill));
  return attachLoop(path);
}

beforeAll(() => {
  ready = requireLoopDevices() && requirePeer('bmaptool', 'bmap-tools') && requirePeer('sgdisk', 'gdisk');
  if (!ready) return;
  // A sparse GPT image: bmaptool create maps its file extents, we map its non-zero blocks.
  writeFileSync(image, Buffer.alloc(0));
  execFileSync('truncate', ['-s', String(SIZE), image]);
  execFileSync('sgdisk', ['-n', '1:2048:+8M', image], { stdio: 'ignore' });
  const fd = openSync(image, 'r+');
  for (const [at, len] of [
    [2 * MiB, 300_000],
    [17 * MiB + 8192, 2 * MiB],
  ]) {
    const data = Buffer.alloc(len);
    for (let i = 0; i < len; i++) data[i] = ((i * 13) ^ (at >> 16)) & 0xff || 7;
    writeSync(fd, data, 0, len, at);
  }
  closeSync(fd);
});

afterAll(() => {
  detachAll();
  rmSync(dir, { recursive: true, force: true });
});

describe('bmaptool and diskmint bmaps', () => {
  it('bmaptool copy with our map writes a device identical to our flash with the same map', (ctx) => {
    if (!ready) return ctx.skip();
    const ours = join(dir, 'ours.bmap');
    expect(diskmint(['bmap', image, '-o', ours]).status).toBe(0);
    for (const fill of [0, 0x55]) {
      const a = device(`dev-bmaptool-${fill}`, fill);
      const b = device(`dev-diskmint-${fill}`, fill);
      const peer = spawnSync('bmaptool', ['copy', '--bmap', ours, image, a], { encoding: 'utf8' });
      expect(peer.status, peer.stderr).toBe(0); // bmaptool checked our range checksums and our file checksum
      const r = diskmint(['flash', '--bmap', ours, image, b, '--yes']);
      expect(r.status, r.stderr).toBe(0);
      if (fill === 0) expect(hashOf(b)).toBe(hashOf(a));
      // On a used card the only difference is ours (documented): the first and last MiB's holes zeroed.
      else expect(spawnSync('cmp', ['-i', `${MiB}:${MiB}`, '-n', String(SIZE - 2 * MiB), a, b]).status).toBe(0);
    }
  });

  it("our flash takes bmaptool create's maps (2.0 with SHA-256, and without checksums)", (ctx) => {
    if (!ready) return ctx.skip();
    for (const args of [[], ['--no-checksum']]) {
      const map = join(dir, `peer${args.length}.bmap`);
      execFileSync('bmaptool', ['create', ...args, '-o', map, image], { stdio: 'ignore' });
      const parsed = parseBmap(readFileSync(map, 'utf8'));
      expect(parsed.checksumType).toBe('sha256'); // bmaptool 3.x writes the type even without range checksums
      const dev = device(`dev-peer${args.length}`);
      const r = diskmint(['flash', '--bmap', map, image, dev, '--yes', '--json']);
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout.toString())).toMatchObject({ bmap: map, verify: { ok: true } });
      for (const range of parsed.ranges) {
        const from = range.first * parsed.blockSize;
        const length = Math.min(SIZE, (range.last + 1) * parsed.blockSize) - from;
        expect(spawnSync('cmp', ['-i', `${from}:${from}`, '-n', String(length), image, dev]).status).toBe(0);
      }
    }
  });

  it("refuses an image whose data differs from bmaptool create's checksums, naming the range", (ctx) => {
    if (!ready) return ctx.skip();
    const map = join(dir, 'changed.bmap');
    execFileSync('bmaptool', ['create', '-o', map, image], { stdio: 'ignore' });
    const changed = join(dir, 'changed.img');
    execFileSync('cp', ['--sparse=always', image, changed]);
    const fd = openSync(changed, 'r+');
    writeSync(fd, Buffer.from([0]), 0, 1, 17 * MiB + 8192 + 100);
    closeSync(fd);
    const range = parseBmap(readFileSync(map, 'utf8')).ranges.find((x) => x.first * 4096 <= 17 * MiB + 8192 && (x.last + 1) * 4096 > 17 * MiB + 8192)!;
    const r = diskmint(['flash', '--bmap', map, changed, device('dev-changed'), '--yes']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`checksum mismatch for blocks range ${range.first}-${range.last}`);
    // bmaptool refuses the same image with the same map.
    expect(spawnSync('bmaptool', ['copy', '--bmap', map, changed, device('dev-changed-peer')]).status).not.toBe(0);
  });
});
