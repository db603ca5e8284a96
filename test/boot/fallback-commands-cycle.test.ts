/**
 * Issue 20's cycle through the commands a user runs: an image built with
 * `"bootcode": "diskmint-fallback"`, then `boot update --bootonce`, power-ups under SeaBIOS
 * (qemu-system-x86_64, TCG), `boot confirm`. After each power-up the test checks that the
 * stage the emulator ran is the one `boot status` named beforehand and the one `boot simulate`
 * predicted, that the attributes the stage printed are those the model says the selector left,
 * and that `boot status` afterwards reads the same attributes from the disk. Raw, and qcow2
 * edited in place by the same commands.
 */
import { describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bootConfirm, bootSimulate, bootStatus, bootUpdate, buildImage, type Layout } from '../../src/index.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer } from '../helpers/peer.js';
import { bootBiosAndCapture, runLimited } from '../helpers/qemu.js';
import { TEST_STAGE_A, TEST_STAGE_B, writeBytesAt } from '../helpers/fallback-image.js';

/** A stage's name and the attributes it printed for each freebsd-boot entry. */
async function powerUp(path: string, format: 'raw' | 'qcow2'): Promise<{ name?: string; attrs: Map<number, bigint>; log: string }> {
  const log = await bootBiosAndCapture(path, { format, bus: format === 'qcow2' ? 'ide' : undefined, until: 'DMSEL halt\r\n' });
  const m = /STAGE ([AB])(?: backup)? attrs((?: \d+:[0-9a-f]{16})*)\r\n/.exec(log);
  if (!m) return { attrs: new Map(), log };
  const attrs = new Map(
    m[2]
      .trim()
      .split(' ')
      .filter(Boolean)
      .map((x) => [Number(x.split(':')[0]), BigInt(`0x${x.split(':')[1]}`)] as const),
  );
  return { name: m[1], attrs, log };
}

interface Labels {
  /** GPT index of the partition that holds stage A at first, and of the one that gets B. */
  a: number;
  b: number;
}

/**
 * One power-up, checked three ways: status before names the stage, simulate predicts it and
 * the attributes it leaves, and the stage prints those attributes; status after agrees.
 */
async function checkedPowerUp(path: string, format: 'raw' | 'qcow2', expected: 'A' | 'B', idx: Labels): Promise<void> {
  const before = await bootStatus(path, { hash: false });
  const predicted = (await bootSimulate(path, ['ok'])).steps[0];
  const run = await powerUp(path, format);
  expect(run.name, run.log).toBe(expected);
  const ranIndex = expected === 'A' ? idx.a : idx.b;
  expect(before.next.index).toBe(ranIndex);
  expect(predicted.choice.chosen).toBe(ranIndex);
  // What the selector left on disk (the stage read it from the GPT) is what the model says.
  const modelAfter = new Map(predicted.choice.after.filter((e) => e.index === idx.a || e.index === idx.b).map((e) => [e.index, e.attributes]));
  expect(new Map([...run.attrs].filter(([i]) => i === idx.a || i === idx.b))).toEqual(modelAfter);
  const after = await bootStatus(path, { hash: false });
  for (const s of after.stages) if (s.index === idx.a || s.index === idx.b) expect(s.attributeBits).toBe(modelAfter.get(s.index));
}

function layout(): Layout {
  return {
    scheme: 'gpt',
    size: '8M',
    seed: 'fallback-commands-cycle',
    bootcode: 'diskmint-fallback',
    partitions: [
      { type: 'freebsd-boot', label: 'gptboot0', size: '64K', contents: { file: TEST_STAGE_A } },
      { type: 'freebsd-boot', label: 'gptboot1', size: '64K', contents: { file: TEST_STAGE_A } },
      { type: 'freebsd-ufs', label: 'os', size: '1M' },
    ],
  };
}

async function cycle(dir: string, format: 'raw' | 'qcow2'): Promise<void> {
  const path = join(dir, `cycle.${format === 'raw' ? 'img' : 'qcow2'}`);
  await buildImage(layout(), { output: path, format: format === 'raw' ? undefined : 'qcow2', baseDir: dir });
  const status = await bootStatus(path, { hash: false });
  expect(status.selector.installed).toBe(true);
  const [first, second] = status.stages.map((s) => s.index);
  const idx: Labels = { a: first, b: second };

  // 1. fresh: the first freebsd-boot stage boots.
  await checkedPowerUp(path, format, 'A', idx);

  // 2. boot update --from B --bootonce writes the stage that is not the default (the second)
  //    and marks it to be tried once: B runs, with its bootme cleared before the jump.
  const upd = await bootUpdate(path, { from: TEST_STAGE_B, bootonce: true });
  expect(upd.stage).toBe(idx.b);
  await checkedPowerUp(path, format, 'B', idx);

  // 3. no confirm (B "failed"): the next power-up marks B bootfailed and runs A.
  await checkedPowerUp(path, format, 'A', idx);
  expect((await bootStatus(path, { hash: false })).stages.find((s) => s.index === idx.b)?.attributes).toContain('bootfailed');

  // 4. update again, B runs, `boot confirm`: B is the default for every later power-up.
  await bootUpdate(path, { from: TEST_STAGE_B, bootonce: true });
  await checkedPowerUp(path, format, 'B', idx);
  await bootConfirm(path);
  await checkedPowerUp(path, format, 'B', idx);
  await checkedPowerUp(path, format, 'B', idx);

  // 5. garbage over A's partition: status says A no longer matches its record, B still boots.
  const aOffset = (await bootStatus(path, { hash: false })).stages.find((s) => s.index === idx.a)!.offset;
  await writeBytesAt(path, aOffset, new Uint8Array(4096).fill(0xcc));
  expect((await bootStatus(path, { hash: false })).stages.find((s) => s.index === idx.a)?.check).toBe('mismatch');
  await checkedPowerUp(path, format, 'B', idx);

  // 6. the primary GPT header destroyed: status and the selector both read the backup.
  await writeBytesAt(path, 512, new Uint8Array(512));
  const run = await powerUp(path, format);
  expect(run.name, run.log).toBe('B');
  expect(run.log).toContain('STAGE B backup');
  expect((await bootStatus(path, { hash: false })).next.index).toBe(idx.b);
}

describe('fallback selector driven by boot update / confirm under SeaBIOS', () => {
  it('runs the issue 20 cycle on raw and qcow2, status and simulate agreeing with the emulator', { timeout: 900_000 }, async (ctx) => {
    if (!requirePeer('qemu-system-x86_64', 'qemu-system-x86')) return ctx.skip();
    const dir = tempDir('diskmint-fallback-commands-');
    await writeFile(join(dir, 'README'), 'fallback commands cycle\n');
    await runLimited(2, [() => cycle(dir, 'raw'), () => cycle(dir, 'qcow2')]);
  });
});
