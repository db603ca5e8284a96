/**
 * VHDX log replay in memory (issue 17 item 9): valid entries and sequences replayed on read,
 * invalid ones ignored as qemu does, hostile logs refused; a mutation fuzz over logs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../../formats/common/errors.js';
import { crc32c } from '../../formats/common/crc32c.js';
import { encodeBatEntry } from '../../formats/containers/vhdx-bat.js';
import { fill, readAll, sampleDisk } from '../helpers/containers.js';
import { vhdxLogEntry, withVhdxLog } from '../helpers/vhdx-log.js';
import { BAT_AT, MIB, expectFormatError, openBuf, reseal, writeVhdx } from './vhdx-helpers.js';

describe('VHDX log replay in memory (issue 17 item 9)', () => {
  // sampleDisk(3 MiB) with 1 MiB blocks: blocks 0, 1, 2 stored at 4, 5 and 6 MiB; the file is 7 MiB.
  const FILE = 7 * MIB;
  const base = () => writeVhdx(sampleDisk(3 * MIB).disk, { block_size: '1M' });
  const expected = () => Buffer.from(sampleDisk(3 * MIB).expected);
  const sector = (seed: number) => fill(4096, seed);
  const entry = (
    sequence: bigint,
    tail: number,
    writes: Parameters<typeof vhdxLogEntry>[0]['writes'],
    extra: Partial<Parameters<typeof vhdxLogEntry>[0]> = {},
  ) => vhdxLogEntry({ sequence, tail, writes, flushedFileOffset: FILE, lastFileOffset: FILE, ...extra });
  /** The BAT's first sector with payload block `block` set to `state` at `offset`. */
  async function batSector(img: Buffer, block: number, state: number, offset: number): Promise<Uint8Array> {
    const s = Uint8Array.from(img.subarray(BAT_AT, BAT_AT + 4096));
    encodeBatEntry(new DataView(s.buffer), block * 8, state, offset);
    return s;
  }
  async function readLogged(img: Buffer) {
    const before = Buffer.from(img);
    const r = await openBuf(img);
    const data = await readAll(r);
    expect(img.equals(before)).toBe(true); // nothing written to the input
    return { data, details: r.details() };
  }

  it('a data descriptor on a payload sector: reads see the replayed sector', async () => {
    const img = await base();
    const got = await readLogged(withVhdxLog(img, [{ at: 0, entry: entry(1n, 0, [{ fileOffset: 5 * MIB + 8192, data: sector(9) }]) }]));
    const want = expected();
    want.set(sector(9), MIB + 8192);
    expect(got.data.equals(want)).toBe(true);
    expect(got.details.logReplayedInMemory).toBe(1);
  });

  it('an entry whose checksum is wrong is no log to replay: the file opens as it is (as qemu)', async () => {
    const img = await base();
    const bad = entry(1n, 0, [{ fileOffset: 5 * MIB, data: sector(9) }]);
    bad[200] ^= 1; // inside the descriptor sector, under the CRC
    const got = await readLogged(withVhdxLog(img, [{ at: 0, entry: bad }]));
    expect(got.data.equals(expected())).toBe(true);
    expect(got.details.logReplayedInMemory).toBeUndefined();
    // The same for another LogGuid, a data sector with another sequence number, and sequence number 0.
    const other = entry(1n, 0, [{ fileOffset: 5 * MIB, data: sector(9) }], { logGuid: '01234567-89ab-cdef-0123-456789abcdef' });
    expect((await readLogged(withVhdxLog(img, [{ at: 0, entry: other }]))).data.equals(expected())).toBe(true);
    const seq0 = entry(0n, 0, [{ fileOffset: 5 * MIB, data: sector(9) }]);
    expect((await readLogged(withVhdxLog(img, [{ at: 0, entry: seq0 }]))).data.equals(expected())).toBe(true);
    const dataSeq = entry(7n, 0, [{ fileOffset: 5 * MIB, data: sector(9) }]);
    dataSeq.writeUInt32LE(8, 4096 + 4092); // SequenceLow of the data sector
    dataSeq.writeUInt32LE(0, 4);
    dataSeq.writeUInt32LE(crc32c(dataSeq), 4);
    expect((await readLogged(withVhdxLog(img, [{ at: 0, entry: dataSeq }]))).data.equals(expected())).toBe(true);
  });

  it('data and zero descriptors on the BAT: a block moved, a block dropped', async () => {
    const img = await base();
    // Block 0 now points at block 2's data; block 1 is NOT_PRESENT.
    const bat = await batSector(img, 0, 6, 6 * MIB);
    encodeBatEntry(new DataView(bat.buffer), 8, 0, 0);
    const got = await readLogged(withVhdxLog(img, [{ at: 0, entry: entry(1n, 0, [{ fileOffset: BAT_AT, data: bat }]) }]));
    const want = Buffer.alloc(3 * MIB);
    want.set(expected().subarray(2 * MIB), 0);
    want.set(expected().subarray(2 * MIB), 2 * MIB);
    expect(got.data.equals(want)).toBe(true);
    // A zero descriptor over the whole BAT sector: every block reads as zeros.
    const zeroed = await readLogged(withVhdxLog(img, [{ at: 0, entry: entry(1n, 0, [{ fileOffset: BAT_AT, zeroLength: 4096 }]) }]));
    expect(zeroed.data.every((b) => b === 0)).toBe(true);
  });

  it('a new block past the end of the file (LastFileOffset), as an allocating write leaves it', async () => {
    const img = await base();
    const bat = await batSector(img, 1, 6, FILE); // block 1 moves to a new block at the end of the file
    const log = entry(
      1n,
      0,
      [
        { fileOffset: BAT_AT, data: bat },
        { fileOffset: FILE + 4096, data: sector(5) },
      ],
      { lastFileOffset: FILE + MIB },
    );
    const got = await readLogged(withVhdxLog(img, [{ at: 0, entry: log }]));
    const want = expected();
    want.fill(0, MIB, 2 * MIB);
    want.set(sector(5), MIB + 4096);
    expect(got.data.equals(want)).toBe(true);
  });

  it('the active sequence: contiguous sequence numbers, the highest head, replayed from its Tail, wrapping around the ring', async () => {
    const img = await base();
    const at = (seed: number) => ({ fileOffset: 4 * MIB, data: sector(seed) });
    const e1 = entry(5n, 0, [at(1)]); // 2 sectors each
    const e2 = entry(6n, 0, [at(2)]);
    const want = (seed: number) => {
      const w = expected();
      w.set(sector(seed), 0);
      return w;
    };
    // 5 then 6: both applied, in order.
    expect(
      (
        await readLogged(
          withVhdxLog(img, [
            { at: 0, entry: e1 },
            { at: 8192, entry: e2 },
          ]),
        )
      ).data.equals(want(2)),
    ).toBe(true);
    // 5 then 7 (a gap): two sequences; 7 is the higher head and its own tail.
    const e7 = entry(7n, 8192, [at(3)]);
    expect(
      (
        await readLogged(
          withVhdxLog(img, [
            { at: 0, entry: e1 },
            { at: 8192, entry: e7 },
          ]),
        )
      ).data.equals(want(3)),
    ).toBe(true);
    // 7's Tail names an entry outside its sequence: 7 is incomplete, so 5 is the log to replay.
    const e7bad = entry(7n, 0, [at(3)]);
    expect(
      (
        await readLogged(
          withVhdxLog(img, [
            { at: 0, entry: e1 },
            { at: 8192, entry: e7bad },
          ]),
        )
      ).data.equals(want(1)),
    ).toBe(true);
    // An entry across the end of the 1 MiB ring, and the next one at its start.
    const end = MIB - 4096;
    const w1 = entry(10n, end, [at(4)]);
    const w2 = entry(11n, end, [at(5)]);
    const wrapped = await readLogged(
      withVhdxLog(img, [
        { at: end, entry: w1 },
        { at: 4096, entry: w2 },
      ]),
    );
    expect(wrapped.data.equals(want(5))).toBe(true);
    expect(wrapped.details.logReplayedInMemory).toBe(2);
  });

  it('refuses a log that says the file was longer when it was written (FlushedFileOffset past the end), as qemu', async () => {
    const img = await base();
    const log = entry(1n, 0, [{ fileOffset: 4 * MIB, data: sector(1) }], { flushedFileOffset: FILE + MIB });
    await expectFormatError(withVhdxLog(img, [{ at: 0, entry: log }]), /cut short/);
  });

  it('refuses a log of overlapping entries that would have it read the log once per sector', async () => {
    const img = await base();
    // Every sector starts an entry that claims to be as long as the whole log (none with a CRC that holds).
    const entries = Array.from({ length: 256 }, (_, k) => {
      const e = vhdxLogEntry({ sequence: BigInt(k + 1), tail: k * 4096, writes: [], flushedFileOffset: FILE, lastFileOffset: FILE });
      const long = Buffer.alloc(4096);
      e.copy(long, 0, 0, 4096);
      long.writeUInt32LE(MIB, 8); // EntryLength: the whole log
      return { at: k * 4096, entry: long };
    });
    await expectFormatError(withVhdxLog(img, entries), /overlap one another/);
  });

  it('fuzz: mutated logs fail only with FormatError', async () => {
    const img = withVhdxLog(await base(), [
      {
        at: 0,
        entry: entry(5n, 0, [
          { fileOffset: 4 * MIB, data: sector(1) },
          { fileOffset: BAT_AT + 4096, zeroLength: 8192 },
        ]),
      },
      { at: 8192, entry: entry(6n, 0, [{ fileOffset: 5 * MIB, data: sector(2) }]) },
    ]);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ where: fc.nat(5 * 4096 - 1), value: fc.nat(255) }), { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        async (edits, fixCrc) => {
          const buf = Buffer.from(img);
          for (const e of edits) buf[MIB + e.where] = e.value;
          if (fixCrc)
            for (const [at, len] of [
              [0, 8192],
              [8192, 8192],
            ])
              reseal(buf, MIB + at, len);
          try {
            await readAll(await openBuf(buf));
          } catch (e) {
            if (!(e instanceof FormatError)) throw e;
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
