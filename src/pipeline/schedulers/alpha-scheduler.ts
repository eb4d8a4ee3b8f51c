/**
 * The setup the integer-timestep ᾱ schedulers (DDIM, PNDM) share in diffusers 0.25: ᾱ from the betas, the
 * "final" ᾱ before the first timestep, the timestep spacing (default leading) and an unscaled model input.
 * Subclasses add their own config keys and implement setTimesteps (from `ascendingTimesteps`) and `step`.
 */
import { ConfigReader, type SchedulerConfig } from './config.js';
import { noiseSchedule } from './betas.js';
import { predictionType } from './common.js';
import { TIMESTEP_SPACINGS, checkStepCount, integerTimestepsAscending, type TimestepSpacing } from './timesteps.js';
import type { PredictionType, Scheduler, StepOptions } from './types.js';

export interface AlphaSchedulerOptions {
  /** Whether the scheduler reads `rescale_betas_zero_snr` (DDIM does, PNDM does not). */
  rescaleKey: boolean;
  /** The default of `set_alpha_to_one` (DDIM true, PNDM false). */
  setAlphaToOne: boolean;
  /** The prediction types this scheduler implements in diffusers. */
  predictions: readonly PredictionType[];
}

export abstract class AlphaScheduler implements Scheduler {
  readonly order = 1;
  readonly initNoiseSigma = 1.0;
  readonly sigmas: Float64Array = new Float64Array(0);
  timesteps: number[] = [];

  protected readonly cfg: ConfigReader;
  protected readonly numTrain: number;
  protected readonly alphasCumprod: Float32Array;
  /** ᾱ "before" the first timestep: 1 with `set_alpha_to_one`, else ᾱ_0. */
  protected readonly finalAlphaCumprod: number;
  protected readonly prediction: PredictionType;
  protected readonly spacing: TimestepSpacing;
  protected readonly stepsOffset: number;
  protected numInferenceSteps = 0;

  protected constructor(readonly name: string, config: SchedulerConfig, o: AlphaSchedulerOptions) {
    const cfg = new ConfigReader(config, name);
    this.cfg = cfg;
    const schedule = noiseSchedule(cfg, { rescaleKey: o.rescaleKey });
    this.numTrain = schedule.numTrainTimesteps;
    this.alphasCumprod = schedule.alphasCumprod;
    this.finalAlphaCumprod = cfg.bool('set_alpha_to_one', o.setAlphaToOne) ? 1.0 : this.alphasCumprod[0]!;
    this.prediction = predictionType(cfg, name, o.predictions);
    this.spacing = cfg.choice('timestep_spacing', 'leading', TIMESTEP_SPACINGS);
    this.stepsOffset = cfg.int('steps_offset', 0, 0);
  }

  /** Checks and records the step count; the integer timesteps in ascending order. */
  protected ascendingTimesteps(numInferenceSteps: number): number[] {
    checkStepCount(this.name, numInferenceSteps, this.numTrain);
    this.numInferenceSteps = numInferenceSteps;
    return integerTimestepsAscending(this.spacing, this.numTrain, numInferenceSteps, this.stepsOffset);
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return Float32Array.from(sample);
  }

  abstract setTimesteps(numInferenceSteps: number): void;
  abstract step(modelOutput: Float32Array, timestep: number, sample: Float32Array, options?: StepOptions): Float32Array;
}
