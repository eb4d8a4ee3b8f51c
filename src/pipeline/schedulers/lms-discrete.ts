/**
 * LMSDiscreteScheduler (diffusers 0.25): linear multistep (order ≤ 4) on the probability-flow ODE in σ.
 * The coefficient of the j-th past derivative is ∫_{σ_i}^{σ_{i+1}} ∏_{k≠j} (τ − σ_{i−k}) / (σ_{i−j} − σ_{i−k}) dτ.
 * diffusers integrates it with scipy's `quad`; the integrand is a polynomial of degree ≤ 3, so 5-point
 * Gauss–Legendre here is exact up to float64 rounding. Tensor math in float32.
 */
import { UnsupportedError } from '../../errors.js';
import { ConfigReader, type SchedulerConfig } from './config.js';
import { noiseSchedule, sigmasFromAlphasCumprod } from './betas.js';
import { checkSameLength, f32, predictionType, requireTimesteps, stepIndexOf } from './common.js';
import { discreteSigmaSchedule, kInitNoiseSigma, kPredOriginal, kScaleInput } from './sigma-schedule.js';
import { TIMESTEP_SPACINGS, checkStepCount, type TimestepSpacing } from './timesteps.js';
import type { PredictionType, Scheduler, StepOptions } from './types.js';

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

export class LMSDiscreteScheduler implements Scheduler {
  readonly name = NAME;
  readonly order = 1;
  timesteps: number[] = [];
  sigmas: Float64Array = new Float64Array(0);

  private readonly numTrain: number;
  private readonly trainSigmas: Float32Array;
  private readonly spacing: TimestepSpacing;
  private readonly stepsOffset: number;
  private readonly prediction: PredictionType;
  private readonly karras: boolean;
  private derivatives: Float32Array[] = [];
  private stepIndex: number | undefined;

  constructor(config: SchedulerConfig) {
    const cfg = new ConfigReader(config, NAME);
    const schedule = noiseSchedule(cfg);
    this.numTrain = schedule.numTrainTimesteps;
    this.trainSigmas = sigmasFromAlphasCumprod(schedule.alphasCumprod);
    this.prediction = predictionType(cfg, NAME, ['epsilon', 'v_prediction', 'sample']);
    this.spacing = cfg.choice('timestep_spacing', 'linspace', TIMESTEP_SPACINGS);
    this.stepsOffset = cfg.int('steps_offset', 0, 0);
    this.karras = cfg.bool('use_karras_sigmas', false);
  }

  /** Before setTimesteps diffusers' sigmas are the whole training schedule; the same maximum is used here. */
  get initNoiseSigma(): number {
    return kInitNoiseSigma(this.sigmas.length > 0 ? this.sigmas : Float64Array.from(this.trainSigmas), this.spacing);
  }

  setTimesteps(numInferenceSteps: number): void {
    checkStepCount(NAME, numInferenceSteps, this.numTrain);
    const s = discreteSigmaSchedule({
      trainSigmas: this.trainSigmas, spacing: this.spacing, numTrain: this.numTrain, steps: numInferenceSteps,
      stepsOffset: this.stepsOffset, karras: this.karras,
    });
    this.sigmas = s.sigmas;
    this.timesteps = s.timesteps;
    this.derivatives = [];
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
    const i = this.indexFor(timestep);
    if (i + 1 >= this.sigmas.length) throw new UnsupportedError(`${NAME}: step called more times than there are timesteps`);
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
