/** Small helpers shared by the schedulers. */
import { ConfigError, UnsupportedError } from '../../errors.js';
import type { ConfigReader } from './config.js';
import { PREDICTION_TYPES, type PredictionType } from './types.js';

export const f32 = Math.fround;

/** Model output, sample (and noise) must have the same length. */
export function checkSameLength(scheduler: string, what: string, a: Float32Array, sample: Float32Array): void {
  if (a.length !== sample.length) {
    throw new ConfigError(`${scheduler}.step: ${what} has ${a.length} elements but the sample has ${sample.length}`);
  }
}

/**
 * diffusers' `_init_step_index`: the index of `timestep` in the schedule; if it occurs twice, the second one
 * (so a schedule that repeats its first timestep does not skip a sigma). `fallbackLast`: DPM-Solver uses the last
 * index for an unknown timestep; the others fail.
 */
export function stepIndexOf(scheduler: string, timesteps: readonly number[], timestep: number, fallbackLast = false): number {
  const hits: number[] = [];
  timesteps.forEach((t, i) => {
    if (t === timestep) hits.push(i);
  });
  if (hits.length > 1) return hits[1]!;
  if (hits.length === 1) return hits[0]!;
  if (fallbackLast && timesteps.length > 0) return timesteps.length - 1;
  throw new ConfigError(`${scheduler}: timestep ${timestep} is not in the schedule [${timesteps.slice(0, 4).join(', ')}${timesteps.length > 4 ? ', …' : ''}] (call setTimesteps first and pass its timesteps)`);
}

export function requireTimesteps(scheduler: string, timesteps: readonly number[]): void {
  if (timesteps.length === 0) throw new ConfigError(`${scheduler}: call setTimesteps(n) before scaleModelInput/step`);
}

/** prediction_type, restricted to what this scheduler implements in diffusers. */
export function predictionType(cfg: ConfigReader, scheduler: string, supported: readonly PredictionType[]): PredictionType {
  const p = cfg.choice('prediction_type', 'epsilon', PREDICTION_TYPES);
  if (!supported.includes(p)) throw new UnsupportedError(`${scheduler}: prediction_type "${p}" is not supported by this scheduler (diffusers raises too); use ${supported.join(' or ')}`);
  return p;
}
