/**
 * One interface for every way of running a pipeline component (text encoder, UNet, VAE decoder):
 * the CPU executor on any platform, Core ML on macOS. Tensors cross it as fp32 (token ids may be
 * int32); each backend converts to what the model declares (fp16 inputs, int32 ids) itself.
 */
export type BackendKind = 'executor' | 'coreml';

/** Core ML's MLComputeUnits, spelled as coremltools' ct.ComputeUnit members. */
export type ComputeUnit = 'ALL' | 'CPU_ONLY' | 'CPU_AND_GPU' | 'CPU_AND_NE';
export const COMPUTE_UNITS: readonly ComputeUnit[] = ['ALL', 'CPU_ONLY', 'CPU_AND_GPU', 'CPU_AND_NE'];

export interface BackendTensor {
  data: Float32Array | Int32Array;
  shape: number[];
}

export interface FeatureSpec {
  name: string;
  /** 'fp32' | 'fp16' | 'int32' | ... as the model declares it. */
  dtype: string;
  /** Declared shape; null when unknown, -1 for a flexible dimension. */
  shape: number[] | null;
}

export interface BackendPredictOptions {
  signal?: AbortSignal;
}

export interface ModelBackend {
  readonly kind: BackendKind;
  /** The model file it runs (for messages). */
  readonly path: string;
  readonly inputs: readonly FeatureSpec[];
  readonly outputs: readonly FeatureSpec[];
  /** Outputs come back as Float32Array (fp16 outputs widened). */
  predict(inputs: Record<string, BackendTensor>, options?: BackendPredictOptions): Promise<Record<string, BackendTensor>>;
}

export interface BackendLoadOptions {
  backend?: BackendKind;
  /** Core ML only. */
  computeUnit?: ComputeUnit;
  /** Executor only: kernel threads per predict (0 = the pool size). */
  threads?: number;
  /** Core ML only: where compiled .mlmodelc of .mlpackages are cached. */
  cacheDir?: string;
}

/** The backend a platform uses when none is asked for: Core ML on macOS, the executor elsewhere. */
export function defaultBackendKind(platform: NodeJS.Platform = process.platform): BackendKind {
  return platform === 'darwin' ? 'coreml' : 'executor';
}

/** Converts a tensor to the element type a model input declares (token ids as int32 or float). */
export function toInputType(t: BackendTensor, dtype: string): BackendTensor {
  if (dtype === 'int32' && t.data instanceof Float32Array) return { data: Int32Array.from(t.data, (v) => Math.round(v)), shape: t.shape };
  if (dtype !== 'int32' && t.data instanceof Int32Array) return { data: Float32Array.from(t.data), shape: t.shape };
  return t;
}
