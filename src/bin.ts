#!/usr/bin/env node
import { main, removeTempFilesOnSignals } from './cli.js';

removeTempFilesOnSignals();
main(process.argv).then((code) => {
  process.exitCode = code;
});
