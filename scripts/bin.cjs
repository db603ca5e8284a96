#!/usr/bin/env node
// The `diskmint` command (copied to dist/diskmint.cjs by scripts/bundle.mjs).
'use strict';
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  // Answered before the CLI loads (a fifth of `node -e 1` saved): the version is package.json's,
  // as the program's own -V (src/cli/main.ts, held to it by test/cli/startup.test.ts).
  process.stdout.write(`${require('../package.json').version}\n`);
} else {
  const { loadCli } = require('./cli-loader.cjs');
  const { cli } = loadCli();
  cli.removeTempFilesOnSignals();
  cli.main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
