#!/usr/bin/env node
import { main, removeTempFilesOnSignals } from './main.js';

removeTempFilesOnSignals();
// main() turns what a command throws into an exit status. Should it throw itself (its handler
// could not print), the rejection fails this module's evaluation: Node prints it and exits 1.
process.exitCode = await main(process.argv);
