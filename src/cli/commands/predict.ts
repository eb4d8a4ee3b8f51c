import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { loadModel } from '../../model.js';
import { createExecutor, type ComputePrecision, type TensorInput } from '../../runtime/executor.js';
import { readNpy, writeNpy, type NpyArray } from '../../runtime/npy.js';
import { formatProfile } from '../../runtime/profile-table.js';
import { ConfigError, UnsupportedError } from '../../errors.js';
import { cliSignal } from '../main.js';
import { formatSeconds, formatTable } from '../table.js';

function npyToInput(a: NpyArray): TensorInput {
  // predict converts what the model input needs (float64 -> fp32, int64 -> int32, ...).
  return { data: a.data, shape: a.shape, dtype: a.dtype };
}

/** One `.npy` per input feature, named after it. */
export function readInputDir(dir: string, names: readonly string[]): Record<string, TensorInput> {
  const out: Record<string, TensorInput> = {};
  for (const name of names) {
    const file = path.join(dir, `${name}.npy`);
    if (!fs.existsSync(file)) throw new UnsupportedError(`no input file for feature '${name}' (expected ${name}.npy)`, { file: dir });
    out[name] = npyToInput(readNpy(file));
  }
  return out;
}

/** --compute-precision value → 'fp32' | 'fp16' (ConfigError otherwise). */
export function parseComputePrecision(value: string): ComputePrecision {
  if (value === 'fp32' || value === 'fp16') return value;
  throw new ConfigError(`--compute-precision must be fp32 or fp16, got '${value}'`);
}

/**
 * --warmup value → the number of unprofiled runs before the run that is timed (and profiled). The
 * first run of an executor also widens fp16 weights and packs conv weights for the GEMM, work a
 * steady-state run does not do, so `--profile` defaults to one warm-up run; without it, none.
 */
export function parseWarmup(value: string | undefined, profile: boolean): number {
  if (value === undefined) return profile ? 1 : 0;
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 0 || n > 1000) {
    throw new ConfigError(`--warmup must be an integer from 0 to 1000, got '${value}'`);
  }
  return n;
}

export function registerPredict(program: Command): void {
  const cmd = program
    .command('predict <model>')
    .description('Run an ML Program on the reference CPU executor: one .npy per input in, one .npy per output out')
    .requiredOption('--inputs <dir>', 'directory with <input name>.npy for every model input')
    .requiredOption('--out <dir>', 'directory for <output name>.npy')
    .option('--function <name>', 'function of a multi-function model')
    .option('--threads <n>', 'native threads (default: all cores)')
    .option('--compute-precision <p>', 'fp32, or fp16: every op output rounded to fp16, as Core ML on a Mac', 'fp32')
    .option('--profile', 'time every op: print calls, ms, % of the run, GFLOP/s and bytes per op type (of a warm run, see --warmup)')
    .option('--warmup <n>', 'untimed runs before the timed one: the first run also widens and packs weights once (default: 1 with --profile, else 0)')
    .option('--json', 'print shapes and timings as JSON')
    .action(async (modelPath: string, opts: { inputs: string; out: string; function?: string; threads?: string; computePrecision: string; profile?: boolean; warmup?: string; json?: boolean }) => {
      const computePrecision = parseComputePrecision(opts.computePrecision);
      const warmup = parseWarmup(opts.warmup, opts.profile === true);
      const t0 = performance.now();
      const model = await loadModel(modelPath);
      const executor = createExecutor(model, opts.function ? { function: opts.function } : {});
      const t1 = performance.now();
      const inputs = readInputDir(opts.inputs, executor.inputs.map((i) => i.name));
      const signal = cliSignal(cmd);
      const common = {
        ...(opts.threads ? { threads: Number(opts.threads) } : {}),
        ...(signal ? { signal } : {}),
        computePrecision,
      };
      for (let i = 0; i < warmup; i++) await executor.predict(inputs, common);
      const tWarm = performance.now();
      const outputs = await executor.predict(inputs, { ...common, ...(opts.profile ? { profile: true } : {}) });
      const t2 = performance.now();
      fs.mkdirSync(opts.out, { recursive: true });
      const rows: { name: string; dtype: string; shape: number[] }[] = [];
      for (const [name, t] of Object.entries(outputs)) {
        const dtype = t.dtype;
        if ((t.data as unknown) instanceof Array) {
          // string outputs (a classifier's label): one line per element
          fs.writeFileSync(path.join(opts.out, `${name}.txt`), `${(t.data as unknown as string[]).join('\n')}\n`);
          rows.push({ name, dtype: 'string', shape: t.shape });
          continue;
        }
        writeNpy(path.join(opts.out, `${name}.npy`), { dtype, shape: t.shape, data: t.data });
        rows.push({ name, dtype, shape: t.shape });
      }
      // predictSeconds: the timed run alone (after the warm-up runs, if any).
      const timings = { loadSeconds: (t1 - t0) / 1000, warmupRuns: warmup, warmupSeconds: (tWarm - t1) / 1000, predictSeconds: (t2 - tWarm) / 1000 };
      const profile = opts.profile ? executor.lastProfile : undefined;
      if (opts.json) {
        console.log(JSON.stringify({ outputs: rows, ...timings, ...(profile ? { profile } : {}) }, null, 2));
        return;
      }
      console.log(formatTable(['output', 'dtype', 'shape'], rows.map((r) => [r.name, r.dtype, `[${r.shape.join(', ')}]`])));
      if (profile) console.log(`\n${formatProfile(profile)}`);
      const warm = warmup > 0 ? ` (after ${warmup} warm-up run${warmup === 1 ? '' : 's'}, ${formatSeconds(timings.warmupSeconds)})` : '';
      console.log(`\nload ${formatSeconds(timings.loadSeconds)}, predict ${formatSeconds(timings.predictSeconds)}${warm}; wrote ${opts.out}`);
    });
}
