/**
 * Timestep spacings and sigma interpolation as diffusers 0.25 computes them with numpy (float64 unless a
 * `dtype=np.float32` says otherwise): the NumPy primitives are reproduced exactly (linspace's `i*step + start` with
 * the last value set to `stop`, round-half-to-even, arange's `start + i*delta`, interp's `slope*(x − x_j) + y_j`).
 */
import { ConfigError } from '../../errors.js';

export const TIMESTEP_SPACINGS = ['linspace', 'leading', 'trailing'] as const;
export type TimestepSpacing = (typeof TIMESTEP_SPACINGS)[number];

/** `np.linspace(start, stop, num)` (float64, endpoint=True). */
export function npLinspace(start: number, stop: number, num: number): number[] {
  if (num === 1) return [start];
  const div = num - 1;
  const delta = stop - start;
  const step = delta / div;
  const out: number[] = [];
  for (let i = 0; i < num; i++) out.push(step === 0 ? (i / div) * delta + start : i * step + start);
  out[num - 1] = stop;
  return out;
}

/** `np.round`: half to even. */
export function npRound(x: number): number {
  const r = Math.round(x);
  // Math.round rounds .5 up; numpy rounds ties to the even neighbour.
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** `np.arange(start, stop, step)` for float steps: length ceil((stop − start) / step), values start + i·delta. */
export function npArange(start: number, stop: number, step: number): number[] {
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const delta = start + step - start;
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(i === 0 ? start : start + i * delta);
  return out;
}

/** `np.interp(x, arange(len(fp)), fp)` in float64. */
export function npInterpIndex(x: number, fp: ArrayLike<number>): number {
  const n = fp.length;
  if (x <= 0) return fp[0]!;
  if (x >= n - 1) return fp[n - 1]!;
  const j = Math.floor(x);
  const slope = (fp[j + 1]! - fp[j]!) / 1;
  return slope * (x - j) + fp[j]!;
}

/**
 * Integer timesteps in ascending order for PNDM / DDIM (diffusers: linspace `np.linspace(0, N-1, n).round()`,
 * leading `arange(n) * (N // n) + steps_offset`, trailing `round(arange(N, 0, -N/n))[::-1] - 1`).
 */
export function integerTimestepsAscending(spacing: TimestepSpacing, numTrain: number, n: number, stepsOffset: number): number[] {
  switch (spacing) {
    case 'linspace':
      return npLinspace(0, numTrain - 1, n).map(npRound);
    case 'leading': {
      const ratio = Math.floor(numTrain / n);
      return Array.from({ length: n }, (_, i) => i * ratio + stepsOffset);
    }
    case 'trailing':
      return npArange(numTrain, 0, -numTrain / n).map(npRound).reverse().map(t => t - 1);
  }
}

/**
 * Float32 timesteps in descending order for Euler / Euler-ancestral / LMS (diffusers: linspace
 * `np.linspace(0, N-1, n, dtype=float32)[::-1]`, leading `(arange(n) * (N // n)).round()[::-1] + steps_offset`,
 * trailing `arange(N, 0, -N/n).round() - 1`).
 */
export function floatTimestepsDescending(spacing: TimestepSpacing, numTrain: number, n: number, stepsOffset: number): number[] {
  switch (spacing) {
    case 'linspace':
      return npLinspace(0, numTrain - 1, n).map(Math.fround).reverse();
    case 'leading': {
      const ratio = Math.floor(numTrain / n);
      return Array.from({ length: n }, (_, i) => Math.fround(i * ratio + stepsOffset)).reverse();
    }
    case 'trailing':
      return npArange(numTrain, 0, -numTrain / n).map(t => Math.fround(npRound(t) - 1));
  }
}

/** Karras et al. (2022) sigmas: ρ = 7 interpolation between sigma_max and sigma_min (float64, as numpy). */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number): number[] {
  const rho = 7.0;
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  return npLinspace(0, 1, n).map(r => (maxInv + r * (minInv - maxInv)) ** rho);
}

/** diffusers' `_sigma_to_t`: fractional timestep of a sigma by interpolating in log-sigma (logSigmas ascending t). */
export function sigmaToT(sigma: number, logSigmas: ArrayLike<number>): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  // low_idx = last index with log_sigma - log_sigmas[i] >= 0 (cumsum(...).argmax()), clipped to len - 2.
  let count = 0;
  let firstMax = 0;
  let best = -1;
  for (let i = 0; i < logSigmas.length; i++) {
    if (logSigma - logSigmas[i]! >= 0) count++;
    if (count > best) {
      best = count;
      firstMax = i;
    }
  }
  const lowIdx = Math.min(firstMax, logSigmas.length - 2);
  const highIdx = lowIdx + 1;
  const low = logSigmas[lowIdx]!;
  const high = logSigmas[highIdx]!;
  let w = (low - logSigma) / (low - high);
  w = Math.min(Math.max(w, 0), 1);
  return (1 - w) * lowIdx + w * highIdx;
}

/** numInferenceSteps must be an integer in [1, num_train_timesteps]. */
export function checkStepCount(scheduler: string, n: number, numTrain: number): void {
  if (!Number.isInteger(n) || n < 1 || n > numTrain) {
    throw new ConfigError(`${scheduler}: number of inference steps must be an integer in [1, ${numTrain}] (num_train_timesteps), got ${n}`);
  }
}
