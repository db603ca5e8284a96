/**
 * The file sink's direct writes on their way (src/io/sink-direct.ts WRITES_BEHIND): a write
 * resolves once its bytes are copied into a staging buffer, and the device write goes on behind.
 * A failure there must not be lost: the next write and `finish` throw it. The device write is made
 * to fail through node:fs's `write` (the call sink-direct.ts makes for its O_DIRECT writes; the
 * sink's buffered writes go through the FileHandle and are untouched).
 */
import { closeSync, constants, openSync, readFileSync, unlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { fileSink } from '../../src/io/sink.js';
import { tempDir } from '../helpers/golden.js';

const failing = vi.hoisted(() => ({ on: false, calls: 0 }));

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const { promisify } = await import('node:util');
  type Callback = (err: NodeJS.ErrnoException | null, bytesWritten?: number, buffer?: Uint8Array) => void;
  const write = (fd: number, buffer: Uint8Array, offset: number, length: number, position: number, callback: Callback) => {
    failing.calls++;
    if (failing.on) return void setImmediate(() => callback(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })));
    real.write(fd, buffer, offset, length, position, callback);
  };
  // As node:fs's own write, promisified to { bytesWritten, buffer }.
  Object.defineProperty(write, promisify.custom, {
    value: (fd: number, buffer: Uint8Array, offset: number, length: number, position: number) =>
      new Promise((resolve, reject) =>
        write(fd, buffer, offset, length, position, (err, bytesWritten, b) => (err ? reject(err) : resolve({ bytesWritten, buffer: b }))),
      ),
  });
  return { ...real, write };
});

/** Whether files in `dir` open with O_DIRECT (tmpfs and some FUSE file systems refuse it). */
function directWorksIn(dir: string): boolean {
  const probe = join(dir, 'probe');
  try {
    closeSync(openSync(probe, constants.O_RDWR | constants.O_CREAT | (constants.O_DIRECT ?? 0)));
    return process.platform === 'linux' && process.env.DISKMINT_PURE_IO !== '1';
  } catch {
    return false;
  } finally {
    unlinkSync(probe);
  }
}

const data = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => ((i + seed) % 251) + 1);

describe('file sink: direct writes on their way', () => {
  it('a write resolves before its device write ends; the bytes land once finish resolves', async (ctx) => {
    const dir = tempDir('diskmint-behind-');
    if (!directWorksIn(dir)) return ctx.skip(); // no direct writes here, so none behind
    const path = join(dir, 'ok.bin');
    const handle = await open(path, 'wx');
    const sink = fileSink(handle);
    const reused = new Uint8Array(3 << 20);
    const expected: Uint8Array[] = [];
    for (let k = 0; k < 5; k++) {
      reused.set(data(reused.length, k));
      expected.push(reused.slice());
      await sink.writeParts([reused]);
      reused.fill(0xee); // the caller's memory is free once the write resolves
    }
    await sink.finish();
    await handle.close();
    expect(Buffer.compare(readFileSync(path), Buffer.concat(expected))).toBe(0);
    expect(sink.directBytes).toBe(5 * reused.length);
  });

  it('a device write that fails on its way is thrown by the next write and by finish', async (ctx) => {
    const dir = tempDir('diskmint-behind-');
    if (!directWorksIn(dir)) return ctx.skip();
    const handle = await open(join(dir, 'full.bin'), 'wx');
    const sink = fileSink(handle);
    failing.on = true;
    failing.calls = 0;
    try {
      await sink.writeParts([data(2 << 20, 1)]); // resolves: copied, its device write behind
      await vi.waitFor(() => expect(failing.calls).toBeGreaterThan(0));
      await expect(sink.finish()).rejects.toThrow(/ENOSPC/);
      await expect(sink.writeParts([data(1 << 20, 2)])).rejects.toThrow(/ENOSPC/);
    } finally {
      failing.on = false;
      await handle.close();
    }
  });
});
