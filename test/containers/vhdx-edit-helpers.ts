/**
 * What the VHDX in-place edit tests share: a temp folder and fresh paths in it, our writer's
 * dynamic image of some pieces, an edit session that must not be refused, qemu-img check.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { vhdxHandler } from '../../src/containers/vhdx/handler.js';
import type { ContainerEditSession, ContainerReader, EditableFile, InPlaceRefusal } from '../../src/containers/types.js';
import { diskOfPieces, writeWithHandler } from '../helpers/containers.js';
import { tempDir } from '../helpers/golden.js';
import { runPeer } from '../helpers/peer.js';

export const MIB = 1 << 20;
export const dir = tempDir('diskmint-vhdx-edit-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
export const fresh = (ext: string) => join(dir, `f${n++}.${ext}`);

/** Our writer's dynamic VHDX of `pieces`, in 1 MiB blocks; returns its path. */
export async function oursImage(size: number, pieces: Parameters<typeof diskOfPieces>[1] = []): Promise<string> {
  const path = fresh('vhdx');
  await writeWithHandler(vhdxHandler, diskOfPieces(size, pieces).disk, path, { options: { block_size: '1M' } });
  return path;
}

export function isRefusal(x: ContainerEditSession | InPlaceRefusal): x is InPlaceRefusal {
  return 'refused' in x;
}

export async function session(file: EditableFile, reader: ContainerReader): Promise<ContainerEditSession> {
  const s = await vhdxHandler.editing!.openForEdit(file, reader);
  if (isRefusal(s)) throw new Error(`refused: ${s.refused}`);
  return s;
}

export const qemuCheck = (path: string) => runPeer('qemu-img', ['check', '-f', 'vhdx', path]);
