/**
 * A full file system (issue 17 items 5 and 7): `key generate`, `sign`, `bundle create` and `slot write` fail with a
 * message naming the file, and leave nothing behind (no 0-byte .pem or .sig, no temp file), so a
 * retry once there is room succeeds. The full disk is a 64 KiB tmpfs, filled up; mounting one
 * needs root (the suite runs as root under CI): without it the test is skipped, and
 * test/io/atomic-output.test.ts covers the same path with an injected failure.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/golden.js';
import { diskmint } from '../helpers/cli.js';

let full = '';
let mounted = false;

beforeAll(() => {
  full = join(tempDir(), 'full');
  mkdirSync(full);
  mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', full], { stdio: 'ignore' }).status === 0;
});

afterAll(() => {
  if (mounted) execFileSync('umount', [full]);
});

/**
 * Fill the tmpfs up (a file as large as it takes), leaving `roomBytes` free, run `fn`, then free
 * the room. (Room for an image edit's lock file, so the edit itself meets the full disk.)
 */
function whileFull(fn: () => void, roomBytes = 0): void {
  const filler = join(full, 'filler');
  const room = join(full, 'room');
  if (roomBytes) writeFileSync(room, Buffer.alloc(roomBytes, 1));
  spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k'], { stdio: 'ignore' }); // stops at ENOSPC
  rmSync(room, { force: true });
  try {
    fn();
  } finally {
    rmSync(filler, { force: true });
  }
}

const listing = () => readdirSync(full).sort();

describe('on a full file system nothing is left behind and a retry works', () => {
  it('key generate: exit 1 naming the key, no .pem, no .pub, no temp file; then the key is made 0600', (ctx) => {
    if (!mounted) return ctx.skip();
    const key = join(full, 'k');
    whileFull(() => {
      const r = diskmint(['key', 'generate', '-o', key]);
      expect(r.stderr).toMatch(new RegExp(`^diskmint: writing ${key}\\.(pem|pub) failed: ENOSPC`));
      expect(r.status).toBe(1);
      expect(listing()).toEqual(['filler']);
    });
    const ok = diskmint(['key', 'generate', '-o', key]);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect(listing()).toEqual(['k.pem', 'k.pub']);
    expect(statSync(`${key}.pem`).mode & 0o777).toBe(0o600);
    const again = diskmint(['key', 'generate', '-o', key]);
    expect(again.stderr).toBe(`diskmint: ${key}.pem exists; not overwriting it\n`);
    expect(again.status).toBe(1);
    expect(listing()).toEqual(['k.pem', 'k.pub']);
    rmSync(`${key}.pem`);
    rmSync(`${key}.pub`);
  });

  it('sign: exit 1 naming the signature, no .sig and no temp file; then it signs', (ctx) => {
    if (!mounted) return ctx.skip();
    const dir = tempDir();
    const img = join(dir, 'disk.img');
    writeFileSync(img, Buffer.alloc(1 << 20, 7));
    const key = join(dir, 'k');
    expect(diskmint(['key', 'generate', '-o', key]).status).toBe(0);
    const sig = join(full, 'disk.sig');
    whileFull(() => {
      const r = diskmint(['sign', img, '--key', `${key}.pem`, '-o', sig]);
      expect(r.stderr).toMatch(new RegExp(`^diskmint: writing ${sig} failed: ENOSPC`));
      expect(r.status).toBe(1);
      expect(listing()).toEqual(['filler']);
    });
    expect(diskmint(['sign', img, '--key', `${key}.pem`, '-o', sig]).status).toBe(0);
    expect(listing()).toEqual(['disk.sig']);
    rmSync(sig);
  });

  it('bundle create: exit 1 naming the bundle, nothing left behind', (ctx) => {
    if (!mounted) return ctx.skip();
    const dir = tempDir();
    const os = join(dir, 'os.img');
    writeFileSync(os, randomBytes(256 << 10)); // incompressible: more than the 64 KiB there is
    const dmb = join(full, 'os.dmb');
    const r = diskmint(['bundle', 'create', '--from', os, '--unsigned', '-o', dmb, '--compression', 'deflate']);
    expect(r.stderr).toMatch(new RegExp(`^diskmint: writing ${dmb} failed: ENOSPC`));
    expect(r.status).toBe(1);
    expect(listing()).toEqual([]);
  });

  it('slot write into a sparse image on a full file system: exit 1 naming the image', (ctx) => {
    if (!mounted) return ctx.skip();
    const dir = tempDir();
    const layout = join(dir, 'layout.json');
    writeFileSync(
      layout,
      JSON.stringify({
        scheme: 'gpt',
        size: '8M',
        partitions: [
          { type: 'freebsd-ufs', label: 'os1', size: '1M' },
          { type: 'freebsd-ufs', label: 'os2', size: '1M' },
        ],
      }),
    );
    const img = join(full, 'disk.img');
    expect(diskmint(['build', layout, '-o', img, '-q']).status).toBe(0); // sparse: a few KiB of tables
    const os = join(dir, 'os.img');
    writeFileSync(os, randomBytes(512 << 10));
    whileFull(() => {
      const r = diskmint(['slot', 'write', img, 'os2', '--from', os]);
      expect(r.stderr).toMatch(/^diskmint: writing \S+ failed: ENOSPC: no space left on device, write/);
      expect(r.stderr).toContain(img);
      expect(r.status).toBe(1);
    }, 8192); // the lock file (src/io/image-lock.ts) takes a page; the slot's data finds none
    rmSync(img);
  });
});
