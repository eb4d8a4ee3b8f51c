/**
 * Schedulers with diffusers 0.25 semantics and config keys. `createScheduler(name, config)`: `name` is the diffusers
 * class name ("EulerDiscreteScheduler"), the CLI's short name (pndm | ddim | euler | euler_ancestral | dpmpp | lms)
 * or ml-stable-diffusion's name ("EulerDiscrete");
 * `config` a scheduler_config.json object (unknown keys ignored, as diffusers does).
 */
import { ConfigError, UnsupportedError } from '../../errors.js';
import type { SchedulerConfig } from './config.js';
import { DDIMScheduler } from './ddim.js';
import { DPMSolverMultistepScheduler } from './dpm-solver-multistep.js';
import { EulerAncestralDiscreteScheduler } from './euler-ancestral.js';
import { EulerDiscreteScheduler } from './euler-discrete.js';
import { LMSDiscreteScheduler } from './lms-discrete.js';
import { PNDMScheduler } from './pndm.js';
import type { Scheduler } from './types.js';

export type { Scheduler, StepOptions, PredictionType } from './types.js';
export { parsePythonJson, readSchedulerConfig, type SchedulerConfig } from './config.js';
export { DDIMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler, EulerDiscreteScheduler, LMSDiscreteScheduler, PNDMScheduler };

const CLASSES: Record<string, new (config: SchedulerConfig) => Scheduler> = {
  PNDMScheduler,
  DDIMScheduler,
  EulerDiscreteScheduler,
  EulerAncestralDiscreteScheduler,
  DPMSolverMultistepScheduler,
  LMSDiscreteScheduler,
};

/** CLI short names → diffusers class names. */
export const SCHEDULER_SHORT_NAMES: Readonly<Record<string, string>> = {
  pndm: 'PNDMScheduler',
  ddim: 'DDIMScheduler',
  euler: 'EulerDiscreteScheduler',
  euler_ancestral: 'EulerAncestralDiscreteScheduler',
  dpmpp: 'DPMSolverMultistepScheduler',
  lms: 'LMSDiscreteScheduler',
};

export const SCHEDULER_CLASS_NAMES: readonly string[] = Object.keys(CLASSES);

/**
 * The diffusers class name for a class name, a CLI short name, or ml-stable-diffusion's `--scheduler` name (the
 * class name without "Scheduler", e.g. "DPMSolverMultistep"); undefined if none.
 */
export function schedulerClassNameOf(name: string): string | undefined {
  if (Object.hasOwn(CLASSES, name)) return name;
  if (Object.hasOwn(CLASSES, `${name}Scheduler`)) return `${name}Scheduler`;
  return Object.hasOwn(SCHEDULER_SHORT_NAMES, name) ? SCHEDULER_SHORT_NAMES[name] : undefined;
}

/**
 * A scheduler by name with a diffusers config object. `options.file` (where the config came from, e.g. a
 * scheduler_config.json or pipeline.json) is named in the errors.
 */
export function createScheduler(name: string, config: SchedulerConfig = {}, options: { file?: string } = {}): Scheduler {
  const file = options.file;
  const className = schedulerClassNameOf(name);
  if (!className) {
    throw new ConfigError(`unknown scheduler "${name}": use one of ${[...Object.keys(SCHEDULER_SHORT_NAMES), ...SCHEDULER_CLASS_NAMES].join(', ')}`, { file });
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new ConfigError(`${className}: config must be an object`, { file });
  try {
    return new CLASSES[className]!(config);
  } catch (err) {
    if (file && err instanceof UnsupportedError && !err.file) throw new UnsupportedError(err.message, { file, cause: err });
    if (file && err instanceof ConfigError && !err.file) throw new ConfigError(err.message, { file, cause: err });
    throw err;
  }
}
