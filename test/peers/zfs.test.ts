/**
 * OpenZFS itself judges our ZFS bytes (Debian's zfsutils-linux, installed by .ci/zfs-contrib.sh):
 *  - `zdb -l` / `zdb -lu` on the real pool fixture print what our parser reads;
 *  - after `zfs bootonce` (raw, interrupted, through qcow2) `zdb -l` prints the same labels;
 *  - `zdb -e -p DIR -C POOL` imports the pool in userspace from one label alone: that read
 *    goes through ZIO_CHECKSUM_LABEL, so it proves that label's nvlist checksum holds
 *    (zdb 2.1's `-l` itself does not check label checksums);
 *  - libnvpair (OpenZFS's nvlist library, through python3 ctypes) unpacks the nvlists we pack,
 *    boot environments included, and packs them back to the same bytes.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOOTENV_OFFSET, BOOTENV_PAYLOAD, encodeBootenvBlock, encodeConfigBlock, labelOffsets, LABEL_SIZE, PHYS_OFFSET } from '../../formats/fs/zfs-label.js';
import { nvlist, encodeNvlist, type NvList } from '../../formats/fs/nvlist.js';
import { memoryDiskReader } from '../../src/model/disk-reader.js';
import { convertImage } from '../../src/index.js';
import { readZfsLabels, zfsLabels } from '../../src/ops/zfs.js';
import { zfsSetBootonce } from '../../src/ops/zfs-bootonce.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer, runPeer } from '../helpers/peer.js';

const FIXTURE = new URL('../../fixtures/zfs/pool.img.gz', import.meta.url).pathname;
let dir = '';
let pool: Uint8Array;
let have = false;
let n = 0;

const fresh = (name: string) => {
  const path = join(dir, name);
  writeFileSync(path, pool);
  return path;
};

beforeAll(() => {
  have = requirePeer('zdb', 'zfsutils-linux') && requirePeer('python3', 'python3');
  dir = tempDir('diskmint-zfs-peers-');
  pool = new Uint8Array(gunzipSync(readFileSync(FIXTURE)));
});

/** Each run writes a few hundred MiB of pool copies: remove them. */
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface ZdbLabel {
  name?: string;
  version?: string;
  state?: string;
  txg?: string;
  pool_guid?: string;
  guid?: string;
}

/** `zdb -l FILE`: the top-level values of each label (zdb groups identical labels: `labels = 0 1 2 3`). */
function zdbLabels(file: string): { text: string; labels: Map<number, ZdbLabel> } {
  const r = runPeer('zdb', ['-l', file]);
  expect(r.status, r.out).toBe(0);
  const labels = new Map<number, ZdbLabel>();
  for (const section of r.out.split(/^-+\nLABEL \d+\n-+\n/m).slice(1)) {
    const v: ZdbLabel = {};
    for (const m of section.matchAll(/^ {4}(name|version|state|txg|pool_guid|guid): '?([^'\n]*)'?$/gm)) v[m[1] as keyof ZdbLabel] = m[2];
    const which = /^ {4}labels = ([\d ]+)$/m.exec(section)?.[1].trim().split(' ').map(Number) ?? [];
    for (const i of which) labels.set(i, v);
  }
  return { text: r.out, labels };
}

/** `zdb -lu FILE`: uberblocks as "label:txg:guid_sum:timestamp" strings. */
function zdbUberblocks(file: string): string[] {
  const r = runPeer('zdb', ['-lu', file]);
  expect(r.status, r.out).toBe(0);
  const out: string[] = [];
  for (const m of r.out.matchAll(
    /Uberblock\[\d+\]\n\tmagic = [0-9a-f]+\n\tversion = \d+\n\ttxg = (\d+)\n\tguid_sum = (\d+)\n\ttimestamp = (\d+)[^]*?labels = ([\d ]+)/g,
  )) {
    for (const l of m[4].trim().split(' ')) out.push(`${l}:${m[1]}:${m[2]}:${m[3]}`);
  }
  return out.sort();
}

/** Import the pool in userspace from label `keep` alone (the other three zeroed). */
function importsFromOneLabel(bytes: Uint8Array, keep: number): boolean {
  const d = join(dir, `import-${n++}`);
  mkdirSync(d);
  const copy = new Uint8Array(bytes);
  labelOffsets(copy.length).forEach((o, i) => {
    if (i !== keep) copy.fill(0, o, o + LABEL_SIZE);
  });
  writeFileSync(join(d, 'vdev.img'), copy);
  const r = spawnSync('zdb', ['-e', '-p', d, '-C', 'zroot'], { encoding: 'utf8', timeout: 120_000 });
  return r.status === 0 && /MOS Configuration/.test(r.stdout);
}

const LIBNVPAIR = `
import ctypes, struct, sys
def load():
    # The package's library, else the copy .ci/zfs-contrib.sh extracts when the package cannot install.
    for name in ('libnvpair.so.3', '/usr/local/lib/diskmint-zdb/usr/lib/x86_64-linux-gnu/libnvpair.so.3',
                 '/usr/local/lib/diskmint-zdb/lib/x86_64-linux-gnu/libnvpair.so.3'):
        try:
            return ctypes.CDLL(name)
        except OSError:
            pass
    raise SystemExit('libnvpair.so.3 not found (zfsutils-linux)')
lib = load()
lib.nvlist_unpack.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p), ctypes.c_int]
lib.nvlist_pack.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_size_t), ctypes.c_int, ctypes.c_int]
data = sys.stdin.buffer.read()
at = 0
while at < len(data):
    (size,) = struct.unpack('>I', data[at:at + 4]); at += 4
    rec = data[at:at + size]; at += size
    nvl = ctypes.c_void_p()
    rc = lib.nvlist_unpack(rec, len(rec), ctypes.byref(nvl), 0)
    if rc != 0:
        sys.stdout.buffer.write(struct.pack('>I', 0xffffffff)); continue
    buf = ctypes.c_void_p(); blen = ctypes.c_size_t(0)
    rc = lib.nvlist_pack(nvl, ctypes.byref(buf), ctypes.byref(blen), 1, 0)  # NV_ENCODE_XDR
    out = ctypes.string_at(buf, blen.value) if rc == 0 else b''
    sys.stdout.buffer.write(struct.pack('>I', len(out) if rc == 0 else 0xfffffffe) + out)
`;

/** libnvpair's unpack + XDR repack of each buffer (undefined where unpack fails). */
function libnvpairRepack(buffers: Uint8Array[]): (Uint8Array | undefined)[] {
  const input = Buffer.concat(
    buffers.flatMap((b) => {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(b.length);
      return [len, Buffer.from(b)];
    }),
  );
  const r = spawnSync('python3', ['-c', LIBNVPAIR], { input, maxBuffer: 64 << 20 });
  expect(r.status, String(r.stderr)).toBe(0);
  const out: (Uint8Array | undefined)[] = [];
  for (let at = 0; at < r.stdout.length;) {
    const len = r.stdout.readUInt32BE(at);
    at += 4;
    if (len >= 0xfffffffe) out.push(undefined);
    else out.push(new Uint8Array(r.stdout.subarray(at, (at += len))));
  }
  return out;
}

/** The packed nvlist in each label's boot environment block (up to its terminator). */
async function bootenvPayloads(bytes: Uint8Array): Promise<Uint8Array[]> {
  const set = await readZfsLabels(memoryDiskReader(bytes));
  return set.labels.map((l) => {
    const len = encodeNvlist(l.bootenv.nvlist!).length;
    return bytes.slice(l.offset + BOOTENV_OFFSET + 8, l.offset + BOOTENV_OFFSET + 8 + len);
  });
}

describe('zdb judges our reading of a real pool', () => {
  it('our four labels and uberblocks match zdb -l and zdb -lu', async (ctx) => {
    if (!have) return ctx.skip();
    const file = fresh('pool.img');
    const zdb = zdbLabels(file);
    expect([...zdb.labels.keys()].sort()).toEqual([0, 1, 2, 3]);
    const set = await readZfsLabels(memoryDiskReader(pool));
    for (const l of set.labels) {
      const z = zdb.labels.get(l.index)!;
      const ours = Object.fromEntries(l.config!.pairs.filter((p) => p.name in z).map((p) => [p.name, String((p as { value?: unknown }).value)]));
      expect(ours).toEqual(z);
      expect(z).toMatchObject({ name: 'zroot', version: '23' });
    }
    const ours = set.labels.flatMap((l) => l.uberblocks.map((u) => `${l.index}:${u.txg}:${u.guidSum}:${u.timestamp}`)).sort();
    expect(ours).toEqual(zdbUberblocks(file));
  });

  it('zdb imports the fixture from each label alone, and not from one with a broken checksum', (ctx) => {
    if (!have) return ctx.skip();
    for (let i = 0; i < 4; i++) expect(importsFromOneLabel(pool, i), `label ${i}`).toBe(true);
    const bad = new Uint8Array(pool);
    bad[128 * 1024 - 3] ^= 0x55; // label 0's nvlist checksum
    expect(importsFromOneLabel(bad, 0)).toBe(false);
  });
});

describe('zdb and libnvpair judge the labels we write', () => {
  it('after zfs bootonce: same zdb -l and -lu output, every label imports alone, libnvpair reads the request', async (ctx) => {
    if (!have) return ctx.skip();
    const before = zdbLabels(fresh('ref.img')).text;
    const beforeUb = zdbUberblocks(join(dir, 'ref.img'));
    const file = fresh('once.img');
    await zfsSetBootonce(file, 'zroot/ROOT/upgrade');
    expect(zdbLabels(file).text).toBe(before);
    expect(zdbUberblocks(file)).toEqual(beforeUb);
    const bytes = new Uint8Array(readFileSync(file));
    for (let i = 0; i < 4; i++) expect(importsFromOneLabel(bytes, i), `label ${i}`).toBe(true);
    const payloads = await bootenvPayloads(bytes);
    const repacked = libnvpairRepack(payloads);
    repacked.forEach((r, i) => expect(r && Buffer.from(r).equals(Buffer.from(payloads[i])), `label ${i}`).toBe(true));
    expect(Buffer.from(payloads[0]).includes('zfs:zroot/ROOT/upgrade:')).toBe(true);
    expect(payloads[0].length).toBeLessThan(BOOTENV_PAYLOAD);
  });

  it('after an interrupted zfs bootonce, zdb -l still reads every label', async (ctx) => {
    if (!have) return ctx.skip();
    const before = zdbLabels(fresh('ref2.img')).text;
    for (const stop of [2, 3, 4]) {
      const file = fresh(`crash-${stop}.img`);
      await expect(
        zfsSetBootonce(file, 'zroot/ROOT/upgrade', {
          beforeWrite: (k) => {
            if (k === stop) throw new Error('cut');
          },
        }),
      ).rejects.toThrow('cut');
      expect(zdbLabels(file).text).toBe(before);
      const bytes = new Uint8Array(readFileSync(file));
      expect(importsFromOneLabel(bytes, 3)).toBe(true);
    }
  });

  it('a request made through qcow2 reads back in zdb after converting to raw', async (ctx) => {
    if (!have) return ctx.skip();
    const before = zdbLabels(fresh('ref3.img')).text;
    const q = join(dir, 'pool.qcow2');
    await convertImage(join(dir, 'ref3.img'), q, { progress: false });
    await zfsSetBootonce(q, 'zroot/ROOT/default');
    const back = join(dir, 'back.img');
    await convertImage(q, back, { progress: false, format: 'raw' });
    expect(zdbLabels(back).text).toBe(before);
    const bytes = new Uint8Array(readFileSync(back));
    expect(importsFromOneLabel(bytes, 1)).toBe(true);
    const [p0] = await bootenvPayloads(bytes);
    expect(Buffer.from(libnvpairRepack([p0])[0]!).equals(Buffer.from(p0))).toBe(true);
  });

  it('libnvpair unpacks and repacks lists of every type to our exact bytes', (ctx) => {
    if (!have) return ctx.skip();
    const inner: NvList = nvlist([
      { name: 'k', type: 'string', value: 'v' },
      { name: 'n', type: 'uint64', value: 7n },
    ]);
    const every: NvList = nvlist([
      { name: 'boolean', type: 'boolean' },
      { name: 'boolean_value', type: 'boolean_value', value: true },
      { name: 'byte', type: 'byte', value: 200 },
      { name: 'int8', type: 'int8', value: -5 },
      { name: 'uint8', type: 'uint8', value: 250 },
      { name: 'int16', type: 'int16', value: -300 },
      { name: 'uint16', type: 'uint16', value: 65000 },
      { name: 'int32', type: 'int32', value: -70000 },
      { name: 'uint32', type: 'uint32', value: 4000000000 },
      { name: 'int64', type: 'int64', value: -(1n << 40n) },
      { name: 'uint64', type: 'uint64', value: (1n << 64n) - 1n },
      { name: 'hrtime', type: 'hrtime', value: 123456789n },
      { name: 'double', type: 'double', value: 2.5 },
      { name: 'string', type: 'string', value: 'zfs:zroot/ROOT/default:' },
      { name: 'empty', type: 'string', value: '' },
      { name: 'byte_array', type: 'byte_array', value: [1, 2, 3, 255, 0] },
      { name: 'int8_array', type: 'int8_array', value: [-1, 2] },
      { name: 'uint8_array', type: 'uint8_array', value: [1, 255] },
      { name: 'int16_array', type: 'int16_array', value: [-2, 3] },
      { name: 'uint16_array', type: 'uint16_array', value: [65535] },
      { name: 'int32_array', type: 'int32_array', value: [-3] },
      { name: 'uint32_array', type: 'uint32_array', value: [1, 2, 3] },
      { name: 'int64_array', type: 'int64_array', value: [-4n, 5n] },
      { name: 'uint64_array', type: 'uint64_array', value: [6n, 7n, 8n] },
      { name: 'boolean_array', type: 'boolean_array', value: [true, false] },
      { name: 'string_array', type: 'string_array', value: ['a', '', 'three'] },
      { name: 'nvlist', type: 'nvlist', value: nvlist([{ name: 'deeper', type: 'nvlist', value: inner }]) },
      { name: 'nvlist_array', type: 'nvlist_array', value: [inner, nvlist(), inner] },
      { name: 'empty_array', type: 'uint64_array', value: [] },
    ]);
    const lists = [
      every,
      nvlist(),
      {
        version: 0,
        flags: 0,
        pairs: [
          { name: 'dup', type: 'uint64', value: 1n },
          { name: 'dup', type: 'uint64', value: 2n },
        ],
      } as NvList,
    ];
    const packed = lists.map(encodeNvlist);
    libnvpairRepack(packed).forEach((r, i) => {
      expect(r, `list ${i}`).toBeDefined();
      expect(Buffer.from(r!).toString('hex'), `list ${i}`).toBe(Buffer.from(packed[i]).toString('hex'));
    });
  });

  it('zdb -l reads a label set we write from scratch for a synthetic pool', async (ctx) => {
    if (!have) return ctx.skip();
    const u64 = (name: string, value: bigint) => ({ name, type: 'uint64' as const, value });
    const tree = nvlist([
      { name: 'type', type: 'string', value: 'disk' },
      u64('id', 0n),
      u64('guid', 4242424242424242n),
      { name: 'path', type: 'string', value: '/dev/ada0p3' },
      u64('metaslab_array', 256n),
      u64('metaslab_shift', 24n),
      u64('ashift', 12n),
      u64('asize', 60n << 20n),
      u64('is_log', 0n),
      u64('create_txg', 4n),
    ]);
    const config = nvlist([
      u64('version', 5000n),
      { name: 'name', type: 'string', value: 'synth' },
      u64('state', 1n),
      u64('txg', 77n),
      u64('pool_guid', 1234567890123456789n),
      { name: 'hostname', type: 'string', value: 'builder' },
      u64('top_guid', 4242424242424242n),
      u64('guid', 4242424242424242n),
      u64('vdev_children', 1n),
      { name: 'vdev_tree', type: 'nvlist', value: tree },
      {
        name: 'features_for_read',
        type: 'nvlist',
        value: nvlist([
          { name: 'com.delphix:hole_birth', type: 'boolean' },
          { name: 'com.delphix:embedded_data', type: 'boolean' },
        ]),
      },
    ]);
    const bytes = new Uint8Array(64 << 20);
    const env = nvlist([{ name: 'version', type: 'uint64', value: 1n }]);
    for (const o of labelOffsets(bytes.length)) {
      bytes.set(encodeConfigBlock(config, o + PHYS_OFFSET), o + PHYS_OFFSET);
      bytes.set(encodeBootenvBlock(env, o + BOOTENV_OFFSET), o + BOOTENV_OFFSET);
    }
    const file = join(dir, 'synth.img');
    writeFileSync(file, bytes);
    const z = zdbLabels(file);
    expect([...z.labels.keys()].sort()).toEqual([0, 1, 2, 3]);
    expect(z.labels.get(0)).toEqual({ version: '5000', name: 'synth', state: '1', txg: '77', pool_guid: '1234567890123456789', guid: '4242424242424242' });
    expect(z.text).toMatch(/features_for_read:\n\s+com.delphix:hole_birth\n\s+com.delphix:embedded_data/);
    expect(z.text).not.toMatch(/failed to unpack|bad label/i);
    const ours = await zfsLabels(file);
    expect(ours.agree).toBe(true);
    expect(ours.activeUberblock).toBeUndefined(); // labels only: no uberblock ring, so not an importable pool
  });
});
