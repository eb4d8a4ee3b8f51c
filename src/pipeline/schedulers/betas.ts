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

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** The float32 next to `r` (a float32 value) in the direction of `dir`. */
function nextF32(r: number, dir: number): number {
  if (r === 0) return dir > 0 ? 2 ** -149 : -(2 ** -149);
  F32[0] = r;
  U32[0] += (r > 0) === (dir > 0) ? 1 : -1;
  return F32[0]!;
}

/**
 * fma(a, b, c) rounded once to float32, for float32 a, b, c: torch's CPU kernels are compiled with FMA contraction,
 * so `start + step * idx` is one fused operation there. a·b is exact in double; the sum is exact as s + e
 * (TwoSum), and a tie of the float32 rounding of s is broken by the sign of e.
 */
export function fmaF32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const bb = s - p;
  const e = (p - (s - bb)) + (c - bb);
  const r = f(s);
  if (e === 0 || r === s) return r;
  const d = s - r;
  const other = nextF32(r, d);
  if (s !== (r + other) / 2) return r;
  return Math.sign(e) === Math.sign(d) ? other : r;
}

/**
 * `torch.linspace(start, end, steps, dtype=float32)` as torch's CPU kernel computes it: step in float32, values
 * from the start for the first half and from the end for the second, vectorised in blocks of 8 (AVX2) where each
 * block's first value is `fma(step, idx, start)` (or `fma(−step, steps−1−idx, end)`) and the lanes add k·step to it
 * with FMA; the tail is scalar. Matches the fixture sigmas of diffusers 0.25 / torch 1.13 bit for bit.
 */
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
  const base = (idx: number) => (idx < halfway ? fmaF32(step, idx, s) : fmaF32(-step, steps - idx - 1, e));
  const LANES = 8;
  let i = 0;
  // cpu_serial_kernel_vec: two vectors per iteration while a full pair fits, then the scalar loop.
  for (; i + 2 * LANES <= steps; i += 2 * LANES) {
    for (const at of [i, i + LANES]) {
      const b = base(at);
      out[at] = b;
      for (let k = 1; k < LANES; k++) out[at + k] = fmaF32(k, step, b);
    }
  }
  for (; i < steps; i++) out[i] = base(i);
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
