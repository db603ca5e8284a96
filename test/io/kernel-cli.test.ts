/**
 * The kernel path from the command line (dist/diskmint.cjs): `info` names it (dataMap), koffi
 * loads from the bundle but never at start-up, and a 142 GiB sparse raw image holding 32 KiB
 * converts to qcow2 and compares, judged by qemu-img compare (no timing: it finishes, and is
 * right; on the pure path the same commands read 142 GiB of holes).
 */
import { closeSync, ftruncateSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE, ROOT, diskmint, requireFreshBundle } from '../helpers/cli.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer, runPeer } from '../helpers/peer.js';

const GiB = 2 ** 30;

function sparseRaw(path: string, size: number, data: { at: number; length: number }[]): void {
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, size);
    for (const { at, length } of data) {
      const bytes = Buffer.alloc(length);
      for (let i = 0; i < length; i++) bytes[i] = (i % 250) + 1;
      writeSync(fd, bytes, 0, length, at);
    }
  } finally {
    closeSync(fd);
  }
}

describe('the kernel path from the command line', () => {
  beforeAll(requireFreshBundle);

  it('info --json and --verbose name how the raw input is read; DISKMINT_PURE_IO=1 chooses the scan', () => {
    const dir = tempDir();
    const img = join(dir, 'disk.img');
    sparseRaw(img, 64 << 20, [{ at: 1 << 20, length: 512 }]);
    // The kernel path asked for explicitly (CI's second pass runs with DISKMINT_PURE_IO=1).
    const kernel = { DISKMINT_PURE_IO: '0' };
    const json = (env: NodeJS.ProcessEnv) => JSON.parse(diskmint(['info', '--json', img], { env }).stdout.toString()) as { dataMap?: string };
    expect(json(kernel).dataMap).toBe('kernel-seek-data');
    expect(json({ DISKMINT_PURE_IO: '1' }).dataMap).toBe('scan');
    expect(diskmint(['info', '--verbose', img], { env: kernel }).stdout.toString()).toContain('\ndata map: kernel-seek-data\n');
    expect(diskmint(['info', img]).stdout.toString()).not.toContain('data map');
    // Not a raw image: no data map.
    const q = join(dir, 'disk.qcow2');
    expect(diskmint(['convert', img, q, '-q']).status).toBe(0);
    expect(json(kernel).dataMap).toBe('kernel-seek-data');
    expect((JSON.parse(diskmint(['info', '--json', q]).stdout.toString()) as { dataMap?: string }).dataMap).toBeUndefined();
  });

  it('loads koffi only when a raw input is opened, never for --version or fat create', () => {
    const dir = tempDir();
    const img = join(dir, 'disk.img');
    sparseRaw(img, 8 << 20, [{ at: 0, length: 512 }]);
    const probe = join(dir, 'probe.cjs');
    writeFileSync(
      probe,
      `const { loadCli } = require(${JSON.stringify(join(ROOT, 'dist', 'cli-loader.cjs'))});
      process.on('exit', () => require('node:fs').writeSync(2, JSON.stringify(Object.keys(require.cache).some((f) => /[\\\\/]koffi[\\\\/]/.test(f)))));
      loadCli().cli.main(['node', 'diskmint', ...process.argv.slice(2)]);`,
    );
    const koffiLoaded = (...args: string[]) =>
      JSON.parse(spawnSync(process.execPath, [probe, ...args], { encoding: 'utf8', env: { ...process.env, DISKMINT_PURE_IO: '0' } }).stderr) as boolean;
    expect(koffiLoaded('--version')).toBe(false);
    expect(koffiLoaded('fat', 'create', join(dir, 'esp.img'), '--from', join(ROOT, 'fixtures', 'demo', 'esp'))).toBe(false);
    expect(koffiLoaded('info', img)).toBe(true);
  });

  it('converts a 142 GiB sparse raw image holding 32 KiB to qcow2, and compares it, as qemu-img does', (ctx) => {
    if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
    const dir = tempDir();
    const raw = join(dir, 'huge.raw');
    const size = 142 * GiB;
    sparseRaw(raw, size, [
      { at: 0, length: 8192 },
      { at: 77 * GiB + 12345, length: 16384 },
      { at: size - 8192, length: 8192 },
    ]);
    const qcow2 = join(dir, 'huge.qcow2');
    // The kernel path, whatever the run's DISKMINT_PURE_IO: the pure path reads 142 GiB (minutes).
    const kernel = { DISKMINT_PURE_IO: '0' };
    const convert = spawnSync(process.execPath, [BUNDLE, 'convert', raw, qcow2, '-q', '--json'], { encoding: 'utf8', env: { ...process.env, ...kernel } });
    expect(convert.stderr).toBe('');
    expect(convert.status).toBe(0);
    expect(runPeer('qemu-img', ['compare', raw, qcow2])).toEqual({ status: 0, out: 'Images are identical.\n' });
    const same = diskmint(['compare', raw, qcow2], { env: kernel });
    expect(same.stdout.toString()).toContain('the same disk');
    expect(same.status).toBe(0);
    // A difference deep in the holes is found too: one byte written into the raw file's hole.
    const fd = openSync(raw, 'r+');
    writeSync(fd, Buffer.from([0x5a]), 0, 1, 100 * GiB + 3);
    closeSync(fd);
    const differs = diskmint(['compare', raw, qcow2, '--json'], { env: kernel });
    expect(JSON.parse(differs.stdout.toString())).toMatchObject({ identical: false, firstDifference: 100 * GiB + 3 });
    expect(differs.status).toBe(1);
  });
});
