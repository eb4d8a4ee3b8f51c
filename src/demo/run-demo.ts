/**
 * `coreml-optimize demo`: build the example model, compress it under several configurations and
 * print the release-note table (size, ratio, per-weight SQNR, time).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Model } from '../model.js';
import { OptimizationConfig } from '../optimize/config.js';
import { palettizeWeights } from '../optimize/palettize.js';
import { linearQuantizeWeights } from '../optimize/quantize.js';
import { pruneWeights } from '../optimize/prune.js';
import { compressModel } from '../optimize/compress.js';
import type { CompressedModel, PassOptions } from '../optimize/pass.js';
import { buildExampleModel } from './example-model.js';
import { compareModels } from '../runtime/compare.js';
import { materializeWeights, type MaterializedWeight } from '../optimize/materialize.js';

export interface DemoVariant {
  name: string;
  run: (model: Model, options: PassOptions) => Promise<CompressedModel>;
}

function palettize(dict: Record<string, unknown>) {
  const config = OptimizationConfig.fromDict({ config_type: 'OpPalettizerConfig', global_config: dict });
  return (model: Model, options: PassOptions) => palettizeWeights(model, config, options);
}

function quantize(dict: Record<string, unknown>) {
  const config = OptimizationConfig.fromDict({ config_type: 'OpLinearQuantizerConfig', global_config: dict });
  return (model: Model, options: PassOptions) => linearQuantizeWeights(model, config, options);
}

function prune(dict: Record<string, unknown>) {
  const config = OptimizationConfig.fromDict({ config_type: 'OpMagnitudePrunerConfig', global_config: dict });
  return (model: Model, options: PassOptions) => pruneWeights(model, config, options);
}

/** Prune, then palettize the non-zeros (joint compression, iOS18). */
function pruneThenPalettize(sparsity: number, groupSize: number) {
  const plan = {
    steps: [
      { api: 'prune', config: { config_type: 'OpMagnitudePrunerConfig', global_config: { target_sparsity: sparsity } } },
      { api: 'palettize', joint_compression: true, config: { config_type: 'OpPalettizerConfig', global_config: { nbits: 4, granularity: 'per_grouped_channel', group_size: groupSize } } },
    ],
  };
  return (model: Model, options: PassOptions) => compressModel(model, plan, options);
}

export const DEMO_VARIANTS: DemoVariant[] = [
  { name: 'palettize 8-bit per_tensor', run: palettize({ nbits: 8 }) },
  { name: 'palettize 6-bit per_tensor', run: palettize({ nbits: 6 }) },
  { name: 'palettize 4-bit per_tensor', run: palettize({ nbits: 4 }) },
  { name: 'palettize 4-bit gs16', run: palettize({ nbits: 4, granularity: 'per_grouped_channel', group_size: 16 }) },
  { name: 'palettize 2-bit gs16', run: palettize({ nbits: 2, granularity: 'per_grouped_channel', group_size: 16 }) },
  { name: 'quantize int8 per_channel', run: quantize({ dtype: 'int8', granularity: 'per_channel' }) },
  { name: 'quantize int4 per_block 32', run: quantize({ dtype: 'int4', granularity: 'per_block', block_size: 32 }) },
  { name: 'prune 50%', run: prune({ target_sparsity: 0.5 }) },
  { name: 'prune 50% + palettize 4-bit gs16', run: pruneThenPalettize(0.5, 16) },
];

export interface DemoRow {
  variant: string;
  weightBinBytes: number;
  ratio: number;
  compressedWeights: number;
  meanSqnrDb: number;
  worstSqnrDb: number;
  /** Worst PSNR over the model's outputs against the fp16 source, on the CPU executor. */
  outputPsnrDb: number;
  seconds: number;
}

export interface DemoResult {
  dir: string;
  sourceBytes: number;
  rows: DemoRow[];
}

/**
 * SQNR (dB) of every compressed weight against the fp16 original, from the materialized weights of
 * both models (a compressed weight's var is the original name plus a suffix such as `_palettized`).
 */
async function weightSqnrs(original: Map<string, MaterializedWeight>, compressed: Model): Promise<number[]> {
  const after = await materializeWeights(compressed);
  const out: number[] = [];
  for (const [name, w] of original) {
    if (w.shape.length < 2 || after.has(name)) continue; // rank 1, or still the same const
    const match = [...after.values()].find((m) => m.name.startsWith(`${name}_`) && m.values.length === w.values.length);
    if (!match) continue;
    let signal = 0, noise = 0;
    for (let i = 0; i < w.values.length; i++) {
      const d = w.values[i]! - match.values[i]!;
      signal += w.values[i]! * w.values[i]!;
      noise += d * d;
    }
    out.push(noise === 0 ? Infinity : 10 * Math.log10(signal / noise));
  }
  return out;
}

export async function runDemo(options: { dir?: string; threads?: number; signal?: AbortSignal; variants?: DemoVariant[]; log?: (line: string) => void } = {}): Promise<DemoResult> {
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'coreml-optimize-demo-'));
  fs.mkdirSync(dir, { recursive: true });
  const log = options.log ?? (() => {});
  const source = await buildExampleModel(path.join(dir, 'example.mlpackage'), path.join(dir, 'example-weight.bin'));
  const sourceBytes = fs.statSync(source.weightFilePath('@model_path/weights/weight.bin')).size;
  log(`built ${source.path} (${(sourceBytes / 1e6).toFixed(1)} MB of fp16 weights)`);
  const rows: DemoRow[] = [];
  const sourceWeights = await materializeWeights(source);
  for (const variant of options.variants ?? DEMO_VARIANTS) {
    const result = await variant.run(source, {
      ...(options.threads !== undefined ? { threads: options.threads } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const file = path.join(dir, `${variant.name.replace(/[^a-z0-9]+/gi, '_')}.mlpackage`);
    const saved = await result.save(file, { newIdentifiers: true });
    const report = result.compression;
    const comparison = await compareModels(source, saved, { random: 1, seed: 1, ...(options.signal ? { signal: options.signal } : {}) });
    const psnrs = comparison.outputs.map((o) => (o.identical ? Infinity : o.psnr!));
    const sqnr = await weightSqnrs(sourceWeights, saved);
    rows.push({
      variant: variant.name,
      weightBinBytes: report.weightFileBytesAfter,
      ratio: sourceBytes / report.weightFileBytesAfter,
      compressedWeights: sqnr.length,
      meanSqnrDb: sqnr.length ? sqnr.reduce((a, b) => a + b, 0) / sqnr.length : NaN,
      worstSqnrDb: sqnr.length ? Math.min(...sqnr) : NaN,
      outputPsnrDb: Math.min(...psnrs),
      seconds: report.seconds,
    });
    log(`wrote ${file}`);
  }
  return { dir, sourceBytes, rows };
}
