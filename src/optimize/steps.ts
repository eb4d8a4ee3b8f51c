/**
 * Multi-step compression plans: `{ steps: [ { api, config, joint_compression? } ] }` in YAML or JSON.
 * `api` is the verb (prune | palettize | quantize) or coremltools' function name
 * (coremltools.optimize.coreml.palettize_weights, prune_weights, linear_quantize_weights);
 * `config` is an OptimizationConfig dict (coremltools' from_dict schema). A golden sidecar's steps
 * (which may carry `config_as_passed`, the constructor keywords) load as is.
 */
import { configError, isPlainObject, show } from './config/common.js';
import {
  API_FUNCTION_NAMES, OptimizationConfig, checkConfigForApi, type CompressionApi,
} from './config/optimization-config.js';
import { readDataFile, withFile } from './config/parse.js';
import { checkTarget, type ModelTarget } from './config/target.js';
import type { TargetError } from './config/common.js';
import { LayerwiseCompressorConfig } from './config/layerwise.js';
import { isAbsolute, resolve, dirname } from 'node:path';

export interface CompressStep {
  readonly api: CompressionApi | LayerwiseApi;
  /** The step's OptimizationConfig (empty for sparsegpt / gptq steps, whose config is `layerwise.config`). */
  readonly config: OptimizationConfig;
  /** coremltools' joint_compression argument: compress what earlier steps produced (iOS18). */
  readonly joint_compression: boolean;
  /** Set for sparsegpt / gptq steps. */
  readonly layerwise?: LayerwiseStepOptions;
}

export type LayerwiseApi = 'sparsegpt' | 'gptq';

/**
 * What a calibrated step (SparseGPT / GPTQ over the model's graph, coremltools' LayerwiseCompressor)
 * carries: a LayerwiseCompressorConfig, the calibration folder (relative paths resolve against the
 * plan file's folder) and the mode. Such a step always runs as its own pass.
 */
export interface LayerwiseStepOptions {
  readonly config: LayerwiseCompressorConfig;
  readonly calibration: string;
  readonly mode: 'sequential' | 'oneshot';
}

const LAYERWISE_STEP_KEYS = ['api', 'config', 'calibration', 'mode'];
const LAYERWISE_APIS: Record<string, LayerwiseApi> = { sparsegpt: 'sparsegpt', sparse_gpt: 'sparsegpt', gptq: 'gptq' };

function layerwiseStepFromData(d: Record<string, unknown>, api: LayerwiseApi, baseDir: string): CompressStep {
  for (const k of Object.keys(d)) {
    if (!LAYERWISE_STEP_KEYS.includes(k)) throw configError(k, `Unknown key "${k}" in a ${api} step. Allowed keys: ${LAYERWISE_STEP_KEYS.join(', ')}.`);
  }
  const cal = d['calibration'];
  if (typeof cal !== 'string' || cal.length === 0) throw configError('calibration', `a ${api} step needs "calibration": a folder of calibration sample folders.`);
  const mode = d['mode'] ?? 'sequential';
  if (mode !== 'sequential' && mode !== 'oneshot') throw configError('mode', `"mode" must be sequential or oneshot, got ${show(mode)}.`);
  const config = LayerwiseCompressorConfig.fromDict(d['config'] ?? {}, api === 'gptq' ? 'gptq' : 'sparse_gpt');
  const calibration = isAbsolute(cal) ? cal : resolve(baseDir, cal);
  return { api, config: new OptimizationConfig({}), joint_compression: false, layerwise: { config, calibration, mode } };
}

/** What checkPlanTarget throws: an UnsupportedError with coremltools' message and the failing step. */
export type PlanTargetError = TargetError & { readonly stepIndex: number };

export interface CompressPlan {
  readonly steps: readonly CompressStep[];
}

const STEP_KEYS = ['api', 'config', 'joint_compression', 'config_as_passed'];

/** 'palettize' | 'palettize_weights' | 'coremltools.optimize.coreml.palettize_weights' → 'palettize'. */
export function normalizeApiName(name: unknown): CompressionApi {
  if (typeof name === 'string') {
    const short = name.trim().replace(/^(?:coremltools|ct)\.optimize\.coreml\./, '').replace(/^cto\.coreml\./, '');
    for (const [verb, fn] of Object.entries(API_FUNCTION_NAMES) as [CompressionApi, string][]) {
      if (short === verb || short === fn) return verb;
    }
  }
  throw configError('api', `Unknown api ${show(name)}. Use prune, palettize or quantize (or prune_weights, palettize_weights, linear_quantize_weights), or sparsegpt / gptq with a calibration folder.`);
}

/** The sidecars' `config_as_passed` ({global_config: {class, kwargs}, ...}) as a from_dict dict. */
function configAsPassedToDict(d: unknown): Record<string, unknown> {
  if (!isPlainObject(d)) throw configError('config_as_passed', `config_as_passed must be a mapping, got ${show(d)}.`);
  const entry = (v: unknown, where: string): Record<string, unknown> | null => {
    if (v === null) return null;
    if (!isPlainObject(v) || typeof v['class'] !== 'string' || (v['kwargs'] !== undefined && !isPlainObject(v['kwargs']))) {
      throw configError('config_as_passed', `${where} must be {class, kwargs} or null, got ${show(v)}.`);
    }
    return { config_type: v['class'], ...((v['kwargs'] as Record<string, unknown> | undefined) ?? {}) };
  };
  const out: Record<string, unknown> = {};
  let type: unknown;
  for (const [k, v] of Object.entries(d)) {
    if (k === 'global_config') {
      out[k] = entry(v, k);
      type ??= (v as Record<string, unknown> | null)?.['class'];
    } else if (k === 'op_type_configs' || k === 'op_name_configs') {
      if (!isPlainObject(v)) throw configError('config_as_passed', `${k} must be a mapping, got ${show(v)}.`);
      out[k] = Object.fromEntries(Object.entries(v).map(([n, c]) => {
        type ??= (c as Record<string, unknown> | null)?.['class'];
        return [n, entry(c, `${k}[${n}]`)];
      }));
    } else {
      throw configError(k, `Invalid key ${k} in config_as_passed (global_config, op_type_configs, op_name_configs).`);
    }
  }
  out['config_type'] = type ?? 'OpPalettizerConfig';
  return out;
}

function stepFromData(d: unknown, index: number, baseDir: string): CompressStep {
  const where = `steps[${index}]`;
  try {
    if (!isPlainObject(d)) throw configError('steps', `a step must be a mapping, got ${show(d)}.`);
    const layerwise = typeof d['api'] === 'string' ? LAYERWISE_APIS[d['api'].trim()] : undefined;
    if (layerwise) return layerwiseStepFromData(d, layerwise, baseDir);
    for (const k of Object.keys(d)) {
      if (!STEP_KEYS.includes(k)) throw configError(k, `Unknown key "${k}" in a step. Allowed keys: api, config, joint_compression.`);
    }
    const api = normalizeApiName(d['api']);
    const joint = d['joint_compression'] ?? false;
    if (typeof joint !== 'boolean') throw configError('joint_compression', `"joint_compression" must be true or false, got ${show(joint)}.`);
    let config: OptimizationConfig;
    if (d['config'] !== undefined) config = OptimizationConfig.fromDict(d['config']);
    else if (d['config_as_passed'] !== undefined) config = OptimizationConfig.fromDict(configAsPassedToDict(d['config_as_passed']));
    else throw configError('config', 'a step needs "config" (an OptimizationConfig dict).');
    checkConfigForApi(config, api);
    return { api, config, joint_compression: joint };
  } catch (e) {
    if (e instanceof Error) e.message = `${where}: ${e.message}`;
    throw e;
  }
}

/** Builds a plan from parsed data. A golden sidecar (has coremltools_version) contributes only its steps. */
export function compressPlanFromData(data: unknown, baseDir: string = process.cwd()): CompressPlan {
  if (!isPlainObject(data)) throw configError('steps', `a compress plan must be a mapping with "steps", got ${show(data)}.`);
  const isSidecar = 'coremltools_version' in data;
  if (!isSidecar) {
    for (const k of Object.keys(data)) {
      if (k !== 'steps' && k !== 'description') throw configError(k, `Unknown key "${k}" in a compress plan. Allowed keys: steps, description.`);
    }
  }
  const steps = data['steps'];
  if (!Array.isArray(steps) || steps.length === 0) {
    throw configError('steps', `"steps" must be a non-empty list, got ${show(steps)}.`);
  }
  return { steps: Object.freeze(steps.map((s, i) => stepFromData(s, i, baseDir))) };
}

/** Loads a plan from a .yaml/.yml/.json path (errors name the file) or from an already-parsed object. */
export function loadCompressPlan(source: string | object): CompressPlan {
  if (typeof source === 'string') {
    const data = readDataFile(source);
    return withFile(source, () => compressPlanFromData(data, dirname(resolve(source))));
  }
  return compressPlanFromData(source);
}

/** The plan as data in the file schema (api as the verb, config as from_dict dicts). */
export function compressPlanToData(plan: CompressPlan): { steps: Record<string, unknown>[] } {
  return {
    steps: plan.steps.map((s) => (s.layerwise
      ? { api: s.api, config: s.layerwise.config.toDict(), calibration: s.layerwise.calibration, mode: s.layerwise.mode }
      : { api: s.api, config: s.config.toDict(), joint_compression: s.joint_compression })),
  };
}

/**
 * coremltools' deployment-target checks for each step in order (joint compression, then each
 * config; quantizing after a palettize step in joint mode quantizes the LUT, which must be per
 * tensor). The thrown error keeps coremltools' exact message and gets `stepIndex`.
 */
export function checkPlanTarget(plan: CompressPlan, target: ModelTarget): void {
  plan.steps.forEach((step, i) => {
    // Calibrated steps check their target when they run (per layer).
    if (step.layerwise) return;
    const palettizedBefore = plan.steps.slice(0, i).some((s) => s.api === 'palettize');
    try {
      checkTarget(step.config, target, {
        jointCompression: step.joint_compression,
        quantizesLut: step.api === 'quantize' && step.joint_compression && palettizedBefore,
      });
    } catch (e) {
      if (e instanceof Error) Object.defineProperty(e, 'stepIndex', { value: i, enumerable: true });
      throw e;
    }
  });
}
