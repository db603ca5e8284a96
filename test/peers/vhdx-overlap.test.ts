/**
 * VHDX structures that overlap (issue 17 item 8): BAT entries pointing into the metadata, the
 * log, the BAT or past the end, and region table entries overlapping each other; qemu-img and
 * diskmint both refuse them.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../../formats/common/errors.js';
import { vhdxHandler } from '../../src/containers/vhdx/handler.js';
import { crc32c } from '../../formats/common/crc32c.js';
import { openWithHandler } from '../helpers/containers.js';
import { requirePeer, runPeer, runPeerOk } from '../helpers/peer.js';
import { MIB, dir, sample } from './vhd-vhdx-helpers.js';

let n = 0;

describe('VHDX structures that overlap (issue 17 item 8): qemu-img and diskmint both refuse', () => {
  /** qemu-img's layout for a 5 MiB disk with 1 MiB blocks: log at 1 MiB, BAT at 2 MiB, metadata at 3 MiB. */
  function qemuVhdx(): { path: string; bytes: Buffer; batAt: number; metaAt: number } {
    const { raw } = sample(5 * MIB);
    const path = join(dir, `overlap${n++}.vhdx`);
    runPeerOk('qemu-img', ['convert', '-f', 'raw', '-O', 'vhdx', '-o', 'subformat=dynamic,block_size=1M', raw, path]);
    const bytes = readFileSync(path);
    const regionOffset = (guidFirstByte: number): number => {
      for (let i = 0; i < bytes.readUInt32LE(192 * 1024 + 8); i++) {
        const at = 192 * 1024 + 16 + i * 32;
        if (bytes[at] === guidFirstByte) return Number(bytes.readBigUInt64LE(at + 16));
      }
      throw new Error('region not found');
    };
    return { path, bytes, batAt: regionOffset(0x66), metaAt: regionOffset(0x06) }; // BAT 2dc27766-..., metadata 8b7ca206-...
  }
  const write = (bytes: Buffer): string => {
    const path = join(dir, `overlap${n++}.vhdx`);
    writeFileSync(path, bytes);
    return path;
  };
  async function oursRefuse(path: string): Promise<string> {
    const err = await openWithHandler(vhdxHandler, path).then(
      (r) => r.close().then(() => undefined),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FormatError);
    return (err as Error).message;
  }

  it('a BAT entry pointing into the metadata, the log, the BAT or past the end of the file', async (ctx) => {
    if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
    const q = qemuVhdx();
    expect(q.batAt).not.toBe(q.metaAt);
    const targets: Array<[string, number, RegExp]> = [
      ['metadata', q.metaAt, /BAT entry 1 \(payload block 1\) .* overlaps the region table entry \d \(metadata region\)/],
      ['log', MIB, /BAT entry 1 \(payload block 1\) .* overlaps the log/],
      ['BAT', q.batAt, /BAT entry 1 \(payload block 1\) .* overlaps the region table entry \d \(BAT region\)/],
      ['end of file', q.bytes.length, /payload block 1 .* outside the file/],
    ];
    for (const [what, target, pattern] of targets) {
      const bytes = Buffer.from(q.bytes);
      bytes.writeBigUInt64LE(BigInt(target) | 6n, q.batAt + 8); // FULLY_PRESENT, offset in whole MiB
      const path = write(bytes);
      const peer = runPeer('qemu-img', ['convert', '-f', 'vhdx', '-O', 'raw', path, join(dir, 'overlap-out.raw')]);
      expect(peer.status, `${what}: ${peer.out}`).not.toBe(0);
      expect(peer.out).toMatch(/overlaps|points after end of file/);
      expect(await oursRefuse(path), what).toMatch(pattern);
    }
    // Unpatched, both read it.
    expect(runPeer('qemu-img', ['check', '-f', 'vhdx', q.path]).status).toBe(0);
    await (await openWithHandler(vhdxHandler, q.path)).close();
  });

  it('a region table entry overlapping another region', async (ctx) => {
    if (!requirePeer('qemu-img', 'qemu-utils')) return ctx.skip();
    const q = qemuVhdx();
    const bytes = Buffer.from(q.bytes);
    for (const table of [192 * 1024, 256 * 1024]) {
      for (let i = 0; i < bytes.readUInt32LE(table + 8); i++) {
        const at = table + 16 + i * 32;
        if (bytes[at] === 0x06) bytes.writeBigUInt64LE(BigInt(q.batAt), at + 16); // metadata region moved onto the BAT
      }
      bytes.writeUInt32LE(0, table + 4);
      bytes.writeUInt32LE(crc32c(bytes.subarray(table, table + 64 * 1024)), table + 4);
    }
    const path = write(bytes);
    const peer = runPeer('qemu-img', ['info', '-f', 'vhdx', path]);
    expect(peer.status, peer.out).not.toBe(0);
    expect(peer.out).toMatch(/overlaps/);
    expect(await oursRefuse(path)).toMatch(/region table entry \d \((metadata|BAT) region\) .* overlaps the region table entry \d \((BAT|metadata) region\)/);
  });
});
