/**
 * How long work reports how far it got, without knowing who shows it: the CLI passes a progress
 * bar (src/cli/progress.ts); a library caller passes its own reporter, or none (no progress).
 */
export interface ProgressReporter {
  /** The work starts: `total` bytes to go; `label` says what it is ("writing qcow2"). */
  start(total: number, label: string): void;
  /** `bytes` more are done. */
  advance(bytes: number): void;
  /** The work ended (done, or failed): a bar clears its line. */
  done(): void;
}
