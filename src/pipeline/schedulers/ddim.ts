/**
 * DDIMScheduler (diffusers 0.25), deterministic (eta = 0, what the Stable Diffusion pipelines pass):
 * x_{t−1} = sqrt(ᾱ_{t−1}) · x̂_0 + sqrt(1 − ᾱ_{t−1}) · ε̂. Tensor math in float32, as torch does it.
 */
import { UnsupportedError } from '../../errors.js';
import { AlphaScheduler } from './alpha-scheduler.js';
import type { SchedulerConfig } from './config.js';
import { checkSameLength, f32, requireTimesteps } from './common.js';
import type { StepOptions } from './types.js';

const NAME = 'DDIMScheduler';

export class DDIMScheduler extends AlphaScheduler {
  private readonly clipSample: boolean;
  private readonly clipSampleRange: number;

  constructor(config: SchedulerConfig) {
    super(NAME, config, { rescaleKey: true, setAlphaToOne: true, predictions: ['epsilon', 'v_prediction', 'sample'] });
    const cfg = this.cfg;
    this.clipSample = cfg.bool('clip_sample', true);
    this.clipSampleRange = cfg.number('clip_sample_range', 1.0, v => v > 0, 'a positive number');
    cfg.number('sample_max_value', 1.0, v => v > 0, 'a positive number');
    cfg.number('dynamic_thresholding_ratio', 0.995, v => v > 0 && v <= 1, 'a number in (0, 1]');
    if (cfg.bool('thresholding', false)) throw new UnsupportedError(`${NAME}: config "thresholding" = true (dynamic thresholding, for pixel-space models) is not supported`);
  }

  setTimesteps(numInferenceSteps: number): void {
    this.timesteps = this.ascendingTimesteps(numInferenceSteps).reverse();
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, _options?: StepOptions): Float32Array {
    requireTimesteps(NAME, this.timesteps);
    checkSameLength(NAME, 'modelOutput', modelOutput, sample);
    const prevTimestep = timestep - Math.floor(this.numTrain / this.numInferenceSteps);
    const at = this.alphasCumprod[timestep];
    if (at === undefined) throw new UnsupportedError(`${NAME}: timestep ${timestep} is outside [0, ${this.numTrain})`);
    const ap = prevTimestep >= 0 ? this.alphasCumprod[prevTimestep]! : this.finalAlphaCumprod;
    const bt = f32(1 - at);
    const sa = f32(Math.sqrt(at));
    const sb = f32(Math.sqrt(bt));
    // eta = 0: std_dev_t = 0, so the direction coefficient is sqrt(1 − ᾱ_prev − 0²).
    const dirCoeff = f32(Math.sqrt(f32(f32(1 - ap) - 0)));
    const sap = f32(Math.sqrt(ap));
    const n = sample.length;
    const out = new Float32Array(n);
    const lo = -this.clipSampleRange;
    const hi = this.clipSampleRange;
    for (let i = 0; i < n; i++) {
      const x = sample[i]!;
      const m = modelOutput[i]!;
      let x0: number;
      let eps: number;
      if (this.prediction === 'epsilon') {
        x0 = f32(f32(x - f32(sb * m)) / sa);
        eps = m;
      } else if (this.prediction === 'sample') {
        x0 = m;
        eps = f32(f32(x - f32(sa * x0)) / sb);
      } else {
        x0 = f32(f32(sa * x) - f32(sb * m));
        eps = f32(f32(sa * m) + f32(sb * x));
      }
      if (this.clipSample) x0 = Math.min(Math.max(x0, lo), hi);
      out[i] = f32(f32(sap * x0) + f32(dirCoeff * eps));
    }
    return out;
  }
}
