/**
 * EulerAncestralDiscreteScheduler (diffusers 0.25): an Euler step down to σ_down, then fresh noise of std σ_up,
 * with σ_up² = σ_to²(σ_from² − σ_to²)/σ_from² and σ_down² = σ_to² − σ_up². Tensor math in float32.
 *
 * The noise: `step(…, { noise })` uses the given array (diffusers draws it from torch's generator, so this is how
 * a diffusers trajectory is reproduced); otherwise `{ rng }` (a NumpyRandomState) supplies `randn(n)`, which is
 * what this package's generation uses for a seeded run. One of the two is required.
 */
import { ConfigError } from '../../errors.js';
import type { SchedulerConfig } from './config.js';
import { checkSameLength, f32 } from './common.js';
import { kPredOriginal } from './sigma-schedule.js';
import { KDiffusionScheduler } from './k-scheduler.js';
import type { StepOptions } from './types.js';

const NAME = 'EulerAncestralDiscreteScheduler';

export class EulerAncestralDiscreteScheduler extends KDiffusionScheduler {
  constructor(config: SchedulerConfig) {
    super(NAME, config, { predictions: ['epsilon', 'v_prediction'], rescaleKey: true });
  }

  setTimesteps(numInferenceSteps: number): void {
    const s = this.sigmaSchedule(numInferenceSteps);
    this.sigmas = s.sigmas;
    this.timesteps = s.timesteps;
    this.stepIndex = undefined;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, options: StepOptions = {}): Float32Array {
    checkSameLength(NAME, 'modelOutput', modelOutput, sample);
    const i = this.stepIndexFor(timestep);
    let noise = options.noise;
    if (noise) checkSameLength(NAME, 'noise', noise, sample);
    else if (options.rng) noise = Float32Array.from(options.rng.randn(sample.length));
    else throw new ConfigError(`${NAME}.step needs { noise } or { rng } for its ancestral noise`);
    const sigmaFrom = this.sigmas[i]!;
    const sigmaTo = this.sigmas[i + 1]!;
    const from2 = f32(sigmaFrom * sigmaFrom);
    const to2 = f32(sigmaTo * sigmaTo);
    const sigmaUp = f32(Math.sqrt(f32(f32(to2 * f32(from2 - to2)) / from2)));
    const sigmaDown = f32(Math.sqrt(Math.max(0, f32(to2 - f32(sigmaUp * sigmaUp)))));
    const x0 = kPredOriginal(this.prediction, modelOutput, sample, sigmaFrom);
    const dt = f32(sigmaDown - sigmaFrom);
    const out = new Float32Array(sample.length);
    for (let k = 0; k < sample.length; k++) {
      const derivative = f32(f32(sample[k]! - x0[k]!) / sigmaFrom);
      const prev = f32(sample[k]! + f32(derivative * dt));
      out[k] = f32(prev + f32(noise[k]! * sigmaUp));
    }
    this.stepIndex = i + 1;
    return out;
  }
}
