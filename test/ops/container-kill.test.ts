/**
 * kill -9 at every write of an in-place container edit (issue 17): strace's fault injection
 * (`-e inject=pwrite64:signal=SIGKILL:when=N`) stops `slot write --bootonce` at its N-th write,
 * for every N, in a qcow2, a monolithicSparse VMDK, a dynamic VHD and a VHDX. After each stop:
 * qemu-img check finds no corruption (leaked clusters at most), the container reads as a disk
 * whose GPT diskmint finds valid with os1 untouched, and a re-run of the command reaches the
 * new state: os2 holds the new data and is marked bootonce.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildImage, convertImage, inspectImage } from '../../src/index.js';
import { openDisk } from '../../src/io/open-disk.js';
import { BUNDLE, requireFreshBundle } from '../helpers/cli.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer, runPeer } from '../helpers/peer.js';

const MiB = 1 << 20;

const KINDS = [
  { format: 'qcow2', options: undefined, qemu: 'qcow2' },
  { format: 'vmdk', options: 'subformat=monolithicSparse', qemu: 'vmdk' },
  { format: 'vhd', options: undefined, qemu: 'vpc' },
  { format: 'vhdx', options: undefined, qemu: 'vhdx' },
] as const;

/**
 * strace counts a syscall's calls per thread (tracee); with one libuv I/O thread every file write
 * is on that thread, so `when=N` is the command's N-th write.
 */
const ONE_IO_THREAD = { ...process.env, UV_THREADPOOL_SIZE: '1' };

function run(args: string[], inject?: number): { status: number | null; signal: string | null; stderr: string } {
  const tracer =
    inject === undefined ? [] : ['strace', '-f', '-qq', '-o', '/dev/null', '-e', 'trace=pwrite64', '-e', `inject=pwrite64:signal=SIGKILL:when=${inject}`];
  const [cmd, ...rest] = [...tracer, process.execPath, BUNDLE, ...args];
  const r = spawnSync(cmd, rest, { encoding: 'utf8', env: ONE_IO_THREAD });
  return { status: r.status, signal: r.signal, stderr: r.stderr };
}

/** How many pwrite64 calls the command makes, counted by strace. */
function countWrites(args: string[], log: string): number {
  const r = spawnSync('strace', ['-f', '-qq', '-o', log, '-e', 'trace=pwrite64', process.execPath, BUNDLE, ...args], { encoding: 'utf8', env: ONE_IO_THREAD });
  expect(r.status, r.stderr).toBe(0);
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => /pwrite64\(/.test(l)).length;
}

async function slotBytes(img: string, label: string): Promise<string> {
  const table = (await inspectImage(img)).table!;
  const p = table.partitions.find((x) => x.label === label)!;
  const { reader } = await openDisk(img);
  try {
    return createHash('sha256')
      .update(await reader.read(p.firstLba * 512, p.sizeBytes))
      .digest('hex');
  } finally {
    await reader.close();
  }
}

describe('kill -9 at every write of a container edit', () => {
  for (const kind of KINDS) {
    it(`${kind.format} ${kind.options ?? ''}: no corruption, old slot intact, a re-run completes`, async () => {
      requirePeer('strace', 'strace');
      requirePeer('qemu-img', 'qemu-utils');
      requireFreshBundle();
      const dir = tempDir('diskmint-kill-');
      const raw = join(dir, 'ab.img');
      writeFileSync(join(dir, 'os1.bin'), Buffer.alloc(2 * MiB, 0x11));
      await buildImage(
        {
          scheme: 'gpt',
          size: '16M',
          partitions: [
            { type: 'freebsd-ufs', label: 'os1', size: '4M', attributes: ['bootme'], contents: { file: 'os1.bin' } },
            { type: 'freebsd-ufs', label: 'os2', size: '4M' },
          ],
        },
        { output: raw, baseDir: dir },
      );
      const pristine = join(dir, `pristine.${kind.format}`);
      await convertImage(raw, pristine, { format: kind.format, options: kind.options });
      const data = join(dir, 'os.bin');
      writeFileSync(data, Buffer.alloc(3 * MiB + 4096, 0x77));
      const img = join(dir, `img.${kind.format}`);
      const args = ['slot', 'write', img, 'os2', '--from', data, '--bootonce'];
      copyFileSync(pristine, img);
      const os1 = await slotBytes(img, 'os1');
      const total = countWrites(args, join(dir, 'count.strace'));
      const want = await slotBytes(img, 'os2');
      expect(total).toBeGreaterThan(3);
      for (let n = 1; n <= total; n++) {
        copyFileSync(pristine, img);
        const cut = run(args, n);
        expect(cut.signal ?? cut.status, `write ${n} of ${total}`).not.toBe(0);
        const check = runPeer('qemu-img', ['check', '-f', kind.qemu, img]);
        if (kind.qemu !== 'vpc') expect([0, 3], `qemu-img check after write ${n}: ${check.out}`).toContain(check.status);
        else expect(runPeer('qemu-img', ['info', '-f', 'vpc', img]).status).toBe(0);
        expect(await slotBytes(img, 'os1'), `os1 after write ${n}`).toBe(os1);
        const again = run(args);
        expect(again.status, `re-run after write ${n}: ${again.stderr}`).toBe(0);
        expect(await slotBytes(img, 'os2')).toBe(want);
        const os2 = (await inspectImage(img)).table!.partitions.find((p) => p.label === 'os2')!;
        expect(os2.attributes).toEqual(expect.arrayContaining(['bootonce', 'bootme']));
      }
    });
  }
});
