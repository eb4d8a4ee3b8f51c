/**
 * Typed bindings of calibration capture (native/addon/calibrate.cc) and layer compression
 * (native/addon/layerwise.cc). Activations and Hessians stay native: JS sees handles, the values
 * that cross sub-program boundaries, and per-layer reports.
 */
import { nativeAddon, withCancel, type CancelToken, type ProgressCallback } from '../native.js';
import type { GraphDescription, TensorOutput } from '../runtime/executor.js';

/** Native tensors as they cross into / out of a capture graph. */
export interface NativeTensor {
  dtype: 'fp32' | 'fp16' | 'int32' | 'bool';
  shape: number[];
  data: Float32Array | Uint16Array | Int32Array | Uint8Array;
}

export interface HessianSetHandle {
  /** Bytes the live Hessians hold. */
  bytes(): number;
  /** Bytes held right after allocation (all Hessians of the wave). */
  peakBytes(): number;
  release(index: number): void;
  /** The reference's sample count n of Hessian `index`. */
  samples(index: number): number;
  /** The full symmetric H (columns² floats): tests and diagnostics. */
  data(index: number): Float32Array;
}

export type CaptureKind = 'linear' | 'matmul' | 'conv';

export interface CaptureWatch {
  /** Op name as the executor names the node. */
  op: string;
  kind: CaptureKind;
  /** Hessians fed by this op (one per conv group); empty = the op shares another watch's Hessian. */
  hessians: number[];
}

export interface CaptureRunResult {
  outputs: Record<string, TensorOutput>;
  /** Per watch, how many times its op ran since the graph was built. */
  hits: number[];
  /** Seconds spent feeding Hessians since the graph was built (included in the runs' time). */
  hessianSeconds: number;
}

/** Byte limits of a capture graph's weight caches (native exec::CacheLimits); an absent one keeps the executor's default. */
export interface CaptureCacheLimits {
  /** fp16 constants widened to fp32 once. */
  widen?: number;
  /** Transposed linear weights. */
  pack?: number;
  /** Winograd / packed conv weights (DerivedCache). */
  derived?: number;
  /** Idle intermediate buffers kept between ops and runs. */
  pool?: number;
}

/** What a capture graph's weight caches hold now, and their limits. */
export interface CaptureCacheStats {
  widen: number;
  pack: number;
  derived: number;
  pool: number;
  widenLimit: number;
  packLimit: number;
  derivedLimit: number;
  poolLimit: number;
}

interface CaptureGraphHandle {
  cacheStats(): CaptureCacheStats;
  run(inputs: Record<string, NativeTensor>, options: { threads?: number }, onProgress?: ProgressCallback, token?: CancelToken): Promise<CaptureRunResult>;
  close(): void;
}

export interface LayerCompressRequest {
  name: string;
  /** The model's weight file and the weight's blob offset. */
  file: string;
  offset: number;
  shape: number[];
  /** matmul with y [K, N]: SparseGPT's matrix is yᵀ. */
  transposed: boolean;
  /** Hessian per conv group (one for linear / matmul). */
  hessians: number[];
  /** Hessians to free once this layer is done. */
  release: number[];
  method: 'sparsegpt' | 'gptq';
  ios16: boolean;
  /**
   * SparseGPT with quantized survivors (bits > 0), iOS18: write the survivors' codes for
   * constexpr_sparse_blockwise_shift_scale (records: mask, codes, scale, offset) instead of their
   * dequantized values inside constexpr_sparse_to_dense (records: values, mask).
   */
  sparseCodes?: boolean;
  targetSparsity?: number;
  n?: number;
  m?: number;
  blockSize: number;
  dampening: number;
  /** Quantization grid (0 bits = none). groupSize 0 = per channel, -1 = per tensor, else columns per block. */
  bits: number;
  symmetric: boolean;
  groupSize: number;
  actOrder?: boolean;
}

export interface LayerCompressReport {
  name: string;
  rows: number;
  columns: number;
  groups: number;
  deadColumns: number;
  /** Fraction of zeros in the written weight. */
  sparsity: number;
  /** ‖WX − ŴX‖²/‖WX‖² over the calibration inputs (mean over conv groups). */
  error: number;
  /** The same for magnitude pruning at the same sparsity (sparsegpt) or round-to-nearest on the same grid (gptq). */
  baselineError: number;
  /** The reference's loss sum. */
  loss: number;
  note?: string;
  /** Records in the temporary blob file, in the order the constexpr op takes them. */
  offsets: number[];
  /** Element count of each record. */
  counts: number[];
  scaleShape?: number[];
  dataDtype?: 'uint8' | 'uint4';
}

interface CalibrateAddon {
  createHessianSet(columns: number[]): HessianSetHandle;
  createCaptureGraph(desc: GraphDescription, watches: CaptureWatch[], set: HessianSetHandle, cacheLimits?: CaptureCacheLimits): CaptureGraphHandle;
  compressLayers(job: { hessians: HessianSetHandle; output: string; layers: LayerCompressRequest[] }, onProgress?: ProgressCallback, token?: CancelToken): Promise<LayerCompressReport[]>;
}

function addon(): CalibrateAddon {
  return nativeAddon<CalibrateAddon>();
}

export function createHessianSet(columns: number[]): HessianSetHandle {
  return addon().createHessianSet(columns);
}

/** A graph whose runs feed the watched ops' inputs into `set`. */
export class CaptureGraph {
  private readonly handle: CaptureGraphHandle;
  constructor(desc: GraphDescription, watches: CaptureWatch[], set: HessianSetHandle, cacheLimits?: CaptureCacheLimits) {
    this.handle = cacheLimits ? addon().createCaptureGraph(desc, watches, set, cacheLimits) : addon().createCaptureGraph(desc, watches, set);
  }

  /** Bytes the executor's weight caches hold now: call between runs (throws once closed). */
  cacheStats(): CaptureCacheStats {
    return this.handle.cacheStats();
  }

  run(inputs: Record<string, NativeTensor>, options: { threads?: number; signal?: AbortSignal; onProgress?: ProgressCallback } = {}): Promise<CaptureRunResult> {
    return withCancel(options.signal, (token) => this.handle.run(inputs, { threads: options.threads ?? 0 }, options.onProgress, token));
  }

  /** Frees the graph's weights and its references to the Hessians now (not at garbage collection). */
  close(): void {
    this.handle.close();
  }
}

export function compressLayers(set: HessianSetHandle, output: string, layers: LayerCompressRequest[], options: { signal?: AbortSignal; onProgress?: ProgressCallback } = {}): Promise<LayerCompressReport[]> {
  return withCancel(options.signal, (token) => addon().compressLayers({ hessians: set, output, layers }, options.onProgress, token));
}
