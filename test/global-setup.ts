/**
 * The suite runs with its own TMPDIR and must leave it empty: every test cleans up what it makes,
 * unsaved models' temporary weight files are removed on dispose/save/exit, and directories of
 * worker processes that were killed are swept as the package sweeps them (dead pid in the name).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sweepStaleTempDirs } from '../src/util/temp-dirs.js';

let runTmp: string | undefined;
let previousTmp: string | undefined;

export function setup(): void {
  previousTmp = process.env['TMPDIR'];
  runTmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cmo-test-run-'));
  process.env['TMPDIR'] = runTmp;
}

export function teardown(): void {
  if (!runTmp) return;
  if (previousTmp === undefined) delete process.env['TMPDIR'];
  else process.env['TMPDIR'] = previousTmp;
  // Worker processes may still be exiting: give their exit handlers (or their death, for the sweep)
  // a few seconds before judging what is left.
  let left = fs.readdirSync(runTmp);
  for (let waited = 0; left.length > 0 && waited < 10_000; waited += 200) {
    sweepStaleTempDirs(runTmp);
    left = fs.readdirSync(runTmp);
    if (left.length > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
  }
  fs.rmSync(runTmp, { recursive: true, force: true });
  if (left.length > 0) {
    // vitest reports a teardown error but keeps the exit status: set it so CI fails.
    process.exitCode = 1;
    throw new Error(`the test suite left ${left.length} entries in its temp folder: ${left.slice(0, 20).join(', ')}`);
  }
}
