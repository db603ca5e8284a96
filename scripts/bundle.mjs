// Bundles the CLI into one CommonJS file (dist/diskmint-cli.cjs) and installs the `diskmint`
// command (dist/diskmint.cjs) that loads it through a V8 code cache (scripts/cli-loader.cjs).
// Node then reads two files instead of compiling ~150 modules: start-up drops from ~0.17 s to
// near `node -e 1`'s.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

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
 * hyperfine; node:fs/promises too, which on Node 26 loads node:os): the bundle's `require` hands out, for these, an object that requires the real
 * module when a property is first read. The sources import them by name
 * (`import { crc32 } from 'node:zlib'`), which esbuild turns into property reads at the point
 * of use; a module-level read such as `promisify(zlib.inflate)` would load the module at once
 * (src/io/zlib-async.ts avoids that), a default import too (esbuild copies its keys).
 */
const LAZY_BUILTINS = ['node:zlib', 'node:crypto', 'node:worker_threads', 'node:os', 'node:stream', 'node:tty', 'node:fs/promises'];
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

/**
 * The CLI is two files: the core (dist/diskmint-cli.cjs: commander, src/cli/main.ts and what it
 * imports statically) and the engine (dist/diskmint-engine.cjs: everything main.ts imports
 * with `await import(...)`, when a command runs). `diskmint --version` or `--help` reads,
 * deserializes and runs only the core, a fifth of the code. Each module is in one file only, so
 * a class or a module's state (DiskmintError, the temp files to remove on a signal) is never
 * duplicated: the engine takes the core's modules from it (`require('./diskmint-cli.cjs#PATH')`,
 * the core's `__modules[PATH]`), the core the engine's (`./diskmint-engine.cjs#PATH`), through
 * scripts/cli-loader.cjs.
 */
const COMMON = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // `import(id)` of the other file becomes a require through the loader (a real import() has no
  // loader to ask in a vm.Script).
  supported: { 'dynamic-import': false },
  // The zstd WebAssembly packages load their .wasm beside themselves: keep them real dependencies. The
  // optional xz encoder is a native addon, required where npm installed it (xz-writer.ts).
  external: ['@bokuweb/zstd-wasm', '@cloudpss/zstd', '@napi-rs/lzma'],
  // compress.ts and temp-files.ts make a require with createRequire(import.meta.url).
  define: { 'import.meta.url': '__bundleUrl' },
  banner: { js: `var __bundleUrl = require('node:url').pathToFileURL(__filename).href;\n${lazyRequireBanner}` },
  // No whitespace: Node reads, and V8 keeps, a quarter less. Names stay (stack traces, err.name).
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
};
const CORE_FILE = './diskmint-cli.cjs';
const ENGINE_FILE = './diskmint-engine.cjs';
const relative = (path) => path.slice(process.cwd().length + 1);

/** Dynamic imports out of the core (except of its own modules) become requires of the engine. */
function dynamicImports(coreFiles, targets) {
  return {
    name: 'dynamic-imports',
    setup(b) {
      b.onResolve({ filter: /.*/ }, async (args) => {
        if (args.kind !== 'dynamic-import' || args.pluginData?.inner) return undefined;
        const r = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: { inner: true } });
        if (r.errors.length > 0 || coreFiles?.has(r.path)) return undefined;
        targets.add(r.path);
        return { path: `${ENGINE_FILE}#${relative(r.path)}`, external: true };
      });
    },
  };
}
/** In the engine, a module the core holds is taken from the core. */
function fromCore(coreFiles, used) {
  return {
    name: 'from-core',
    setup(b) {
      b.onResolve({ filter: /.*/ }, async (args) => {
        if (args.pluginData?.inner || args.kind === 'entry-point') return undefined;
        const r = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: { inner: true } });
        if (r.errors.length > 0 || !coreFiles.has(r.path)) return undefined;
        used.add(r.path);
        return { path: `${CORE_FILE}#${relative(r.path)}`, external: true };
      });
    },
  };
}

// 1. The core's modules: main.ts's static imports, dynamic ones left out.
const probe = await build({
  ...COMMON,
  entryPoints: ['src/cli/main.ts'],
  write: false,
  metafile: true,
  outfile: 'dist/probe.cjs',
  plugins: [lazyChildProcess, zodApart, dynamicImports(undefined, new Set())],
});
const coreFiles = new Set(Object.keys(probe.metafile.inputs).map((p) => join(process.cwd(), p)));
// 2. The engine: every module the core imports dynamically, evaluated on first use (a getter
// requires it; esbuild makes each ES module it bundles that way initialise lazily).
const engineTargets = new Set();
await build({ ...COMMON, entryPoints: ['src/cli/main.ts'], write: false, plugins: [lazyChildProcess, zodApart, dynamicImports(coreFiles, engineTargets)] });
const usedFromCore = new Set();
const getters = [...engineTargets].map((path) => `get ${JSON.stringify(relative(path))}() { return require(${JSON.stringify(path)}); }`);
await build({
  ...COMMON,
  stdin: { contents: `module.exports = { __modules: { ${getters.join(', ')} } };`, resolveDir: '.', loader: 'js', sourcefile: 'engine-entry.cjs' },
  outfile: 'dist/diskmint-engine.cjs',
  plugins: [lazyChildProcess, zodApart, fromCore(coreFiles, usedFromCore)],
});
// 3. The core, which hands the engine the modules it takes from it.
const shared = [...usedFromCore];
await build({
  ...COMMON,
  stdin: {
    contents: [
      "export * from './src/cli/main.ts';",
      ...shared.map((path, i) => `import * as m${i} from ${JSON.stringify(path)};`),
      `export const __modules = { ${shared.map((path, i) => `${JSON.stringify(relative(path))}: m${i}`).join(', ')} };`,
    ].join('\n'),
    resolveDir: '.',
    loader: 'ts',
    sourcefile: 'core-entry.ts',
  },
  outfile: 'dist/diskmint-cli.cjs',
  plugins: [lazyChildProcess, zodApart, dynamicImports(coreFiles, new Set())],
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
for (const file of ['dist/diskmint-cli.cjs', 'dist/diskmint-engine.cjs', 'dist/diskmint-zod.cjs']) asciiOnly(file);
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
// Every Node's: a cache belongs to the files it was made from.
for (const file of readdirSync('dist')) if (file.endsWith('.v8cache')) rmSync(join('dist', file));
const cache = spawnSync(process.execPath, ['scripts/make-cli-cache.mjs'], { stdio: ['ignore', 'ignore', 'inherit'] });
if (cache.status !== 0) console.warn('bundle: no code cache (the CLI starts a little slower)');
