/**
 * The sigma schedule of the k-diffusion style schedulers (Euler, Euler-ancestral, LMS) in diffusers 0.25:
 * float32 timesteps, σ interpolated at them from the train-time sigmas (or Karras / log-linear), a final 0.
 */
import { f32 } from './common.js';
import { torchLinspaceF32 } from './betas.js';
import { floatTimestepsDescending, karrasSigmas, npInterpIndex, sigmaToT, type TimestepSpacing } from './timesteps.js';

export interface SigmaScheduleOptions {
  trainSigmas: Float32Array; // σ_t for t = 0 … N−1 (float32)
  spacing: TimestepSpacing;
  numTrain: number;
  steps: number;
  stepsOffset: number;
  interpolation?: 'linear' | 'log_linear';
  karras?: boolean;
  sigmaMin?: number | undefined;
  sigmaMax?: number | undefined;
  /** Karras timesteps stay float64 (LMS) or are cast to float32 (Euler). */
  karrasTimestepsFloat32?: boolean;
}

/** Timesteps and sigmas (float32 values, the final 0 appended). */
export function discreteSigmaSchedule(o: SigmaScheduleOptions): { timesteps: number[]; sigmas: Float64Array } {
  let timesteps = floatTimestepsDescending(o.spacing, o.numTrain, o.steps, o.stepsOffset);
  let sigmas: number[];
  if ((o.interpolation ?? 'linear') === 'linear') {
    sigmas = timesteps.map(t => npInterpIndex(t, o.trainSigmas));
  } else {
    // diffusers: torch.linspace(log σ_min, log σ_max, n + 1).exp() — ascending and one longer than the
    // timesteps; reproduced as it is.
    const lo = f32(Math.log(o.trainSigmas[o.trainSigmas.length - 1]!));
    const hi = f32(Math.log(o.trainSigmas[0]!));
    sigmas = Array.from(torchLinspaceF32(lo, hi, o.steps + 1), v => f32(Math.exp(v)));
  }
  if (o.karras) {
    const logSigmas = o.trainSigmas.map(s => f32(Math.log(s)));
    sigmas = karrasSigmas(o.sigmaMin ?? sigmas[sigmas.length - 1]!, o.sigmaMax ?? sigmas[0]!, o.steps);
    timesteps = sigmas.map(s => sigmaToT(s, logSigmas));
    if (o.karrasTimestepsFloat32) timesteps = timesteps.map(f32);
  }
  const out = new Float64Array(sigmas.length + 1);
  sigmas.forEach((s, i) => { out[i] = f32(s); });
  return { timesteps, sigmas: out };
}

/** init_noise_sigma: max σ for linspace/trailing spacing, sqrt(max σ² + 1) for leading (float32). */
export function kInitNoiseSigma(sigmas: Float64Array, spacing: TimestepSpacing): number {
  let max = 0;
  for (const s of sigmas) if (s > max) max = s;
  if (spacing === 'linspace' || spacing === 'trailing') return max;
  return f32(Math.sqrt(f32(f32(max * max) + 1)));
}

/** sample / sqrt(σ² + 1), in float32. */
export function kScaleInput(sample: Float32Array, sigma: number): Float32Array {
  const d = f32(Math.sqrt(f32(f32(sigma * sigma) + 1)));
  const out = new Float32Array(sample.length);
  for (let i = 0; i < sample.length; i++) out[i] = f32(sample[i]! / d);
  return out;
}

/** x̂_0 from the model output at σ for the k-diffusion schedulers (float32 ops as diffusers). */
export function kPredOriginal(prediction: string, modelOutput: Float32Array, sample: Float32Array, sigma: number): Float32Array {
  const n = sample.length;
  const out = new Float32Array(n);
  if (prediction === 'epsilon') {
    for (let i = 0; i < n; i++) out[i] = f32(sample[i]! - f32(sigma * modelOutput[i]!));
  } else if (prediction === 'v_prediction') {
    const s2p1 = f32(f32(sigma * sigma) + 1);
    const cOut = f32(-sigma / f32(Math.sqrt(s2p1)));
    for (let i = 0; i < n; i++) out[i] = f32(f32(modelOutput[i]! * cOut) + f32(sample[i]! / s2p1));
  } else {
    out.set(modelOutput);
  }
  return out;
}
