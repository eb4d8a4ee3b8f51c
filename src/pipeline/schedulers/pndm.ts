/**
 * PNDMScheduler (diffusers 0.25): pseudo numerical methods for diffusion models. With `skip_prk_steps` (SD 1.x's
 * config) it is PLMS: linear multistep over the last four model outputs, with the first timestep repeated (the
 * second call averages the first two outputs at the same point). Without it, the first 3 × 4 calls are
 * Runge–Kutta (PRK) steps. Tensor math in float32, as torch does it.
 */
import { ConfigError } from '../../errors.js';
import { AlphaScheduler } from './alpha-scheduler.js';
import type { SchedulerConfig } from './config.js';
import { checkSameLength, f32, requireTimesteps } from './common.js';
import type { StepOptions } from './types.js';

const NAME = 'PNDMScheduler';
const PNDM_ORDER = 4;

export class PNDMScheduler extends AlphaScheduler {
  private readonly skipPrkSteps: boolean;
  private prkTimesteps: number[] = [];
  private ets: Float32Array[] = [];
  private counter = 0;
  private curModelOutput: Float32Array | undefined;
  private curSample: Float32Array | undefined;

  constructor(config: SchedulerConfig) {
    super(NAME, config, { rescaleKey: false, setAlphaToOne: false, predictions: ['epsilon', 'v_prediction'] });
    this.skipPrkSteps = this.cfg.bool('skip_prk_steps', false);
  }

  setTimesteps(numInferenceSteps: number): void {
    const ts = this.ascendingTimesteps(numInferenceSteps);
    let plms: number[];
    if (this.skipPrkSteps) {
      // PLMS needs one extra first step: [ts[:-1], ts[-2:-1], ts[-1:]] reversed.
      this.prkTimesteps = [];
      plms = [...ts.slice(0, -1), ...ts.slice(-2, -1), ...ts.slice(-1)].reverse();
    } else {
      if (numInferenceSteps < PNDM_ORDER) {
        throw new ConfigError(`${NAME}: without skip_prk_steps at least ${PNDM_ORDER} inference steps are needed, got ${numInferenceSteps}`);
      }
      const half = Math.floor(Math.floor(this.numTrain / numInferenceSteps) / 2);
      // np.array(ts[-4:]).repeat(2) + np.tile([0, half], 4), then [:-1].repeat(2)[1:-1] reversed.
      const last = ts.slice(-PNDM_ORDER);
      const prk: number[] = [];
      for (const t of last) prk.push(t, t + half);
      const doubled: number[] = [];
      for (const t of prk.slice(0, -1)) doubled.push(t, t);
      this.prkTimesteps = doubled.slice(1, -1).reverse();
      plms = ts.slice(0, -3).reverse();
    }
    this.timesteps = [...this.prkTimesteps, ...plms];
    this.ets = [];
    this.counter = 0;
    this.curModelOutput = undefined;
    this.curSample = undefined;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, _options?: StepOptions): Float32Array {
    requireTimesteps(NAME, this.timesteps);
    checkSameLength(NAME, 'modelOutput', modelOutput, sample);
    if (this.counter < this.prkTimesteps.length && !this.skipPrkSteps) return this.stepPrk(modelOutput, timestep, sample);
    return this.stepPlms(modelOutput, timestep, sample);
  }

  private stepPrk(modelOutput: Float32Array, timestep: number, sample: Float32Array): Float32Array {
    const diffToPrev = this.counter % 2 ? 0 : Math.floor(Math.floor(this.numTrain / this.numInferenceSteps) / 2);
    const prevTimestep = timestep - diffToPrev;
    const t = this.prkTimesteps[Math.floor(this.counter / 4) * 4]!;
    const n = sample.length;
    let output = modelOutput;
    const acc = (w: number) => {
      const cur = this.curModelOutput ?? new Float32Array(n);
      const wf = f32(w);
      for (let i = 0; i < n; i++) cur[i] = f32(cur[i]! + f32(wf * modelOutput[i]!));
      this.curModelOutput = cur;
    };
    const phase = this.counter % 4;
    if (phase === 0) {
      acc(1 / 6);
      this.ets.push(Float32Array.from(modelOutput));
      this.curSample = sample;
    } else if (phase === 1 || phase === 2) {
      acc(1 / 3);
    } else {
      const cur = this.curModelOutput ?? new Float32Array(n);
      const w = f32(1 / 6);
      output = new Float32Array(n);
      for (let i = 0; i < n; i++) output[i] = f32(cur[i]! + f32(w * modelOutput[i]!));
      this.curModelOutput = undefined;
    }
    // The PRK sub-steps all start from the sample of the step's first call.
    const start = this.curSample ?? sample;
    const prev = this.prevSample(start, t, prevTimestep, output);
    this.counter++;
    return prev;
  }

  private stepPlms(modelOutput: Float32Array, timestep: number, sample: Float32Array): Float32Array {
    if (!this.skipPrkSteps && this.ets.length < 3) {
      throw new ConfigError(`${NAME}: PLMS step before the ${PNDM_ORDER * 3} Runge-Kutta steps (only with skip_prk_steps can it start directly)`);
    }
    const stride = Math.floor(this.numTrain / this.numInferenceSteps);
    let t = timestep;
    let prevTimestep = timestep - stride;
    if (this.counter !== 1) {
      this.ets = this.ets.slice(-3);
      this.ets.push(Float32Array.from(modelOutput));
    } else {
      prevTimestep = timestep;
      t = timestep + stride;
    }
    const n = sample.length;
    const e = this.ets;
    const len = e.length;
    let out: Float32Array;
    let x = sample;
    if (len === 1 && this.counter === 0) {
      out = modelOutput;
      this.curSample = sample;
    } else if (len === 1 && this.counter === 1) {
      out = new Float32Array(n);
      const e1 = e[len - 1]!;
      for (let i = 0; i < n; i++) out[i] = f32(f32(modelOutput[i]! + e1[i]!) / 2);
      x = this.curSample!;
      this.curSample = undefined;
    } else if (len === 2) {
      out = new Float32Array(n);
      const [e2, e1] = [e[0]!, e[1]!];
      for (let i = 0; i < n; i++) out[i] = f32(f32(f32(3 * e1[i]!) - e2[i]!) / 2);
    } else if (len === 3) {
      out = new Float32Array(n);
      const [e3, e2, e1] = [e[0]!, e[1]!, e[2]!];
      for (let i = 0; i < n; i++) out[i] = f32(f32(f32(f32(23 * e1[i]!) - f32(16 * e2[i]!)) + f32(5 * e3[i]!)) / 12);
    } else {
      out = new Float32Array(n);
      const [e4, e3, e2, e1] = [e[len - 4]!, e[len - 3]!, e[len - 2]!, e[len - 1]!];
      const c = f32(1 / 24);
      for (let i = 0; i < n; i++) {
        const inner = f32(f32(f32(f32(55 * e1[i]!) - f32(59 * e2[i]!)) + f32(37 * e3[i]!)) - f32(9 * e4[i]!));
        out[i] = f32(c * inner);
      }
    }
    const prev = this.prevSample(x, t, prevTimestep, out);
    this.counter++;
    return prev;
  }

  /** PNDM's x_{t−δ} from x_t and ε (formula (9) of the paper), in float32. */
  private prevSample(sample: Float32Array, timestep: number, prevTimestep: number, modelOutput: Float32Array): Float32Array {
    const at = this.alphasCumprod[timestep];
    if (at === undefined) throw new ConfigError(`${NAME}: timestep ${timestep} is outside [0, ${this.numTrain})`);
    const ap = prevTimestep >= 0 ? this.alphasCumprod[prevTimestep]! : this.finalAlphaCumprod;
    const bt = f32(1 - at);
    const bp = f32(1 - ap);
    const n = sample.length;
    let mo = modelOutput;
    if (this.prediction === 'v_prediction') {
      const sa = f32(Math.sqrt(at));
      const sb = f32(Math.sqrt(bt));
      mo = new Float32Array(n);
      for (let i = 0; i < n; i++) mo[i] = f32(f32(sa * modelOutput[i]!) + f32(sb * sample[i]!));
    }
    const sampleCoeff = f32(Math.sqrt(f32(ap / at)));
    const denom = f32(f32(at * f32(Math.sqrt(bp))) + f32(Math.sqrt(f32(f32(at * bt) * ap))));
    const diff = f32(ap - at);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = f32(f32(sampleCoeff * sample[i]!) - f32(f32(diff * mo[i]!) / denom));
    return out;
  }
}
