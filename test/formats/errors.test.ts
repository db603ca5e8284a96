import { describe, expect, it } from 'vitest';
import { FormatError, fail } from '../../formats/common/errors.js';
import { decodeBsdLabel } from '../../formats/schemes/bsd.js';
import { decodeSparseHeader } from '../../formats/containers/vmdk.js';
import { decodeUfsSuperblock } from '../../formats/fs/ufs.js';

describe('fail()', () => {
  it('returns the FormatError (it never throws), so callers write throw fail(...)', () => {
    const e = fail('gpt', 'TRUNCATED', 'short');
    expect(e).toBeInstanceOf(FormatError);
    expect(e).toBeInstanceOf(Error);
    expect([e.name, e.format, e.code, e.message]).toEqual(['FormatError', 'gpt', 'TRUNCATED', 'short']);
  });

  it('codecs whose helpers threw and codecs whose helpers returned raise the same kind of error', () => {
    const raised = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e instanceof FormatError ? `${e.format} ${e.code}` : `not a FormatError: ${String(e)}`;
      }
      return 'nothing thrown';
    };
    expect(raised(() => decodeSparseHeader(new Uint8Array(10)))).toBe('vmdk TRUNCATED');
    expect(raised(() => decodeUfsSuperblock(new Uint8Array(10), 0))).toBe('ufs TRUNCATED');
    expect(raised(() => decodeBsdLabel(new Uint8Array(512)))).toBe('bsd BAD_MAGIC');
  });
});
