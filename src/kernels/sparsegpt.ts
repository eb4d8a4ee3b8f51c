/**
 * SparseGPT / GPTQ on one layer (native, kernels/sparsegpt.h). A Hessian is an opaque native handle
 * holding H = (2/n)·Σ x xᵀ over the layer's calibration inputs (the reference's running mean, n =
 * samples); its factor is computed in place and cached, so layers that read the same input (q, k, v)
 * share one Hessian and one factorization.
 */
import { CoreMLOptimizeError, ConfigError } from '../errors.js';
import { nativeAddon, withCancel, type CancelToken, type ProgressCallback } from '../native.js';
import type { KernelJobOptions } from './decompress.js';

/** Opaque native Hessian handle. */
export interface HessianHandle {
  readonly __hessian: unique symbol;
}

/** A conv's input geometry as the op applies it (MIL conv: custom pad [top, bottom, left, right]). */
export interface ConvGeometry {
  inChannels: number;
  groups?: number;
  kernel: [number, number];
  strides?: [number, number];
  dilations?: [number, number];
  pad?: [number, number, number, number];
}

export interface ConvInputShape {
  batch: number;
  height: number;
  width: number;
}

/** Optional quantization grid (GPTQ's min/max quantizer). groupSize: 0 per channel, -1 per tensor, k > 0 per k columns. */
export interface QuantGridOptions {
  bits?: number;
  symmetric?: boolean;
  groupSize?: number;
}

export interface SparseGptOptions extends QuantGridOptions {
  /** Unstructured target (ignored when n/m are given). Default 0.5. */
  targetSparsity?: number;
  /** n:m — prune n of every m consecutive columns per row. */
  n?: number;
  m?: number;
  /** processing_group_size (default 128; a multiple of m for n:m). */
  blockSize?: number;
  /** hessian_dampening (default 0.01). */
  dampening?: number;
  /** Quantize the survivors to `bits` (0 / absent = no). */
  bits?: number;
}

export interface SparseGptLayerResult {
  /** The pruned (and fake-quantized) weight, [rows, columns] row-major. */
  weight: Float32Array;
  /** 1 = kept by the mask. */
  mask: Uint8Array;
  deadColumns: number;
  /** The reference's loss sum Σ(w − q)²/d²/2. */
  error: number;
  sparsity: number;
  /** Set when n:m met a column count not a multiple of m (the tail group is pruned proportionally). */
  tailNote: string;
  scales?: Float32Array;
  zeroPoints?: Float32Array;
}

export interface GptqOptions extends QuantGridOptions {
  /** Activation order (descending diag H). */
  actOrder?: boolean;
  /** Group grids from the original weight (coremltools forces this with actOrder; default = actOrder). */
  staticGroups?: boolean;
  blockSize?: number;
  dampening?: number;
}

export interface GptqLayerResult {
  /** Dequantized weight, original column order. */
  weight: Float32Array;
  /** Codes 0..2^bits−1, [rows, columns]. */
  q: Uint8Array;
  /** [rows, groups]. */
  scales: Float32Array;
  zeroPoints: Float32Array;
  /** Per original column: its group. */
  groupIndex: Int32Array;
  /** Processing order (act-order), empty otherwise. */
  perm: Int32Array;
  deadColumns: number;
  error: number;
}

export interface HessianInfo {
  columns: number;
  samples: number;
  bytes: number;
  factored: boolean;
}

interface SparseGptAddon {
  createHessian(columns: number): HessianHandle;
  hessianAddRows(h: HessianHandle, x: Float32Array, rows: number, samples: number, onProgress?: ProgressCallback, token?: CancelToken): Promise<void>;
  hessianAddConvInput(h: HessianHandle, x: Float32Array, input: ConvInputShape, g: ConvGeometry, group: number, onProgress?: ProgressCallback, token?: CancelToken): Promise<void>;
  hessianFromRows(x: Float32Array, rows: number, columns: number, samples: number, onProgress?: ProgressCallback, token?: CancelToken): Promise<HessianHandle>;
  hessianFromConvInput(x: Float32Array, input: ConvInputShape, g: ConvGeometry, group: number, onProgress?: ProgressCallback, token?: CancelToken): Promise<HessianHandle>;
  hessianInfo(h: HessianHandle): HessianInfo;
  hessianData(h: HessianHandle): Float32Array;
  hessianRelease(h: HessianHandle): void;
  sparseGptLayer(w: Float32Array, rows: number, columns: number, h: HessianHandle, o: SparseGptOptions, onProgress?: ProgressCallback, token?: CancelToken): Promise<SparseGptLayerResult>;
  gptqLayer(w: Float32Array, rows: number, columns: number, h: HessianHandle, o: GptqOptions, onProgress?: ProgressCallback, token?: CancelToken): Promise<GptqLayerResult>;
  relativeReconstructionError(w: Float32Array, wHat: Float32Array, rows: number, columns: number, h: HessianHandle, token?: CancelToken): Promise<number>;
  sparseGptReferencePath(w: Float32Array, rows: number, columns: number, h: HessianHandle, o: SparseGptOptions): Promise<SparseGptLayerResult>;
  hessianAddRowsGemm(h: HessianHandle, x: Float32Array, rows: number, samples: number): Promise<void>;
}

const addon = () => nativeAddon<SparseGptAddon>();

function positiveInt(v: number, what: string, min = 1): void {
  if (!Number.isInteger(v) || v < min) throw new ConfigError(`${what} must be an integer >= ${min}, got ${v}`);
}

/** Native errors: EINVAL → ConfigError; ENOTPD, ENOSAMPLES keep their code. JS TypeError/RangeError from argument checks → ConfigError. */
function mapError(err: unknown): never {
  const e = err as { code?: string; message?: string; name?: string };
  if (e instanceof TypeError || e instanceof RangeError || e?.code === 'EINVAL') throw new ConfigError(String(e.message), { cause: err });
  if (e?.code === 'ENOTPD' || e?.code === 'ENOSAMPLES' || e?.code === 'ENOMEM') throw new CoreMLOptimizeError(e.code, String(e.message), { cause: err });
  throw err;
}

async function guarded<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    mapError(err);
  }
}

function sync<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    mapError(err);
  }
}

/** An empty Hessian of `columns` columns (columns² floats of native memory). */
export function createHessian(columns: number): HessianHandle {
  positiveInt(columns, 'Hessian columns');
  return sync(() => addon().createHessian(columns));
}

/** Adds rows of a linear/matmul input ([rows, columns]); samplesInBatch = the batch's sample count (the reference's tmp). */
export async function hessianAddRows(h: HessianHandle, x: Float32Array, rows: number, samplesInBatch: number, options: KernelJobOptions = {}): Promise<void> {
  positiveInt(rows, 'rows', 0);
  positiveInt(samplesInBatch, 'samplesInBatch');
  return guarded(() => withCancel(options.signal, (t) => addon().hessianAddRows(h, x, rows, samplesInBatch, options.onProgress, t)));
}

/** Adds a conv's NCHW input, unfolded for conv group `group` (one Hessian per group). */
export async function hessianAddConvInput(h: HessianHandle, x: Float32Array, input: ConvInputShape, geometry: ConvGeometry, group = 0, options: KernelJobOptions = {}): Promise<void> {
  return guarded(() => withCancel(options.signal, (t) => addon().hessianAddConvInput(h, x, input, geometry, group, options.onProgress, t)));
}

export async function hessianFromRows(x: Float32Array, rows: number, columns: number, samplesInBatch: number, options: KernelJobOptions = {}): Promise<HessianHandle> {
  positiveInt(columns, 'columns');
  return guarded(() => withCancel(options.signal, (t) => addon().hessianFromRows(x, rows, columns, samplesInBatch, options.onProgress, t)));
}

export async function hessianFromConvInput(x: Float32Array, input: ConvInputShape, geometry: ConvGeometry, group = 0, options: KernelJobOptions = {}): Promise<HessianHandle> {
  return guarded(() => withCancel(options.signal, (t) => addon().hessianFromConvInput(x, input, geometry, group, options.onProgress, t)));
}

export function hessianInfo(h: HessianHandle): HessianInfo {
  return sync(() => addon().hessianInfo(h));
}

/** The dense symmetric H (columns² floats copied into the JS heap — tests and small layers only). */
export function hessianData(h: HessianHandle): Float32Array {
  return sync(() => addon().hessianData(h));
}

/** Frees the Hessian's memory now (jobs already running keep it until they finish). */
export function releaseHessian(h: HessianHandle): void {
  addon().hessianRelease(h);
}

function checkSparse(o: SparseGptOptions): void {
  const nm = (o.n ?? 0) !== 0 || (o.m ?? 0) !== 0;
  if (nm) {
    if (!Number.isInteger(o.n) || !Number.isInteger(o.m) || (o.m ?? 0) < 1 || (o.n ?? -1) < 0 || (o.n ?? 0) > (o.m ?? 0))
      throw new ConfigError(`n:m must satisfy 0 <= n <= m, m >= 1; got ${o.n}:${o.m}`);
  } else if (o.targetSparsity !== undefined && !(o.targetSparsity >= 0 && o.targetSparsity <= 1)) {
    throw new ConfigError(`targetSparsity must be in [0, 1], got ${o.targetSparsity}`);
  }
  if (o.blockSize !== undefined) positiveInt(o.blockSize, 'blockSize (processing_group_size)');
  if (nm && (o.blockSize ?? 128) % (o.m as number) !== 0) throw new ConfigError(`processing_group_size ${o.blockSize ?? 128} must be a multiple of m = ${o.m}`);
  checkGrid(o, 0);
}

function checkGrid(o: QuantGridOptions & { dampening?: number }, minBits: number): void {
  if (o.bits !== undefined && (!Number.isInteger(o.bits) || o.bits < minBits || o.bits > 8)) throw new ConfigError(`bits must be an integer in [${Math.max(1, minBits)}, 8], got ${o.bits}`);
  if (o.groupSize !== undefined && (!Number.isInteger(o.groupSize) || o.groupSize < -1)) throw new ConfigError(`groupSize must be -1, 0 or a positive integer, got ${o.groupSize}`);
  if (o.dampening !== undefined && !(o.dampening >= 0 && Number.isFinite(o.dampening))) throw new ConfigError(`hessian dampening must be a finite number >= 0, got ${o.dampening}`);
}

/** SparseGPT on one weight [rows, columns] (a conv weight flattened per group). */
export async function sparseGptLayer(weight: Float32Array, rows: number, columns: number, h: HessianHandle, options: SparseGptOptions = {}, job: KernelJobOptions = {}): Promise<SparseGptLayerResult> {
  checkSparse(options);
  return guarded(() => withCancel(job.signal, (t) => addon().sparseGptLayer(weight, rows, columns, h, options, job.onProgress, t)));
}

/** GPTQ on one weight [rows, columns]. */
export async function gptqLayer(weight: Float32Array, rows: number, columns: number, h: HessianHandle, options: GptqOptions = {}, job: KernelJobOptions = {}): Promise<GptqLayerResult> {
  checkGrid(options, 1);
  if (options.blockSize !== undefined) positiveInt(options.blockSize, 'blockSize (processing_group_size)');
  return guarded(() => withCancel(job.signal, (t) => addon().gptqLayer(weight, rows, columns, h, options, job.onProgress, t)));
}

/** ‖WX − ŴX‖²/‖WX‖² over the calibration inputs behind `h`. */
export async function relativeReconstructionError(weight: Float32Array, weightHat: Float32Array, rows: number, columns: number, h: HessianHandle, job: KernelJobOptions = {}): Promise<number> {
  return guarded(() => withCancel(job.signal, (t) => addon().relativeReconstructionError(weight, weightHat, rows, columns, h, t)));
}

/** Benchmark baseline: the reference's three-factorization pipeline on the same BLAS. */
export async function sparseGptReferencePath(weight: Float32Array, rows: number, columns: number, h: HessianHandle, options: SparseGptOptions = {}): Promise<SparseGptLayerResult> {
  checkSparse(options);
  return guarded(() => addon().sparseGptReferencePath(weight, rows, columns, h, options));
}

/** Benchmark baseline: the reference's full-GEMM Hessian update (`H += inp @ inp.T`). */
export async function hessianAddRowsGemm(h: HessianHandle, x: Float32Array, rows: number, samplesInBatch: number): Promise<void> {
  return guarded(() => addon().hessianAddRowsGemm(h, x, rows, samplesInBatch));
}
