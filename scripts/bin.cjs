#!/usr/bin/env node
// The `diskmint` command (copied to dist/diskmint.cjs by scripts/bundle.mjs).
'use strict';
const { loadCli } = require('./cli-loader.cjs');

const { cli } = loadCli();
cli.removeTempFilesOnSignals();
cli.main(process.argv).then((code) => {
  process.exitCode = code;
});
