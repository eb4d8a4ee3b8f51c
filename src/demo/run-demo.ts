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
import type { CompressedModel, PassOptions } from '../optimize/pass.js';
import { buildExampleModel } from './example-model.js';
import { compareModels } from '../runtime/compare.js';

export interface DemoVariant {
  name: string;
  run: (model: Model, options: PassOptions) => Promise<CompressedModel>;
}

function palettize(dict: Record<string, unknown>) {
  const config = OptimizationConfig.fromDict({ config_type: 'OpPalettizerConfig', global_config: dict });
  return (model: Model, options: PassOptions) => palettizeWeights(model, config, options);
}

export const DEMO_VARIANTS: DemoVariant[] = [
  { name: 'palettize 8-bit per_tensor', run: palettize({ nbits: 8 }) },
  { name: 'palettize 6-bit per_tensor', run: palettize({ nbits: 6 }) },
  { name: 'palettize 4-bit per_tensor', run: palettize({ nbits: 4 }) },
  { name: 'palettize 4-bit gs16', run: palettize({ nbits: 4, granularity: 'per_grouped_channel', group_size: 16 }) },
  { name: 'palettize 2-bit gs16', run: palettize({ nbits: 2, granularity: 'per_grouped_channel', group_size: 16 }) },
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

export async function runDemo(options: { dir?: string; threads?: number; signal?: AbortSignal; variants?: DemoVariant[]; log?: (line: string) => void } = {}): Promise<DemoResult> {
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'coreml-optimize-demo-'));
  fs.mkdirSync(dir, { recursive: true });
  const log = options.log ?? (() => {});
  const source = await buildExampleModel(path.join(dir, 'example.mlpackage'), path.join(dir, 'example-weight.bin'));
  const sourceBytes = fs.statSync(source.weightFilePath('@model_path/weights/weight.bin')).size;
  log(`built ${source.path} (${(sourceBytes / 1e6).toFixed(1)} MB of fp16 weights)`);
  const rows: DemoRow[] = [];
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
    const sqnr = report.weights.filter((w) => w.status === 'compressed' && w.sqnrDb !== undefined).map((w) => w.sqnrDb!);
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
