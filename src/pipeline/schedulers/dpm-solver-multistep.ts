/**
 * DPMSolverMultistepScheduler (diffusers 0.25): DPM-Solver++ (data prediction, "DPM++ 2M") or DPM-Solver
 * (noise prediction), orders 1–3, midpoint or Heun second-order update, with lower-order final steps for short
 * schedules. Deterministic variants only (the SDE variants draw noise). Tensor math in float32.
 */
import { ConfigError, UnsupportedError } from '../../errors.js';
import { ConfigReader, type SchedulerConfig } from './config.js';
import { noiseSchedule, sigmasFromAlphasCumprod } from './betas.js';
import { checkSameLength, f32, predictionType, requireTimesteps, stepIndexOf } from './common.js';
import { TIMESTEP_SPACINGS, checkStepCount, karrasSigmas, npArange, npInterpIndex, npLinspace, npRound, sigmaToT, type TimestepSpacing } from './timesteps.js';
import type { PredictionType, Scheduler, StepOptions } from './types.js';

const NAME = 'DPMSolverMultistepScheduler';

type Algorithm = 'dpmsolver' | 'dpmsolver++';
type SolverType = 'midpoint' | 'heun';

/** α_t = 1/sqrt(σ² + 1), σ_t = σ·α_t, λ = ln α_t − ln σ_t (float32). */
function alphaSigmaLambda(sigma: number): { alpha: number; sigma: number; lambda: number } {
  const alpha = f32(1 / f32(Math.sqrt(f32(f32(sigma * sigma) + 1))));
  const sigmaT = f32(sigma * alpha);
  return { alpha, sigma: sigmaT, lambda: f32(f32(Math.log(alpha)) - f32(Math.log(sigmaT))) };
}

export class DPMSolverMultistepScheduler implements Scheduler {
  readonly name = NAME;
  readonly order = 1;
  readonly initNoiseSigma = 1.0;
  timesteps: number[] = [];
  sigmas: Float64Array = new Float64Array(0);

  private readonly numTrain: number;
  private readonly alphasCumprod: Float32Array;
  private readonly trainSigmas: Float32Array;
  private readonly lambdaT: Float32Array;
  private readonly solverOrder: number;
  private readonly algorithm: Algorithm;
  private readonly solverType: SolverType;
  private readonly prediction: PredictionType;
  private readonly spacing: TimestepSpacing;
  private readonly stepsOffset: number;
  private readonly lowerOrderFinal: boolean;
  private readonly eulerAtFinal: boolean;
  private readonly karras: boolean;
  private readonly luLambdas: boolean;
  private readonly lambdaMinClipped: number;

  private modelOutputs: (Float32Array | undefined)[] = [];
  private lowerOrderNums = 0;
  private stepIndex: number | undefined;

  constructor(config: SchedulerConfig) {
    const cfg = new ConfigReader(config, NAME);
    const schedule = noiseSchedule(cfg);
    this.numTrain = schedule.numTrainTimesteps;
    this.alphasCumprod = schedule.alphasCumprod;
    this.trainSigmas = sigmasFromAlphasCumprod(this.alphasCumprod);
    // λ_t = ln sqrt(ᾱ) − ln sqrt(1 − ᾱ), only needed for lambda_min_clipped.
    this.lambdaT = this.alphasCumprod.map(a => f32(f32(Math.log(f32(Math.sqrt(a)))) - f32(Math.log(f32(Math.sqrt(f32(1 - a)))))));
    this.solverOrder = cfg.int('solver_order', 2, 1);
    if (this.solverOrder > 3) throw new ConfigError(`${NAME}: config "solver_order" must be 1, 2 or 3, got ${this.solverOrder}`);
    this.prediction = predictionType(cfg, NAME, ['epsilon', 'v_prediction', 'sample']);
    // diffusers maps "deis" to dpmsolver++ and the UniPC solver types to midpoint.
    const algorithm = cfg.choice('algorithm_type', 'dpmsolver++', ['dpmsolver', 'dpmsolver++', 'sde-dpmsolver', 'sde-dpmsolver++', 'deis'] as const);
    if (algorithm === 'sde-dpmsolver' || algorithm === 'sde-dpmsolver++') {
      throw new UnsupportedError(`${NAME}: algorithm_type "${algorithm}" (stochastic) is not supported; use "dpmsolver++" or "dpmsolver"`);
    }
    this.algorithm = algorithm === 'deis' ? 'dpmsolver++' : algorithm;
    const solverType = cfg.choice('solver_type', 'midpoint', ['midpoint', 'heun', 'logrho', 'bh1', 'bh2'] as const);
    this.solverType = solverType === 'heun' ? 'heun' : 'midpoint';
    this.lowerOrderFinal = cfg.bool('lower_order_final', true);
    this.eulerAtFinal = cfg.bool('euler_at_final', false);
    this.karras = cfg.bool('use_karras_sigmas', false);
    this.luLambdas = cfg.bool('use_lu_lambdas', false);
    this.lambdaMinClipped = cfg.number('lambda_min_clipped', -Infinity);
    this.spacing = cfg.choice('timestep_spacing', 'linspace', TIMESTEP_SPACINGS);
    this.stepsOffset = cfg.int('steps_offset', 0, 0);
    cfg.number('sample_max_value', 1.0, v => v > 0, 'a positive number');
    cfg.number('dynamic_thresholding_ratio', 0.995, v => v > 0 && v <= 1, 'a number in (0, 1]');
    if (cfg.bool('thresholding', false)) throw new UnsupportedError(`${NAME}: config "thresholding" = true is not supported`);
    const variance = cfg.optionalChoice('variance_type', ['learned', 'learned_range'] as const);
    if (variance !== undefined) throw new UnsupportedError(`${NAME}: variance_type "${variance}" (models that also predict variance) is not supported`);
  }

  setTimesteps(numInferenceSteps: number): void {
    checkStepCount(NAME, numInferenceSteps, this.numTrain);
    const n = numInferenceSteps;
    // Clip the smallest λ for stability: last_timestep = N − searchsorted(flip(λ), lambda_min_clipped).
    const flipped = Array.from(this.lambdaT).reverse();
    let clippedIdx = flipped.findIndex(l => l >= this.lambdaMinClipped);
    if (clippedIdx < 0) clippedIdx = flipped.length;
    const last = this.numTrain - clippedIdx;
    let timesteps: number[];
    switch (this.spacing) {
      case 'linspace':
        timesteps = npLinspace(0, last - 1, n + 1).map(npRound).reverse().slice(0, -1);
        break;
      case 'leading': {
        const ratio = Math.floor(last / (n + 1));
        timesteps = Array.from({ length: n + 1 }, (_, i) => i * ratio).reverse().slice(0, -1).map(t => t + this.stepsOffset);
        break;
      }
      case 'trailing':
        timesteps = npArange(last, 0, -this.numTrain / n).map(t => npRound(t) - 1);
        break;
    }
    const logSigmas = this.trainSigmas.map(s => f32(Math.log(s)));
    let sigmas: number[];
    if (this.karras) {
      const ascending = Array.from(this.trainSigmas).reverse(); // np.flip: in_sigmas[0] = σ_max
      sigmas = karrasSigmas(ascending[ascending.length - 1]!, ascending[0]!, n);
      timesteps = sigmas.map(s => npRound(sigmaToT(s, logSigmas)));
      sigmas.push(sigmas[sigmas.length - 1]!);
    } else if (this.luLambdas) {
      // Lu et al.: λ uniform between λ_max and λ_min (diffusers' _convert_to_lu with ρ = 1, on ln σ).
      const lambdas = Array.from(logSigmas).reverse();
      const lmin = lambdas[lambdas.length - 1]!;
      const lmax = lambdas[0]!;
      sigmas = npLinspace(0, 1, n).map(r => Math.exp(lmax + r * (lmin - lmax)));
      timesteps = sigmas.map(s => npRound(sigmaToT(s, logSigmas)));
      sigmas.push(sigmas[sigmas.length - 1]!);
    } else {
      sigmas = timesteps.map(t => npInterpIndex(t, this.trainSigmas));
      const a0 = this.alphasCumprod[0]!;
      sigmas.push(f32(Math.sqrt(f32(f32(1 - a0) / a0))));
    }
    this.sigmas = Float64Array.from(sigmas, f32);
    // Duplicates (possible when n is close to N) are dropped, keeping first occurrences in order.
    const seen = new Set<number>();
    this.timesteps = timesteps.filter(t => (seen.has(t) ? false : (seen.add(t), true)));
    this.modelOutputs = new Array(this.solverOrder).fill(undefined);
    this.lowerOrderNums = 0;
    this.stepIndex = undefined;
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return Float32Array.from(sample);
  }

  /** The model output as x̂_0 (dpmsolver++) or ε̂ (dpmsolver) at the current σ. */
  private convertModelOutput(modelOutput: Float32Array, sample: Float32Array, i: number): Float32Array {
    const { alpha, sigma } = alphaSigmaLambda(this.sigmas[i]!);
    const n = sample.length;
    const out = new Float32Array(n);
    const p = this.prediction;
    if (this.algorithm === 'dpmsolver++') {
      for (let k = 0; k < n; k++) {
        const x = sample[k]!;
        const m = modelOutput[k]!;
        out[k] = p === 'epsilon' ? f32(f32(x - f32(sigma * m)) / alpha) : p === 'sample' ? m : f32(f32(alpha * x) - f32(sigma * m));
      }
    } else {
      for (let k = 0; k < n; k++) {
        const x = sample[k]!;
        const m = modelOutput[k]!;
        out[k] = p === 'epsilon' ? m : p === 'sample' ? f32(f32(x - f32(alpha * m)) / sigma) : f32(f32(alpha * m) + f32(sigma * x));
      }
    }
    return out;
  }

  private firstOrderUpdate(m: Float32Array, sample: Float32Array, i: number): Float32Array {
    const t = alphaSigmaLambda(this.sigmas[i + 1]!);
    const s = alphaSigmaLambda(this.sigmas[i]!);
    const h = f32(t.lambda - s.lambda);
    const n = sample.length;
    const out = new Float32Array(n);
    if (this.algorithm === 'dpmsolver++') {
      const c1 = f32(t.sigma / s.sigma);
      const c2 = f32(t.alpha * f32(f32(Math.exp(-h)) - 1.0));
      for (let k = 0; k < n; k++) out[k] = f32(f32(c1 * sample[k]!) - f32(c2 * m[k]!));
    } else {
      const c1 = f32(t.alpha / s.alpha);
      const c2 = f32(t.sigma * f32(f32(Math.exp(h)) - 1.0));
      for (let k = 0; k < n; k++) out[k] = f32(f32(c1 * sample[k]!) - f32(c2 * m[k]!));
    }
    return out;
  }

  private secondOrderUpdate(m0: Float32Array, m1: Float32Array, sample: Float32Array, i: number): Float32Array {
    const t = alphaSigmaLambda(this.sigmas[i + 1]!);
    const s0 = alphaSigmaLambda(this.sigmas[i]!);
    const s1 = alphaSigmaLambda(this.sigmas[i - 1]!);
    const h = f32(t.lambda - s0.lambda);
    const h0 = f32(s0.lambda - s1.lambda);
    const r0 = f32(h0 / h);
    const invR0 = f32(1.0 / r0);
    const n = sample.length;
    const out = new Float32Array(n);
    let c1: number;
    let c2: number;
    let c3: number; // x_t = c1·x − c2·D0 − c3·D1
    if (this.algorithm === 'dpmsolver++') {
      c1 = f32(t.sigma / s0.sigma);
      const em1 = f32(f32(Math.exp(-h)) - 1.0);
      c2 = f32(t.alpha * em1);
      c3 = this.solverType === 'midpoint' ? f32(0.5 * c2) : -f32(t.alpha * f32(f32(em1 / h) + 1.0));
    } else {
      c1 = f32(t.alpha / s0.alpha);
      const em1 = f32(f32(Math.exp(h)) - 1.0);
      c2 = f32(t.sigma * em1);
      c3 = this.solverType === 'midpoint' ? f32(0.5 * c2) : f32(t.sigma * f32(f32(em1 / h) - 1.0));
    }
    for (let k = 0; k < n; k++) {
      const d1 = f32(invR0 * f32(m0[k]! - m1[k]!));
      out[k] = f32(f32(f32(c1 * sample[k]!) - f32(c2 * m0[k]!)) - f32(c3 * d1));
    }
    return out;
  }

  /** Third-order multistep update from the last three converted outputs (newest first). */
  private thirdOrderUpdate(m0: Float32Array, m1: Float32Array, m2: Float32Array, sample: Float32Array, i: number): Float32Array {
    const t = alphaSigmaLambda(this.sigmas[i + 1]!);
    const s0 = alphaSigmaLambda(this.sigmas[i]!);
    const s1 = alphaSigmaLambda(this.sigmas[i - 1]!);
    const s2 = alphaSigmaLambda(this.sigmas[i - 2]!);
    const h = f32(t.lambda - s0.lambda);
    const h0 = f32(s0.lambda - s1.lambda);
    const h1 = f32(s1.lambda - s2.lambda);
    const r0 = f32(h0 / h);
    const r1 = f32(h1 / h);
    const invR0 = f32(1.0 / r0);
    const invR1 = f32(1.0 / r1);
    const r01 = f32(r0 + r1);
    const w = f32(r0 / r01);
    const invR01 = f32(1.0 / r01);
    const hh = f32(h * h);
    let c1: number;
    let c2: number;
    let c3: number;
    let c4: number; // x_t = c1·x − c2·D0 + c3·D1 − c4·D2
    if (this.algorithm === 'dpmsolver++') {
      const e = f32(Math.exp(-h));
      const em1 = f32(e - 1.0);
      c1 = f32(t.sigma / s0.sigma);
      c2 = f32(t.alpha * em1);
      c3 = f32(t.alpha * f32(f32(em1 / h) + 1.0));
      c4 = f32(t.alpha * f32(f32(f32(em1 + h) / hh) - 0.5));
    } else {
      const e = f32(Math.exp(h));
      const em1 = f32(e - 1.0);
      c1 = f32(t.alpha / s0.alpha);
      c2 = f32(t.sigma * em1);
      c3 = -f32(t.sigma * f32(f32(em1 / h) - 1.0));
      c4 = f32(t.sigma * f32(f32(f32(em1 - h) / hh) - 0.5));
    }
    const n = sample.length;
    const out = new Float32Array(n);
    for (let k = 0; k < n; k++) {
      const d10 = f32(invR0 * f32(m0[k]! - m1[k]!));
      const d11 = f32(invR1 * f32(m1[k]! - m2[k]!));
      const diff = f32(d10 - d11);
      const d1 = f32(d10 + f32(w * diff));
      const d2 = f32(invR01 * diff);
      out[k] = f32(f32(f32(f32(c1 * sample[k]!) - f32(c2 * m0[k]!)) + f32(c3 * d1)) - f32(c4 * d2));
    }
    return out;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, _options?: StepOptions): Float32Array {
    requireTimesteps(NAME, this.timesteps);
    checkSameLength(NAME, 'modelOutput', modelOutput, sample);
    if (this.stepIndex === undefined) this.stepIndex = stepIndexOf(NAME, this.timesteps, timestep, true);
    const i = this.stepIndex;
    if (i + 1 >= this.sigmas.length) throw new UnsupportedError(`${NAME}: step called more times than there are timesteps`);
    const len = this.timesteps.length;
    // Lower orders at the end: more stable for short schedules (< 15 steps).
    const lowerOrderFinal = i === len - 1 && (this.eulerAtFinal || (this.lowerOrderFinal && len < 15));
    const lowerOrderSecond = i === len - 2 && this.lowerOrderFinal && len < 15;
    const converted = this.convertModelOutput(modelOutput, sample, i);
    this.modelOutputs.shift();
    this.modelOutputs.push(converted);
    const mo = this.modelOutputs;
    let prev: Float32Array;
    if (this.solverOrder === 1 || this.lowerOrderNums < 1 || lowerOrderFinal) {
      prev = this.firstOrderUpdate(converted, sample, i);
    } else if (this.solverOrder === 2 || this.lowerOrderNums < 2 || lowerOrderSecond) {
      prev = this.secondOrderUpdate(converted, mo[mo.length - 2]!, sample, i);
    } else {
      prev = this.thirdOrderUpdate(converted, mo[mo.length - 2]!, mo[mo.length - 3]!, sample, i);
    }
    if (this.lowerOrderNums < this.solverOrder) this.lowerOrderNums++;
    this.stepIndex = i + 1;
    return prev;
  }
}
