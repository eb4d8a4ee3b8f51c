/**
 * The setup the k-diffusion style schedulers (Euler, Euler-ancestral, LMS) share in diffusers 0.25: train-time
 * sigmas from ᾱ, the timestep spacing, the step index, `init_noise_sigma` and `scale_model_input`. Subclasses add
 * their own config keys, fill `sigmas`/`timesteps` in setTimesteps and implement `step`.
 */
import { UnsupportedError } from '../../errors.js';
import { ConfigReader, type SchedulerConfig } from './config.js';
import { noiseSchedule, sigmasFromAlphasCumprod } from './betas.js';
import { predictionType, requireTimesteps, stepIndexOf } from './common.js';
import { discreteSigmaSchedule, kInitNoiseSigma, kScaleInput, type SigmaScheduleOptions } from './sigma-schedule.js';
import { TIMESTEP_SPACINGS, checkStepCount, type TimestepSpacing } from './timesteps.js';
import type { PredictionType, Scheduler, StepOptions } from './types.js';

export interface KSchedulerOptions {
  /** The prediction types this scheduler implements in diffusers. */
  predictions: readonly PredictionType[];
  /** Whether the scheduler reads `rescale_betas_zero_snr` (Euler and Euler-ancestral do, LMS does not). */
  rescaleKey: boolean;
}

export abstract class KDiffusionScheduler implements Scheduler {
  readonly order = 1;
  timesteps: number[] = [];
  sigmas: Float64Array = new Float64Array(0);

  protected readonly cfg: ConfigReader;
  protected readonly numTrain: number;
  protected readonly trainSigmas: Float32Array;
  protected readonly spacing: TimestepSpacing;
  protected readonly stepsOffset: number;
  protected readonly prediction: PredictionType;
  protected stepIndex: number | undefined;

  protected constructor(readonly name: string, config: SchedulerConfig, options: KSchedulerOptions) {
    const cfg = new ConfigReader(config, name);
    this.cfg = cfg;
    const schedule = noiseSchedule(cfg, { rescaleKey: options.rescaleKey });
    this.numTrain = schedule.numTrainTimesteps;
    const ac = Float32Array.from(schedule.alphasCumprod);
    // Zero terminal SNR would make σ_T infinite; diffusers sets ᾱ_T = 2^-24 instead.
    if (schedule.rescaled) ac[ac.length - 1] = 2 ** -24;
    this.trainSigmas = sigmasFromAlphasCumprod(ac);
    this.prediction = predictionType(cfg, name, options.predictions);
    this.spacing = cfg.choice('timestep_spacing', 'linspace', TIMESTEP_SPACINGS);
    this.stepsOffset = cfg.int('steps_offset', 0, 0);
  }

  /** Before setTimesteps diffusers' sigmas are the whole training schedule; the same maximum is used here. */
  get initNoiseSigma(): number {
    return kInitNoiseSigma(this.sigmas.length > 0 ? this.sigmas : Float64Array.from(this.trainSigmas), this.spacing);
  }

  /** Checks the step count and computes the sigma schedule; `extra` adds the scheduler's own options. */
  protected sigmaSchedule(numInferenceSteps: number, extra: Partial<SigmaScheduleOptions> = {}): { timesteps: number[]; sigmas: Float64Array } {
    checkStepCount(this.name, numInferenceSteps, this.numTrain);
    return discreteSigmaSchedule({
      trainSigmas: this.trainSigmas, spacing: this.spacing, numTrain: this.numTrain, steps: numInferenceSteps,
      stepsOffset: this.stepsOffset, ...extra,
    });
  }

  protected indexFor(timestep: number): number {
    requireTimesteps(this.name, this.timesteps);
    if (this.stepIndex === undefined) this.stepIndex = stepIndexOf(this.name, this.timesteps, timestep);
    return this.stepIndex;
  }

  /** The step index for `timestep`, failing once the schedule is used up (σ_{i+1} is needed). */
  protected stepIndexFor(timestep: number): number {
    const i = this.indexFor(timestep);
    if (i + 1 >= this.sigmas.length) throw new UnsupportedError(`${this.name}: step called more times than there are timesteps`);
    return i;
  }

  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    return kScaleInput(sample, this.sigmas[this.indexFor(timestep)]!);
  }

  abstract setTimesteps(numInferenceSteps: number): void;
  abstract step(modelOutput: Float32Array, timestep: number, sample: Float32Array, options?: StepOptions): Float32Array;
}
