/**
 * Power cuts between write barriers: a disk may persist the writes issued since the last
 * barrier in any order, or only some of them. The GPT edits' writes and barriers are recorded
 * through an editor wrapper; then, for each prefix of barrier-separated groups and each subset
 * of the next group, the writes are applied to a copy of the original image, and sgdisk -v and
 * diskmint must both find a valid GPT holding the old or the new attributes, and a re-run of the
 * command must reach the new state. The same for zfs bootonce's labels on the real pool fixture,
 * with zdb -l as the peer.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildImage, inspectImage, verifyImage } from '../../src/index.js';
import { slotActivate, slotBootonce, slotConfirm } from '../../src/ops/slots/slots.js';
import { readGptForEdit } from '../../src/schemes/gpt/edit.js';
import { gptAttributeNames } from '../../formats/schemes/gpt-attributes.js';
import { nvString } from '../../formats/fs/nvlist.js';
import { bootenvAsNvlist, readZfsLabels } from '../../src/ops/zfs.js';
import { zfsSetBootonce } from '../../src/ops/zfs-bootonce.js';
import type { ImageEditor } from '../../src/io/image-editor.js';
import { memoryDiskReader } from '../../src/model/disk-reader.js';
import { tempDir } from '../helpers/golden.js';
import { havePeer, requirePeer, runPeer } from '../helpers/peer.js';

interface Write {
  offset: number;
  bytes: Uint8Array;
}

/** An editor over a copy of `image` in memory that records each write and where the barriers fall. */
function recordingEditor(image: Uint8Array): { editor: ImageEditor; groups: Write[][] } {
  const buf = new Uint8Array(image);
  const groups: Write[][] = [[]];
  const editor: ImageEditor = {
    path: '(memory)',
    format: 'raw',
    inPlace: true,
    disk: memoryDiskReader(buf),
    async writeBytes(offset, data) {
      groups[groups.length - 1].push({ offset, bytes: new Uint8Array(data) });
      buf.set(data, offset);
    },
    writeFile: () => Promise.reject(new Error('not recorded')),
    async barrier() {
      if (groups[groups.length - 1].length) groups.push([]);
    },
    commit: async () => {},
    mark: () => 0,
    rollback: () => {},
    close: async () => {},
  };
  return { editor, groups };
}

/** Every state a cut can leave: all groups before `k` landed, and any subset of group `k`. */
function* cutStates(groups: Write[][]): Generator<{ label: string; writes: Write[] }> {
  for (let k = 0; k < groups.length; k++) {
    const before = groups.slice(0, k).flat();
    const group = groups[k];
    for (let mask = 0; mask < 1 << group.length; mask++) {
      const some = group.filter((_, i) => mask & (1 << i));
      yield {
        label: `groups 1-${k} and writes {${group.map((_, i) => (mask & (1 << i) ? i + 1 : '')).join('')}} of group ${k + 1}`,
        writes: [...before, ...some],
      };
    }
  }
}

function apply(image: Uint8Array, writes: Write[]): Uint8Array {
  const out = new Uint8Array(image);
  for (const w of writes) out.set(w.bytes, w.offset);
  return out;
}

/**
 * Whether sgdisk finds a whole copy (header and its table) of the GPT. sgdisk -v holds the main
 * copy authoritative (it reports the backup table as bad whenever it differs from the main one),
 * so each copy is judged alone: the other copy's header is wiped in a scratch file and sgdisk,
 * falling back to the copy left, reports whether its header and table check out.
 */
function sgdiskHasValidCopy(image: Uint8Array, dir: string): boolean {
  const lastLba = image.length / 512 - 1;
  const whole = (copy: 'main' | 'backup') => {
    const alone = new Uint8Array(image);
    alone.fill(0, (copy === 'main' ? lastLba : 1) * 512, (copy === 'main' ? lastLba + 1 : 2) * 512);
    const img = join(dir, `sgdisk-${copy}.img`);
    writeFileSync(img, alone);
    const text = runPeer('sgdisk', ['-v', img]).out;
    return !new RegExp(
      `CRC for the ${copy} (partition table|GPT header) is invalid|invalid ${copy} GPT header|${copy} header: ERROR|${copy} partition table: ERROR`,
      'i',
    ).test(text);
  };
  return whole('main') || whole('backup');
}

/** Whether diskmint finds a valid copy, and the attributes of partition `index` it reads. */
async function diskmintState(image: Uint8Array, index: number): Promise<{ valid: boolean; attributes?: bigint }> {
  try {
    const gpt = await readGptForEdit(memoryDiskReader(image));
    return { valid: true, attributes: gpt.entries.find((e) => e.index === index)!.attributes };
  } catch {
    return { valid: false };
  }
}

const BOOTME = 1n << 59n;
const BOOTONCE = 1n << 58n;

async function abImage(dir: string, os2: Array<'bootme' | 'bootonce'> = []): Promise<string> {
  const img = join(dir, 'ab.img');
  await buildImage(
    {
      scheme: 'gpt',
      size: '8M',
      partitions: [
        { type: 'freebsd-ufs', label: 'os1', size: '2M', attributes: ['bootme'] },
        { type: 'freebsd-ufs', label: 'os2', size: '2M', attributes: os2 },
      ],
    },
    { output: img, baseDir: dir },
  );
  return img;
}

type Edit = (path: string, opts: { editor?: ImageEditor }) => Promise<unknown>;
const EDITS: Array<[string, Edit, number, bigint]> = [
  ['slot bootonce os2', (p, o) => slotBootonce(p, 'os2', o), 2, BOOTME | BOOTONCE],
  ['slot activate os2', (p, o) => slotActivate(p, 'os2', o), 2, BOOTME],
];

/** Record `edit` on `image`, then check every cut state; returns how many states left no valid GPT. */
async function checkCuts(dir: string, image: Uint8Array, edit: Edit, index: number, oldBits: bigint, newBits: bigint, name: string): Promise<number> {
  const { editor, groups } = recordingEditor(image);
  await edit('(memory)', { editor });
  const written = groups.filter((g) => g.length);
  let broken = 0;
  let n = 0;
  for (const state of cutStates(written)) {
    const after = apply(image, state.writes);
    const mine = await diskmintState(after, index);
    const img = join(dir, `${name}-${n++}.img`);
    writeFileSync(img, after);
    const peer = havePeer('sgdisk') ? sgdiskHasValidCopy(after, dir) : mine.valid;
    expect(peer, `${state.label}: sgdisk and diskmint agree`).toBe(mine.valid);
    if (!mine.valid) {
      broken++;
      continue;
    }
    if (written.length === 1) continue; // without barriers: count the states, as the judges' test does
    expect([oldBits, newBits], state.label).toContain(mine.attributes);
    // A re-run completes the change and leaves both copies whole.
    await edit(img, {});
    const t = (await inspectImage(img)).table!;
    expect(t.partitions[index - 1].attributes, state.label).toEqual(gptAttributeNames(newBits));
    expect(
      (await verifyImage(img)).findings.filter((f) => f.severity === 'error'),
      state.label,
    ).toEqual([]);
    if (havePeer('sgdisk')) expect(runPeer('sgdisk', ['-v', img]).out, state.label).toContain('No problems found');
  }
  expect(broken, 'cut states with no valid GPT').toBe(0);
  expect(written.map((g) => g.length)).toEqual([2, 2]);
  return broken;
}

describe('GPT edits under a power cut at any point, the writes between barriers landing in any order', () => {
  for (const [what, edit, index, newBits] of EDITS) {
    it(`${what}: every subset of every barrier group leaves a valid GPT with the old or the new attributes`, async () => {
      requirePeer('sgdisk', 'gdisk');
      const dir = tempDir('diskmint-barriers-');
      const image = new Uint8Array(readFileSync(await abImage(dir)));
      expect(await checkCuts(dir, image, edit, index, 0n, newBits, 'both')).toBe(0);
    });
  }

  it('slot confirm after a good trial boot of os2 (bootonce left, bootme cleared by gptboot; rc.d/gptboot clears bootonce): every cut leaves a valid GPT', async () => {
    requirePeer('sgdisk', 'gdisk');
    const dir = tempDir('diskmint-barriers-');
    const image = new Uint8Array(readFileSync(await abImage(dir, ['bootonce'])));
    expect(await checkCuts(dir, image, (p, o) => slotConfirm(p, o), 2, BOOTONCE, 0n, 'confirm')).toBe(0);
  });

  it('with the primary header damaged before the edit, the primary is rebuilt first: no cut loses the backup', async () => {
    requirePeer('sgdisk', 'gdisk');
    const dir = tempDir('diskmint-barriers-');
    const image = new Uint8Array(readFileSync(await abImage(dir)));
    image.fill(0xa5, 512 + 16, 512 + 20); // the primary header's CRC field
    expect(await checkCuts(dir, image, (p, o) => slotBootonce(p, 'os2', o), 2, 0n, BOOTME | BOOTONCE, 'damaged')).toBe(0);
    const { editor, groups } = recordingEditor(image);
    await slotBootonce('(memory)', 'os2', { editor });
    expect(groups[0].map((w) => w.offset)).toEqual([1024, 512]); // primary entries, then header
  });

  it('the judges can fail: the same four writes with no barrier between them leave no valid GPT in 4 of the 16 subsets', async () => {
    requirePeer('sgdisk', 'gdisk');
    const dir = tempDir('diskmint-barriers-');
    const image = new Uint8Array(readFileSync(await abImage(dir)));
    const { editor, groups } = recordingEditor(image);
    await slotBootonce('(memory)', 'os2', { editor });
    const one = [groups.flat()];
    let broken = 0;
    let n = 0;
    for (const state of [...cutStates(one)]) {
      const after = apply(image, state.writes);
      const img = join(dir, `nobarrier-${n++}.img`);
      writeFileSync(img, after);
      const mine = await diskmintState(after, 2);
      expect(sgdiskHasValidCopy(after, dir), state.label).toBe(mine.valid);
      if (!mine.valid) broken++;
    }
    expect(n).toBe(16);
    expect(broken).toBe(4);
  });
});

describe('zfs bootonce under a power cut at any point', () => {
  it('each label is its own barrier group, in the order 0, 2, 1, 3; every cut leaves whole labels at both ends with the old or the new request, zdb -l reads the pool, and a re-run completes', async () => {
    requirePeer('zdb', 'zfsutils-linux');
    const dir = tempDir('diskmint-barriers-');
    const pool = new Uint8Array(gunzipSync(readFileSync(new URL('../../fixtures/zfs/pool.img.gz', import.meta.url).pathname)));
    const request = (set: Awaited<ReturnType<typeof readZfsLabels>>) =>
      set.labels.filter((l) => l.bootenv.checksum.valid).map((l) => ({ index: l.index, value: nvString(bootenvAsNvlist(l.bootenv), 'freebsd:bootonce') }));
    const old = request(await readZfsLabels(memoryDiskReader(pool)));
    expect(old.map((l) => l.index)).toEqual([0, 1, 2, 3]);
    const { editor, groups } = recordingEditor(pool);
    await zfsSetBootonce('(memory)', 'zroot/ROOT/next', { editor });
    const written = groups.filter((g) => g.length);
    const quarter = 256 << 10;
    const labelAt = (o: number) => (o < quarter ? 0 : o < 2 * quarter ? 1 : o < pool.length - quarter ? 2 : 3);
    expect(written.map((g) => g.map((w) => labelAt(w.offset)))).toEqual([[0], [2], [1], [3]]);
    const values = new Set([old[0].value, 'zfs:zroot/ROOT/next:']);
    let n = 0;
    for (const state of cutStates(written)) {
      const after = apply(pool, state.writes);
      const labels = request(await readZfsLabels(memoryDiskReader(after)));
      expect(labels.some((l) => l.index < 2) && labels.some((l) => l.index >= 2), state.label).toBe(true);
      for (const l of labels) expect(values, state.label).toContain(l.value);
      const img = join(dir, `pool-${n++}.img`);
      writeFileSync(img, after);
      const zdb = runPeer('zdb', ['-l', img]);
      expect(zdb.status, state.label).toBe(0);
      expect(zdb.out, state.label).toContain("name: 'zroot'");
      await zfsSetBootonce(img, 'zroot/ROOT/next');
      const done = request(await readZfsLabels(memoryDiskReader(new Uint8Array(readFileSync(img)))));
      expect(done, state.label).toEqual([0, 1, 2, 3].map((index) => ({ index, value: 'zfs:zroot/ROOT/next:' })));
    }
  });
});
