/**
 * `npm start`: build the demo firmware image from the bundled layout, then show what `info`
 * and `verify --expect --contents` say about it. Everything comes from fixtures/demo; output goes to demo/.
 */
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { dirname, join, relative } from 'node:path';
import { buildImage } from '../ops/build.js';
import { inspectImage } from '../ops/inspect.js';
import { verifyImage } from '../ops/verify/verify.js';
import { formatBuild, formatInspection, formatVerify } from './report.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const layout = join(root, 'fixtures', 'demo', 'layout.json');
const outDir = join(root, 'demo');
const image = join(outDir, 'firmware.img');

async function runDemo(): Promise<number> {
  await mkdir(outDir, { recursive: true });
  const show = (title: string, text: string) => process.stdout.write(`\n== ${title}\n${text}\n`);
  const started = performance.now();
  const built = await buildImage(layout, { output: image });
  const ms = (performance.now() - started).toFixed(0);
  show(`diskmint build ${relative(root, layout)} -o ${relative(root, image)}   (${ms} ms)`, formatBuild(built));
  show(`diskmint info ${relative(root, image)}`, formatInspection(await inspectImage(image)));
  const report = await verifyImage(image, { expect: layout, contents: true });
  show(`diskmint verify ${relative(root, image)} --expect ${relative(root, layout)} --contents`, formatVerify(report));
  return report.ok ? 0 : 1;
}

runDemo().then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`demo failed: ${err.message}\n`);
    process.exitCode = 1;
  },
);
