/**
 * The README's `openImage` example, compiled by tsc against the built library (dist/, as
 * `import 'diskmint'` resolves for a user) and run: the README cannot rot.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/golden.js';
import { requireFreshBundle, ROOT } from '../helpers/cli.js';
import { openImage } from '../../src/index.js';

const MARKER = '<!-- test/ops/readme-library.test.ts compiles and runs this example -->';

/** The ```ts block right after the marker. */
export function readmeExample(readme: string): string {
  const at = readme.indexOf(MARKER);
  if (at < 0) throw new Error(`README.md has no "${MARKER}"`);
  const block = /^```ts\n([\s\S]*?)^```$/m.exec(readme.slice(at + MARKER.length));
  if (!block || readme.slice(at + MARKER.length, at + MARKER.length + block.index).trim() !== '') throw new Error('no ```ts block right after the marker');
  return block[1];
}

describe('README: the library example', () => {
  it('compiles against dist/ and runs: os2 written, booted once, activated; a VMDK beside it', async () => {
    requireFreshBundle(); // npm test builds dist/ (the library too) first
    const dir = tempDir();
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(ROOT, join(dir, 'node_modules', 'diskmint')); // `import 'diskmint'`, as an installed package
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          outDir: 'out',
          skipLibCheck: true,
          types: ['node'],
          typeRoots: [join(ROOT, 'node_modules', '@types')],
        },
        files: ['example.ts'],
      }),
    );
    writeFileSync(join(dir, 'example.ts'), readmeExample(readFileSync(join(ROOT, 'README.md'), 'utf8')));
    writeFileSync(join(dir, 'os-v2.ufs'), Buffer.alloc(1 << 20, 0x5a));
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { cwd: dir, stdio: 'pipe' });
    const out = execFileSync(process.execPath, [join(dir, 'out', 'example.js')], { cwd: dir, encoding: 'utf8' });
    expect(out).toBe('os1 [] os2 [bootme]\nconverted\n');
    expect(existsSync(join(dir, 'fw.vmdk'))).toBe(true);
    const image = await openImage(join(dir, 'fw.qcow2'));
    const slots = (await image.slots()).slots;
    await image.close();
    expect(slots.map((s) => [s.label, s.attributes])).toEqual([
      ['os1', []],
      ['os2', ['bootme']],
    ]);
    const os2 = await openImage(join(dir, 'os-v2.ufs'));
    expect((await os2.compare(`${join(dir, 'fw.vmdk')}:2`)).identical).toBe(true); // the VMDK holds what was written
    await os2.close();
  });

  it('finds the block after the marker, and says so when there is none', () => {
    expect(readmeExample(`x\n${MARKER}\n\`\`\`ts\nconst a = 1;\n\`\`\`\n`)).toBe('const a = 1;\n');
    expect(() => readmeExample('no marker')).toThrow(/has no/);
    expect(() => readmeExample(`${MARKER}\ntext first\n\`\`\`ts\nx\n\`\`\`\n`)).toThrow(/right after/);
  });
});
