import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { concatBytes } from '../../formats/common/bytes.js';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FormatError } from '../../formats/common/errors.js';
import { encodeTarHeaders, paxRecord, parsePaxRecords, parsePaxTime, readTarEntries, tarPadded, TAR_BLOCK, type TarEntry } from '../../formats/archive/tar.js';
import { FILE_FLAGS, flagNames, KNOWN_FILE_FLAGS, parseFlagNames } from '../../formats/archive/file-flags.js';
import { normalizeArchivePath } from '../../formats/archive/archive-path.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer, runPeerOk } from '../helpers/peer.js';

const FIXTURES = join(import.meta.dirname, '../../fixtures/ufs-sources');

describe('tar: the bsdtar pax fixture (fixtures/ufs-sources/owners.tar, made from owners.mtree)', () => {
  const bytes = new Uint8Array(readFileSync(join(FIXTURES, 'owners.tar')));
  const entries = readTarEntries(bytes);
  const at = (p: string) => entries.find((e) => e.path === p)!;

  it('reads every member the spec names, in the archive order', () => {
    expect(entries.map((e) => e.path)).toEqual([
      './',
      './bin/',
      './bin/sh',
      './bin/rsh',
      './bin/link name',
      './dev/',
      './dev/null',
      './dev/disk0',
      './etc/',
      './etc/master.passwd',
      './etc/group',
      './home/',
      './home/builder/',
      './var/',
      './var/run/',
      './var/run/fifo',
    ]);
  });

  it('takes owners, modes, flags and fractional times from the pax headers', () => {
    const sh = at('./bin/sh');
    expect(sh).toMatchObject({ type: 'file', mode: 0o555, uid: 0, gid: 0, uname: 'root', gname: 'wheel', size: 18 });
    expect(sh.flags).toBe(FILE_FLAGS.SF_IMMUTABLE | FILE_FLAGS.UF_ARCHIVE);
    expect(sh.mtime).toEqual({ sec: 1700000001, nsec: 500000000 });
    expect(new TextDecoder().decode(bytes.subarray(sh.dataOffset, sh.dataOffset + sh.size))).toBe(readFileSync(join(FIXTURES, 'tree/bin/sh'), 'utf8'));
    expect(at('./home/builder/')).toMatchObject({ type: 'dir', mode: 0o750, uid: 1001, gid: 1001, uname: 'builder' });
    expect(at('./var/run/fifo')).toMatchObject({ type: 'fifo', mode: 0o600, flags: FILE_FLAGS.UF_NODUMP });
  });

  it('reads hard links, symlinks and device numbers', () => {
    expect(at('./bin/rsh')).toMatchObject({ type: 'hardlink', linkname: './bin/sh', size: 0 });
    expect(at('./bin/link name')).toMatchObject({ type: 'symlink', linkname: 'sh' });
    expect(at('./dev/null')).toMatchObject({ type: 'char', devmajor: 1, devminor: 3, mode: 0o666 });
    expect(at('./dev/disk0')).toMatchObject({ type: 'block', devmajor: 8, devminor: 0, gid: 5, gname: 'operator' });
  });

  it('refuses a header whose checksum does not match', () => {
    const bad = bytes.slice();
    bad[TAR_BLOCK * 2 + 10] ^= 0x40; // a byte of a later header's name
    expect(() => readTarEntries(bad)).toThrow(FormatError);
  });

  it('refuses an archive cut inside a member', () => {
    const sh = at('./bin/sh');
    expect(() => readTarEntries(bytes.subarray(0, sh.dataOffset + 4))).toThrow(/ends inside member data/);
  });
});

describe('tar: archives GNU tar writes', () => {
  it('reads GNU long names (L, K) and base-256 ids', (ctx) => {
    if (!requirePeer('tar', 'tar')) return ctx.skip();
    const dir = tempDir();
    const long = `${'d'.repeat(120)}/${'f'.repeat(130)}`;
    mkdirSync(join(dir, 'src', 'd'.repeat(120)), { recursive: true });
    writeFileSync(join(dir, 'src', long), 'long\n');
    runPeerOk('ln', ['-s', `../${'t'.repeat(150)}`, join(dir, 'src', 'lnk')]);
    const tar = join(dir, 'gnu.tar');
    runPeerOk('tar', ['--format=gnu', '--owner=big:3000000', '--group=huge:4000000', '--mtime=@1600000000', '-C', join(dir, 'src'), '-cf', tar, '.']);
    const entries = readTarEntries(new Uint8Array(readFileSync(tar)));
    const file = entries.find((e) => e.path === `./${long}`);
    expect(file).toMatchObject({ type: 'file', size: 5, uid: 3000000, gid: 4000000, uname: 'big', gname: 'huge', mtime: { sec: 1600000000, nsec: 0 } });
    expect(entries.find((e) => e.path === './lnk')).toMatchObject({ type: 'symlink', linkname: `../${'t'.repeat(150)}` });
  });
});

describe('tar: pax global headers (GNU tar --pax-option)', () => {
  it('applies a global header to every later member, and a member header over it', (ctx) => {
    if (!requirePeer('tar', 'tar')) return ctx.skip();
    const dir = tempDir();
    mkdirSync(join(dir, 's'));
    writeFileSync(join(dir, 's', 'a'), 'a');
    writeFileSync(join(dir, 's', 'b'), 'b');
    const tar = join(dir, 'g.tar');
    runPeerOk('tar', ['--format=pax', '--pax-option=uname=globaluser,SCHILY.fflags=nodump,mtime:=1234.5', '-C', join(dir, 's'), '-cf', tar, 'a', 'b']);
    const entries = readTarEntries(new Uint8Array(readFileSync(tar)));
    expect(entries.map((e) => [e.path, e.uname, e.flags, e.mtime])).toEqual([
      ['a', 'globaluser', FILE_FLAGS.UF_NODUMP, { sec: 1234, nsec: 500000000 }],
      ['b', 'globaluser', FILE_FLAGS.UF_NODUMP, { sec: 1234, nsec: 500000000 }],
    ]);
  });
});

const timeArb = fc.record({ sec: fc.integer({ min: -1e10, max: 1e11 }), nsec: fc.integer({ min: 0, max: 999_999_999 }) });
const nameArb = fc
  .array(
    fc.stringMatching(/^[a-zA-Z0-9 ._é€-]{1,40}$/).filter((s) => s !== '.' && s !== '..'),
    { minLength: 1, maxLength: 8 },
  )
  .map((p) => p.join('/'));
const flagsArb = fc.subarray(Object.values(FILE_FLAGS)).map((fs) => fs.reduce((a, b) => a | b, 0) >>> 0);
const entryArb: fc.Arbitrary<TarEntry> = fc
  .record({
    path: nameArb,
    type: fc.constantFrom('file', 'hardlink', 'symlink', 'char', 'block', 'dir', 'fifo'),
    mode: fc.integer({ min: 0, max: 0o7777 }),
    uid: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    gid: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    uname: fc.stringMatching(/^[a-z_]{0,40}$/),
    gname: fc.stringMatching(/^[a-z_]{0,40}$/),
    size: fc.integer({ min: 0, max: 3000 }),
    mtime: timeArb,
    linkname: fc.oneof(fc.constant(''), nameArb),
    devmajor: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    devminor: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    flags: flagsArb,
  })
  .map((e) => ({
    ...e,
    devmajor: e.type === 'char' || e.type === 'block' ? e.devmajor : 0,
    devminor: e.type === 'char' || e.type === 'block' ? e.devminor : 0,
  }));

function archive(entries: TarEntry[]): Uint8Array {
  const parts = entries.flatMap((e) => [encodeTarHeaders(e), new Uint8Array(tarPadded(e.size)).fill(0x61)]);
  parts.push(new Uint8Array(TAR_BLOCK * 2));
  return concatBytes(parts);
}

describe('tar: properties', () => {
  it('reads back what encodeTarHeaders wrote (ustar where it fits, pax where not)', () => {
    fc.assert(
      fc.property(fc.array(entryArb, { maxLength: 6 }), (entries) => {
        const read = readTarEntries(archive(entries)).map(({ dataOffset: _, ...e }) => e);
        expect(read).toEqual(entries);
      }),
      { numRuns: 300 },
    );
  });

  it('gives a FormatError, never another error, for random or damaged archives', () => {
    const good = archive([
      {
        path: 'a/b',
        type: 'file',
        mode: 0o644,
        uid: 0,
        gid: 0,
        uname: 'root',
        gname: 'wheel',
        size: 10,
        mtime: { sec: 1, nsec: 5 },
        linkname: '',
        devmajor: 0,
        devminor: 0,
        flags: 2,
      },
    ]);
    const check = (bytes: Uint8Array) => {
      try {
        readTarEntries(bytes);
      } catch (err) {
        if (!(err instanceof FormatError)) throw err;
      }
    };
    fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000 }), check), { numRuns: 300 });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (edits) => {
        const bad = good.slice();
        for (const [i, v] of edits) bad[i] = v;
        check(bad);
      }),
      { numRuns: 500 },
    );
  });

  it('flag names and st_flags convert both ways (fflagstostr / strtofflags)', () => {
    fc.assert(
      fc.property(flagsArb, (flags) => {
        expect(parseFlagNames(flagNames(flags))).toBe(flags);
      }),
    );
    expect(parseFlagNames('schg,uarch,nodump')).toBe(0x20000 | 0x800 | 0x1);
    expect(parseFlagNames('noschg,dump,none')).toBe(0);
    expect(flagNames(0)).toBe('none');
    expect(() => parseFlagNames('sticky')).toThrow(FormatError);
    expect(() => flagNames(0x40)).toThrow(FormatError);
    expect(KNOWN_FILE_FLAGS & 0x40).toBe(0);
  });
});

describe('tar: pax records and paths', () => {
  it('parses records, with lengths that count their own digits', () => {
    const data = new TextEncoder().encode(paxRecord('path', 'x'.repeat(95)) + paxRecord('SCHILY.fflags', 'schg'));
    expect([...parsePaxRecords(data)]).toEqual([
      ['path', 'x'.repeat(95)],
      ['SCHILY.fflags', 'schg'],
    ]);
    expect(() => parsePaxRecords(new TextEncoder().encode('99 path=x\n'))).toThrow(FormatError);
    expect(() => parsePaxRecords(new TextEncoder().encode('9 pathxy\n'))).toThrow(FormatError);
  });

  it('reads pax times with fractions and before 1970', () => {
    expect(parsePaxTime('1700000000.25', 'mtime')).toEqual({ sec: 1700000000, nsec: 250000000 });
    expect(parsePaxTime('-1.5', 'mtime')).toEqual({ sec: -2, nsec: 500000000 });
    expect(parsePaxTime('12.1234567891', 'mtime')).toEqual({ sec: 12, nsec: 123456789 });
    expect(() => parsePaxTime('soon', 'mtime')).toThrow(FormatError);
  });

  it('makes member paths relative and refuses ones that climb out', () => {
    expect(normalizeArchivePath('./bin/sh', 'tar')).toBe('bin/sh');
    expect(normalizeArchivePath('/usr//lib/', 'tar')).toBe('usr/lib');
    expect(normalizeArchivePath('./', 'tar')).toBe('');
    expect(() => normalizeArchivePath('a/../../etc/passwd', 'tar')).toThrow(/climbs out/);
  });
});
