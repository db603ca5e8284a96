/**
 * flashImage to regular files (what a hypervisor exposes as a disk): which bytes it writes and
 * which it leaves, read-back verification, refusals, Ctrl-C, bmap checksums. Block devices are
 * flash-devices.test.ts.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, writeFileSync, writeSync, closeSync, truncateSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { flashImage, FlashInterrupted, type FlashOptions } from '../../src/ops/flash/flash.js';
import { FLASH_CHUNK, WRITES_IN_FLIGHT } from '../../src/ops/flash/write.js';
import { blockMapOf } from '../../src/ops/bmap.js';
import { writeBmap } from '../../formats/bmap/bmap.js';
import { openDisk } from '../../src/io/open-disk.js';
import { DiskmintError } from '../../src/model/errors.js';

const MiB = 1 << 20;
const dir = mkdtempSync(join(tmpdir(), 'diskmint-flash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A raw image of `size` bytes: an MBR-like signature in sector 0 (so it "holds a table" only when asked), data pieces elsewhere. */
function image(name: string, size: number, pieces: Array<[offset: number, length: number, seed: number]>): { path: string; bytes: Buffer } {
  const path = join(dir, name);
  const bytes = Buffer.alloc(size);
  for (const [offset, length, seed] of pieces) for (let i = 0; i < length; i++) bytes[offset + i] = (seed + i * 7 + (i >> 9)) % 251 || 1;
  writeFileSync(path, bytes);
  return { path, bytes };
}

/** A target file of `size` bytes, every byte 0xAA (old contents a flash must overwrite or keep). */
function target(name: string, size: number): string {
  const path = join(dir, name);
  writeFileSync(path, Buffer.alloc(size, 0xaa));
  return path;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const yes: FlashOptions = { yes: true };

describe('flashImage to a regular file', () => {
  const size = 8 * MiB;
  const img = image('data.img', size, [
    [0, 512, 3],
    [3 * MiB + 4096, 70_000, 5],
    [size - 4096, 4096, 9],
  ]);

  it('writes the data and the first and last MiB; other holes keep the old bytes', async () => {
    const dev = target('keep.dev', size + MiB);
    const r = await flashImage(img.path, dev, yes);
    const got = readFileSync(dev);
    expect(r.verify.ok).toBe(true);
    expect(r.write).toBe('buffered'); // a regular file: through the page cache, fdatasync before the read-back
    // Data and the table areas equal the image.
    expect(sha(got.subarray(0, MiB))).toBe(sha(img.bytes.subarray(0, MiB)));
    expect(sha(got.subarray(3 * MiB, 3 * MiB + 4096 + 70_000))).toBe(sha(img.bytes.subarray(3 * MiB, 3 * MiB + 4096 + 70_000)));
    expect(sha(got.subarray(size - MiB, size))).toBe(sha(img.bytes.subarray(size - MiB, size)));
    // A hole in the middle kept the device's old bytes, and nothing past the image was touched.
    expect(got.subarray(2 * MiB, 3 * MiB).every((b) => b === 0xaa)).toBe(true);
    expect(got.subarray(size).every((b) => b === 0xaa)).toBe(true);
    expect(r.dataBytes + r.zeroBytes).toBeLessThan(size / 2);
  });

  it('with discard every hole reads as zeros: the first image-size bytes equal the image, and verify=full agrees', async () => {
    const dev = target('discard.dev', size + MiB);
    const r = await flashImage(img.path, dev, { ...yes, discard: true, verify: 'full' });
    expect(r.verify).toMatchObject({ mode: 'full', ok: true });
    const got = readFileSync(dev);
    expect(sha(got.subarray(0, size))).toBe(sha(img.bytes));
    expect(got.subarray(size).every((b) => b === 0xaa)).toBe(true);
  });

  it('verify=full without discard reports the first old byte left in a hole', async () => {
    const dev = target('full.dev', size);
    const r = await flashImage(img.path, dev, { ...yes, verify: 'full' });
    expect(r.verify.ok).toBe(false);
    expect(r.verify.firstBadOffset).toBe(MiB); // the first byte after the zeroed first MiB
  });

  it('read-back catches a byte changed on the target between write and verify, naming its offset', async () => {
    const dev = target('changed.dev', size);
    const bad = 3 * MiB + 4096 + 1234;
    const r = await flashImage(img.path, dev, {
      ...yes,
      beforeVerify: async () => {
        const fd = openSync(dev, 'r+');
        writeSync(fd, Buffer.from([img.bytes[bad] ^ 0xff]), 0, 1, bad);
        closeSync(fd);
      },
    });
    expect(r.verify).toMatchObject({ ok: false, firstBadOffset: bad });
  });

  it('refuses a target smaller than the image, and one not confirmed, writing nothing', async () => {
    const small = target('small.dev', size - 512);
    await expect(flashImage(img.path, small, yes)).rejects.toThrow(/is smaller than the image \(8388608 bytes needed, it holds 8388096\); nothing was written/);
    expect(readFileSync(small).every((b) => b === 0xaa)).toBe(true);
    const dev = target('unconfirmed.dev', size);
    await expect(flashImage(img.path, dev)).rejects.toThrow(/asks before it writes/);
    let asked = '';
    await expect(
      flashImage(img.path, dev, {
        confirm: (c) => {
          asked = c.description;
          return false;
        },
      }),
    ).rejects.toThrow(/not confirmed: nothing was written/);
    expect(asked).toContain('unconfirmed.dev (a regular file of 8 MiB)');
    await expect(flashImage(img.path, img.path, yes)).rejects.toThrow(/data.img is the image itself; nothing was written/);
    expect(readFileSync(dev).every((b) => b === 0xaa)).toBe(true);
  });

  it('stops at once when aborted, saying how far it got and that the target is incomplete', async () => {
    const big = image('big.img', 24 * MiB, [[0, 24 * MiB, 1]]);
    const dev = target('abort.dev', 24 * MiB);
    const controller = new AbortController();
    const err = await flashImage(big.path, dev, {
      ...yes,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase === 'write' && p.doneBytes >= 8 * MiB) controller.abort();
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FlashInterrupted);
    // The writes already in flight when the signal came finish; nothing after them starts.
    const written = (err as FlashInterrupted).writtenBytes;
    expect(written).toBeGreaterThanOrEqual(8 * MiB);
    expect(written).toBeLessThanOrEqual(8 * MiB + WRITES_IN_FLIGHT * FLASH_CHUNK);
    expect(written).toBeLessThan(24 * MiB);
    expect((err as Error).message).toMatch(new RegExp(`interrupted after writing ${written} of 25165824 bytes: .*abort.dev is incomplete`));
    const got = readFileSync(dev);
    expect(sha(got.subarray(0, written))).toBe(sha(big.bytes.subarray(0, written)));
    expect(got.subarray(written).every((b) => b === 0xaa)).toBe(true);
  });

  it('with a bmap writes its ranges, checks their checksums, and stops at a range whose data differs', async () => {
    const opened = await openDisk(img.path);
    const map = await blockMapOf(opened.reader);
    await opened.reader.close();
    const dev = target('bmap.dev', size);
    const ok = await flashImage(img.path, dev, { ...yes, bmap: join(dir, 'data.bmap') }).catch((e: unknown) => e);
    expect(ok).toBeInstanceOf(DiskmintError); // no such file yet
    writeFileSync(join(dir, 'data.bmap'), writeBmap(map));
    expect((await flashImage(img.path, dev, { ...yes, bmap: join(dir, 'data.bmap') })).verify.ok).toBe(true);
    // The same map over an image whose second range changed: refused, naming the range.
    const other = Buffer.from(img.bytes);
    other[3 * MiB + 5000] ^= 1;
    writeFileSync(join(dir, 'other.img'), other);
    const second = map.ranges[1];
    await expect(flashImage(join(dir, 'other.img'), target('bmap2.dev', size), { ...yes, bmap: map })).rejects.toThrow(
      new RegExp(`checksum mismatch for blocks range ${second.first}-${second.last}`),
    );
    // A SHA-1 map (another hash than our own digest), checked the same way.
    const sha1Map = {
      ...map,
      checksumType: 'sha1' as const,
      ranges: map.ranges.map((r) => ({
        ...r,
        checksum: createHash('sha1')
          .update(img.bytes.subarray(r.first * 4096, Math.min(size, (r.last + 1) * 4096)))
          .digest('hex'),
      })),
    };
    expect((await flashImage(img.path, target('sha1.dev', size), { ...yes, bmap: sha1Map })).verify.ok).toBe(true);
    await expect(flashImage(join(dir, 'other.img'), target('sha1-bad.dev', size), { ...yes, bmap: sha1Map })).rejects.toThrow(
      new RegExp(`checksum mismatch for blocks range ${second.first}-${second.last}`),
    );
    // A map of another size is not this image's.
    truncateSync(join(dir, 'other.img'), size + 4096);
    await expect(flashImage(join(dir, 'other.img'), target('bmap3.dev', size + 4096), { ...yes, bmap: map })).rejects.toThrow(/not its map/);
  });
});
