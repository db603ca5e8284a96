/**
 * One diskmint build in its own process, so the benchmark can measure its peak RSS alone.
 *   node dist/bench/run-build.js LAYOUT OUTPUT
 * Prints one JSON line: {"buildMs", "dataBytes", "sizeBytes", "maxRssKiB"}.
 */
import { performance } from 'node:perf_hooks';
import { buildImage } from '../src/index.js';

async function main(): Promise<void> {
  const [layout, output] = process.argv.slice(2);
  if (!layout || !output) {
    process.stderr.write('usage: run-build LAYOUT OUTPUT\n');
    process.exit(2);
  }
  const start = performance.now();
  const options = { output, progress: false as const }; // no progress bar (a variable: older BuildOptions lack it)
  const result = await buildImage(layout, options);
  const buildMs = performance.now() - start;
  // maxRSS is in KiB (getrusage ru_maxrss), for the whole life of this process.
  const maxRssKiB = process.resourceUsage().maxRSS;
  process.stdout.write(`${JSON.stringify({ buildMs, dataBytes: result.dataBytes, sizeBytes: result.sizeBytes, maxRssKiB })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`run-build: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
