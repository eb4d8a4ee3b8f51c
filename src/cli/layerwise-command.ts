/**
 * The shared shape of `sparsegpt` and `gptq`: IN OUT --calibration DIR, one flag per config key or
 * --config FILE (a LayerwiseCompressorConfig dict as YAML/JSON), --layers, --max-memory, --mode,
 * --threads, a progress bar and a per-op table (or --json).
 */
import type { Command } from 'commander';
import { loadModel } from '../model.js';
import { ConfigError } from '../errors.js';
import { LayerwiseCompressorConfig, type LayerwiseAlgorithm } from '../optimize/config/layerwise.js';
import type { LayerwiseModel, LayerwiseOptions, LayerwiseReport } from '../optimize/sparsegpt/index.js';
import type { Model } from '../model.js';
import { cliSignal } from './main.js';
import { createProgressBar } from './progress.js';
import { formatBytes, formatSeconds, formatTable } from './table.js';

type Runner = (model: Model, config: LayerwiseCompressorConfig, calibration: string, options: LayerwiseOptions) => Promise<LayerwiseModel>;

/** "8G", "512MiB", "1.5GB", "1000000" → bytes. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text);
  if (!m) throw new ConfigError(`--max-memory: cannot read "${text}" as a size (e.g. 8G, 512M, 1073741824)`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  const v = Math.floor(Number(m[1]) * mult);
  if (!(v > 0)) throw new ConfigError(`--max-memory must be positive, got "${text}"`);
  return v;
}

export function positiveInt(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new ConfigError(`${flag} must be a positive integer, got "${text}"`);
  return n;
}

export function finite(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n)) throw new ConfigError(`${flag} must be a number, got "${text}"`);
  return n;
}

export interface LayerwiseCommandSpec {
  name: 'sparsegpt' | 'gptq';
  algorithm: LayerwiseAlgorithm;
  description: string;
  /** Algorithm flags: [flag, description]. */
  flags: [string, string][];
  /** The module config dict from the algorithm flags that were given. */
  moduleConfig(opts: Record<string, unknown>): Record<string, unknown>;
  run: Runner;
}

const COMMON = ['config', 'calibration', 'layers', 'calibrationNsamples', 'maxMemory', 'mode', 'threads', 'json', 'processingGroupSize', 'hessianDampening'];

export function registerLayerwiseCommand(program: Command, spec: LayerwiseCommandSpec): void {
  const cmd = program
    .command(`${spec.name} <input> <output>`)
    .description(spec.description)
    .requiredOption('--calibration <dir>', 'folder of calibration samples: one folder per sample, one <input>.npy per model input')
    .option('--config <file>', 'LayerwiseCompressorConfig dict as YAML or JSON (global_config, layers, calibration_nsamples, module_name_configs, module_type_configs)');
  for (const [flag, description] of spec.flags) cmd.option(flag, description);
  cmd
    .option('--processing-group-size <n>', 'columns per block of the OBS updates (default 128)')
    .option('--hessian-dampening <f>', 'fraction of the mean Hessian diagonal added to it (default 0.01)')
    .option('--layers <regex...>', 'layers compressed one after the other, e.g. "down_blocks.\\d+" mid_block "up_blocks.\\d+" (searched in op and weight names; default: op by op)')
    .option('--calibration-nsamples <n>', 'samples used, spread over the folder (default 128)')
    .option('--max-memory <size>', 'memory the run may hold (Hessians of a wave, boundary cache, executor caches and activations), e.g. 8G (default: half the RAM)')
    .option('--mode <mode>', 'sequential (each layer calibrated on the compressed layers before it; default) or oneshot (all from the original model)')
    .option('--threads <n>', 'native threads (default: all cores)')
    .option('--json', 'print the report as JSON')
    .action(async (input: string, output: string, opts: Record<string, unknown>) => {
      const algoFlags = Object.keys(opts).filter((k) => !COMMON.includes(k) && opts[k] !== undefined);
      let config: LayerwiseCompressorConfig;
      if (opts['config']) {
        if (algoFlags.length > 0 || opts['layers'] || opts['calibrationNsamples'] || opts['processingGroupSize'] || opts['hessianDampening']) {
          throw new ConfigError('use either --config or the config flags, not both');
        }
        config = LayerwiseCompressorConfig.fromFile(String(opts['config']), spec.algorithm);
      } else {
        const module: Record<string, unknown> = { algorithm: spec.algorithm, ...spec.moduleConfig(opts) };
        if (opts['processingGroupSize'] !== undefined) module['processing_group_size'] = positiveInt('--processing-group-size', String(opts['processingGroupSize']));
        if (opts['hessianDampening'] !== undefined) module['hessian_dampening'] = finite('--hessian-dampening', String(opts['hessianDampening']));
        config = LayerwiseCompressorConfig.fromDict({
          global_config: module,
          layers: (opts['layers'] as string[] | undefined) ?? null,
          ...(opts['calibrationNsamples'] !== undefined ? { calibration_nsamples: positiveInt('--calibration-nsamples', String(opts['calibrationNsamples'])) } : {}),
        }, spec.algorithm);
      }
      const mode = opts['mode'] as string | undefined;
      if (mode !== undefined && mode !== 'sequential' && mode !== 'oneshot') throw new ConfigError(`--mode must be sequential or oneshot, got "${mode}"`);
      const model = await loadModel(input);
      const bar = createProgressBar(spec.name);
      const signal = cliSignal(cmd);
      const result = await spec.run(model, config, String(opts['calibration']), {
        ...(opts['threads'] !== undefined ? { threads: positiveInt('--threads', String(opts['threads'])) } : {}),
        ...(opts['maxMemory'] !== undefined ? { maxMemory: parseSize(String(opts['maxMemory'])) } : {}),
        ...(mode ? { mode: mode as 'sequential' | 'oneshot' } : {}),
        ...(signal ? { signal } : {}),
        onProgress: bar.update,
      });
      bar.done();
      await result.save(output, { newIdentifiers: true, ...(signal ? { signal } : {}) });
      if (opts['json']) {
        console.log(JSON.stringify({ input, output, ...result.layerwise, weightFileBytesBefore: result.compression.weightFileBytesBefore, weightFileBytesAfter: result.compression.weightFileBytesAfter }, (_k, v) => (v === Infinity ? null : v), 2));
      } else {
        console.log(formatLayerwiseReport(result.layerwise, result.compression.weightFileBytesBefore, result.compression.weightFileBytesAfter));
        console.log(`wrote ${output}`);
      }
    });
}

const pct = (x: number | undefined) => (x === undefined ? '' : `${(x * 100).toFixed(1)}%`);
const sci = (x: number | undefined) => (x === undefined ? '' : x.toExponential(2));

export function formatLayerwiseReport(r: LayerwiseReport, before: number, after: number): string {
  const done = r.ops.filter((o) => o.status === 'compressed');
  const left = r.ops.filter((o) => o.status === 'skipped');
  const baseline = r.api === 'gptq' ? 'RTN error' : 'magnitude error';
  const lines = [formatTable(['op', 'type', 'layer', 'H cols', 'dead', 'sparsity', 'error', baseline, 'ratio', 'compression'], done.map((o) => [
    o.name, o.type, o.layer, o.hessianColumns, o.deadColumns, pct(o.sparsity), sci(o.error), sci(o.baselineError),
    o.baselineError ? (o.error! / o.baselineError).toFixed(3) : '', o.detail,
  ]))];
  if (left.length > 0) lines.push('', formatTable(['left as is', 'type', 'why'], left.map((o) => [o.name, o.type, o.detail])));
  lines.push('', `${r.api} (${r.mode}): ${done.length} ops in ${r.layers.length} layers compressed, ${left.length} left as is; ` +
    `${r.samples} of ${r.samplesAvailable} calibration samples; ${r.waves} Hessian waves, peak ${formatBytes(r.peakHessianBytes)} (budget ${formatBytes(r.maxMemory)}); ` +
    `boundary cache peak ${formatBytes(r.cachePeakBytes)}, spilled ${formatBytes(r.cacheSpilledBytes)}`);
  const m = r.memory;
  lines.push(`memory budget ${formatBytes(m.maxMemory)}: Hessians ${formatBytes(m.budget.hessians)} (peak ${formatBytes(m.peak.hessians)}), ` +
    `boundary cache ${formatBytes(m.budget.boundaryCache)} (peak ${formatBytes(m.peak.boundaryCache)}), executor weight caches ${formatBytes(m.budget.executorCaches)} (peak ${formatBytes(m.peak.executorCaches)}), ` +
    `activations ≈ ${formatBytes(m.budget.activations)}, mapped weights ${formatBytes(m.budget.weights)}, prune step ≈ ${formatBytes(m.budget.pruneWorking)}; bound ${formatBytes(m.bound)}`);
  lines.push(`weight.bin ${formatBytes(before)} -> ${formatBytes(after)}; forward ${formatSeconds(r.seconds.forward)}, Hessians ${formatSeconds(r.seconds.hessian)}, compress ${formatSeconds(r.seconds.compress)}, write ${formatSeconds(r.seconds.write)}, total ${formatSeconds(r.seconds.total)}`);
  if (r.merged.length > 0) lines.push(`layers merged into the one before (their ops interleave): ${r.merged.join(', ')}`);
  return lines.join('\n');
}
