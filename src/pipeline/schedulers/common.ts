/** Small helpers shared by the schedulers. */
import { ConfigError, UnsupportedError } from '../../errors.js';
import type { ConfigReader } from './config.js';
import { noiseSchedule } from './betas.js';
import { TIMESTEP_SPACINGS, type TimestepSpacing } from './timesteps.js';
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

/** The config the integer-timestep ᾱ schedulers (DDIM, PNDM) share. */
export interface AlphaSchedulerSetup {
  numTrain: number;
  alphasCumprod: Float32Array;
  /** ᾱ "before" the first timestep: 1 with `set_alpha_to_one`, else ᾱ_0. */
  finalAlphaCumprod: number;
  prediction: PredictionType;
  spacing: TimestepSpacing;
  stepsOffset: number;
}

/** Reads that shared config; the defaults of `set_alpha_to_one` and `rescale_betas_zero_snr` support differ. */
export function alphaSchedulerSetup(cfg: ConfigReader, scheduler: string, o: { rescaleKey: boolean; setAlphaToOne: boolean; predictions: readonly PredictionType[] }): AlphaSchedulerSetup {
  const schedule = noiseSchedule(cfg, { rescaleKey: o.rescaleKey });
  const alphasCumprod = schedule.alphasCumprod;
  return {
    numTrain: schedule.numTrainTimesteps,
    alphasCumprod,
    finalAlphaCumprod: cfg.bool('set_alpha_to_one', o.setAlphaToOne) ? 1.0 : alphasCumprod[0]!,
    prediction: predictionType(cfg, scheduler, o.predictions),
    spacing: cfg.choice('timestep_spacing', 'leading', TIMESTEP_SPACINGS),
    stepsOffset: cfg.int('steps_offset', 0, 0),
  };
}
