/**
 * LMSDiscreteScheduler (diffusers 0.25): linear multistep (order ≤ 4) on the probability-flow ODE in σ.
 * The coefficient of the j-th past derivative is ∫_{σ_i}^{σ_{i+1}} ∏_{k≠j} (τ − σ_{i−k}) / (σ_{i−j} − σ_{i−k}) dτ.
 * diffusers integrates it with scipy's `quad`; the integrand is a polynomial of degree ≤ 3, so 5-point
 * Gauss–Legendre here is exact up to float64 rounding. Tensor math in float32.
 */
import type { SchedulerConfig } from './config.js';
import { checkSameLength, f32 } from './common.js';
import { kPredOriginal } from './sigma-schedule.js';
import { KDiffusionScheduler } from './k-scheduler.js';
import type { StepOptions } from './types.js';

const NAME = 'LMSDiscreteScheduler';
const LMS_ORDER = 4;

// 5-point Gauss–Legendre nodes and weights on [-1, 1] (exact for polynomials of degree ≤ 9).
const GL_NODES = [0, -0.5384693101056831, 0.5384693101056831, -0.906179845938664, 0.906179845938664];
const GL_WEIGHTS = [0.5688888888888889, 0.47862867049936647, 0.47862867049936647, 0.23692688505618908, 0.23692688505618908];

/** ∫_a^b g(τ) dτ by 5-point Gauss–Legendre. */
export function gaussLegendre5(g: (tau: number) => number, a: number, b: number): number {
  const half = (b - a) / 2;
  const mid = (a + b) / 2;
  let sum = 0;
  for (let k = 0; k < 5; k++) sum += GL_WEIGHTS[k]! * g(mid + half * GL_NODES[k]!);
  return sum * half;
}

export class LMSDiscreteScheduler extends KDiffusionScheduler {
  private readonly karras: boolean;
  private derivatives: Float32Array[] = [];

  constructor(config: SchedulerConfig) {
    super(NAME, config, { predictions: ['epsilon', 'v_prediction', 'sample'], rescaleKey: false });
    this.karras = this.cfg.bool('use_karras_sigmas', false);
  }

  setTimesteps(numInferenceSteps: number): void {
    const s = this.sigmaSchedule(numInferenceSteps, { karras: this.karras });
    this.sigmas = s.sigmas;
    this.timesteps = s.timesteps;
    this.derivatives = [];
    this.stepIndex = undefined;
  }

  /** diffusers' `get_lms_coefficient(order, t, current_order)`. */
  lmsCoefficient(order: number, t: number, currentOrder: number): number {
    const s = this.sigmas;
    const basis = (tau: number) => {
      let prod = 1.0;
      for (let k = 0; k < order; k++) {
        if (k === currentOrder) continue;
        prod *= (tau - s[t - k]!) / (s[t - currentOrder]! - s[t - k]!);
      }
      return prod;
    };
    return gaussLegendre5(basis, s[t]!, s[t + 1]!);
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, _options?: StepOptions): Float32Array {
    checkSameLength(NAME, 'modelOutput', modelOutput, sample);
    const i = this.stepIndexFor(timestep);
    const sigma = this.sigmas[i]!;
    const x0 = kPredOriginal(this.prediction, modelOutput, sample, sigma);
    const n = sample.length;
    const derivative = new Float32Array(n);
    for (let k = 0; k < n; k++) derivative[k] = f32(f32(sample[k]! - x0[k]!) / sigma);
    this.derivatives.push(derivative);
    if (this.derivatives.length > LMS_ORDER) this.derivatives.shift();
    const order = Math.min(i + 1, LMS_ORDER);
    const coeffs = Array.from({ length: order }, (_, j) => f32(this.lmsCoefficient(order, i, j)));
    // sample + Σ_j coeff_j · derivative_{i−j} (newest first), accumulated in float32 from 0.
    const acc = new Float32Array(n);
    for (let j = 0; j < order; j++) {
      const d = this.derivatives[this.derivatives.length - 1 - j]!;
      const c = coeffs[j]!;
      for (let k = 0; k < n; k++) acc[k] = f32(acc[k]! + f32(c * d[k]!));
    }
    const out = new Float32Array(n);
    for (let k = 0; k < n; k++) out[k] = f32(sample[k]! + acc[k]!);
    this.stepIndex = i + 1;
    return out;
  }
}
