#!/usr/bin/env node
/**
 * `npm run bench`: the quick versions of every benchmark, one after the other (a few minutes on
 * 2 cores). Full-size runs: `npm run bench:generate` and `npm run bench:palettize`.
 */
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BENCH_DIR } from './lib/common.mjs';

const extra = process.argv.slice(2);
const runs = [
  ['generate-unet.mjs', '--scale', '0.05'],
  ['palettize.mjs', '--quick'],
];
for (const [script, ...args] of runs) {
  console.log(`\n=== node bench/${script} ${[...args, ...extra].join(' ')}`);
  const r = spawnSync(process.execPath, [path.join(BENCH_DIR, script), ...args, ...extra], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
