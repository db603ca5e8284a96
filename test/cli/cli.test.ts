/** The CLI as a user runs it: exit statuses, JSON output, pipes, determinism. */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/golden.js';
import { diskmint } from '../helpers/cli.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function layoutDir(): { dir: string; layout: string } {
  const dir = tempDir();
  writeFileSync(join(dir, 'os.bin'), Buffer.alloc(100_000, 0xab));
  const layout = join(dir, 'layout.json');
  writeFileSync(layout, JSON.stringify({
    scheme: 'gpt', size: '8M',
    partitions: [{ type: 'freebsd-boot', size: '1M' }, { type: 'freebsd-ufs', label: 'os1', contents: { file: 'os.bin' }, attributes: ['bootme'] }],
  }));
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
    writeFileSync(layout, JSON.stringify({ scheme: 'gpt', partitions: [{ type: 'efi', size: '1M' }, { type: 'efi', size: '1M' }, { type: 'efi', size: '1M' }, { type: 'efi', size: '12X' }] }));
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
    const root = new URL('../..', import.meta.url).pathname;
    writeFileSync(join(dir, 'os.ufs'), Buffer.alloc(1 << 20, 1));
    const img = join(dir, 'fw.qcow2');
    const b = diskmint(['build', '--preset', 'nanobsd', '--os', join(dir, 'os.ufs'), '--boot', join(root, 'bootcode/diskmint-mbr.bin'),
      '--boot-stage', join(root, 'fixtures/demo/boot-stage.bin'), '--size', '160M', '--os-size', '8M', '-o', img]);
    expect(b.stderr).toBe('');
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
