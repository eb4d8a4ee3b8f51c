/**
 * EulerDiscreteScheduler (diffusers 0.25; Karras et al. 2022, Algorithm 2 without churn):
 * x_{i+1} = x_i + (x_i − x̂_0)/σ_i · (σ_{i+1} − σ_i). SDXL base's default scheduler. Tensor math in float32.
 */
import { UnsupportedError } from '../../errors.js';
import type { SchedulerConfig } from './config.js';
import { checkSameLength, f32 } from './common.js';
import { kPredOriginal } from './sigma-schedule.js';
import { KDiffusionScheduler } from './k-scheduler.js';
import type { StepOptions } from './types.js';

const NAME = 'EulerDiscreteScheduler';

export class EulerDiscreteScheduler extends KDiffusionScheduler {
  private readonly interpolation: 'linear' | 'log_linear';
  private readonly karras: boolean;
  private readonly sigmaMin: number | undefined;
  private readonly sigmaMax: number | undefined;
  private readonly continuousV: boolean;

  constructor(config: SchedulerConfig) {
    super(NAME, config, { predictions: ['epsilon', 'v_prediction', 'sample', 'original_sample'], rescaleKey: true });
    const cfg = this.cfg;
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

  setTimesteps(numInferenceSteps: number): void {
    const s = this.sigmaSchedule(numInferenceSteps, {
      interpolation: this.interpolation, karras: this.karras, sigmaMin: this.sigmaMin, sigmaMax: this.sigmaMax,
      karrasTimestepsFloat32: true,
    });
    this.sigmas = s.sigmas;
    // EDM-style continuous timesteps for v-prediction models: t = 0.25 · ln σ.
    this.timesteps = this.continuousV ? Array.from(s.sigmas.subarray(0, s.sigmas.length - 1), sg => f32(0.25 * f32(Math.log(sg)))) : s.timesteps;
    this.stepIndex = undefined;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, _options?: StepOptions): Float32Array {
    checkSameLength(NAME, 'modelOutput', modelOutput, sample);
    const i = this.stepIndexFor(timestep);
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
