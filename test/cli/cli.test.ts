/** The CLI as a user runs it: exit statuses, JSON output, pipes, determinism. */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/golden.js';
import { diskmint } from '../helpers/cli.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** `build --preset nanobsd` through the CLI into `dir/name` (a 1 MiB OS image, 160 MiB disk). */
function buildNanoPreset(dir: string, name: string, extra: string[] = []): { img: string; stderr: string } {
  const root = new URL('../..', import.meta.url).pathname;
  writeFileSync(join(dir, 'os.ufs'), Buffer.alloc(1 << 20, 1));
  const img = join(dir, name);
  const b = diskmint([
    'build',
    '--preset',
    'nanobsd',
    '--os',
    join(dir, 'os.ufs'),
    '--boot',
    join(root, 'bootcode/diskmint-mbr.bin'),
    '--boot-stage',
    join(root, 'fixtures/demo/boot-stage.bin'),
    '--size',
    '160M',
    '--os-size',
    '8M',
    '-o',
    img,
    ...extra,
  ]);
  return { img, stderr: b.stderr.toString() };
}

function layoutDir(): { dir: string; layout: string } {
  const dir = tempDir();
  writeFileSync(join(dir, 'os.bin'), Buffer.alloc(100_000, 0xab));
  const layout = join(dir, 'layout.json');
  writeFileSync(
    layout,
    JSON.stringify({
      scheme: 'gpt',
      size: '8M',
      partitions: [
        { type: 'freebsd-boot', size: '1M' },
        { type: 'freebsd-ufs', label: 'os1', contents: { file: 'os.bin' }, attributes: ['bootme'] },
      ],
    }),
  );
  return { dir, layout };
}

describe('diskmint CLI', () => {
  it('build, info and verify: exit 0 and JSON that describes the image', () => {
    const { dir, layout } = layoutDir();
    const img = join(dir, 'out.img');
    const b = diskmint(['build', layout, '-o', img, '--json']);
    expect(b.stderr).toBe('');
    expect(b.status).toBe(0);
    expect(JSON.parse(b.stdout.toString()).partitions[1]).toMatchObject({ index: 2, label: 'os1', sectors: 196 });
    const info = JSON.parse(diskmint(['info', img, '--json']).stdout.toString());
    expect(info.table.scheme).toBe('gpt');
    expect(info.table.partitions[1]).toMatchObject({ typeName: 'freebsd-ufs', label: 'os1', attributes: ['bootme'], attributesRaw: '0x0800000000000000' });
    const v = diskmint(['verify', img, '--expect', layout]);
    expect(v.stdout.toString()).toMatch(/OK \(0 errors, 0 warnings\)/);
    expect(v.status).toBe(0);
  });

  it('verify exits 1 on problems and 2 on something that is not a disk image', () => {
    const { dir, layout } = layoutDir();
    const img = join(dir, 'out.img');
    diskmint(['build', layout, '-o', img]);
    const bytes = readFileSync(img);
    bytes[512 + 30] ^= 0xff; // damage the primary header
    writeFileSync(img, bytes);
    const v = diskmint(['verify', img, '--json']);
    expect(v.status).toBe(1);
    expect(JSON.parse(v.stdout.toString()).findings.map((f: { code: string }) => f.code)).toContain('gpt.primary-header-crc');
    expect(diskmint(['verify', join(dir, 'missing.img')]).status).toBe(2);
    const contentsAlone = diskmint(['verify', img, '--contents']);
    expect(contentsAlone.status).toBe(1); // a bad argument: the command failed
    expect(contentsAlone.stderr.toString()).toMatch(/--contents compares with a layout: give --expect LAYOUT/);
    writeFileSync(join(dir, 'empty.img'), '');
    const empty = diskmint(['verify', join(dir, 'empty.img')]);
    expect(empty.status).toBe(2);
    expect(empty.stderr).toMatch(/empty/);
  });

  it('compare: exit 0 for the same disk in two formats, 1 naming the first differing byte, 2 for a non-image', () => {
    const { dir, layout } = layoutDir();
    const img = join(dir, 'out.img');
    const qcow = join(dir, 'out.qcow2');
    diskmint(['build', layout, '-o', img, '-q']);
    diskmint(['convert', img, qcow, '-q']);
    const same = diskmint(['compare', img, qcow]);
    expect(same.status).toBe(0);
    expect(same.stdout.toString()).toMatch(/the same disk/);
    const bytes = readFileSync(img);
    bytes[1234567] ^= 0x40;
    writeFileSync(img, bytes);
    const differ = diskmint(['compare', img, qcow, '--json']);
    expect(differ.status).toBe(1);
    expect(JSON.parse(differ.stdout.toString())).toMatchObject({ identical: false, firstDifference: 1234567, reason: 'content' });
    writeFileSync(join(dir, 'empty.img'), '');
    expect(diskmint(['compare', img, join(dir, 'empty.img')]).status).toBe(2);
  });

  it('an invalid layout: exit 2, every problem with its JSON path, nothing written', () => {
    const dir = tempDir();
    const layout = join(dir, 'bad.json');
    writeFileSync(
      layout,
      JSON.stringify({
        scheme: 'gpt',
        partitions: [
          { type: 'efi', size: '1M' },
          { type: 'efi', size: '1M' },
          { type: 'efi', size: '1M' },
          { type: 'efi', size: '12X' },
        ],
      }),
    );
    const r = diskmint(['build', layout, '-o', join(dir, 'x.img')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('partitions[3].size: "12X" is not a size (use e.g. 512K, 1G, 2T, 2048s, 100%, rest)');
    expect(readdirSync(dir)).toEqual(['bad.json']);
  });

  it('-o - streams the same bytes as a file build, with the report on stderr', () => {
    const { dir, layout } = layoutDir();
    const img = join(dir, 'out.img');
    diskmint(['build', layout, '-o', img]);
    const piped = diskmint(['build', layout, '-o', '-']);
    expect(piped.status).toBe(0);
    expect(piped.stdout.length).toBe(8 << 20);
    expect(sha(piped.stdout)).toBe(sha(readFileSync(img)));
    expect(piped.stderr).toContain('GPT, 8 MiB');
  });

  it('is deterministic: same layout and seed, same bytes; another seed, other GUIDs', () => {
    const { dir, layout } = layoutDir();
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => join(dir, `${n}.img`));
    diskmint(['build', layout, '-o', a]);
    diskmint(['build', layout, '-o', b]);
    diskmint(['build', layout, '-o', c, '--seed', 'other']);
    diskmint(['build', layout, '-o', d, '--seed', 'random']);
    expect(sha(readFileSync(a))).toBe(sha(readFileSync(b)));
    expect(sha(readFileSync(a))).not.toBe(sha(readFileSync(c)));
    expect(sha(readFileSync(a))).not.toBe(sha(readFileSync(d)));
  });

  it('schema prints a JSON Schema; unknown commands fail', () => {
    const s = diskmint(['schema']);
    expect(s.status).toBe(0);
    expect(JSON.parse(s.stdout.toString()).properties.scheme.enum).toEqual(['gpt', 'mbr', 'bsd', 'ebr']);
    expect(diskmint(['frobnicate']).status).not.toBe(0);
  });

  it('build --preset: missing boot code is a clear error naming the flag; preset show prints an editable layout', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'os.ufs'), Buffer.alloc(1 << 20, 1));
    const r = diskmint(['build', '--preset', 'nanobsd', '--os', join(dir, 'os.ufs'), '-o', join(dir, 'fw.img')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('pass --boot FILE');
    expect(readdirSync(dir)).toEqual(['os.ufs']);
    const shown = JSON.parse(diskmint(['preset', 'show', 'nanobsd']).stdout.toString());
    expect(shown.partitions.map((p: { label?: string }) => p.label)).toEqual(['gptboot0', 'gptboot1', 'efiboot0', 'os1', 'os2', 'cfg', 'swap', 'data']);
  });

  it('slot status --json on a preset image built through the CLI', () => {
    const dir = tempDir();
    const { img, stderr } = buildNanoPreset(dir, 'fw.qcow2');
    expect(stderr).toBe('');
    const s = JSON.parse(diskmint(['slot', 'status', img, '--json']).stdout.toString());
    expect(s.format).toBe('qcow2');
    expect(s.slots[0]).toMatchObject({ label: 'os1', attributes: ['bootme'], isDefault: true });
    expect(s.next.index).toBe(4);
  });

  it('key generate, sign, and verify --signature: exit 0 when it holds, 1 naming the partition that changed', () => {
    const { dir, layout } = layoutDir();
    const img = join(dir, 'out.img');
    diskmint(['build', layout, '-o', img]);
    expect(diskmint(['key', 'generate', '--out', join(dir, 'release')]).status).toBe(0);
    expect(diskmint(['sign', img, '--key', join(dir, 'release.pem'), '-o', join(dir, 'out.sig')]).status).toBe(0);
    const ok = diskmint(['verify', img, '--signature', join(dir, 'out.sig'), '--pubkey', join(dir, 'release.pub')]);
    expect(ok.stdout.toString()).toContain('signature.ok');
    expect(ok.status).toBe(0);
    const bytes = readFileSync(img);
    bytes[4096 * 512 + 10] ^= 0xff; // inside partition 2 (os1 starts at sector 4096)
    writeFileSync(img, bytes);
    const bad = diskmint(['verify', img, '--signature', join(dir, 'out.sig'), '--pubkey', join(dir, 'release.pub'), '--json']);
    expect(bad.status).toBe(1);
    const codes = JSON.parse(bad.stdout.toString()).findings.filter((f: { severity: string }) => f.severity === 'error');
    expect(codes.map((f: { where?: string }) => f.where)).toContain('gpt.partition[2]');
    expect(diskmint(['verify', img, '--signature', join(dir, 'out.sig')]).status).toBe(1);
  });
});

describe('options: declared once, numbers checked, one spelling for the output', () => {
  it('a number that is not one, or out of range, is an error naming the option (exit 1), and nothing is written', () => {
    const { dir, layout } = layoutDir();
    const img = join(dir, 'out.img');
    diskmint(['build', layout, '-o', img, '-q']);
    const cases: Array<[string[], RegExp]> = [
      [['convert', img, join(dir, 'y.qcow2'), '-c', '--threads', 'abc'], /option '--threads <n>' argument 'abc' is invalid/],
      [['convert', img, join(dir, 'y.qcow2'), '-c', '--threads', '0'], /option '--threads <n>' argument '0' is invalid/],
      [['convert', img, join(dir, 'y.qcow2'), '-c', '--level', 'abc'], /option '--level <n>' argument 'abc' is invalid/],
      [['convert', img, join(dir, 'y.qcow2'), '-c', '--level', '15'], /--level 15: deflate levels go from 0 to 9/],
      [['convert', img, join(dir, 'y.qcow2'), '-c', '--compression', 'zstd', '--level', '0'], /--level 0: zstd levels go from 1 to 22/],
      [['convert', img, join(dir, 'y.qcow2'), '-o', 'compression_type=zstd', '-c', '--level', '23'], /option '--level <n>' argument '23' is invalid/],
      [['build', layout, '-o', join(dir, 'y.qcow2'), '-c', '--threads', '1.5'], /option '--threads <n>' argument '1.5' is invalid/],
      [['bundle', 'create', '--from', img, '--unsigned', '-o', join(dir, 'y.dmb'), '--threads', 'x'], /option '--threads <n>' argument 'x' is invalid/],
      [
        ['bundle', 'create', '--from', img, '--base', img, '--unsigned', '-o', join(dir, 'y.dmb'), '--block-size', '64k'],
        /option '--block-size <bytes>' argument '64k' is invalid/,
      ],
      [['slot', 'simulate', img, '--outcomes', 'ok', '--boot-stage-fails', '-1'], /option '--boot-stage-fails <n>' argument '-1' is invalid/],
    ];
    for (const [args, message] of cases) {
      const r = diskmint(args);
      expect({ args, status: r.status, stderr: r.stderr }).toMatchObject({ status: 1, stderr: expect.stringMatching(message) });
    }
    expect(readdirSync(dir).sort()).toEqual(['layout.json', 'os.bin', 'out.img']);
  });

  it('key generate takes -o/--output like every command whose output is not positional; --out still works', () => {
    const dir = tempDir();
    expect(diskmint(['key', 'generate', '-o', join(dir, 'a')]).status).toBe(0);
    expect(diskmint(['key', 'generate', '--output', join(dir, 'b')]).status).toBe(0);
    expect(diskmint(['key', 'generate', '--out', join(dir, 'c')]).status).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['a.pem', 'a.pub', 'b.pem', 'b.pub', 'c.pem', 'c.pub']);
    const both = diskmint(['key', 'generate', '-o', join(dir, 'd'), '--out', join(dir, 'e')]);
    expect(both.status).toBe(1);
    expect(both.stderr).toMatch(/give one of them/);
    const help = diskmint(['key', 'generate', '--help']).stdout.toString();
    expect(help).toContain('-o, --output <file>');
    expect(help).not.toContain('--out <key>'); // the old spelling works, unadvertised
  });

  it('convert takes format options as -o (qemu-img) or --opt (as build does): the same bytes', () => {
    const { dir, layout } = layoutDir();
    const img = join(dir, 'out.img');
    diskmint(['build', layout, '-o', img, '-q']);
    mkdirSync(join(dir, 'a'));
    mkdirSync(join(dir, 'b'));
    expect(diskmint(['convert', img, join(dir, 'a', 'x.vmdk'), '-o', 'subformat=streamOptimized', '-q']).status).toBe(0);
    expect(diskmint(['convert', img, join(dir, 'b', 'x.vmdk'), '--opt', 'subformat=streamOptimized', '-q']).status).toBe(0);
    expect(sha(readFileSync(join(dir, 'a', 'x.vmdk')))).toBe(sha(readFileSync(join(dir, 'b', 'x.vmdk'))));
    expect(
      readFileSync(join(dir, 'a', 'x.vmdk'))
        .subarray(0, 4)
        .toString('latin1'),
    ).toBe('KDMV');
  });
});

describe('-c where the format cannot compress', () => {
  it('convert and build refuse -c for VHD and VHDX (as qemu-img does for vpc and vhdx): one sentence, exit 1, nothing written', () => {
    const { dir, layout } = layoutDir();
    const img = join(dir, 'in.img');
    expect(diskmint(['build', layout, '-o', img, '-q']).status).toBe(0);
    const made = () => readdirSync(dir).filter((f) => !['in.img', 'os.bin', 'layout.json'].includes(f));
    const runs: string[][] = [
      ['convert', img, join(dir, 'out.vhd'), '-c'],
      ['convert', img, join(dir, 'out.vhdx'), '-c', '--compression', 'zstd'],
      ['convert', img, join(dir, 'out.img'), '-O', 'vpc', '-c'],
      ['convert', img, '-', '-O', 'vhdx', '-c'],
      ['build', layout, '-o', join(dir, 'built.vhdx'), '-c'],
    ];
    for (const args of runs) {
      const r = diskmint(args);
      const format = /vhdx/.test(args.join(' ')) ? 'vhdx' : 'vhd';
      expect(r.stderr, args.join(' ')).toBe(`diskmint: ${format} output cannot be compressed; choose -O qcow2 or vmdk\n`);
      expect(r.status).toBe(1);
      expect(r.stdout.length).toBe(0);
      expect(made()).toEqual([]);
    }
    // Without -c they are written; qcow2 takes -c.
    expect(diskmint(['convert', img, join(dir, 'out.vhd'), '-q']).status).toBe(0);
    expect(diskmint(['convert', img, join(dir, 'out.qcow2'), '-c', '-q']).status).toBe(0);
    expect(made().sort()).toEqual(['out.qcow2', 'out.vhd']);
  });
});

describe('--json', () => {
  it('prints 64-bit values as decimal strings (GPT attributes in slot simulate)', () => {
    const dir = tempDir();
    const { img } = buildNanoPreset(dir, 'fw.img', ['-q']);
    const r = diskmint(['slot', 'simulate', img, '--outcomes', 'ok', '--json']);
    expect(r.status).toBe(0);
    const os1 = JSON.parse(r.stdout.toString()).steps[0].before.find((e: { label: string }) => e.label === 'os1');
    expect(os1.attributes).toBe((1n << 59n).toString()); // bootme, as BigInt() reads it back
  });
});

describe('bugs are never relabelled', () => {
  it('a TypeError in a command exits 70 with one line naming it a bug; the stack only with DISKMINT_DEBUG=1', () => {
    const r = diskmint(['internal-error-test'], { env: { DISKMINT_DEBUG: '' } });
    expect(r.status).toBe(70);
    expect(r.stderr).toMatch(
      /^diskmint: internal error: TypeError: Cannot read properties of undefined \(reading 'bug'\) \(a bug in diskmint: please report it with the command that caused it; DISKMINT_DEBUG=1 shows where\)\n$/,
    );
    const debug = diskmint(['internal-error-test'], { env: { DISKMINT_DEBUG: '1' } });
    expect(debug.status).toBe(70);
    const lines = debug.stderr.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^diskmint: internal error: TypeError: .*\(a bug in diskmint: please report it with the command that caused it\)$/);
    expect(lines[1]).toBe("TypeError: Cannot read properties of undefined (reading 'bug')");
    expect(lines.slice(2).every((l) => /^\s+at /.test(l))).toBe(true);
    expect(lines.length).toBeGreaterThan(2);
  });

  it('an operational error stays one, with its own exit status', () => {
    const dir = tempDir();
    const missing = diskmint(['info', join(dir, 'missing.img')], { env: { DISKMINT_DEBUG: '1' } });
    expect(missing.status).toBe(2);
    expect(missing.stderr).not.toMatch(/internal error|\n\s+at /);
  });
});
