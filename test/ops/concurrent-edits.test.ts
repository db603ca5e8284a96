/**
 * Two edits of one image at once (issue 17, item 2): 20 pairs of conflicting slot commands run
 * together as real `diskmint` processes through the built CLI. Every pair either serialises
 * (both exit 0, and the image is what one of the two serial orders gives) or one fails with the
 * lock message and the image is what the other alone gives; never a lost update, and the GPT
 * always passes sgdisk -v. Half the pairs wait for the lock, half use --lock-timeout 0. While
 * another process holds the lock, readers still run and a writer (slot commands, zfs bootonce)
 * changes nothing.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildImage } from '../../src/index.js';
import { presetLayoutChecked } from '../../src/layout/presets.js';
import { slotActivate, slotBootonce, slotConfirm, slotStatus, slotWrite } from '../../src/ops/slots/slots.js';
import { BUNDLE, diskmint, requireFreshBundle, ROOT } from '../helpers/cli.js';
import { tempDir } from '../helpers/golden.js';
import { holdLock } from '../helpers/lock-holder.js';
import { requirePeer, runPeer, runPeerOk } from '../helpers/peer.js';

const PMBR = join(ROOT, 'bootcode/diskmint-mbr.bin');
const STAGE = join(ROOT, 'fixtures/demo/boot-stage.bin');

let dir = '';
let start = '';
let pending = '';
let osB = '';

/** A fresh nanobsd image (os1 bootme), one with a pending bootonce of os2, and a second UFS. */
beforeAll(async () => {
  if (!requirePeer('makefs', 'makefs') || !requirePeer('sgdisk', 'gdisk')) return;
  requireFreshBundle();
  dir = tempDir('diskmint-concurrent-');
  for (const name of ['a', 'b']) {
    mkdirSync(join(dir, name, 'etc'), { recursive: true });
    writeFileSync(join(dir, name, 'etc', 'version'), `os ${name}\n`);
    runPeerOk('makefs', ['-t', 'ffs', '-B', 'little', '-o', 'version=2', '-s', '8m', join(dir, `${name}.ufs`), join(dir, name)]);
  }
  osB = join(dir, 'b.ufs');
  start = join(dir, 'start.img');
  const layout = await presetLayoutChecked('nanobsd', { os: join(dir, 'a.ufs'), boot: PMBR, bootStage: STAGE, size: '160M', osSize: '16M' });
  await buildImage(layout, { output: start, baseDir: dir });
  pending = copy(start, 'pending.img');
  await slotBootonce(pending, 'os2');
});

let copies = 0;
/** A sparse copy (cp keeps the holes: a 160 MiB image holds little data). */
function copy(from: string, name = `copy-${++copies}.img`): string {
  const to = join(dir, name);
  const r = spawnSync('cp', ['--sparse=always', from, to]);
  if (r.status !== 0) throw new Error(`cp failed: ${r.stderr.toString()}`);
  return to;
}

interface Command {
  /** diskmint's arguments, IMG standing for the image. */
  args: string[];
  /** The same edit through the library. */
  run(img: string): Promise<unknown>;
}

const bootonce = (slot: string): Command => ({ args: ['slot', 'bootonce', 'IMG', slot], run: (img) => slotBootonce(img, slot) });
const activate = (slot: string): Command => ({ args: ['slot', 'activate', 'IMG', slot], run: (img) => slotActivate(img, slot) });
const confirm: Command = { args: ['slot', 'confirm', 'IMG'], run: (img) => slotConfirm(img) };
const writeOs2: Command = {
  args: ['slot', 'write', 'IMG', 'os2', '--from', 'OSB', '--bootonce'],
  run: (img) => slotWrite(img, 'os2', osB, { bootonce: true }),
};

/** Conflicting pairs, and the image each starts from. */
const KINDS: Array<{ a: Command; b: Command; from: () => string }> = [
  { a: bootonce('os2'), b: activate('os1'), from: () => start },
  { a: bootonce('os2'), b: activate('os2'), from: () => start },
  { a: activate('os2'), b: activate('os1'), from: () => start },
  { a: confirm, b: activate('os1'), from: () => pending },
  { a: writeOs2, b: activate('os1'), from: () => start },
];

/** What the slot commands see of the image: each slot's attributes (and hash, if `hash`), and what boots next. */
async function state(img: string, hash = false): Promise<string> {
  const s = await slotStatus(img, { hash });
  return JSON.stringify({ slots: s.slots.map((x) => [x.label, x.attributes, x.sha256]), next: s.next.index });
}

const serialStates = new Map<string, Promise<string>>();
/** The state after running `cmds` one after another on a copy of `from` (the same every time: kept). */
function serial(from: string, cmds: Command[], hash = false): Promise<string> {
  const key = JSON.stringify([from, cmds.map((c) => c.args), hash]);
  let known = serialStates.get(key);
  if (!known) {
    known = (async () => {
      const img = copy(from);
      for (const c of cmds) await c.run(img);
      return state(img, hash);
    })();
    serialStates.set(key, known);
  }
  return known;
}

function run(args: string[], img: string): Promise<{ status: number | null; stderr: string }> {
  const child = spawn(process.execPath, [BUNDLE, ...args.map((a) => (a === 'IMG' ? img : a === 'OSB' ? osB : a))]);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stderr })));
}

const LOCKED = /^diskmint: copy-\d+\.img is being edited by diskmint slot (bootonce|activate|confirm|write) \(pid \d+\) since \d\d:\d\d:\d\d; try again/;

describe('concurrent edits', () => {
  it('20 pairs of conflicting commands at once: each serialises or one is refused with the lock message; never a lost update', async (ctx) => {
    if (!dir) return ctx.skip();
    const outcomes = { serialised: 0, refused: 0 };
    for (let i = 0; i < 20; i++) {
      const kind = KINDS[i % KINDS.length];
      // Half wait for the lock (longer than the default 5 s: a busy machine must not turn a wait into a refusal), half do not.
      const wait = ['--lock-timeout', i % 2 === 0 ? '600' : '0'];
      const img = copy(kind.from());
      const [ra, rb] = await Promise.all([run([...kind.a.args, ...wait], img), run([...kind.b.args, ...wait], img)]);
      const what = `pair ${i}: ${kind.a.args.join(' ')} (exit ${ra.status}: ${ra.stderr.trim()}) & ${kind.b.args.join(' ')} (exit ${rb.status}: ${rb.stderr.trim()})`;
      const hash = kind.a === writeOs2; // the slot's data matters only where it is written
      const got = await state(img, hash);
      expect(runPeer('sgdisk', ['-v', img]).out, what).toContain('No problems found');
      if (ra.status === 0 && rb.status === 0) {
        outcomes.serialised++;
        expect([await serial(kind.from(), [kind.a, kind.b], hash), await serial(kind.from(), [kind.b, kind.a], hash)], what).toContain(got);
      } else {
        outcomes.refused++;
        const [ok, refused, done] = ra.status === 0 ? [ra, rb, kind.a] : [rb, ra, kind.b];
        expect(ok.status, what).toBe(0);
        expect(refused.status, what).toBe(1);
        expect(refused.stderr, what).toMatch(LOCKED);
        expect(wait, `${what}: a refusal without --lock-timeout 0`).toEqual(['--lock-timeout', '0']);
        expect(got, what).toBe(await serial(kind.from(), [done], hash));
      }
    }
    expect(outcomes.serialised + outcomes.refused).toBe(20);
  }, 600_000);

  it('while another process holds the lock: readers run, a writer fails naming it and changes nothing', async (ctx) => {
    if (!dir) return ctx.skip();
    const img = copy(start);
    const h = holdLock(img);
    try {
      await h.said('locked');
      const before = createHash('sha256').update(readFileSync(img)).digest('hex');
      expect(diskmint(['info', img]).status).toBe(0);
      expect(diskmint(['slot', 'status', img]).status).toBe(0);
      expect(diskmint(['verify', img]).status).toBe(0);
      for (const args of [
        ['slot', 'bootonce', img, 'os2'],
        ['slot', 'activate', img, 'os2'],
        ['slot', 'confirm', img],
        ['slot', 'write', img, 'os2', '--from', osB],
      ]) {
        const r = diskmint([...args, '--lock-timeout', '0']);
        expect(r.status, args.join(' ')).toBe(1);
        expect(r.stderr).toMatch(
          new RegExp(`^diskmint: copy-\\d+\\.img is being edited by test holder \\(pid ${h.child.pid}\\) since \\d\\d:\\d\\d:\\d\\d; try again`),
        );
      }
      expect(createHash('sha256').update(readFileSync(img)).digest('hex')).toBe(before);
      // Released (while `slot bootonce` waits, or before it looks), the edit goes through.
      const waiting = run(['slot', 'bootonce', 'IMG', 'os2', '--lock-timeout', '600'], img);
      h.child.stdin!.write('release\n');
      expect((await waiting).status).toBe(0);
      expect(JSON.parse(await state(img))).toEqual(JSON.parse(await serial(start, [bootonce('os2')])));
    } finally {
      h.child.kill('SIGKILL');
    }
  });

  it('zfs bootonce takes the lock too: refused naming the holder, the pool unchanged; it goes through once released', async () => {
    const pool = join(tempDir('diskmint-concurrent-zfs-'), 'pool.img');
    writeFileSync(pool, gunzipSync(readFileSync(join(ROOT, 'fixtures/zfs/pool.img.gz'))));
    const before = createHash('sha256').update(readFileSync(pool)).digest('hex');
    const h = holdLock(pool);
    try {
      await h.said('locked');
      const r = diskmint(['zfs', 'bootonce', pool, 'tank/ROOT/next', '--lock-timeout', '0']);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^diskmint: pool\\.img is being edited by test holder \\(pid ${h.child.pid}\\) since`));
      expect(createHash('sha256').update(readFileSync(pool)).digest('hex')).toBe(before);
      h.child.stdin!.write('release\n');
      await h.said('released');
      expect(diskmint(['zfs', 'bootonce', pool, 'tank/ROOT/next', '--lock-timeout', '0']).status).toBe(0);
      expect(createHash('sha256').update(readFileSync(pool)).digest('hex')).not.toBe(before);
    } finally {
      h.child.kill('SIGKILL');
    }
  });
});
