/**
 * Output comparison of two models (or two tensors): PSNR, SNR, cosine similarity and the largest
 * absolute error — the figures a release note uses to judge a compressed model.
 */
import type { Model } from '../model.js';
import { halfBitsToFloatArray } from '../mil/values.js';
import { createExecutor, type ComputePrecision, type Executor, type TensorInput, type TensorOutput } from './executor.js';
import type { ProgressCallback } from '../native.js';
import { UnsupportedError } from '../errors.js';
import { mulberry32 } from '../util/random.js';

export interface TensorComparison {
  name: string;
  /** 20·log10(peak / RMSE) with peak = max |reference|; null when the outputs are identical. */
  psnr: number | null;
  /** 10·log10(Σ reference² / Σ error²) in dB; null when identical. */
  snr: number | null;
  cosine: number;
  maxAbsError: number;
  identical: boolean;
}

/** Accumulates error statistics over one or more sample pairs of the same output. */
export class ErrorAccumulator {
  private sumSq = 0;
  private errSq = 0;
  private dot = 0;
  private otherSq = 0;
  private peak = 0;
  private maxAbs = 0;
  private count = 0;
  private differs = false;

  add(reference: ArrayLike<number>, other: ArrayLike<number>): void {
    if (reference.length !== other.length) throw new RangeError(`outputs differ in size: ${reference.length} vs ${other.length}`);
    for (let i = 0; i < reference.length; i++) {
      const r = reference[i]!, o = other[i]!;
      const e = o - r;
      if (!Object.is(r, o)) this.differs = true;
      this.sumSq += r * r;
      this.otherSq += o * o;
      this.dot += r * o;
      this.errSq += e * e;
      const a = Math.abs(r);
      if (a > this.peak) this.peak = a;
      const ae = Math.abs(e);
      if (ae > this.maxAbs || Number.isNaN(e)) this.maxAbs = Number.isNaN(e) ? NaN : ae;
    }
    this.count += reference.length;
  }

  result(name: string): TensorComparison {
    const identical = !this.differs;
    const mse = this.count > 0 ? this.errSq / this.count : 0;
    const denominator = Math.sqrt(this.sumSq) * Math.sqrt(this.otherSq);
    return {
      name,
      psnr: identical ? null : 20 * Math.log10(this.peak / Math.sqrt(mse)),
      snr: identical ? null : 10 * Math.log10(this.sumSq / this.errSq),
      cosine: denominator > 0 ? Math.max(-1, Math.min(1, this.dot / denominator)) : identical ? 1 : 0,
      maxAbsError: this.maxAbs,
      identical,
    };
  }
}

export function compareTensors(name: string, reference: ArrayLike<number>, other: ArrayLike<number>): TensorComparison {
  const acc = new ErrorAccumulator();
  acc.add(reference, other);
  return acc.result(name);
}

/** Output values as float32 (fp16 halves converted, ints widened). */
export function outputAsFloat32(t: TensorOutput): Float32Array {
  if (t.dtype === 'fp16') return halfBitsToFloatArray(t.data as Uint16Array);
  if (t.data instanceof Float32Array) return t.data;
  return Float32Array.from(t.data as ArrayLike<number>);
}

/**
 * Deterministic random inputs for an executor: N(0, 1) floats, integers in [0, 100) (token ids,
 * indices), booleans. Flexible dimensions take their smallest allowed size (1 when unbounded).
 */
export function randomInputs(executor: Executor, seed: number): Record<string, TensorInput> {
  const next = mulberry32(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  const out: Record<string, TensorInput> = {};
  for (const input of executor.inputs) {
    const shape = (input.shape ?? []).map((d) => (d > 0 ? d : 1));
    const n = shape.reduce((a, b) => a * b, 1);
    if (input.dtype === 'int32') out[input.name] = { data: Int32Array.from({ length: n }, () => Math.floor(next() * 100)), shape, dtype: 'int32' };
    else if (input.dtype === 'bool') out[input.name] = { data: Uint8Array.from({ length: n }, () => (next() < 0.5 ? 1 : 0)), shape, dtype: 'bool' };
    else out[input.name] = { data: Float32Array.from({ length: n }, normal), shape, dtype: 'fp32' };
  }
  return out;
}

export interface CompareOptions {
  /** Input sets to run; default: `random` sets of deterministic random inputs. */
  inputs?: Record<string, TensorInput>[];
  random?: number;
  seed?: number;
  function?: string;
  threads?: number;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
  /** Compute precision of the second model (the one under test), e.g. 'fp16' as on a Mac; default 'fp32'. */
  computePrecision?: ComputePrecision;
  /** Compute precision of the base model; default 'fp32' (the reference). */
  baseComputePrecision?: ComputePrecision;
}

export interface ModelComparison {
  samples: number;
  outputs: TensorComparison[];
}

/** Runs both models on the same inputs and compares every output (statistics pooled over samples). */
export async function compareModels(base: Model, other: Model, options: CompareOptions = {}): Promise<ModelComparison> {
  const fnOpts = options.function ? { function: options.function } : {};
  const a = createExecutor(base, { ...fnOpts, computePrecision: options.baseComputePrecision ?? 'fp32' });
  const b = createExecutor(other, { ...fnOpts, computePrecision: options.computePrecision ?? 'fp32' });
  const names = a.outputs.map((o) => o.name);
  const missing = names.filter((n) => !b.outputs.some((o) => o.name === n));
  if (missing.length > 0) throw new UnsupportedError(`the second model has no output ${missing.join(', ')}`, { file: other.path });
  const sets = options.inputs ?? Array.from({ length: options.random ?? 1 }, (_, i) => randomInputs(a, (options.seed ?? 0) + i));
  const acc = new Map(names.map((n) => [n, new ErrorAccumulator()]));
  const predictOptions = {
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
  for (let i = 0; i < sets.length; i++) {
    const ra = await a.predict(sets[i]!, predictOptions);
    const rb = await b.predict(sets[i]!, predictOptions);
    for (const n of names) acc.get(n)!.add(outputAsFloat32(ra[n]!), outputAsFloat32(rb[n]!));
    options.onProgress?.(i + 1, sets.length);
  }
  return { samples: sets.length, outputs: names.map((n) => acc.get(n)!.result(n)) };
}
