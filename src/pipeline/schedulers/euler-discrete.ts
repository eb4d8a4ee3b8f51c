/**
 * EulerDiscreteScheduler (diffusers 0.25; Karras et al. 2022, Algorithm 2 without churn):
 * x_{i+1} = x_i + (x_i − x̂_0)/σ_i · (σ_{i+1} − σ_i). SDXL base's default scheduler. Tensor math in float32.
 */
import { UnsupportedError } from '../../errors.js';
import { ConfigReader, type SchedulerConfig } from './config.js';
import { noiseSchedule, sigmasFromAlphasCumprod } from './betas.js';
import { checkSameLength, f32, predictionType, requireTimesteps, stepIndexOf } from './common.js';
import { discreteSigmaSchedule, kInitNoiseSigma, kPredOriginal, kScaleInput } from './sigma-schedule.js';
import { TIMESTEP_SPACINGS, checkStepCount, type TimestepSpacing } from './timesteps.js';
import type { PredictionType, Scheduler, StepOptions } from './types.js';

const NAME = 'EulerDiscreteScheduler';

export class EulerDiscreteScheduler implements Scheduler {
  readonly name = NAME;
  readonly order = 1;
  timesteps: number[] = [];
  sigmas: Float64Array = new Float64Array(0);

  private readonly numTrain: number;
  private readonly trainSigmas: Float32Array;
  private readonly spacing: TimestepSpacing;
  private readonly stepsOffset: number;
  private readonly prediction: PredictionType;
  private readonly interpolation: 'linear' | 'log_linear';
  private readonly karras: boolean;
  private readonly sigmaMin: number | undefined;
  private readonly sigmaMax: number | undefined;
  private readonly continuousV: boolean;
  private stepIndex: number | undefined;

  constructor(config: SchedulerConfig) {
    const cfg = new ConfigReader(config, NAME);
    const schedule = noiseSchedule(cfg, { rescaleKey: true });
    this.numTrain = schedule.numTrainTimesteps;
    const ac = Float32Array.from(schedule.alphasCumprod);
    // Zero terminal SNR would make σ_T infinite; diffusers sets ᾱ_T = 2^-24 instead.
    if (schedule.rescaled) ac[ac.length - 1] = 2 ** -24;
    this.trainSigmas = sigmasFromAlphasCumprod(ac);
    this.prediction = predictionType(cfg, NAME, ['epsilon', 'v_prediction', 'sample', 'original_sample']);
    this.spacing = cfg.choice('timestep_spacing', 'linspace', TIMESTEP_SPACINGS);
    this.stepsOffset = cfg.int('steps_offset', 0, 0);
    this.interpolation = cfg.choice('interpolation_type', 'linear', ['linear', 'log_linear'] as const);
    this.karras = cfg.bool('use_karras_sigmas', false);
    this.sigmaMin = cfg.optionalNumber('sigma_min', v => v > 0, 'null or a positive number');
    this.sigmaMax = cfg.optionalNumber('sigma_max', v => v > 0, 'null or a positive number');
    const timestepType = cfg.choice('timestep_type', 'discrete', ['discrete', 'continuous'] as const);
    this.continuousV = timestepType === 'continuous' && this.prediction === 'v_prediction';
    if (this.karras && this.interpolation === 'log_linear') {
      throw new UnsupportedError(`${NAME}: use_karras_sigmas with interpolation_type "log_linear" is not supported`);
    }
  }

  /** Before setTimesteps diffusers' sigmas are the whole training schedule; the same maximum is used here. */
  get initNoiseSigma(): number {
    return kInitNoiseSigma(this.sigmas.length > 0 ? this.sigmas : Float64Array.from(this.trainSigmas), this.spacing);
  }

  setTimesteps(numInferenceSteps: number): void {
    checkStepCount(NAME, numInferenceSteps, this.numTrain);
    const s = discreteSigmaSchedule({
      trainSigmas: this.trainSigmas, spacing: this.spacing, numTrain: this.numTrain, steps: numInferenceSteps,
      stepsOffset: this.stepsOffset, interpolation: this.interpolation, karras: this.karras,
      sigmaMin: this.sigmaMin, sigmaMax: this.sigmaMax, karrasTimestepsFloat32: true,
    });
    this.sigmas = s.sigmas;
    // EDM-style continuous timesteps for v-prediction models: t = 0.25 · ln σ.
    this.timesteps = this.continuousV ? Array.from(s.sigmas.subarray(0, s.sigmas.length - 1), sg => f32(0.25 * f32(Math.log(sg)))) : s.timesteps;
    this.stepIndex = undefined;
  }

  private indexFor(timestep: number): number {
    requireTimesteps(NAME, this.timesteps);
    if (this.stepIndex === undefined) this.stepIndex = stepIndexOf(NAME, this.timesteps, timestep);
    return this.stepIndex;
  }

  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    return kScaleInput(sample, this.sigmas[this.indexFor(timestep)]!);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, _options?: StepOptions): Float32Array {
    checkSameLength(NAME, 'modelOutput', modelOutput, sample);
    const i = this.indexFor(timestep);
    if (i + 1 >= this.sigmas.length) throw new UnsupportedError(`${NAME}: step called more times than there are timesteps`);
    const sigma = this.sigmas[i]!;
    const sigmaHat = sigma; // s_churn = 0: γ = 0, σ̂ = σ·(γ + 1)
    const x0 = kPredOriginal(this.prediction, modelOutput, sample, this.prediction === 'epsilon' ? sigmaHat : sigma);
    const dt = f32(this.sigmas[i + 1]! - sigmaHat);
    const out = new Float32Array(sample.length);
    for (let k = 0; k < sample.length; k++) {
      const derivative = f32(f32(sample[k]! - x0[k]!) / sigmaHat);
      out[k] = f32(sample[k]! + f32(derivative * dt));
    }
    this.stepIndex = i + 1;
    return out;
  }
}
