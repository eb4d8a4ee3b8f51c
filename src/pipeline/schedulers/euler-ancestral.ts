/**
 * EulerAncestralDiscreteScheduler (diffusers 0.25): an Euler step down to σ_down, then fresh noise of std σ_up,
 * with σ_up² = σ_to²(σ_from² − σ_to²)/σ_from² and σ_down² = σ_to² − σ_up². Tensor math in float32.
 *
 * The noise: `step(…, { noise })` uses the given array (diffusers draws it from torch's generator, so this is how
 * a diffusers trajectory is reproduced); otherwise `{ rng }` (a NumpyRandomState) supplies `randn(n)`, which is
 * what this package's generation uses for a seeded run. One of the two is required.
 */
import { ConfigError, UnsupportedError } from '../../errors.js';
import { ConfigReader, type SchedulerConfig } from './config.js';
import { noiseSchedule, sigmasFromAlphasCumprod } from './betas.js';
import { checkSameLength, f32, predictionType, requireTimesteps, stepIndexOf } from './common.js';
import { discreteSigmaSchedule, kInitNoiseSigma, kPredOriginal, kScaleInput } from './sigma-schedule.js';
import { TIMESTEP_SPACINGS, checkStepCount, type TimestepSpacing } from './timesteps.js';
import type { PredictionType, Scheduler, StepOptions } from './types.js';

const NAME = 'EulerAncestralDiscreteScheduler';

export class EulerAncestralDiscreteScheduler implements Scheduler {
  readonly name = NAME;
  readonly order = 1;
  timesteps: number[] = [];
  sigmas: Float64Array = new Float64Array(0);

  private readonly numTrain: number;
  private readonly trainSigmas: Float32Array;
  private readonly spacing: TimestepSpacing;
  private readonly stepsOffset: number;
  private readonly prediction: PredictionType;
  private stepIndex: number | undefined;

  constructor(config: SchedulerConfig) {
    const cfg = new ConfigReader(config, NAME);
    const schedule = noiseSchedule(cfg, { rescaleKey: true });
    this.numTrain = schedule.numTrainTimesteps;
    const ac = Float32Array.from(schedule.alphasCumprod);
    if (schedule.rescaled) ac[ac.length - 1] = 2 ** -24;
    this.trainSigmas = sigmasFromAlphasCumprod(ac);
    this.prediction = predictionType(cfg, NAME, ['epsilon', 'v_prediction']);
    this.spacing = cfg.choice('timestep_spacing', 'linspace', TIMESTEP_SPACINGS);
    this.stepsOffset = cfg.int('steps_offset', 0, 0);
  }

  /** Before setTimesteps diffusers' sigmas are the whole training schedule; the same maximum is used here. */
  get initNoiseSigma(): number {
    return kInitNoiseSigma(this.sigmas.length > 0 ? this.sigmas : Float64Array.from(this.trainSigmas), this.spacing);
  }

  setTimesteps(numInferenceSteps: number): void {
    checkStepCount(NAME, numInferenceSteps, this.numTrain);
    const s = discreteSigmaSchedule({
      trainSigmas: this.trainSigmas, spacing: this.spacing, numTrain: this.numTrain, steps: numInferenceSteps, stepsOffset: this.stepsOffset,
    });
    this.sigmas = s.sigmas;
    this.timesteps = s.timesteps;
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

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, options: StepOptions = {}): Float32Array {
    checkSameLength(NAME, 'modelOutput', modelOutput, sample);
    const i = this.indexFor(timestep);
    if (i + 1 >= this.sigmas.length) throw new UnsupportedError(`${NAME}: step called more times than there are timesteps`);
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
