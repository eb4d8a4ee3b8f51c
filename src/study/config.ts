/**
 * The study config: which pipeline, what to draw, how to calibrate, and the compression variants of
 * the UNet (each a compressModel plan). Parsed from YAML / JSON (or a preset, see presets.ts) into a
 * normalized StudyConfig; every error is a ConfigError naming the key (`variants[2].name`, ...).
 */
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { compressPlanFromData } from '../optimize/steps.js';
import { readDataFile } from '../optimize/config/parse.js';
import { isPlainObject } from '../optimize/config/common.js';
import { COMPUTE_UNITS, type BackendKind, type ComputeUnit } from '../pipeline/backends/types.js';
import { schedulerClassNameOf } from '../pipeline/schedulers/index.js';
import { PRESETS, presetData } from './presets.js';

export interface StudyVariant {
  /** Folder name and row label: letters, digits, '.', '_', '-'. */
  name: string;
  /** Human-readable config (the table's "Config" column); default the name. */
  label: string;
  /** A compressModel plan as data ({steps: [...]}); sparsegpt / gptq steps may leave out `calibration`. */
  plan: { steps: Record<string, unknown>[] };
}

export interface StudyConfig {
  /** Models folder (convert output or ml-stable-diffusion's), absolute. */
  pipeline: string;
  prompts: string[];
  seeds: number[];
  negativePrompt?: string;
  scheduler?: string;
  steps: number;
  guidance: number;
  backend?: BackendKind;
  computeUnit?: ComputeUnit;
  /** Executor threads (0 = all cores). */
  threads: number;
  calibration: {
    /** Prompts whose UNet inputs (every timestep) calibrate sparsegpt / gptq steps. */
    prompts: string[];
    nsamples: number;
    /** Seed of the calibration generations (default: the first seed). */
    seed: number;
  };
  unetInputs: {
    /** A folder of sample folders (one .npy per UNet input); default the baseline run's recorded inputs. */
    dir?: string;
    /** Samples picked, spread evenly. */
    count: number;
  };
  variants: StudyVariant[];
  /** Keep each variant's compressed UNet (default: deleted once measured). */
  keepModels: boolean;
  /** The preset this config started from, if any. */
  preset?: string;
}

const TOP_KEYS = [
  'preset', 'pipeline', 'prompt', 'prompts', 'seed', 'seeds', 'negativePrompt', 'scheduler', 'steps', 'guidance', 'backend',
  'computeUnit', 'threads', 'calibration', 'unetInputs', 'variants', 'keepModels', 'description',
];
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/;

export function studyConfigError(key: string, message: string, file?: string): ConfigError {
  const err = new ConfigError(`study config: ${key}: ${message}`, file ? { file } : {});
  Object.defineProperty(err, 'key', { value: key, enumerable: true });
  return err;
}

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'nothing' : JSON.stringify(v) ?? String(v));

function int(key: string, v: unknown, min: number, max: number, file?: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw studyConfigError(key, `must be an integer in [${min}, ${max}], got ${show(v)}`, file);
  return v;
}

function str(key: string, v: unknown, file?: string): string {
  if (typeof v !== 'string' || v.trim() === '') throw studyConfigError(key, `must be a non-empty string, got ${show(v)}`, file);
  return v;
}

function strings(key: string, v: unknown, file?: string): string[] {
  if (!Array.isArray(v) || v.length === 0) throw studyConfigError(key, `must be a non-empty list of strings, got ${show(v)}`, file);
  return v.map((s, i) => str(`${key}[${i}]`, s, file));
}

function checkKeys(where: string, d: Record<string, unknown>, allowed: string[], file?: string): void {
  for (const k of Object.keys(d)) {
    if (!allowed.includes(k)) throw studyConfigError(where ? `${where}.${k}` : k, `unknown key (allowed: ${allowed.join(', ')})`, file);
  }
}

export interface ParseStudyOptions {
  /** Relative paths (pipeline, unetInputs.dir, calibration folders in plans) resolve against this folder. */
  baseDir?: string;
  /** For error messages. */
  file?: string;
  /** Data merged under the config (default: the preset the data names): the config's keys win; `variants` replaces. */
  base?: Record<string, unknown>;
}

/** Validates and normalizes config data. */
export function parseStudyConfig(data: unknown, options: ParseStudyOptions = {}): StudyConfig {
  const file = options.file;
  const baseDir = options.baseDir ?? process.cwd();
  if (!isPlainObject(data)) throw studyConfigError('(top level)', `must be a mapping, got ${show(data)}`, file);
  checkKeys('', data, TOP_KEYS, file);
  let base = options.base;
  if (base === undefined && data['preset'] !== undefined) {
    if (typeof data['preset'] !== 'string' || !PRESETS[data['preset']]) throw studyConfigError('preset', `unknown preset ${show(data['preset'])} (presets: ${Object.keys(PRESETS).join(', ')})`, file);
    base = presetData(data['preset']);
  }
  const d: Record<string, unknown> = { ...(base ?? {}), ...data };
  // The config's prompt(s) / seed(s) replace the preset's, in either spelling.
  if (data['prompt'] !== undefined && data['prompts'] === undefined) delete d['prompts'];
  if (data['prompts'] !== undefined && data['prompt'] === undefined) delete d['prompt'];
  if (data['seed'] !== undefined && data['seeds'] === undefined) delete d['seeds'];
  if (data['seeds'] !== undefined && data['seed'] === undefined) delete d['seed'];
  if (d['prompt'] !== undefined && d['prompts'] !== undefined) throw studyConfigError('prompt', 'give either prompt or prompts, not both', file);
  if (d['seed'] !== undefined && d['seeds'] !== undefined) throw studyConfigError('seed', 'give either seed or seeds, not both', file);

  if (d['pipeline'] === undefined) throw studyConfigError('pipeline', 'is required: the models folder (coreml-optimize convert output or an ml-stable-diffusion folder)', file);
  const pipeline = path.resolve(baseDir, str('pipeline', d['pipeline'], file));
  const prompts = d['prompts'] !== undefined ? strings('prompts', d['prompts'], file) : [str('prompt', d['prompt'] ?? 'cat in a tuxedo, oil on canvas', file)];
  const seeds = d['seeds'] !== undefined
    ? (() => {
      if (!Array.isArray(d['seeds']) || d['seeds'].length === 0) throw studyConfigError('seeds', `must be a non-empty list of integers, got ${show(d['seeds'])}`, file);
      return d['seeds'].map((s, i) => int(`seeds[${i}]`, s, 0, 0xffffffff, file));
    })()
    : [int('seed', d['seed'] ?? 93, 0, 0xffffffff, file)];
  const steps = int('steps', d['steps'] ?? 50, 1, 1000, file);
  const guidance = d['guidance'] ?? 7.5;
  if (typeof guidance !== 'number' || !Number.isFinite(guidance)) throw studyConfigError('guidance', `must be a number, got ${show(guidance)}`, file);
  const out: StudyConfig = {
    pipeline, prompts, seeds, steps, guidance,
    threads: int('threads', d['threads'] ?? 0, 0, 1024, file),
    calibration: { prompts: [], nsamples: 128, seed: seeds[0]! },
    unetInputs: { count: 4 },
    variants: [],
    keepModels: false,
  };
  if (d['negativePrompt'] !== undefined) {
    if (typeof d['negativePrompt'] !== 'string') throw studyConfigError('negativePrompt', `must be a string, got ${show(d['negativePrompt'])}`, file);
    out.negativePrompt = d['negativePrompt'];
  }
  if (d['scheduler'] !== undefined) {
    const s = str('scheduler', d['scheduler'], file);
    if (schedulerClassNameOf(s) === undefined) throw studyConfigError('scheduler', `unknown scheduler ${show(s)} (pndm, ddim, euler, euler_ancestral, dpmpp, lms or a diffusers class name)`, file);
    out.scheduler = s;
  }
  if (d['backend'] !== undefined) {
    if (d['backend'] !== 'executor' && d['backend'] !== 'coreml') throw studyConfigError('backend', `must be executor or coreml, got ${show(d['backend'])}`, file);
    out.backend = d['backend'];
  }
  if (d['computeUnit'] !== undefined) {
    const cu = typeof d['computeUnit'] === 'string' ? d['computeUnit'].toUpperCase() : d['computeUnit'];
    if (!COMPUTE_UNITS.includes(cu as ComputeUnit)) throw studyConfigError('computeUnit', `must be one of ${COMPUTE_UNITS.join(', ')}, got ${show(d['computeUnit'])}`, file);
    out.computeUnit = cu as ComputeUnit;
  }
  if (d['keepModels'] !== undefined) {
    if (typeof d['keepModels'] !== 'boolean') throw studyConfigError('keepModels', `must be true or false, got ${show(d['keepModels'])}`, file);
    out.keepModels = d['keepModels'];
  }
  if (typeof d['preset'] === 'string') out.preset = d['preset'];

  const cal = d['calibration'] ?? {};
  if (!isPlainObject(cal)) throw studyConfigError('calibration', `must be a mapping {prompts, nsamples, seed}, got ${show(cal)}`, file);
  checkKeys('calibration', cal, ['prompts', 'nsamples', 'seed'], file);
  out.calibration = {
    prompts: cal['prompts'] !== undefined ? strings('calibration.prompts', cal['prompts'], file) : [...prompts],
    nsamples: int('calibration.nsamples', cal['nsamples'] ?? 128, 1, 1 << 20, file),
    seed: int('calibration.seed', cal['seed'] ?? seeds[0]!, 0, 0xffffffff, file),
  };

  const ui = d['unetInputs'] ?? {};
  if (!isPlainObject(ui)) throw studyConfigError('unetInputs', `must be a mapping {dir, count}, got ${show(ui)}`, file);
  checkKeys('unetInputs', ui, ['dir', 'count'], file);
  out.unetInputs = { count: int('unetInputs.count', ui['count'] ?? 4, 1, 100000, file) };
  if (ui['dir'] !== undefined) out.unetInputs.dir = path.resolve(baseDir, str('unetInputs.dir', ui['dir'], file));

  const variants = d['variants'];
  if (!Array.isArray(variants) || variants.length === 0) throw studyConfigError('variants', `must be a non-empty list of {name, plan}, got ${show(variants)}`, file);
  const seen = new Set<string>();
  out.variants = variants.map((v, i) => {
    const where = `variants[${i}]`;
    if (!isPlainObject(v)) throw studyConfigError(where, `must be a mapping {name, plan}, got ${show(v)}`, file);
    checkKeys(where, v, ['name', 'label', 'plan'], file);
    const name = str(`${where}.name`, v['name'], file);
    if (!NAME.test(name)) throw studyConfigError(`${where}.name`, `${show(name)} must be 1-80 letters, digits, '.', '_' or '-' (it names a folder)`, file);
    if (name === 'baseline') throw studyConfigError(`${where}.name`, '"baseline" is the uncompressed pipeline; pick another name', file);
    if (seen.has(name)) throw studyConfigError(`${where}.name`, `${show(name)} is used twice`, file);
    seen.add(name);
    const label = v['label'] === undefined ? name : str(`${where}.label`, v['label'], file);
    let plan = v['plan'];
    if (typeof plan === 'string') plan = readDataFile(path.resolve(baseDir, plan));
    if (!isPlainObject(plan) || !Array.isArray(plan['steps'])) throw studyConfigError(`${where}.plan`, `must be a compress plan {steps: [...]} (or a plan file path), got ${show(plan)}`, file);
    // Calibrated steps get the study's calibration folder at run time; validate them with a placeholder.
    const steps = (plan['steps'] as unknown[]).map((s) => {
      if (!isPlainObject(s)) return s;
      const copy: Record<string, unknown> = { ...s };
      if (typeof copy['calibration'] === 'string') copy['calibration'] = path.resolve(baseDir, copy['calibration']);
      return copy;
    });
    try {
      compressPlanFromData({ steps: steps.map((s) => (isPlainObject(s) && isLayerwiseStep(s) && s['calibration'] === undefined ? { ...s, calibration: '(study calibration)' } : s)) }, baseDir);
    } catch (e) {
      throw studyConfigError(`${where}.plan`, (e as Error).message, file);
    }
    return { name, label, plan: { steps: steps as Record<string, unknown>[] } };
  });
  return out;
}

export function isLayerwiseStep(step: Record<string, unknown>): boolean {
  return typeof step['api'] === 'string' && ['sparsegpt', 'sparse_gpt', 'gptq'].includes(step['api'].trim());
}

/** Reads a YAML / JSON study config file (relative paths resolve against its folder). */
export function loadStudyConfig(file: string, options: Omit<ParseStudyOptions, 'file' | 'baseDir'> = {}): StudyConfig {
  const data = readDataFile(file);
  return parseStudyConfig(data, { ...options, file, baseDir: path.dirname(path.resolve(file)) });
}

/** The config as data (what study.json records). */
export function studyConfigToData(c: StudyConfig): Record<string, unknown> {
  return JSON.parse(JSON.stringify(c)) as Record<string, unknown>;
}
