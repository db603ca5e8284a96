import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FormatError } from '../../formats/common/errors.js';
import { parseMtree, printMtree, unvis, vis, type MtreeEntry } from '../../formats/fs/mtree.js';
import { FILE_FLAGS } from '../../formats/archive/file-flags.js';
import { readTarEntries } from '../../formats/archive/tar.js';
import { normalizeArchivePath } from '../../formats/archive/archive-path.js';
import { requirePeer, runPeerOk } from '../helpers/peer.js';

const FIXTURES = join(import.meta.dirname, '../../fixtures/ufs-sources');
const byPath = (entries: MtreeEntry[]) => new Map(entries.map((e) => [e.path, e.keywords]));

describe('mtree: specs and METALOG', () => {
  it('applies /set defaults, escapes, devices and flags (fixtures/ufs-sources/owners.mtree)', () => {
    const spec = byPath(parseMtree(readFileSync(join(FIXTURES, 'owners.mtree'), 'utf8')));
    expect(spec.get('')).toMatchObject({ type: 'dir', uname: 'root', gname: 'wheel', uid: 0, gid: 0, mode: 0o755, time: { sec: 1700000000, nsec: 0 } });
    expect(spec.get('bin/sh')).toMatchObject({ type: 'file', mode: 0o555, flags: FILE_FLAGS.SF_IMMUTABLE | FILE_FLAGS.UF_ARCHIVE, contents: 'tree/bin/sh', nlink: 2, time: { sec: 1700000001, nsec: 500000000 } });
    expect(spec.get('bin/link name')).toMatchObject({ type: 'link', link: 'sh' });
    expect(spec.get('dev/disk0')).toMatchObject({ type: 'block', device: { major: 8, minor: 0 }, gname: 'operator', gid: 5, mode: 0o640 });
    expect(spec.get('var/run/fifo')).toMatchObject({ type: 'fifo', flags: FILE_FLAGS.UF_NODUMP });
  });

  it('merges a path named twice in a METALOG, the later keywords winning', () => {
    const metalog = parseMtree(readFileSync(join(FIXTURES, 'stage/METALOG'), 'utf8'));
    const spec = byPath(metalog);
    expect(metalog.filter((e) => e.path === 'etc')).toHaveLength(1);
    expect(spec.get('etc')).toMatchObject({ type: 'dir', uname: 'root', gname: 'operator', mode: 0o750 });
    expect(spec.get('bin/[')).toMatchObject({ type: 'file', size: 21, sha256: '9b9a2fc771614903ee0c6c0cd1c5c7f8654496e564ff3a5c1027fc7386c28d57' });
    expect(spec.get('var/empty')).toMatchObject({ flags: FILE_FLAGS.SF_IMMUTABLE, mode: 0o555 });
  });

  it('reads the hierarchical form of mtree -c, continuation lines and /unset', () => {
    const text = [
      '#\t   user: someone',
      '/set type=file uid=0 gid=0 mode=0644',
      '.               type=dir mode=0755',
      '    a.txt       size=5 \\',
      '                time=12.34',
      '    sub         type=dir mode=0700',
      '        x\\040y  mode=0600',
      '        deeper  type=dir',
      '        ..',
      '        z       type=link link=../a.txt',
      '    ..',
      '/unset mode',
      '    b           type=fifo',
      '..',
    ].join('\n');
    const spec = byPath(parseMtree(text));
    expect([...spec.keys()]).toEqual(['', 'a.txt', 'sub', 'sub/x y', 'sub/deeper', 'sub/z', 'b']);
    expect(spec.get('a.txt')).toEqual({ type: 'file', uid: 0, gid: 0, mode: 0o644, size: 5, time: { sec: 12, nsec: 34 } });
    expect(spec.get('sub/x y')).toMatchObject({ type: 'file', mode: 0o600 });
    expect(spec.get('sub/z')).toMatchObject({ type: 'link', link: '../a.txt' });
    expect(spec.get('b')).toEqual({ type: 'fifo', uid: 0, gid: 0 });
  });

  it('reads what libarchive writes as mtree (bsdtar --format mtree of the fixture tarball)', (ctx) => {
    if (!requirePeer('bsdtar', 'libarchive-tools')) return ctx.skip();
    const text = runPeerOk('bsdtar', ['-cf', '-', '--format', 'mtree', '--options', 'mtree:all', `@${join(FIXTURES, 'owners.tar')}`]);
    const spec = byPath(parseMtree(text));
    const tar = readTarEntries(new Uint8Array(readFileSync(join(FIXTURES, 'owners.tar'))));
    expect([...spec.keys()].sort()).toEqual(tar.map((e) => normalizeArchivePath(e.path, 'tar')).sort());
    for (const e of tar) {
      const k = spec.get(normalizeArchivePath(e.path, 'tar'))!;
      expect({ mode: k.mode, uid: k.uid, gid: k.gid, uname: k.uname, gname: k.gname, flags: k.flags ?? 0, time: k.time }).toEqual({
        mode: e.mode,
        uid: e.uid,
        gid: e.gid,
        uname: e.uname,
        gname: e.gname,
        flags: e.flags,
        time: e.mtime,
      });
    }
  });

  it('refuses what it cannot read with a FormatError naming the line', () => {
    expect(() => parseMtree('./a type=file mode=0999\n')).toThrow(/line 1: mode/);
    expect(() => parseMtree('./a type=door\n')).toThrow(FormatError);
    expect(() => parseMtree('\n./a colour=red\n')).toThrow(/line 2: unknown keyword/);
    expect(() => parseMtree('/frob x\n')).toThrow(/unknown command/);
    expect(() => parseMtree('..\n')).toThrow(/above the root/);
    expect(() => parseMtree('./a/../../b type=file\n')).toThrow(/climbs out/);
    expect(() => parseMtree('./a flags=sticky\n')).toThrow(/unknown file flag/);
    expect(() => parseMtree('./a\\q type=file\n')).toThrow(/escape/);
  });
});

const seg = fc.stringMatching(/^[a-zA-Z0-9 #=\\\t.é-]{1,12}$/).filter((s) => s !== '.' && s !== '..');
const pathArb = fc.array(seg, { minLength: 1, maxLength: 4 }).map((p) => p.join('/'));
const flagsArb = fc.subarray(Object.values(FILE_FLAGS)).map((fs) => fs.reduce((a, b) => a | b, 0) >>> 0);
const keywordsArb = fc.record(
  {
    type: fc.constantFrom('file', 'dir', 'link', 'char', 'block', 'fifo', 'socket'),
    uname: fc.stringMatching(/^[a-z_][a-z0-9_ ]{0,10}$/),
    gname: fc.stringMatching(/^[a-z_][a-z0-9_]{0,10}$/),
    uid: fc.nat(),
    gid: fc.nat(),
    mode: fc.integer({ min: 0, max: 0o7777 }),
    flags: flagsArb,
    size: fc.nat(),
    link: pathArb,
    time: fc.record({ sec: fc.nat(), nsec: fc.integer({ min: 0, max: 999_999_999 }) }),
    contents: pathArb,
    device: fc.record({ major: fc.nat(4095), minor: fc.nat(1 << 20) }),
    sha256: fc.stringMatching(/^[0-9a-f]{64}$/),
    nochange: fc.constant(true),
    optional: fc.constant(true),
  },
  { requiredKeys: [] },
);

describe('mtree: properties', () => {
  it('vis and unvis undo each other', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (s) => {
        expect(unvis(vis(s), 1)).toBe(s);
      }),
    );
  });

  it('parses back what printMtree wrote', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.record({ path: pathArb, keywords: keywordsArb }), { selector: (e) => e.path, maxLength: 8 }), (entries) => {
        expect(parseMtree(printMtree(entries))).toEqual(entries);
      }),
      { numRuns: 300 },
    );
  });

  it('gives a FormatError, never another error, for random text', () => {
    const words = fc.constantFrom('./a', '..', '/set', '/unset', 'type=file', 'mode=0644', 'flags=schg', 'time=1.2', 'device=native,1,2', 'link=x', '\\', '\\040', '#', 'size=9', 'x=', '=');
    fc.assert(
      fc.property(fc.array(fc.oneof(words, fc.string(), fc.constant('\n')), { maxLength: 30 }), (parts) => {
        try {
          parseMtree(parts.join(' '));
        } catch (err) {
          if (!(err instanceof FormatError)) throw err;
        }
      }),
      { numRuns: 500 },
    );
  });
});
