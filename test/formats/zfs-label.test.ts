/**
 * vdev labels on a real pool (fixtures/zfs/pool.img.gz, made by zfs-fuse): parsing, checksums
 * written by another implementation, zfsbootcfg semantics, crash safety, qcow2, verify findings
 * and hostile bytes. zdb judges the same files in zfs-peers.test.ts.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { Command } from 'commander';
import { FormatError } from '../../formats/common/errors.js';
import {
  activeUberblock,
  BOOTENV_OFFSET,
  BOOTENV_SIZE,
  encodeBootenvBlock,
  ECK_SIZE,
  LABEL_SIZE,
  labelOffsets,
  decodeLabel,
  PHYS_OFFSET,
  PHYS_SIZE,
  sealEmbedded,
  summariseConfig,
} from '../../formats/fs/zfs-label.js';
import { nvlist, nvString, encodeNvlist, type NvList } from '../../formats/fs/nvlist.js';
import { memoryDiskReader } from '../../src/model/disk-reader.js';
import { buildImage, convertImage, inspectDisk, inspectImage, openDisk } from '../../src/index.js';
import { currentBootenv, readZfsLabels, zfsBootenv, zfsLabels } from '../../src/ops/zfs.js';
import { zfsFindings } from '../../src/ops/zfs-findings.js';
import { zfsSetBootonce } from '../../src/ops/zfs-bootonce.js';
import { addZfsCommands } from '../../src/cli/zfs.js';
import { cliOutput } from '../../src/cli/output.js';
import { tempDir } from '../helpers/golden.js';

const FIXTURE = new URL('../../fixtures/zfs/pool.img.gz', import.meta.url).pathname;
/** What `zdb -l` prints for the fixture (checked against zdb itself in zfs-peers.test.ts). */
const POOL = { name: 'zroot', version: 23n, state: 1n, txg: 25n, poolGuid: 8142450749991749518n, guid: 11727641473533025294n };
const UB = { txg: 25n, guidSum: 1423348149815223196n, timestamp: 1795327562n };

let dir = '';
let pool: Uint8Array;
const fresh = (name: string) => {
  const path = join(dir, name);
  writeFileSync(path, pool);
  return path;
};
/** The bytes of a file outside the four boot environment blocks. */
const outsideBootenv = (bytes: Uint8Array) => {
  const out = new Uint8Array(bytes);
  for (const o of labelOffsets(bytes.length)) out.fill(0, o + BOOTENV_OFFSET, o + BOOTENV_OFFSET + BOOTENV_SIZE);
  return out;
};

beforeAll(() => {
  dir = tempDir('diskmint-zfs-');
  pool = new Uint8Array(gunzipSync(readFileSync(FIXTURE)));
});

/** Each run writes a few hundred MiB of pool copies: remove them. */
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('vdev labels of a real pool', () => {
  it('reads all four labels, their checksums (SHA-256, verifier = offset) and uberblocks', async () => {
    const set = await readZfsLabels(memoryDiskReader(pool));
    expect(set.labels.map((l) => l.offset)).toEqual([0, LABEL_SIZE, pool.length - 2 * LABEL_SIZE, pool.length - LABEL_SIZE]);
    for (const l of set.labels) {
      expect(l.configChecksum).toEqual({ endian: 'little', valid: true });
      expect(l.bootenv.checksum).toEqual({ endian: 'little', valid: true });
      expect(summariseConfig(l.config!)).toMatchObject({ ...POOL, topGuid: POOL.guid, vdevType: 'file', ashift: 9n });
      expect(l.uberblocks.length).toBeGreaterThan(0);
      expect(l.uberblocks.every((u) => u.checksumValid)).toBe(true);
      expect(activeUberblock(l.uberblocks)).toMatchObject(UB);
      // Our packing of the parsed list gives back the label's bytes exactly.
      const packed = encodeNvlist(l.config!);
      expect(Buffer.from(pool.subarray(l.offset + PHYS_OFFSET, l.offset + PHYS_OFFSET + packed.length))).toEqual(Buffer.from(packed));
    }
    expect(set.labels[0].bootenv).toMatchObject({ version: 0n, raw: '' });
  });

  it('zfsLabels and zfsBootenv report agreement and the active uberblock', async () => {
    const path = fresh('report.img');
    const r = await zfsLabels(path);
    expect(r.agree).toBe(true);
    expect(r.labels.map((l) => l.checksumValid)).toEqual([true, true, true, true]);
    expect(r.activeUberblock).toMatchObject(UB);
    expect(r.labels[0].config).toMatchObject({ name: 'zroot', pool_guid: String(POOL.poolGuid) });
    const b = await zfsBootenv(path);
    expect(b).toMatchObject({ fromLabel: 0, version: 0n, agree: true });
    expect(b.bootonce).toBeUndefined();
  });
});

describe('zfs bootonce (zfsbootcfg semantics)', () => {
  it('stores zfs:POOL/ROOT/BE: in all four labels and changes nothing else', async () => {
    const path = fresh('once.img');
    const r = await zfsSetBootonce(path, 'zroot/ROOT/upgrade');
    expect(r).toMatchObject({ pool: 'zroot', bootonce: 'zfs:zroot/ROOT/upgrade:', labelsWritten: [0, 2, 1, 3], warnings: [] });
    const after = new Uint8Array(readFileSync(path));
    expect(Buffer.from(outsideBootenv(after)).equals(Buffer.from(outsideBootenv(pool)))).toBe(true);
    const b = await zfsBootenv(path);
    expect(b).toMatchObject({
      version: 1n,
      bootonce: 'zfs:zroot/ROOT/upgrade:',
      agree: true,
      env: { version: '1', 'freebsd:bootonce': 'zfs:zroot/ROOT/upgrade:' },
    });
    expect(b.labels.every((l) => l.checksumValid && l.version === 1n)).toBe(true);
  });

  it('keeps a zfs: value as given, removes the key on clear or empty value, keeps version 1', async () => {
    const path = fresh('forms.img');
    await zfsSetBootonce(path, 'zfs:zroot/ROOT/default:');
    expect((await zfsBootenv(path)).bootonce).toBe('zfs:zroot/ROOT/default:');
    await zfsSetBootonce(path, undefined);
    expect(await zfsBootenv(path)).toMatchObject({ version: 1n, bootonce: undefined, env: { version: '1' } });
    await zfsSetBootonce(path, 'zroot/ROOT/upgrade');
    await zfsSetBootonce(path, '');
    expect((await zfsBootenv(path)).env).toEqual({ version: '1' });
  });

  it('keeps every other key of a version 1 environment', async () => {
    const path = fresh('keep.img');
    const env = nvlist([
      { name: 'version', type: 'uint64', value: 1n },
      { name: 'freebsd:bootonce-used', type: 'string', value: 'zfs:zroot/ROOT/old:' },
      { name: 'freebsd:nvstore', type: 'nvlist', value: nvlist([{ name: 'kern.msgbuf', type: 'string', value: '64k' }]) },
    ]);
    const bytes = new Uint8Array(readFileSync(path));
    for (const o of labelOffsets(bytes.length)) bytes.set(encodeBootenvBlock(env, o + BOOTENV_OFFSET), o + BOOTENV_OFFSET);
    writeFileSync(path, bytes);
    await zfsSetBootonce(path, 'zroot/ROOT/upgrade');
    const b = await zfsBootenv(path);
    expect(b.bootonceUsed).toBe('zfs:zroot/ROOT/old:');
    expect(Object.keys(b.env!)).toEqual(['freebsd:bootonce-used', 'freebsd:nvstore', 'version', 'freebsd:bootonce']);
    expect(b.env!['freebsd:nvstore']).toEqual({ 'kern.msgbuf': '64k' });
  });

  it('warns when the request names another pool, and verify reports it', async () => {
    const path = fresh('other.img');
    const r = await zfsSetBootonce(path, 'tank/ROOT/default');
    expect(r.warnings[0]).toMatch(/pool "tank"/);
    const { reader } = await openDisk(path);
    const f = await zfsFindings(reader, null);
    await reader.close();
    expect(f.map((x) => x.code)).toContain('zfs.bootonce-other-pool');
  });

  it('is crash-safe: stopped (even mid-block) before any write, labels stay readable and two agree', async () => {
    for (let stop = 1; stop <= 4; stop++) {
      const path = fresh(`crash-${stop}.img`);
      await expect(
        zfsSetBootonce(path, 'zroot/ROOT/upgrade', {
          beforeWrite: (n) => {
            if (n === stop) throw new Error('power cut');
          },
        }),
      ).rejects.toThrow('power cut');
      // Tear the interrupted write: half of the new block lands.
      const bytes = new Uint8Array(readFileSync(path));
      const order = [0, 2, 1, 3];
      const at = labelOffsets(bytes.length)[order[stop - 1]] + BOOTENV_OFFSET;
      const env = nvlist([
        { name: 'version', type: 'uint64', value: 1n },
        { name: 'freebsd:bootonce', type: 'string', value: 'zfs:zroot/ROOT/upgrade:' },
      ]);
      bytes.set(encodeBootenvBlock(env, at).subarray(0, BOOTENV_SIZE / 2), at);
      writeFileSync(path, bytes);
      const set = await readZfsLabels(memoryDiskReader(bytes));
      expect(set.labels.every((l) => l.configChecksum.valid)).toBe(true);
      const valid = set.labels.filter((l) => l.bootenv.checksum.valid);
      expect(valid.length).toBe(3);
      const values = valid.map((l) => (l.bootenv.nvlist ? nvString(l.bootenv.nvlist, 'freebsd:bootonce') : 'old'));
      const counts = new Map<string | undefined, number>();
      for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
      expect(Math.max(...counts.values())).toBeGreaterThanOrEqual(2);
      expect(['old', 'zfs:zroot/ROOT/upgrade:']).toContain(values[0]);
      // Running the command again completes the request on all four labels.
      await zfsSetBootonce(path, 'zroot/ROOT/upgrade');
      expect(await zfsBootenv(path)).toMatchObject({ agree: true, bootonce: 'zfs:zroot/ROOT/upgrade:' });
    }
  });

  it('works through a qcow2 image, and on a freebsd-zfs GPT partition (IMG:N)', async () => {
    const raw = fresh('q.img');
    const q = join(dir, 'pool.qcow2');
    await convertImage(raw, q, { progress: false });
    await zfsSetBootonce(q, 'zroot/ROOT/upgrade');
    expect(await zfsBootenv(q)).toMatchObject({ bootonce: 'zfs:zroot/ROOT/upgrade:', agree: true });
    expect((await inspectImage(q)).format).toBe('qcow2');

    const disk = join(dir, 'gpt.img');
    await buildImage(
      {
        scheme: 'gpt',
        size: '80M',
        partitions: [
          { type: 'efi', size: '1M' },
          { type: 'freebsd-zfs', contents: { file: raw } },
        ],
      } as never,
      { output: disk, baseDir: dir },
    );
    expect((await zfsLabels(`${disk}:2`)).agree).toBe(true);
    await zfsSetBootonce(`${disk}:2`, 'zroot/ROOT/default');
    expect((await zfsBootenv(`${disk}:2`)).bootonce).toBe('zfs:zroot/ROOT/default:');
    await expect(zfsLabels(disk)).rejects.toThrow(/no ZFS label/);
    const { reader } = await openDisk(disk);
    const { table } = await inspectDisk(reader);
    const f = await zfsFindings(reader, table);
    await reader.close();
    expect(f.filter((x) => x.severity !== 'info')).toEqual([]);
    expect(f).toEqual([expect.objectContaining({ code: 'zfs.pool', where: 'gpt.partition[2].zfs' })]);
  });
});

describe('verify findings and hostile labels', () => {
  it('reports a bad nvlist checksum, a bad boot environment checksum and disagreeing labels', async () => {
    const bytes = new Uint8Array(pool);
    const [, l1, l2] = labelOffsets(bytes.length);
    bytes[l1 + PHYS_OFFSET + PHYS_SIZE - ECK_SIZE - 100] ^= 1; // inside the checksummed padding
    bytes[l2 + BOOTENV_OFFSET + 100] ^= 1;
    const codes = (await zfsFindings(memoryDiskReader(bytes), null)).map((f) => `${f.severity}:${f.code}`);
    expect(codes).toEqual(expect.arrayContaining(['error:zfs.label-checksum', 'error:zfs.bootenv-checksum', 'info:zfs.pool']));
    // A label from another txg (resealed, so its checksum holds) disagrees.
    const other = new Uint8Array(pool);
    const config = decodeLabel(other.subarray(l2, l2 + LABEL_SIZE), 2, l2).config!;
    const older = { ...config, pairs: config.pairs.map((p) => (p.name === 'txg' ? { ...p, value: 24n } : p)) } as NvList;
    const phys = new Uint8Array(PHYS_SIZE);
    phys.set(encodeNvlist(older));
    other.set(sealEmbedded(phys, l2 + PHYS_OFFSET), l2 + PHYS_OFFSET);
    const found = await zfsFindings(memoryDiskReader(other), null);
    expect(found.filter((f) => f.severity !== 'info')).toEqual([
      expect.objectContaining({ code: 'zfs.labels-disagree', severity: 'warning', message: expect.stringMatching(/txg: .*label 2 24/) }),
    ]);
    expect((await zfsFindings(memoryDiskReader(pool), null)).filter((f) => f.severity !== 'info')).toEqual([]);
  });

  it('mutated labels never crash the parser', () => {
    const [, , , l3] = labelOffsets(pool.length);
    const label = pool.subarray(l3, l3 + LABEL_SIZE);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: PHYS_OFFSET, max: PHYS_OFFSET + 2048 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        (flips) => {
          const m = new Uint8Array(label);
          for (const [at, v] of flips) m[at] = v;
          const l = decodeLabel(m, 3, l3);
          expect(l.config !== undefined || typeof l.configError === 'string').toBe(true);
        },
      ),
      { numRuns: 300 },
    );
    expect(() => decodeLabel(label.subarray(1), 3, l3)).toThrow(FormatError);
    expect(() => labelOffsets(3 * LABEL_SIZE)).toThrow(FormatError);
  });

  it('refuses a non-ZFS disk with a clear error, and the CLI prints labels and requests', async () => {
    const zero = join(dir, 'zero.img');
    writeFileSync(zero, new Uint8Array(2 << 20));
    await expect(zfsBootenv(zero)).rejects.toThrow(/no ZFS label/);
    expect(await zfsFindings(memoryDiskReader(new Uint8Array(2 << 20)), null)).toEqual([]);

    const path = fresh('cli.img');
    const out: string[] = [];
    const spy = vi.spyOn(cliOutput, 'out').mockImplementation((s) => void out.push(s));
    try {
      const run = (...args: string[]) => {
        const p = new Command();
        p.exitOverride();
        addZfsCommands(p);
        return p.parseAsync(args, { from: 'user' });
      };
      await run('zfs', 'bootonce', path, 'zroot/ROOT/upgrade');
      await run('zfs', 'bootenv', path, '--json');
      await run('zfs', 'label', path);
      await run('zfs', 'bootonce', path, '--clear');
    } finally {
      spy.mockRestore();
    }
    expect(out[0]).toMatch(/freebsd:bootonce = zfs:zroot\/ROOT\/upgrade:/);
    expect(JSON.parse(out[1])).toMatchObject({ bootonce: 'zfs:zroot/ROOT/upgrade:', version: '1' });
    expect(out[2]).toMatch(/pool_guid 8142450749991749518/);
    expect(out[2]).toMatch(/active uberblock: txg 25/);
    expect(out[3]).toMatch(/removed \(was zfs:zroot\/ROOT\/upgrade:\)/);
    expect(currentBootenv(await readZfsLabels(memoryDiskReader(new Uint8Array(readFileSync(path)))))?.nvlist?.pairs).toHaveLength(1);
  });
});
