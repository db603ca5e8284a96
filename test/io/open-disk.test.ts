/**
 * openDisk's reader: a container read that fails after the open (a grain past the end of a
 * truncated file) is the image being unusable, DiskmintError NOT_A_DISK naming the path, never a
 * FormatError a table probe would report as a finding; and the reader keeps what else it carries.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { openDisk } from '../../src/io/open-disk.js';
import { VirtualDisk } from '../../src/model/extents.js';
import { DiskmintError } from '../../src/model/errors.js';
import { writeImage } from '../../src/io/write-image.js';
import { readFileSync } from 'node:fs';
import { tempDir } from '../helpers/golden.js';

it('a raw image keeps its sourcePath (convert copies from the file directly)', async () => {
  const path = join(tempDir(), 'disk.img');
  writeFileSync(path, Buffer.alloc(4096, 1));
  const { reader } = await openDisk(path);
  try {
    expect((reader as { sourcePath?: string }).sourcePath).toBe(path);
  } finally {
    await reader.close();
  }
});

it('a read past the end of a truncated VMDK is NOT_A_DISK naming the file', async () => {
  const dir = tempDir();
  const disk = new VirtualDisk(4 << 20);
  disk.placeBytes(3 << 20, new Uint8Array(65536).fill(9));
  const path = join(dir, 'disk.vmdk');
  await writeImage(disk, path, { format: 'vmdk' });
  const whole = readFileSync(path);
  writeFileSync(path, whole.subarray(0, whole.length - 65536));
  const { reader } = await openDisk(path);
  try {
    const err = await reader.read(3 << 20, 512).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiskmintError);
    expect(err).toMatchObject({ code: 'NOT_A_DISK', message: expect.stringMatching(new RegExp(`^${path}: vmdk: .*past the end of the file`)) });
  } finally {
    await reader.close();
  }
});
