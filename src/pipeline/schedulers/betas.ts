/**
 * Noise schedules shared by the schedulers, computed as diffusers 0.25 computes them: betas and ᾱ (alphas_cumprod)
 * are float32 torch tensors, so every step is rounded to float32 here (Math.fround); torch's CPU cumprod
 * accumulates in double and rounds each output, which is reproduced too.
 */
import { ConfigError } from '../../errors.js';
import type { ConfigReader } from './config.js';

const f = Math.fround;

export const BETA_SCHEDULES = ['linear', 'scaled_linear', 'squaredcos_cap_v2'] as const;
export type BetaSchedule = (typeof BETA_SCHEDULES)[number];

/** `torch.linspace(start, end, steps, dtype=float32)` (CPU kernel: from both ends towards the middle, in float32). */
export function torchLinspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) {
    out[0] = start;
    return out;
  }
  const s = f(start);
  const e = f(end);
  const step = f(f(e - s) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) {
    out[i] = i < halfway ? f(s + f(step * i)) : f(e - f(step * (steps - i - 1)));
  }
  return out;
}

/** diffusers' `betas_for_alpha_bar` with the cosine transform (squaredcos_cap_v2), max_beta 0.999. */
export function betasForAlphaBar(numTrainTimesteps: number, maxBeta = 0.999): Float32Array {
  const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2;
  const betas = new Float32Array(numTrainTimesteps);
  for (let i = 0; i < numTrainTimesteps; i++) {
    const t1 = i / numTrainTimesteps;
    const t2 = (i + 1) / numTrainTimesteps;
    betas[i] = Math.min(1 - alphaBar(t2) / alphaBar(t1), maxBeta);
  }
  return betas;
}

/** β from the config keys num_train_timesteps, beta_start, beta_end, beta_schedule, trained_betas. */
export function betasFromConfig(cfg: ConfigReader, numTrainTimesteps: number, defaults: { betaStart: number; betaEnd: number; betaSchedule: BetaSchedule }): Float32Array {
  const trained = cfg.optionalNumberArray('trained_betas');
  const betaStart = cfg.number('beta_start', defaults.betaStart, v => v >= 0 && v < 1, 'a number in [0, 1)');
  const betaEnd = cfg.number('beta_end', defaults.betaEnd, v => v >= 0 && v < 1, 'a number in [0, 1)');
  const schedule = cfg.choice('beta_schedule', defaults.betaSchedule, BETA_SCHEDULES);
  if (trained) {
    // diffusers uses trained_betas as they are; its length then fixes the schedule length.
    if (trained.length !== numTrainTimesteps) {
      throw new ConfigError(`trained_betas has ${trained.length} values but num_train_timesteps is ${numTrainTimesteps}`);
    }
    if (trained.some(b => b < 0 || b >= 1)) throw new ConfigError('trained_betas must all be in [0, 1)');
    return Float32Array.from(trained);
  }
  switch (schedule) {
    case 'linear':
      return torchLinspaceF32(betaStart, betaEnd, numTrainTimesteps);
    case 'scaled_linear': {
      // torch.linspace(beta_start**0.5, beta_end**0.5, N, dtype=float32) ** 2
      const r = torchLinspaceF32(Math.sqrt(betaStart), Math.sqrt(betaEnd), numTrainTimesteps);
      return r.map(x => f(x * x));
    }
    case 'squaredcos_cap_v2':
      return betasForAlphaBar(numTrainTimesteps);
  }
}

/** ᾱ_t = ∏ (1 − β): torch.cumprod on float32 (double accumulator, each output rounded to float32). */
export function alphasCumprod(betas: Float32Array): Float32Array {
  const out = new Float32Array(betas.length);
  let acc = 1;
  for (let i = 0; i < betas.length; i++) {
    acc *= f(1 - betas[i]!);
    out[i] = acc;
  }
  return out;
}

/** diffusers' `rescale_zero_terminal_snr` (Lin et al. 2023, Algorithm 1) in float32: ᾱ_T becomes 0. */
export function rescaleZeroTerminalSnr(betas: Float32Array): Float32Array {
  const ac = alphasCumprod(betas);
  const sqrtAc = ac.map(a => f(Math.sqrt(a)));
  const a0 = sqrtAc[0]!;
  const aT = sqrtAc[sqrtAc.length - 1]!;
  const scale = f(a0 / f(a0 - aT));
  const bar = sqrtAc.map(a => {
    const shifted = f(f(a - aT) * scale);
    return f(shifted * shifted);
  });
  const out = new Float32Array(betas.length);
  out[0] = f(1 - bar[0]!);
  for (let i = 1; i < betas.length; i++) out[i] = f(1 - f(bar[i]! / bar[i - 1]!));
  return out;
}

/** σ_t = sqrt((1 − ᾱ_t) / ᾱ_t), in float32 (train-time sigmas in timestep order). */
export function sigmasFromAlphasCumprod(ac: Float32Array): Float32Array {
  return ac.map(a => f(Math.sqrt(f(f(1 - a) / a))));
}

/** Reads num_train_timesteps, the betas (optionally rescaled to zero terminal SNR) and ᾱ. */
export function noiseSchedule(cfg: ConfigReader, options: { rescaleKey?: boolean } = {}): { numTrainTimesteps: number; betas: Float32Array; alphasCumprod: Float32Array; rescaled: boolean } {
  const numTrainTimesteps = cfg.int('num_train_timesteps', 1000, 1);
  let betas = betasFromConfig(cfg, numTrainTimesteps, { betaStart: 0.0001, betaEnd: 0.02, betaSchedule: 'linear' });
  const rescaled = options.rescaleKey ? cfg.bool('rescale_betas_zero_snr', false) : false;
  if (rescaled) betas = rescaleZeroTerminalSnr(betas);
  return { numTrainTimesteps, betas, alphasCumprod: alphasCumprod(betas), rescaled };
}
