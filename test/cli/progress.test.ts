import { describe, expect, it } from 'vitest';
import { createProgress, terminalProgress } from '../../src/cli/progress.js';

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, write: (s: string) => writes.push(s) } as unknown as NodeJS.WriteStream };
}

describe('progress bar', () => {
  it('draws bytes, percentage and rate on a terminal, then clears its line', () => {
    const { writes, stream } = fakeStream(true);
    const p = createProgress('writing qcow2', { stream });
    p.update(512 * 2 ** 20, 2 ** 31);
    p.update(2 ** 31, 2 ** 31);
    p.finish();
    expect(writes[0]).toMatch(/^\rwriting qcow2 \[#{8} {22}\]  25% 512 MiB \/ 2 GiB .*\/s $/);
    expect(writes.at(-2)).toContain('100%');
    expect(writes.at(-1)).toBe('\r\x1b[K');
  });

  it('prints nothing when standard error is not a terminal', () => {
    const { writes, stream } = fakeStream(false);
    const p = createProgress('x', { stream });
    p.update(1, 2);
    p.finish();
    expect(writes).toEqual([]);
  });

  it('terminalProgress: the reporter the CLI gives writeImage draws the bar from start, advance and done', () => {
    const { writes, stream } = fakeStream(true);
    const p = terminalProgress({ stream })!;
    p.start(2 ** 31, 'writing vhdx');
    p.advance(2 ** 30);
    p.advance(2 ** 30);
    p.done();
    expect(writes[0]).toMatch(/^\rwriting vhdx \[#{15} {15}\]  50% 1 GiB \/ 2 GiB /);
    expect(writes.at(-2)).toContain('100%');
    expect(writes.at(-1)).toBe('\r\x1b[K');
    expect(terminalProgress({ stream: fakeStream(false).stream })).toBeUndefined();
  });
});
