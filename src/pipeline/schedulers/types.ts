/** The interface every scheduler implements (diffusers' SchedulerMixin subset the generation loop uses). */
import type { NumpyRandomState } from '../rng.js';

export interface StepOptions {
  /**
   * Ancestral schedulers (Euler-ancestral) add fresh noise each step: `noise` (same length as the sample) is used
   * as is; otherwise it is drawn from `rng` (NumpyRandomState.randn). diffusers draws it from torch's generator, so
   * only `noise` can reproduce a diffusers trajectory exactly. Deterministic schedulers ignore both.
   */
  noise?: Float32Array;
  rng?: NumpyRandomState;
}

export interface Scheduler {
  /** diffusers class name, e.g. "EulerDiscreteScheduler". */
  readonly name: string;
  /** Computes the timesteps (and sigmas) for `numInferenceSteps` and resets the multistep state. */
  setTimesteps(numInferenceSteps: number): void;
  /** The timesteps to call the UNet with, in order (after setTimesteps). */
  readonly timesteps: number[];
  /** The sigma schedule (one more than the timesteps: the last is the final sigma); empty where there are none. */
  readonly sigmas: Float64Array;
  /** Standard deviation of the initial noise. */
  readonly initNoiseSigma: number;
  /** The UNet input for `sample` at `timestep` (a new array; `sample` is not modified). */
  scaleModelInput(sample: Float32Array, timestep: number): Float32Array;
  /** One denoising step: the previous (less noisy) sample. Call once per timestep, in order. */
  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, options?: StepOptions): Float32Array;
  /** diffusers' `order` class attribute (1 for every scheduler here). */
  readonly order: number;
}

/** `original_sample` is Euler's legacy spelling of `sample`. */
export type PredictionType = 'epsilon' | 'v_prediction' | 'sample' | 'original_sample';
export const PREDICTION_TYPES: readonly PredictionType[] = ['epsilon', 'v_prediction', 'sample', 'original_sample'];
