import { memoryDiskReader, type DiskReader } from '../../src/model/disk-reader.js';

/** Thrown by a budgeted reader: a reader that reads this much of a small image is looping. */
export class WorkBudgetExceeded extends Error {
  constructor(what: string) {
    super(`work budget exceeded: ${what}`);
    this.name = 'WorkBudgetExceeded';
  }
}

/**
 * Work, not time: a check on hostile input that "finishes quickly" counts the reads and bytes a
 * reader asks of its source, and fails (with WorkBudgetExceeded, which is neither FormatError nor
 * DiskmintError) as soon as either passes its budget, on a busy machine as on an idle one.
 */
export function budgetedReader(bytes: Uint8Array, budget: { reads: number; bytes: number }): DiskReader & { readonly used: { reads: number; bytes: number } } {
  const inner = memoryDiskReader(bytes);
  const used = { reads: 0, bytes: 0 };
  return {
    size: inner.size,
    used,
    async read(offset, length, into) {
      used.reads++;
      used.bytes += Math.max(0, Math.min(length, bytes.length - Math.max(0, offset)));
      if (used.reads > budget.reads) throw new WorkBudgetExceeded(`more than ${budget.reads} reads of a ${bytes.length}-byte image`);
      if (used.bytes > budget.bytes) throw new WorkBudgetExceeded(`more than ${budget.bytes} bytes read of a ${bytes.length}-byte image`);
      return inner.read(offset, length, into);
    },
    close: () => inner.close(),
  };
}
