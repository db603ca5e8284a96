// Bundles the CLI into one CommonJS file (dist/diskmint-cli.cjs) and installs the `diskmint`
// command (dist/diskmint.cjs) that loads it through a V8 code cache (scripts/cli-loader.cjs).
// Node then reads two files instead of compiling ~150 modules: start-up drops from ~0.17 s to
// near `node -e 1`'s.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

/**
 * commander loads node:child_process (and with it node:net) at start-up, only to spawn
 * executable subcommands, which diskmint has none of: load it on first use instead (~15 ms of
 * every start). Fails the build if commander's source changes shape.
 */
const lazyChildProcess = {
  name: 'lazy-child-process',
  setup(b) {
    b.onLoad({ filter: /commander[\\/]lib[\\/]command\.js$/ }, (args) => {
      const eager = "const childProcess = require('node:child_process');";
      const source = readFileSync(args.path, 'utf8');
      if (!source.includes(eager) || /childProcess\.(?!spawn\()/.test(source)) {
        throw new Error(`bundle: ${args.path} no longer matches the lazy child_process rewrite`);
      }
      const lazy = "let childProcessModule; const childProcess = { spawn: (...a) => (childProcessModule ??= require('node:child_process')).spawn(...a) };";
      return { contents: source.replace(eager, lazy), loader: 'js' };
    });
  },
};

/**
 * Built-in modules that most commands never touch (compression, worker threads, hashing) are
 * loaded on first use rather than at every start (~7 ms of start-up for the five, measured with
 * hyperfine): the bundle's `require` hands out, for these, an object that requires the real
 * module when a property is first read. The sources import them by name
 * (`import { crc32 } from 'node:zlib'`), which esbuild turns into property reads at the point
 * of use; a module-level read such as `promisify(zlib.inflate)` would load the module at once
 * (src/io/zlib-async.ts avoids that), a default import too (esbuild copies its keys).
 */
const LAZY_BUILTINS = ['node:zlib', 'node:crypto', 'node:worker_threads', 'node:os', 'node:stream', 'node:tty'];
const lazyRequireBanner = `var require = ((realRequire, lazy) => {
  const proxies = new Map();
  const proxyFor = (id) => {
    let real;
    const load = () => (real ??= realRequire(id));
    return new Proxy({}, {
      get: (_, key) => load()[key],
      has: (_, key) => key in load(),
      ownKeys: () => Reflect.ownKeys(load()),
      getOwnPropertyDescriptor: (_, key) => {
        const d = Reflect.getOwnPropertyDescriptor(load(), key);
        return d && { ...d, configurable: true };
      },
    });
  };
  const lazyRequire = (id) => {
    if (!lazy.includes(id)) return realRequire(id);
    if (!proxies.has(id)) proxies.set(id, proxyFor(id));
    return proxies.get(id);
  };
  return Object.assign(lazyRequire, realRequire);
})(require, ${JSON.stringify(LAZY_BUILTINS)});`;

/**
 * zod (a quarter of the bundle) is needed only by commands that read a layout: it goes into its
 * own file, dist/diskmint-zod.cjs, which the bundle requires when src/layout/schema.ts is first
 * imported (dynamically, by build.ts and the schema command). Every other command then reads,
 * deserializes and keeps in memory ~210 KB less.
 */
const ZOD_FILE = './diskmint-zod.cjs';
const zodApart = {
  name: 'zod-apart',
  setup(b) {
    b.onResolve({ filter: /^zod$/ }, () => ({ path: ZOD_FILE, external: true }));
  },
};

await build({
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/diskmint-cli.cjs',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // The zstd WebAssembly package loads its .wasm beside itself: keep it a real dependency.
  external: ['@bokuweb/zstd-wasm'],
  // compress.ts finds the zstd package through createRequire(import.meta.url).
  define: { 'import.meta.url': '__bundleUrl' },
  banner: { js: `var __bundleUrl = require('node:url').pathToFileURL(__filename).href;\n${lazyRequireBanner}` },
  plugins: [lazyChildProcess, zodApart],
  logLevel: 'warning',
});
// Only the names the compiled src/layout/schema.ts reads (`z.name`): esbuild keeps what the bundle
// kept before (~210 KB, not all of zod's ~770).
const zodNames = [...new Set(readFileSync('dist/src/layout/schema.js', 'utf8').match(/(?<=\bz\.)\w+/g))];
await build({
  stdin: { contents: `export { ${zodNames.join(', ')} } from 'zod';`, resolveDir: '.', loader: 'js' },
  outfile: 'dist/diskmint-zod.cjs',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  logLevel: 'warning',
});
for (const file of ['dist/diskmint-cli.cjs', 'dist/diskmint-zod.cjs']) asciiOnly(file);
/**
 * Node decodes a file holding only ASCII into a one-byte string, twice as fast and half the
 * memory of a two-byte one. esbuild escapes non-ASCII in strings but keeps some comments as
 * written (one of zod's holds an em dash): those are escaped as `\uXXXX`, harmless in a comment.
 */
function asciiOnly(file) {
  const source = readFileSync(file, 'utf8');
  const ascii = source.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (ascii !== source) writeFileSync(file, ascii);
}

copyFileSync('scripts/cli-loader.cjs', 'dist/cli-loader.cjs');
copyFileSync('scripts/bin.cjs', 'dist/diskmint.cjs');
chmodSync('dist/diskmint.cjs', 0o755);

// The code cache: made by running common commands once; without it diskmint still works.
for (const file of ['dist/diskmint-cli.cjs', 'dist/diskmint-zod.cjs']) rmSync(`${file}.v8cache`, { force: true });
const cache = spawnSync(process.execPath, ['scripts/make-cli-cache.mjs'], { stdio: ['ignore', 'ignore', 'inherit'] });
if (cache.status !== 0) console.warn('bundle: no code cache (the CLI starts a little slower)');
