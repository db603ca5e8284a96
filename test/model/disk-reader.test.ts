import fc from 'fast-check';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openRawFile, readInto } from '../../src/model/disk-reader.js';
import { openDisk } from '../../src/io/open-disk.js';
import { tempDir } from '../helpers/golden.js';

describe('raw file readers', () => {
  it('read on this thread (syncReads) the bytes they read on the thread pool: any offset, length, buffer, past the end (property)', async () => {
    const dir = tempDir('disk-reader-');
    const bytes = new Uint8Array(300_007).map((_, i) => (i * 2654435761) >>> 24);
    const path = join(dir, 'f.raw');
    writeFileSync(path, bytes);
    const pooled = await openRawFile(path);
    const inPlace = await openRawFile(path, { syncReads: true });
    try {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: -10, max: 310_000 }), fc.integer({ min: 0, max: 70_000 }), fc.boolean(), async (offset, length, withInto) => {
          const into = withInto ? new Uint8Array(length + 3).fill(0xee) : undefined;
          const a = await pooled.read(offset, length, into && new Uint8Array(into));
          const b = await inPlace.read(offset, length, into);
          const start = Math.min(Math.max(0, offset), bytes.length);
          const expected = bytes.subarray(start, Math.min(bytes.length, start + length));
          expect(Buffer.compare(b, expected)).toBe(0);
          expect(Buffer.compare(a, b)).toBe(0);
          if (into && b.length) expect(b.buffer).toBe(into.buffer); // read into the caller's memory, no copy
        }),
        { numRuns: 200 },
      );
    } finally {
      await pooled.close();
      await inPlace.close();
    }
  });

  it('openDisk hands syncReads down to the image file: its reads finish without the event loop turning', async () => {
    const dir = tempDir('disk-reader-');
    const raw = join(dir, 'd.raw');
    writeFileSync(
      raw,
      new Uint8Array(1 << 20).map((_, i) => (i >> 9) & 0xff),
    );
    const { reader } = await openDisk(raw, { syncReads: true });
    try {
      let turned = false;
      setImmediate(() => (turned = true));
      const got = new Uint8Array(4096);
      expect(await readInto(reader, 512 * 7, got)).toBe(4096);
      expect(turned).toBe(false); // read on this thread: no thread-pool callback waited for
      expect([got[0], got[4095]]).toEqual([7, 14]);
    } finally {
      await reader.close();
    }
  });
});
