/**
 * `installSelector`: diskmint's fallback selector (bootcode/SELECTOR.md) into an image that
 * already has freebsd-boot partitions and a BIOS-boot partition of at least 512 bytes plus the
 * selector's code. Layouts with "bootcode": "diskmint-fallback" get the same bytes at build
 * time (src/layout/fallback-selector.ts `selectorBytes`). The stages' present contents are
 * recorded in the table as known good (length: what the selector loads, min(size, 558,080)).
 *
 * Order: the selector partition (code and table), BARRIER, the MBR code area, BARRIER. The
 * MBR code is last, so a crash leaves the old first stage (pmbr: the first freebsd-boot
 * partition boots as before) or the new one with its selector complete.
 */
import { crc32 } from '../../model/crc32.js';
import { DiskmintError } from '../../model/errors.js';
import { openImageEditor, type EditorOptions } from '../../io/image-editor.js';
import { MBR_CODE_BYTES, readFallbackBootcode, selectorBytes } from '../../layout/fallback-selector.js';
import { loadedBytes, readBootStages } from './read.js';

export interface InstallSelectorResult {
  selectorPartition: number;
  /** The freebsd-boot partitions recorded in the table. */
  recorded: number[];
}

export async function installSelector(path: string, opts: EditorOptions = {}): Promise<InstallSelectorResult> {
  const code = await readFallbackBootcode();
  const editor = await openImageEditor(path, opts);
  try {
    const view = await readBootStages(editor.disk);
    const p = view.selector.partition;
    if (!view.stages.length) throw new DiskmintError('BAD_ARGUMENT', `${path} has no freebsd-boot partition for the selector to boot; nothing was written`);
    if (!p) throw new DiskmintError('BAD_ARGUMENT', `${path} has no BIOS-boot partition for the selector; nothing was written`);
    const records = [];
    for (const s of view.stages) {
      if (s.check === 'empty') continue;
      const bytes = await loadedBytes(editor.disk, s.offset, s.sizeBytes);
      records.push({ partitionGuid: s.guid, length: bytes.length, crc32: crc32(bytes) });
    }
    const bytes = selectorBytes(code.stage2, records);
    if (bytes.length > p.sizeBytes)
      throw new DiskmintError(
        'BAD_ARGUMENT',
        `BIOS-boot partition ${p.index} is ${p.sizeBytes} bytes; the selector needs ${bytes.length}; nothing was written`,
      );
    await editor.writeBytes(p.offset, bytes);
    await editor.barrier();
    const sector0 = await editor.disk.read(0, 512);
    sector0.set(code.mbr.subarray(0, MBR_CODE_BYTES), 0);
    await editor.writeBytes(0, sector0.subarray(0, MBR_CODE_BYTES));
    await editor.barrier();
    await editor.commit();
    return { selectorPartition: p.index, recorded: records.map((r) => view.stages.find((s) => s.guid === r.partitionGuid)!.index) };
  } finally {
    await editor.close();
  }
}
