/**
 * `diskmint repair IMG`: replay a VHDX's log into the file when it holds one (as Hyper-V and
 * `qemu-img check -r all` do: containers/vhdx/replay.ts), then rewrite a damaged or stale GPT
 * copy from the good one, as FreeBSD's `gpart recover` and `sgdisk -e` do, the backup moved to
 * the disk's last sector when the disk grew. The writes go through the image editor in
 * the crash-safe order of schemes/gpt/edit.ts: the stale copy first, a barrier, then the good
 * one (only where its bytes change, e.g. its pointer to a moved backup), a barrier.
 */
import { DiskmintError } from '../model/errors.js';
import { openImageEditor, type EditorOptions, type ImageEditor } from '../io/image-editor.js';
import { openDisk } from '../io/open-disk.js';
import { replayVhdxLog } from '../containers/vhdx/replay.js';
import { planGptRewrite, readGptForEdit, writeGptPlan, type EditableGpt, type GptWrite } from '../schemes/gpt/edit.js';

export interface RepairResult {
  path: string;
  format: string;
  /** The copies rewritten (none when both were whole and agreed). */
  rewrote: Array<'primary' | 'backup'>;
  /** The backup header's old and new LBA when it was moved to the end of a grown disk. */
  movedBackup?: { from: number; to: number };
  /** A VHDX log replayed into the file first: its entries and writes. */
  replayedLog?: { entries: number; writes: number };
  message: string;
}

/** Why a copy needs rewriting, for the message. */
function stateOf(gpt: EditableGpt, copy: 'primary' | 'backup'): string {
  const c = gpt[copy];
  if (!c?.valid) return 'damaged';
  if (c !== gpt.good) return 'out of date';
  return 'updated';
}

/**
 * After the backup moved to the end of a grown disk, the protective MBR's 0xEE entry (UEFI 2.10
 * table 5-4: start LBA 1, size the disk's sectors after LBA 0, at most 0xFFFFFFFF) is widened
 * as `sgdisk -e` does; only an entry that covered the old disk exactly, so a hybrid or a
 * deliberately different one is left alone. One sector, written after the GPT copies.
 */
async function growProtectiveMbr(editor: ImageEditor, newLastLba: number, oldLastLba: number): Promise<void> {
  const mbr = new Uint8Array(await editor.disk.read(0, 512));
  const dv = new DataView(mbr.buffer, mbr.byteOffset, mbr.byteLength);
  if (dv.getUint16(510, true) !== 0xaa55) return;
  for (let i = 0; i < 4; i++) {
    const e = 446 + 16 * i;
    if (mbr[e + 4] !== 0xee || dv.getUint32(e + 8, true) !== 1) continue;
    if (dv.getUint32(e + 12, true) !== Math.min(oldLastLba, 0xffffffff)) return;
    dv.setUint32(e + 12, Math.min(newLastLba, 0xffffffff), true);
    await editor.writeBytes(0, mbr);
    await editor.barrier();
    return;
  }
}

export async function repairImage(path: string, opts: EditorOptions = {}): Promise<RepairResult> {
  const replayedLog = await replayLogIfAny(path, opts);
  if (!replayedLog) return repairGpt(path, opts);
  const log = `${path}: replayed the VHDX log (${replayedLog.entries} entries, ${replayedLog.writes} writes) into the file`;
  try {
    const result = await repairGpt(path, opts);
    return { ...result, replayedLog, message: `${log}\n${result.message}` };
  } catch (err) {
    // The log was the repair; a disk without a readable GPT has nothing more to repair.
    if (!(err instanceof DiskmintError) || err.code !== 'NOT_A_DISK') throw err;
    return { path, format: 'vhdx', rewrote: [], replayedLog, message: `${log}; it holds no GPT to check (${err.message})` };
  }
}

/** A VHDX whose log holds writes not yet applied (read commands replay it in memory only): applied to the file. */
async function replayLogIfAny(path: string, opts: EditorOptions): Promise<{ entries: number; writes: number } | undefined> {
  const { reader, format } = await openDisk(path);
  const pending = reader.details().logReplayedInMemory;
  await reader.close();
  if (format !== 'vhdx' || !pending) return undefined;
  const r = await replayVhdxLog(path, opts);
  return r.replayed ? { entries: r.entries, writes: r.writes } : undefined;
}

async function repairGpt(path: string, opts: EditorOptions): Promise<RepairResult> {
  const editor = await openImageEditor(path, opts);
  try {
    const gpt = await readGptForEdit(editor.disk).catch((err: unknown) => {
      if (err instanceof DiskmintError && /neither GPT copy is valid/.test(err.message))
        throw new DiskmintError('NOT_A_DISK', `neither GPT copy of ${path} is valid, so there is no good copy to repair from; nothing was written`);
      throw err;
    });
    const plan = planGptRewrite(gpt, editor.disk.size, new Map(), { backupToEnd: true });
    const changed: GptWrite[][] = [];
    for (const group of plan) {
      const writes: GptWrite[] = [];
      for (const w of group) {
        const now = await editor.disk.read(w.offset, w.bytes.length);
        if (Buffer.compare(Buffer.from(now), Buffer.from(w.bytes)) !== 0) writes.push(w);
      }
      if (writes.length) changed.push(writes);
    }
    const ss = gpt.sectorSize;
    const oldBackupLba = gpt.good === gpt.primary ? gpt.good.header.alternateLba : gpt.good.header.myLba;
    const newBackupLba = plan.flat().filter((w) => w.copy === 'backup')[1].offset / ss; // entries, then header
    const movedTo = newBackupLba !== oldBackupLba ? newBackupLba : undefined;
    const base = { path, format: editor.format };
    if (!changed.length) return { ...base, rewrote: [], message: `${path}: both GPT copies are whole and agree; nothing to repair` };
    const rewrote = [...new Set(changed.flat().map((w) => w.copy))];
    const states = rewrote.map((c) => `the ${c} (${stateOf(gpt, c)})`);
    await writeGptPlan(editor, changed);
    if (movedTo !== undefined) await growProtectiveMbr(editor, movedTo, oldBackupLba);
    await editor.commit();
    return {
      ...base,
      rewrote,
      ...(movedTo !== undefined ? { movedBackup: { from: oldBackupLba, to: movedTo } } : {}),
      message: `${path}: rewrote ${states.join(' and ')} GPT ${rewrote.length > 1 ? 'copies' : 'copy'} from the ${gpt.good === gpt.primary ? 'primary' : 'backup'}${movedTo !== undefined ? `; the backup moved from LBA ${oldBackupLba} to the last sector, ${movedTo}` : ''}`,
    };
  } finally {
    await editor.close();
  }
}
