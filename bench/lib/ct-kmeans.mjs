/**
 * Builds and runs bench/kmeans1d_coremltools.cc: coremltools 9.0's per-group k-means work for fp16
 * per_grouped_channel palettization (np.unique + kmeans1d's weighted SMAWK DP, groups on a thread
 * pool like its multiprocessing.Pool), re-implemented in C++ without Python / numpy /
 * multiprocessing overheads — a lower bound on coremltools' time, measured on this machine.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BENCH_DIR } from './common.mjs';

export const CT_SOURCE = path.join(BENCH_DIR, 'kmeans1d_coremltools.cc');
export const CT_LABEL = 'coremltools k-means (C++ re-implementation, no Python overhead)';

/** Compiles the re-implementation into `dir`; returns the binary's path, or null (with the reason) without g++. */
export function buildCtKmeans(dir) {
  try {
    execFileSync('g++', ['--version'], { stdio: 'ignore' });
  } catch {
    return { binary: null, reason: 'g++ not found' };
  }
  const binary = path.join(dir, 'kmeans1d_coremltools');
  // Flags as the build line in the source; no -march: coremltools' wheel is built for the baseline ISA.
  execFileSync('g++', ['-O3', '-std=c++17', '-Wall', '-Wextra', '-pthread', CT_SOURCE, '-o', binary], { stdio: ['ignore', 'inherit', 'inherit'] });
  return { binary, reason: '' };
}

/**
 * Runs the binary on `file` (layers of [rows, cols] fp16); returns its JSON summary
 * ({ wall_s, cpu_s, groups, hash, sse, … }). `dump`: path for the LUTs + indices.
 */
export function runCtKmeans(binary, file, { rows, cols, nbits, groupSize, threads, dump }) {
  const args = ['--json', '--nbits', String(nbits), '--group-size', String(groupSize), '--threads', String(threads)];
  if (dump) args.push('--dump', dump);
  args.push(file, String(rows), String(cols));
  const out = execFileSync(binary, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').pop());
}

/** kmeans1d's published known answers and the fp16 conversions (throws on a failure). */
export function selfTestCtKmeans(binary) {
  try {
    return execFileSync(binary, ['--self-test'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  } catch (e) {
    throw new Error(`kmeans1d_coremltools --self-test failed:\n${e.stdout ?? e.message}`);
  }
}

/** A temp dir removed by the returned cleanup function. */
export function makeTempDir(prefix = 'ct-kmeans-') {
  const dir = fs.mkdtempSync(path.join(fs.realpathSync('/tmp'), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
