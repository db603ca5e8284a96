/**
 * Issue 20's proof: diskmint's fallback selector (bootcode/fallback-mbr.bin + fallback-stage2.bin)
 * boots under SeaBIOS (qemu-system-x86_64, TCG) and picks among two freebsd-boot partitions by
 * the rules of bootcode/SELECTOR.md. The test stages A and B stand in for gptboot: each prints
 * its name and the attributes of every freebsd-boot entry, then ends QEMU. After each boot the
 * test checks which stage ran, what it saw and what is on the disk in both GPT copies.
 */
import { describe, expect, it } from 'vitest';
import { copyFile, readFile } from 'node:fs/promises';
import { STAGE_MAX_BYTES } from '../../formats/boot/stage-table.js';
import { join } from 'node:path';
import { buildImage, convertImage } from '../../src/index.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer } from '../helpers/peer.js';
import { bootBiosAndCapture, runLimited } from '../helpers/qemu.js';
import {
  BOOTFAILED,
  BOOTME,
  BOOTONCE,
  FALLBACK_MBR,
  TEST_STAGE_A,
  TEST_STAGE_B,
  attributesOnDisk,
  buildFallbackImage,
  recordStage,
  setAttributes,
  writeBytesAt,
  writeStageBytes,
  type FallbackImage,
} from '../helpers/fallback-image.js';

interface StageRun {
  name: string;
  /** The stage read the backup GPT (the primary header was not "EFI PART"). */
  backup: boolean;
  /** Attributes of each freebsd-boot entry, by partition number, as the stage read them. */
  attrs: Map<number, bigint>;
}

/** The one "STAGE ..." line of a boot, or undefined when no stage ran. */
function stageRun(log: string): StageRun | undefined {
  const lines = [...log.matchAll(/STAGE ([AB])( backup)? attrs((?: \d+:[0-9a-f]{16})*)\r\n/g)];
  if (lines.length === 0) return undefined;
  expect(lines.length, log).toBe(1);
  const [, name, backup, list] = lines[0];
  const attrs = new Map(
    list.trim()
      ? list
          .trim()
          .split(' ')
          .map((x) => [Number(x.split(':')[0]), BigInt(`0x${x.split(':')[1]}`)] as const)
      : [],
  );
  return { name, backup: Boolean(backup), attrs };
}

/** The selector's trace lines ("DMSEL ..."), without the prefix. */
function trace(log: string): string[] {
  return [...log.matchAll(/DMSEL ([^\r\n]*)\r\n/g)].map((m) => m[1]);
}

/** Attributes of partitions 2 (A) and 3 (B) in both copies; both copies must agree. */
async function diskAttrs(path: string, copies: Array<'primary' | 'backup'> = ['primary', 'backup']): Promise<[bigint, bigint]> {
  const got = await attributesOnDisk(path);
  const seen = copies.map((c) => {
    const m = got[c];
    expect(m, `${c} GPT copy valid`).toBeDefined();
    return [m!.get(2)!, m!.get(3)!] as [bigint, bigint];
  });
  for (const s of seen) expect(s).toEqual(seen[0]);
  return seen[0];
}

async function boot(path: string, format: 'raw' | 'qcow2' = 'raw', bus?: 'ide'): Promise<{ log: string; run?: StageRun; trace: string[] }> {
  const log = await bootBiosAndCapture(path, { format, bus, until: 'DMSEL halt\r\n' });
  return { log, run: stageRun(log), trace: trace(log) };
}

const haveEmulator = () => requirePeer('qemu-system-x86_64', 'qemu-system-x86');

describe('fallback selector under SeaBIOS', () => {
  it('runs the issue 20 cycle: fresh, tried once, fallen back, confirmed, A wiped, primary GPT gone', { timeout: 600_000 }, async (ctx) => {
    if (!haveEmulator()) return ctx.skip();
    const dir = tempDir('diskmint-fallback-cycle-');
    const img: FallbackImage = await buildFallbackImage(dir);
    const stageB = await readFile(TEST_STAGE_B);

    // 1. fresh: no attributes, A is the first freebsd-boot entry.
    let b = await boot(img.path);
    expect(b.run?.name, b.log).toBe('A');
    expect(b.run?.attrs).toEqual(
      new Map([
        [2, 0n],
        [3, 0n],
      ]),
    );
    expect(b.trace).toContain('try 2');

    // 2. B written (with its table record) and marked bootonce+bootme: B runs once, and sees
    //    its bootme cleared on disk before it was jumped into (the qcow2 copy on SeaBIOS's ATA driver).
    await recordStage(img, img.b, stageB);
    await setAttributes(img.path, new Map([[3, BOOTONCE | BOOTME]]));
    const qcow2 = join(dir, 'step2.qcow2');
    await convertImage(img.path, qcow2);
    const [raw2, q2] = await runLimited(2, [() => boot(img.path), () => boot(qcow2, 'qcow2', 'ide')]);
    for (const r of [raw2, q2]) {
      expect(r.run?.name, r.log).toBe('B');
      expect(r.run?.attrs.get(3)).toBe(BOOTONCE);
      expect(r.trace).toEqual(expect.arrayContaining(['try 3', 'mark 3 bootme-cleared', 'boot 3']));
    }
    expect(await diskAttrs(img.path)).toEqual([0n, BOOTONCE]);
    expect(await diskAttrs(qcow2)).toEqual([0n, BOOTONCE]);

    // 3. no confirm: the next power-up turns B's lone bootonce into bootfailed and runs A.
    b = await boot(img.path);
    expect(b.run?.name, b.log).toBe('A');
    expect(b.run?.attrs).toEqual(
      new Map([
        [2, 0n],
        [3, BOOTFAILED],
      ]),
    );
    expect(b.trace).toContain('mark 3 bootfailed');
    expect(await diskAttrs(img.path)).toEqual([0n, BOOTFAILED]);

    // 4. A made the default (bootme), B tried again: bootme+bootonce comes before bootme. Then
    //    confirmed (what `boot confirm` leaves: B bootme, the rest clean): B runs from now on.
    await setAttributes(
      img.path,
      new Map([
        [2, BOOTME],
        [3, BOOTONCE | BOOTME],
      ]),
    );
    b = await boot(img.path);
    expect(b.run?.name, b.log).toBe('B');
    expect(b.run?.attrs).toEqual(
      new Map([
        [2, BOOTME],
        [3, BOOTONCE],
      ]),
    );
    await setAttributes(
      img.path,
      new Map([
        [2, 0n],
        [3, BOOTME],
      ]),
    );
    b = await boot(img.path);
    expect(b.run?.name, b.log).toBe('B');
    expect(b.run?.attrs).toEqual(
      new Map([
        [2, 0n],
        [3, BOOTME],
      ]),
    );
    expect(await diskAttrs(img.path)).toEqual([0n, BOOTME]);

    // 5. A is the default again, then its partition is zeroed: the selector skips it, reaches B.
    await setAttributes(
      img.path,
      new Map([
        [2, BOOTME],
        [3, 0n],
      ]),
    );
    await writeStageBytes(img, img.a, new Uint8Array(0));
    b = await boot(img.path);
    expect(b.run?.name, b.log).toBe('B');
    expect(b.trace).toEqual(expect.arrayContaining(['try 2', 'skip 2 empty', 'try 3', 'boot 3']));

    // 6. the primary GPT header destroyed: the MBR and the selector read the backup, and a
    //    tried-once B loses its bootme in the one valid copy (the primary stays as it was).
    await setAttributes(img.path, new Map([[3, BOOTONCE | BOOTME]]));
    await writeBytesAt(img.path, 512, new Uint8Array(512));
    b = await boot(img.path);
    expect(b.run?.name, b.log).toBe('B');
    expect(b.run?.backup).toBe(true);
    expect(b.run?.attrs.get(3)).toBe(BOOTONCE);
    expect(b.trace).toEqual(expect.arrayContaining(['gpt primary bad', 'gpt backup ok', 'mark 3 bootme-cleared', 'boot 3']));
    expect(await diskAttrs(img.path, ['backup'])).toEqual([BOOTME, BOOTONCE]);
    expect((await attributesOnDisk(img.path)).primary).toBeUndefined();
  });

  it('skips a stage whose bytes no longer match its table record, and halts when nothing is left', { timeout: 300_000 }, async (ctx) => {
    if (!haveEmulator()) return ctx.skip();
    const dir = tempDir('diskmint-fallback-damage-');
    const img = await buildFallbackImage(dir);
    await recordStage(img, img.b, await readFile(TEST_STAGE_B));
    // The OS partition's lone bootonce is gptboot's to judge, not the selector's (freebsd-boot only).
    await setAttributes(
      img.path,
      new Map([
        [3, BOOTONCE | BOOTME],
        [4, BOOTONCE],
      ]),
    );
    // One byte of B's code changed after its record was written (B is 1024 bytes long).
    await writeBytesAt(img.path, img.b.firstLba * 512 + 700, new Uint8Array([0x5a]));
    const none = await buildFallbackImage(dir, join(dir, 'none.img'));
    await writeStageBytes(none, none.a, new Uint8Array(0));

    // The primary header's AlternateLBA made nonsense (so its CRC fails too): the backup is
    // looked for at the last LBA, not where the damaged primary points.
    const wild = await buildFallbackImage(dir, join(dir, 'wild.img'));
    await writeBytesAt(wild.path, 512 + 32, new Uint8Array([0xf0, 0xff, 0xff, 0x7f]));

    const [damaged, empty, wildBoot] = await runLimited(2, [() => boot(img.path), () => boot(none.path), () => boot(wild.path)]);
    expect(wildBoot.run?.name, wildBoot.log).toBe('A');
    expect(wildBoot.trace).toEqual(expect.arrayContaining(['gpt primary bad', 'gpt backup ok', 'boot 2']));
    expect(damaged.run?.name, damaged.log).toBe('A');
    expect(damaged.trace).toEqual(expect.arrayContaining(['try 3', 'skip 3 crc', 'mark 3 bootfailed', 'try 2', 'boot 2']));
    expect(damaged.run?.attrs.get(3)).toBe(BOOTME | BOOTFAILED); // gpt.c gptbootfailed() leaves bootme
    expect(await diskAttrs(img.path)).toEqual([0n, BOOTME | BOOTFAILED]);
    const after = await attributesOnDisk(img.path);
    expect([after.primary?.get(4), after.backup?.get(4)]).toEqual([BOOTONCE, BOOTONCE]);

    expect(empty.run, empty.log).toBeUndefined();
    expect(empty.trace).toEqual(expect.arrayContaining(['skip 2 empty', 'skip 3 empty']));
    expect(empty.log).toContain('Missing boot loader\r\nDMSEL halt\r\n');
  });
});

describe('fallback selector: the largest stage pmbr loads', () => {
  it('loads and checks all 558,080 bytes of a larger partition (chunks across 64 KiB boundaries)', { timeout: 300_000 }, async (ctx) => {
    if (!haveEmulator()) return ctx.skip();
    const dir = tempDir('diskmint-fallback-large-');
    // B's partition is larger than pmbr's limit: only its first 558,080 bytes are loaded.
    const img = await buildFallbackImage(dir, join(dir, 'large.img'), { bSize: '640K' });
    const stage = new Uint8Array(STAGE_MAX_BYTES);
    stage.set(await readFile(TEST_STAGE_B));
    for (let i = 1024; i < stage.length; i++) stage[i] = (i * 131 + (i >> 9)) & 0xff; // no two sectors alike
    await recordStage(img, img.b, stage);
    await setAttributes(img.path, new Map([[3, BOOTME]]));
    const lastByte = join(dir, 'last-byte.img');
    await copyFile(img.path, lastByte);
    await writeBytesAt(lastByte, img.b.firstLba * 512 + STAGE_MAX_BYTES - 1, new Uint8Array([stage[STAGE_MAX_BYTES - 1] ^ 1]));
    const beyond = join(dir, 'beyond.img');
    await copyFile(img.path, beyond);
    await writeBytesAt(beyond, img.b.firstLba * 512 + STAGE_MAX_BYTES, new Uint8Array([0xff]));

    const [whole, changed, after] = await runLimited(2, [() => boot(img.path), () => boot(lastByte), () => boot(beyond)]);
    expect(whole.run?.name, whole.log).toBe('B');
    // The last byte of the limit is checked: the stage was loaded to its very end.
    expect(changed.run?.name, changed.log).toBe('A');
    expect(changed.trace).toContain('skip 3 crc');
    // A byte past the limit is neither loaded nor checked.
    expect(after.run?.name, after.log).toBe('B');
  });
});

describe('fallback-mbr.bin without a selector', () => {
  it('says "Missing boot loader" on COM1 when the disk has no BIOS-boot partition', { timeout: 120_000 }, async (ctx) => {
    if (!haveEmulator()) return ctx.skip();
    const dir = tempDir('diskmint-fallback-mbr-');
    const path = join(dir, 'no-selector.img');
    await buildImage(
      {
        scheme: 'gpt',
        seed: 'fallback-mbr-test',
        bootcode: FALLBACK_MBR,
        size: '1M', // SeaBIOS refuses a 104 KiB disk ("could not read the boot disk") before our code runs
        align: '4K',
        partitions: [{ type: 'freebsd-boot', label: 'boot-a', size: '64K', contents: { file: TEST_STAGE_A } }],
      },
      { output: path, baseDir: dir },
    );
    const log = await bootBiosAndCapture(path, { until: 'Missing boot loader\r\n' });
    expect(log).toContain('Missing boot loader\r\n');
    expect(log).not.toMatch(/DMSEL|STAGE/); // neither the selector nor a stage ran
  });
});
