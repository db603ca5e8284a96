// Loads the bundled CLI (dist/diskmint-cli.cjs) through V8's code cache, made at build time by
// scripts/make-cli-cache.mjs. Compiling the ~0.8 MB bundle is a third of diskmint's start-up;
// with the cache V8 deserializes it instead (Node 22 has module.enableCompileCache; Node 20 does
// not, so this does the same with node:vm). A cache from another Node or V8 version is rejected
// by V8 itself, and the bundle then compiles as usual: slower, never wrong.
// CommonJS on purpose: an ES module entry point costs Node ~10 ms more to start.
'use strict';
const { readFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { join } = require('node:path');
const { Script } = require('node:vm');

const BUNDLE = join(__dirname, 'diskmint-cli.cjs');
const CODE_CACHE = `${BUNDLE}.v8cache`;

/** The bundle's exports (`main` among them) and the vm.Script that compiled it. */
function loadCli() {
  let cachedData;
  try {
    cachedData = readFileSync(CODE_CACHE);
  } catch {
    cachedData = undefined; // no cache: compile from source
  }
  const source = readFileSync(BUNDLE, 'utf8');
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: BUNDLE,
    cachedData,
  });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(BUNDLE), module, BUNDLE, __dirname);
  return { cli: module.exports, script };
}

module.exports = { BUNDLE, CODE_CACHE, loadCli };
