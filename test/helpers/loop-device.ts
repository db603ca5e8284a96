/**
 * Loop devices standing in for cards (flash and bmaptool tests). They need root (CI runs as
 * root): without it, or without losetup, a test fails under CI and is skipped elsewhere, as
 * requirePeer does. Every device a test attaches is detached by `detachAll` (call it in
 * afterAll), and only those: other tests may hold loop devices of their own.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { requirePeer } from './peer.js';

const attached: string[] = [];

/** True when loop devices can be made here; see the file comment for what happens when not. */
export function requireLoopDevices(): boolean {
  if (!requirePeer('losetup', 'mount')) return false;
  if (process.getuid?.() === 0) return true;
  const msg = 'loop device tests need root (losetup)';
  if (process.env.CI === 'true' || process.env.CI === '1') throw new Error(msg);
  console.warn(`skipping: ${msg}`);
  return false;
}

/** Attach `file` as a loop device (with `-P`, partitions scanned) and return its path. */
export function attachLoop(file: string, opts: { partitions?: boolean } = {}): string {
  const dev = execFileSync('losetup', ['-f', '--show', ...(opts.partitions ? ['-P'] : []), file], { encoding: 'utf8' }).trim();
  attached.push(dev);
  return dev;
}

export function detachAll(): void {
  for (const dev of attached.splice(0)) {
    try {
      execFileSync('losetup', ['-d', dev], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  }
}

/** SHA-256 of the first `length` bytes of a device or file (the whole when omitted), read in chunks. */
export function hashOf(path: string, length = Infinity): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(1 << 20);
  try {
    for (let at = 0; at < length;) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, length - at), at);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      at += n;
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}
