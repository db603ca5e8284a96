#!/usr/bin/env node
import { main, removeTempFilesOnSignals } from './main.js';

removeTempFilesOnSignals();
main(process.argv).then((code) => {
  process.exitCode = code;
});
