/**
 * `pipeline.json`: what `coreml-optimize convert` writes next to the packages and generation reads —
 * model kind, the package of each component, tokenizers, the scheduler (class + scheduler_config.json
 * as diffusers wrote it), VAE scaling factor, SDXL's force_zeros_for_empty_prompt, latent size, UNet
 * batch, precision and attention form, and the text encoders' output feature names.
 * Written as Python-style JSON (`Infinity` / `NaN` tokens kept, so a scheduler config round-trips).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, ModelFormatError } from '../errors.js';
import { writeAtomically } from '../util/atomic-write.js';
import { parsePythonJson } from './diffusers-config.js';

export const PIPELINE_JSON = 'pipeline.json';
export const PIPELINE_FORMAT = 'coreml-optimize-pipeline';
export const PIPELINE_VERSION = 1;

export type PipelineModelKind = 'sd' | 'sdxl';
export type PipelineModelName = 'textEncoder' | 'textEncoder2' | 'unet' | 'vaeDecoder';

export interface PipelineJson {
  format: typeof PIPELINE_FORMAT;
  version: typeof PIPELINE_VERSION;
  modelKind: PipelineModelKind;
  /** The diffusers folder it was converted from (as given). */
  source: string;
  /** Package paths relative to the pipeline.json folder; only components that exist. */
  models: Partial<Record<PipelineModelName, string>>;
  /** One per text encoder, in encoder order; `dir` relative to the pipeline.json folder (`.` = beside it). */
  tokenizers: { dir: string; padToken: string }[];
  scheduler: { className: string; config: Record<string, unknown> };
  vaeScalingFactor: number;
  forceZerosForEmptyPrompt: boolean;
  latentHeight: number;
  latentWidth: number;
  /** Image size = latent size × vaeScaleFactor. */
  vaeScaleFactor: number;
  unetBatchSize: 1 | 2;
  precision: 'fp16' | 'fp32';
  attention: 'original' | 'split_einsum';
  textEncoderOutputs: { hidden: string; pooled: string };
  /** Components converted at another precision than `precision` (the SDXL VAE stays fp32). */
  componentPrecision?: Partial<Record<PipelineModelName, 'fp16' | 'fp32'>>;
}

/** JSON.stringify, except non-finite numbers are written as Python's `Infinity` / `-Infinity` / `NaN`. */
export function stringifyPythonJson(value: unknown, indent = 2): string {
  const text = JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'number' && !Number.isFinite(v)) return Number.isNaN(v) ? '\u0000NaN' : v > 0 ? '\u0000Infinity' : '\u0000-Infinity';
    return v;
  }, indent);
  // Config strings hold no NUL characters, so only the marks above match.
  return text.replace(/"\\u0000(-?Infinity|NaN)"/g, (_m, token: string) => token);
}

export async function writePipelineJson(dir: string, value: PipelineJson): Promise<string> {
  const file = path.join(dir, PIPELINE_JSON);
  await writeAtomically(file, async (tmp) => { await fs.promises.writeFile(tmp, stringifyPythonJson(value) + '\n'); });
  return file;
}

/** Reads and checks `<dir>/pipeline.json` (ModelFormatError / ConfigError naming the file and key). */
export function readPipelineJson(dir: string): PipelineJson {
  const file = path.join(dir, PIPELINE_JSON);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ModelFormatError(`cannot read: ${(err as Error).message}`, { file, cause: err });
  }
  const v = parsePythonJson(text, file) as Record<string, unknown>;
  const bad = (key: string, what: string) => new ConfigError(`${key}: ${what}`, { file });
  if (typeof v !== 'object' || v === null || v['format'] !== PIPELINE_FORMAT) throw new ModelFormatError(`not a ${PIPELINE_FORMAT} file`, { file });
  if (v['version'] !== PIPELINE_VERSION) throw bad('version', `${JSON.stringify(v['version'])} is not supported (this package reads version ${PIPELINE_VERSION})`);
  const str = (k: string) => { if (typeof v[k] !== 'string') throw bad(k, 'expected a string'); return v[k] as string; };
  const num = (k: string) => { if (typeof v[k] !== 'number' || !Number.isFinite(v[k])) throw bad(k, 'expected a number'); return v[k] as number; };
  const kind = str('modelKind');
  if (kind !== 'sd' && kind !== 'sdxl') throw bad('modelKind', `${JSON.stringify(kind)} is not sd or sdxl`);
  const models = v['models'];
  if (typeof models !== 'object' || models === null) throw bad('models', 'expected an object');
  for (const [k, p] of Object.entries(models)) {
    if (!['textEncoder', 'textEncoder2', 'unet', 'vaeDecoder'].includes(k)) throw bad(`models.${k}`, 'unknown component');
    if (typeof p !== 'string' || path.isAbsolute(p) || p.split(/[\\/]/).includes('..')) throw bad(`models.${k}`, 'expected a path inside the folder');
  }
  const tokenizers = v['tokenizers'];
  if (!Array.isArray(tokenizers) || !tokenizers.every(t => typeof t?.dir === 'string' && typeof t?.padToken === 'string')) throw bad('tokenizers', 'expected [{dir, padToken}]');
  const sched = v['scheduler'] as { className?: unknown; config?: unknown } | undefined;
  if (typeof sched?.className !== 'string' || typeof sched.config !== 'object' || sched.config === null) throw bad('scheduler', 'expected {className, config}');
  const batch = num('unetBatchSize');
  if (batch !== 1 && batch !== 2) throw bad('unetBatchSize', `${batch} is not 1 or 2`);
  const precision = str('precision');
  if (precision !== 'fp16' && precision !== 'fp32') throw bad('precision', `${precision} is not fp16 or fp32`);
  const attention = str('attention');
  if (attention !== 'original' && attention !== 'split_einsum') throw bad('attention', `${attention} is not original or split_einsum`);
  const teo = v['textEncoderOutputs'] as { hidden?: unknown; pooled?: unknown } | undefined;
  if (typeof teo?.hidden !== 'string' || typeof teo.pooled !== 'string') throw bad('textEncoderOutputs', 'expected {hidden, pooled}');
  if (typeof v['forceZerosForEmptyPrompt'] !== 'boolean') throw bad('forceZerosForEmptyPrompt', 'expected true or false');
  for (const k of ['latentHeight', 'latentWidth', 'vaeScaleFactor']) if (!Number.isInteger(num(k)) || num(k) < 1) throw bad(k, 'expected a positive integer');
  num('vaeScalingFactor');
  return v as unknown as PipelineJson;
}
