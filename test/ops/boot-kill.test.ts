/**
 * `boot update --bootonce` stopped at every write (the editor's beforeWrite hook throws before
 * write N, so writes 1..N-1 landed, as after a kill between two writes), on raw, qcow2 and VHDX:
 * the GPT still reads, the selector's model still boots a stage whose bytes are a whole stage
 * (the old one or the new one, never a torn one), and a re-run reaches the new state. Then the
 * same through the CLI killed by SIGKILL at its N-th pwrite64 (strace's fault injection, as
 * test/ops/container-kill.test.ts), on raw and qcow2, judged by qemu-img check too.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { chooseBootStage } from '../../formats/boot/stage-choice.js';
import { bootStatus, bootUpdate, convertImage } from '../../src/index.js';
import { openDisk } from '../../src/io/open-disk.js';
import { checksOf, loadedBytes, readBootStages } from '../../src/ops/boot/read.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer, runPeer } from '../helpers/peer.js';
import { BUNDLE, requireFreshBundle } from '../helpers/cli.js';
import { buildFallbackImage, stageFile } from '../helpers/boot-commands-image.js';

class Stop extends Error {}

let dir = '';
let stageA: Uint8Array;
let stageB = '';
let raw = '';

beforeAll(async () => {
  dir = tempDir('diskmint-boot-kill-');
  const a = stageFile(dir, 'a.bin', 40_000, 1);
  stageA = readFileSync(a);
  stageB = stageFile(dir, 'b.bin', 50_000, 2);
  raw = await buildFallbackImage(dir, a, 'base.img');
});

const startsWith = (bytes: Uint8Array, prefix: Uint8Array) => bytes.length >= prefix.length && Buffer.compare(bytes.subarray(0, prefix.length), prefix) === 0;

/** The stage the model boots, and whether its bytes are a whole stage (A or B). */
async function bootsWholeStage(img: string, b: Uint8Array): Promise<{ chosen?: number; whole: boolean }> {
  const { reader } = await openDisk(img);
  try {
    const view = await readBootStages(reader);
    const choice = chooseBootStage(view.entries, checksOf(view));
    const s = view.stages.find((x) => x.index === choice.chosen);
    if (!s) return { whole: false };
    const bytes = await loadedBytes(reader, s.offset, s.sizeBytes);
    return { chosen: s.index, whole: startsWith(bytes, stageA) || startsWith(bytes, b) };
  } finally {
    await reader.close();
  }
}

for (const format of ['raw', 'qcow2', 'vhdx'] as const) {
  describe(`boot update --bootonce stopped at every write, ${format}`, () => {
    it('always leaves a whole stage to boot, and a re-run finishes', async () => {
      const base = format === 'raw' ? raw : join(dir, `base.${format}`);
      if (format !== 'raw') await convertImage(raw, base, { format });
      const b = readFileSync(stageB);
      let total = 0;
      const counted = join(dir, `count.${format}`);
      copyFileSync(base, counted);
      await bootUpdate(counted, { from: stageB, bootonce: true, beforeWrite: (n) => void (total = n) });
      expect(total).toBeGreaterThan(4); // table, stage, zeros, two GPT copies at least
      for (let n = 1; n <= total; n++) {
        const img = join(dir, `stop-${n}.${format}`);
        copyFileSync(base, img);
        await expect(
          bootUpdate(img, {
            from: stageB,
            bootonce: true,
            beforeWrite: (k) => {
              if (k === n) throw new Stop(`stopped before write ${n}`);
            },
          }),
        ).rejects.toBeInstanceOf(Stop);
        const r = await bootsWholeStage(img, b);
        expect(r, `stopped before write ${n} of ${total}`).toMatchObject({ whole: true });
        if (format === 'qcow2' && requirePeer('qemu-img', 'qemu-utils')) {
          const check = runPeer('qemu-img', ['check', img]);
          expect(check.status === 0 || check.status === 3, check.out).toBe(true); // 3: leaked clusters only
        }
        await bootUpdate(img, { from: stageB, bootonce: true });
        const s = await bootStatus(img, { hash: false });
        expect(s.stages.map((x) => `${x.attributes}:${x.check}`)).toEqual(['-:ok', 'bootme,bootonce:ok']);
        expect(s.next.index).toBe(2);
      }
    });
  });
}

/** The CLI under strace: counting pwrite64 calls, or SIGKILL at the N-th (one libuv I/O thread: one tracee does every write). */
function traced(args: string[], opts: { count?: string; kill?: number }): { status: number | null; signal: string | null; stderr: string } {
  const env = { ...process.env, UV_THREADPOOL_SIZE: '1' };
  const inject = opts.kill === undefined ? [] : ['-e', `inject=pwrite64:signal=SIGKILL:when=${opts.kill}`];
  const r = spawnSync('strace', ['-f', '-qq', '-o', opts.count ?? '/dev/null', '-e', 'trace=pwrite64', ...inject, process.execPath, BUNDLE, ...args], {
    encoding: 'utf8',
    env,
  });
  return { status: r.status, signal: r.signal, stderr: r.stderr };
}

for (const format of ['raw', 'qcow2'] as const) {
  describe(`diskmint boot update --bootonce killed (SIGKILL) at every write, ${format}`, () => {
    it('always leaves a whole stage to boot and a sound container; a re-run finishes', async () => {
      requirePeer('strace', 'strace');
      requirePeer('qemu-img', 'qemu-utils');
      requireFreshBundle();
      const base = format === 'raw' ? raw : join(dir, `sig-base.${format}`);
      if (format !== 'raw') await convertImage(raw, base, { format });
      const img = join(dir, `sig.${format}`);
      const args = ['boot', 'update', img, '--from', stageB, '--bootonce'];
      copyFileSync(base, img);
      const log = join(dir, `sig-${format}.strace`);
      expect(traced(args, { count: log }).status).toBe(0);
      const total = readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l.includes('pwrite64(')).length;
      expect(total).toBeGreaterThan(4);
      const b = readFileSync(stageB);
      for (let n = 1; n <= total; n++) {
        copyFileSync(base, img);
        const cut = traced(args, { kill: n });
        expect(cut.signal ?? cut.status, `write ${n} of ${total}`).not.toBe(0);
        if (format === 'qcow2') expect([0, 3], `qemu-img check after write ${n}`).toContain(runPeer('qemu-img', ['check', '-f', 'qcow2', img]).status);
        expect(await bootsWholeStage(img, b), `killed at write ${n} of ${total}`).toMatchObject({ whole: true });
        const again = traced(args, {});
        expect(again.status, `re-run after write ${n}: ${again.stderr}`).toBe(0);
        expect((await bootStatus(img, { hash: false })).next.index).toBe(2);
      }
    });
  });
}
