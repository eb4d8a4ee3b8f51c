/**
 * Typed wrappers over the native palettization kernels (native/kernels/{kmeans1d,lut_modes,
 * vector_kmeans,palettize}). For tests and small tensors: inputs are copied into native memory.
 * The palettize pass over a memory-mapped weight.bin calls the same C++ functions directly.
 *
 * k-means here is always the exact optimum for scalar palettization (coremltools uses the same
 * DP only for fp16 groups with >= 10,000 elements, scikit-learn otherwise): never worse, and
 * identical to coremltools where it uses kmeans1d.
 */
import { ConfigError } from '../errors.js';
import { nativeAddon, withCancel, type CancelToken, type ProgressCallback } from '../native.js';

export type PalettizeMode = 'kmeans' | 'uniform' | 'unique';
export type PalettizeGranularity = 'per_tensor' | 'per_grouped_channel';

export interface Kmeans1dResult {
  /** min(k, distinct values) weighted means, ascending. */
  centroids: Float64Array;
  /** Cluster of each input value. */
  assignments: Uint32Array;
  /** Σ weight·(value − centroid)². */
  cost: number;
}

export interface PalettizeTensorOptions {
  /** fp16 bit patterns (Uint16Array) or fp32 values, row-major. */
  data: Uint16Array | Float32Array;
  shape: readonly number[];
  mode?: PalettizeMode;
  /** 1, 2, 3, 4, 6 or 8; required for kmeans/uniform, computed for unique. */
  nbits?: number;
  granularity?: PalettizeGranularity;
  /** Channels per group for per_grouped_channel (0 = whole axis). Default 32 like coremltools. */
  groupSize?: number;
  /** Output-channel axis (grouping, vector axis, per-channel-scale reduction). Default 0. */
  channelAxis?: number;
  /** > 1: vector palettization along channelAxis. */
  clusterDim?: number;
  /** Normalize by max|w| over the output-channel axis before clustering (iOS18). */
  perChannelScale?: boolean;
  /** Seed of the vector k-means (cluster_dim > 1). */
  seed?: number;
  /** Threads for this call (0 = pool size). */
  threads?: number;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
}

export type PalettizeTensorResult =
  | { skipped: true; skipReason: string }
  | {
      skipped: false;
      nbits: number;
      /** One unpacked index per position (pack to uint{nbits} when writing). */
      indices: Uint8Array;
      indicesShape: number[];
      /** iOS18 layout [groups on each axis…, 2^nbits, clusterDim]; fp16 bits for fp16 weights. */
      lut: Uint16Array | Float32Array;
      lutShape: number[];
      vectorAxis?: number;
      scale?: Uint16Array | Float32Array;
      scaleShape?: number[];
      /** Σ (w − decompressed)² and Σ w² (double). */
      sse: number;
      signal: number;
      groups: number;
    };

export interface DecompressLutInput {
  indices: Uint8Array;
  indicesShape: readonly number[];
  lut: Uint16Array | Float32Array;
  lutShape: readonly number[];
  vectorAxis?: number;
  scale?: Uint16Array | Float32Array;
  scaleShape?: readonly number[];
}

export interface VectorKmeansResult {
  /** k × dim centers, row-major (k = min(k, distinct points)). */
  centers: Float32Array;
  assignments: Uint32Array;
  k: number;
  iterations: number;
  /** Σ squared distance to the assigned center. */
  inertia: number;
}

interface PalettizeAddon {
  vectorKmeans(points: Float32Array, dim: number, k: number, seed?: number, threads?: number): VectorKmeansResult;
  kmeans1d(values: Float32Array | Float64Array, counts: Float64Array | null, k: number, reference?: boolean): Kmeans1dResult;
  palettizeTensor(
    opts: Omit<PalettizeTensorOptions, 'signal' | 'onProgress'>,
    onProgress: ProgressCallback | undefined,
    token: CancelToken,
  ): Promise<Record<string, unknown>>;
  decompressLut(input: DecompressLutInput): Uint16Array | Float32Array;
}

const addon = () => nativeAddon<PalettizeAddon>();

const ALLOWED_NBITS = [1, 2, 3, 4, 6, 8];

/** Exact (globally optimal) weighted 1-D k-means. `reference` runs the O(k·n²) scalar oracle. */
export function kmeans1d(
  values: Float32Array | Float64Array,
  k: number,
  options: { counts?: Float64Array; reference?: boolean } = {},
): Kmeans1dResult {
  if (!Number.isInteger(k) || k < 1) throw new ConfigError(`kmeans1d: k must be a positive integer (got ${k})`);
  return addon().kmeans1d(values, options.counts ?? null, k, options.reference ?? false);
}

/**
 * k-means++ seeding + Lloyd iterations on `points` (n × dim). Deterministic for a seed and any
 * thread count. Heuristic (not optimal): used for cluster_dim > 1 and as the 1-D benchmark baseline.
 */
export function vectorKmeans(points: Float32Array, dim: number, k: number, options: { seed?: number; threads?: number } = {}): VectorKmeansResult {
  if (!Number.isInteger(k) || k < 1) throw new ConfigError(`vectorKmeans: k must be a positive integer (got ${k})`);
  return addon().vectorKmeans(points, dim, k, options.seed ?? 0, options.threads ?? 0);
}

/** Palettizes one tensor (split into channel groups like coremltools). Runs off the JS thread. */
export async function palettizeTensor(options: PalettizeTensorOptions): Promise<PalettizeTensorResult> {
  const mode = options.mode ?? 'kmeans';
  if (mode === 'unique') {
    if (options.nbits !== undefined) throw new ConfigError('palettize: nbits must not be set for mode "unique"');
  } else if (options.nbits === undefined || !ALLOWED_NBITS.includes(options.nbits)) {
    throw new ConfigError(`palettize: nbits must be one of ${ALLOWED_NBITS.join(', ')} for mode "${mode}" (got ${options.nbits})`);
  }
  if (mode === 'uniform' && (options.clusterDim ?? 1) > 1) {
    throw new ConfigError('palettize: mode "uniform" does not support clusterDim > 1');
  }
  const { signal, onProgress, ...plain } = options;
  const raw = await withCancel(signal, (token) => addon().palettizeTensor({ ...plain, mode }, onProgress, token));
  return raw as unknown as PalettizeTensorResult;
}

/** iOS18 constexpr_lut_to_dense (+ blockwise scale) semantics: the round-trip oracle. */
export function decompressLut(input: DecompressLutInput): Uint16Array | Float32Array {
  return addon().decompressLut(input);
}
