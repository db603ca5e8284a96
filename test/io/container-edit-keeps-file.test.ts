/**
 * An edit keeps the user's file (issue 17, "nothing lost"): a container edited in place keeps its
 * inode, so a symlink stays a symlink (its target edited), hard links keep sharing the data, and
 * owner and mode stay; a container that must be rewritten (streamOptimized VMDK) keeps owner and
 * mode, follows a symlink to its target, and refuses a file with other hard links; a read-only
 * file is refused whatever the format, root or not. qemu-img judges the edited bytes.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { chmod, chown, link, lstat, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { VirtualDisk } from '../../src/model/extents.js';
import { writeImage } from '../../src/io/write-image.js';
import { openImageEditor } from '../../src/io/image-editor.js';
import { openDisk } from '../../src/io/open-disk.js';
import { requirePeer } from '../helpers/peer.js';
import { tempDir } from '../helpers/golden.js';

const MiB = 1 << 20;
const SIZE = 8 * MiB;

interface Kind {
  name: string;
  format: string;
  options?: string;
  qemu: string;
  inPlace: boolean;
}

const KINDS: Kind[] = [
  { name: 'raw', format: 'raw', qemu: 'raw', inPlace: true },
  { name: 'qcow2', format: 'qcow2', qemu: 'qcow2', inPlace: true },
  { name: 'VMDK monolithicSparse', format: 'vmdk', options: 'subformat=monolithicSparse', qemu: 'vmdk', inPlace: true },
  { name: 'VMDK streamOptimized', format: 'vmdk', options: 'subformat=streamOptimized', qemu: 'vmdk', inPlace: false },
  { name: 'VHD dynamic', format: 'vhd', qemu: 'vpc', inPlace: true },
  { name: 'VHD fixed', format: 'vhd', options: 'subformat=fixed', qemu: 'vpc', inPlace: true },
  { name: 'VHDX', format: 'vhdx', qemu: 'vhdx', inPlace: true },
];

/** A disk with data at the start and in the middle; the edit writes into a hole and over data. */
function baseDisk(): { disk: VirtualDisk; raw: Uint8Array } {
  const raw = new Uint8Array(SIZE);
  for (let i = 0; i < 64 * 1024; i++) raw[i] = (i * 7 + 3) & 0xff;
  for (let i = 0; i < 200_000; i++) raw[3 * MiB + i] = (i * 13 + 1) & 0xff;
  const disk = new VirtualDisk(SIZE);
  disk.placeBytes(0, raw.slice(0, 64 * 1024));
  disk.placeBytes(3 * MiB, raw.slice(3 * MiB, 3 * MiB + 200_000));
  return { disk, raw };
}

const EDITS: Array<[number, number]> = [
  [5 * MiB + 1234, 70_000], // into a hole, unaligned
  [3 * MiB + 100_000, 150_000], // over data and past its end
];

async function edit(path: string): Promise<void> {
  const e = await openImageEditor(path);
  try {
    for (const [at, n] of EDITS) await e.writeBytes(at, new Uint8Array(n).fill(0x5a));
    await e.barrier();
    await e.commit();
  } finally {
    await e.close();
  }
}

function expected(raw: Uint8Array): Uint8Array {
  const out = raw.slice();
  for (const [at, n] of EDITS) out.fill(0x5a, at, at + n);
  return out;
}

const sha = async (p: string) =>
  createHash('sha256')
    .update(await readFile(p))
    .digest('hex');

let dir: string;
beforeAll(() => {
  requirePeer('qemu-img', 'qemu-utils');
  dir = tempDir('dm-keep-');
});

async function make(kind: Kind, name: string): Promise<{ path: string; raw: Uint8Array }> {
  const { disk, raw } = baseDisk();
  const path = join(dir, name);
  await writeImage(disk, path, { format: kind.format, options: kind.options });
  return { path, raw };
}

/** qemu-img reads the container as `want`, and our reader does too. */
async function expectReads(path: string, kind: Kind, want: Uint8Array): Promise<void> {
  const wantPath = `${path}.want`;
  await writeFile(wantPath, want);
  execFileSync('qemu-img', ['compare', '-q', '-f', 'raw', '-F', kind.qemu, wantPath, path]);
  const { reader } = await openDisk(path);
  try {
    expect(Buffer.from(await reader.read(0, SIZE)).equals(Buffer.from(want))).toBe(true);
  } finally {
    await reader.close();
  }
}

describe.each(KINDS)('an edit of a $name image', (kind) => {
  const tag = kind.name.replace(/\W+/g, '-');

  it(kind.inPlace ? 'is made in place: same inode, mode 0600 and owner kept' : 'rewrites it with mode 0600 and owner kept', async () => {
    const { path, raw } = await make(kind, `${tag}-mode`);
    await chmod(path, 0o600);
    await chown(path, 1234, 5678);
    const before = await stat(path);
    await edit(path);
    const after = await stat(path);
    expect(after.mode & 0o7777).toBe(0o600);
    expect([after.uid, after.gid]).toEqual([1234, 5678]);
    expect(after.ino === before.ino).toBe(kind.inPlace);
    await expectReads(path, kind, expected(raw));
    if (kind.qemu !== 'vpc' && kind.qemu !== 'raw') execFileSync('qemu-img', ['check', '-q', '-f', kind.qemu, path]);
  });

  it('through a symlink edits the target and keeps the link', async () => {
    const { path, raw } = await make(kind, `${tag}-target`);
    const linkPath = join(dir, `${tag}-link`);
    await symlink(path, linkPath);
    await edit(linkPath);
    expect((await lstat(linkPath)).isSymbolicLink()).toBe(true);
    expect(await readlink(linkPath)).toBe(path);
    await expectReads(path, kind, expected(raw));
  });

  it(kind.inPlace ? 'keeps a hard link sharing the edited data' : 'with a second hard link is refused, nothing changed', async () => {
    const { path, raw } = await make(kind, `${tag}-hard`);
    const other = join(dir, `${tag}-hard2`);
    await link(path, other);
    if (kind.inPlace) {
      await edit(path);
      expect((await stat(path)).ino).toBe((await stat(other)).ino);
      await expectReads(other, kind, expected(raw));
    } else {
      const hash = await sha(path);
      await expect(edit(path)).rejects.toThrow(/hard link/);
      expect(await sha(path)).toBe(hash);
      expect((await stat(path)).ino).toBe((await stat(other)).ino);
    }
  });

  it('of a read-only (0444) file is refused, even for root, and changes nothing', async () => {
    const { path } = await make(kind, `${tag}-ro`);
    await chmod(path, 0o444);
    const hash = await sha(path);
    await expect(edit(path)).rejects.toThrow(/read-only \(mode 0444\)/);
    expect(await sha(path)).toBe(hash);
  });
});
