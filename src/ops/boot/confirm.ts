/**
 * `boot confirm`: what the running system does after a good boot of a tried stage
 * (bootcode/SELECTOR.md): the tried stage becomes the default, bootfailed is cleared on every
 * freebsd-boot entry. The attributes go through the GPT edit's crash order
 * (src/schemes/gpt/edit.ts): each copy is either old or new, never a mix.
 */
import { confirmBootStage } from '../../../formats/boot/stage-choice.js';
import { openImageEditor, type EditorOptions } from '../../io/image-editor.js';
import { writeGptAttributes } from '../../schemes/gpt/edit.js';
import { readBootStages } from './read.js';

export interface BootConfirmResult {
  /** The stage that became the default, if one was tried. */
  confirmed?: number;
  messages: string[];
}

export async function bootConfirm(path: string, opts: EditorOptions = {}): Promise<BootConfirmResult> {
  const editor = await openImageEditor(path, opts);
  try {
    const view = await readBootStages(editor.disk);
    const result = confirmBootStage(view.entries);
    const changed = new Map<number, bigint>();
    for (const e of result.entries) {
      const before = view.entries.find((x) => x.index === e.index);
      if (before && before.attributes !== e.attributes) changed.set(e.index, e.attributes);
    }
    if (changed.size) await writeGptAttributes(editor, view.gpt, changed);
    await editor.commit();
    const messages = result.messages.length ? result.messages : ['No boot stage was tried or failed: nothing to confirm.'];
    return { confirmed: result.confirmed, messages };
  } finally {
    await editor.close();
  }
}
