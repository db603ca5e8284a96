// Loads the bundled CLI (dist/diskmint-cli.cjs, and dist/diskmint-zod.cjs when a command reads a
// layout) through V8's code cache, made at build time by scripts/make-cli-cache.mjs. Compiling
// the bundle is a third of diskmint's start-up; with the cache V8 deserializes it instead (Node 22
// has module.enableCompileCache, which would write its cache at run time; this does the same with
// node:vm, the cache made once at build time, on every Node). Under another Node release there is
// no cache for it, and the file compiles as usual: slower, never wrong.
// CommonJS on purpose: an ES module entry point costs Node ~10 ms more to start.
'use strict';
const { readFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { join } = require('node:path');
const { Script } = require('node:vm');

const BUNDLE = join(__dirname, 'diskmint-cli.cjs');
/**
 * Files of the bundle that load through their code cache: `require(id)` from the bundle. The core
 * (BUNDLE) and the engine ask each other for a module as `FILE#PATH` (scripts/bundle.mjs): the
 * file's `__modules[PATH]`.
 */
const CACHED_FILES = {
  './diskmint-cli.cjs': BUNDLE,
  './diskmint-engine.cjs': join(__dirname, 'diskmint-engine.cjs'),
  './diskmint-zod.cjs': join(__dirname, 'diskmint-zod.cjs'),
};
/**
 * A cache is used only by the Node release that made it: V8 checks its own version, but Node
 * patches V8 between releases without changing that number, and Node 20.15 accepted a cache of
 * Node 20.20's and then ran the bundle wrongly (a module-level variable read as undefined).
 */
const codeCacheOf = (file) => `${file}.${process.version}-${process.arch}.v8cache`;
/** Every file loaded so far, with the vm.Script that compiled it (make-cli-cache saves these). */
const scripts = new Map();
/** Exports of the CACHED_FILES required so far. */
const loaded = new Map();

/** Run a CommonJS file through its code cache; returns its exports. */
function loadCached(file) {
  let cachedData;
  try {
    cachedData = readFileSync(codeCacheOf(file));
  } catch {
    cachedData = undefined; // no cache: compile from source
  }
  const source = readFileSync(file, 'utf8');
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    cachedData,
  });
  scripts.set(file, script);
  const module = { exports: {} };
  const plainRequire = createRequire(file);
  const requireFromBundle = Object.assign((id) => {
    const [name, path] = id.split('#');
    const cached = CACHED_FILES[name];
    if (cached === undefined) return plainRequire(id);
    if (!loaded.has(cached)) loaded.set(cached, loadCached(cached));
    return path === undefined ? loaded.get(cached) : loaded.get(cached).__modules[path];
  }, plainRequire);
  script.runInThisContext()(module.exports, requireFromBundle, module, file, __dirname);
  return module.exports;
}

/** The bundle's exports (`main` among them). */
function loadCli() {
  if (!loaded.has(BUNDLE)) loaded.set(BUNDLE, loadCached(BUNDLE));
  return { cli: loaded.get(BUNDLE) };
}

module.exports = { BUNDLE, codeCacheOf, loadCli, scripts };
