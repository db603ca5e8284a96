// Makes dist/diskmint-cli.cjs.NODE_VERSION-ARCH.v8cache (and one for each file the bundle loads through the cache,
// dist/diskmint-zod.cjs): runs a few common commands through the bundle in one process, so the
// functions they compile are in the cache too, then saves V8's code cache of each file.
//   node scripts/make-cli-cache.mjs      (run by scripts/bundle.mjs; prints nothing on success)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const { codeCacheOf, loadCli, scripts } = createRequire(import.meta.url)('../dist/cli-loader.cjs');

const root = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'diskmint-cache-'));
const img = join(dir, 'demo.img');
const commands = [
  ['build', join(root, 'fixtures/demo/layout.json'), '-o', img, '-q'],
  ['info', img],
  ['verify', img, '--expect', join(root, 'fixtures/demo/layout.json')],
  ['convert', img, join(dir, 'demo.qcow2'), '-q'],
  ['fat', 'create', join(dir, 'esp.img'), '--from', join(root, 'fixtures/demo/esp')],
  ['fat', 'ls', `${img}:3`],
  ['slot', 'status', img],
];

const { cli } = loadCli();
const write = process.stdout.write;
process.stdout.write = () => true; // the commands' reports are not wanted here
try {
  for (const args of commands) {
    const code = await cli.main([process.argv[0], 'diskmint', ...args]);
    if (code !== 0) throw new Error(`diskmint ${args.join(' ')} exited ${code}`);
  }
} finally {
  process.stdout.write = write;
  process.exitCode = 0;
  rmSync(dir, { recursive: true, force: true });
}
for (const [file, script] of scripts) writeFileSync(codeCacheOf(file), script.createCachedData());
