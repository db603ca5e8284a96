/**
 * The engine reports progress to a reporter it is given (the CLI's bar, or a library caller's),
 * and never reaches into the CLI or the process's standard streams itself (test/layering.test.ts
 * holds that for every file).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { writeImage } from '../../src/io/write-image.js';
import type { ProgressReporter } from '../../src/io/progress.js';
import { VirtualDisk } from '../../src/model/extents.js';
import { tempDir } from '../helpers/golden.js';

function recorder(): { reporter: ProgressReporter; events: Array<[string, ...unknown[]]>; advanced: () => number } {
  const events: Array<[string, ...unknown[]]> = [];
  return {
    events,
    advanced: () => events.filter((e) => e[0] === 'advance').reduce((sum, e) => sum + (e[1] as number), 0),
    reporter: {
      start: (total, label) => void events.push(['start', total, label]),
      advance: (n) => void events.push(['advance', n]),
      done: () => void events.push(['done']),
    },
  };
}

describe('progress', () => {
  it('writeImage tells the reporter the data to read (not bytes held in memory), each read, and the end', async () => {
    const dir = tempDir();
    const data = join(dir, 'data.bin');
    writeFileSync(data, Buffer.alloc(3 << 20, 7));
    const disk = new VirtualDisk(8 << 20);
    disk.place(1 << 20, 3 << 20, { kind: 'file', path: data, offset: 0 });
    disk.placeBytes(0, new Uint8Array(512).fill(1)); // a table: in memory, never read, so not in the total
    for (const format of ['raw', 'qcow2']) {
      const { reporter, events, advanced } = recorder();
      await writeImage(disk, join(dir, `out.${format}`), { format, progress: reporter });
      expect(events[0], format).toEqual(['start', 3 << 20, `writing ${format}`]);
      expect(events.at(-1), format).toEqual(['done']);
      expect(advanced(), format).toBe(3 << 20);
    }
  });

  it("'-' writes to the stream it is given, and needs one", async () => {
    const disk = new VirtualDisk(4096);
    disk.placeBytes(0, new Uint8Array([1, 2, 3]));
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    await writeImage(disk, '-', { format: 'raw', stdout: out });
    expect(Buffer.concat(chunks).subarray(0, 4)).toEqual(Buffer.from([1, 2, 3, 0]));
    await expect(writeImage(disk, '-', { format: 'raw' })).rejects.toThrow(/needs the stream/);
  });
});
