/** Linear weight quantization with coremltools' exact numerics (native). */
import { nativeAddon, withCancel, type CancelToken, type ProgressCallback } from '../native.js';
import type { KernelJobOptions } from './decompress.js';

export type QuantMode = 'linear_symmetric' | 'linear';
export type QuantDType = 'int8' | 'uint8' | 'int4' | 'uint4';
export type QuantGranularity = 'per_tensor' | 'per_channel' | 'per_block';

export interface QuantizeRequest {
  /** fp32 values (Float32Array) or fp16 bits (Uint16Array); or give `dtype`. */
  data: Float32Array | Uint16Array;
  /**
   * Weight type ('fp16' | 'fp32'; inferred from the array when absent), or — as a shorthand — the
   * target integer type when `quantDtype` is not given.
   */
  dtype?: 'fp16' | 'fp32' | QuantDType;
  shape: number[];
  mode?: QuantMode;
  /** Target integer type (default: `dtype` if it is an integer type, else int8). */
  quantDtype?: QuantDType;
  granularity?: QuantGranularity;
  /** per_block: elements per block along the input axis (default 32). */
  blockSize?: number;
  /** Output-channel axis (default 0; matmul `y` uses -1). */
  axis?: number;
  /** Input-channel axis for per_block (default: derived from `axis`, spec §4.3). */
  inputAxis?: number;
  /** Explicit coremltools block_sizes (one per axis, 0 = whole axis); overrides granularity. */
  blockSizes?: number[];
}

export interface QuantizeResult {
  /** One value per element (int4/uint4 too), weight shape. */
  quantized: Int8Array | Uint8Array;
  quantizedDtype: QuantDType;
  /** Scale in the weight's dtype: Uint16Array of fp16 bits, or Float32Array. */
  scale: Uint16Array | Float32Array;
  scaleDtype: 'fp16' | 'fp32';
  /** Same rank as the weight (iOS18 form). */
  scaleShape: number[];
  blockSizes: number[];
  /** Zero point / offset (quantDtype), absent for signed linear_symmetric. */
  zeroPoint?: Int8Array | Uint8Array;
}

interface QuantizeAddon {
  quantizeTensor(req: QuantizeRequest, onProgress?: ProgressCallback, token?: CancelToken): Promise<QuantizeResult>;
}

export function quantizeTensor(req: QuantizeRequest, options: KernelJobOptions = {}): Promise<QuantizeResult> {
  const addon = nativeAddon<QuantizeAddon>();
  return withCancel(options.signal, (token) => addon.quantizeTensor(req, options.onProgress, token));
}

/** Parameters of an iOS16 `constexpr_affine_dequantize` (spec §4.1, §5.4 "iOS16 conversion"). */
export interface AffineDequantizeParams {
  quantizedData: Int8Array | Uint8Array;
  /** Same dtype as the data; zeros for symmetric int8 (the op requires a zero point). */
  zeroPoint: Int8Array | Uint8Array;
  scale: Uint16Array | Float32Array;
  /** [] for per tensor, [C] for per channel. */
  paramShape: number[];
  /** Non-negative: the single non-1 scale dimension, 0 when there is none. */
  axis: number;
}

/**
 * Converts a quantizeTensor result (iOS18 form, scale of the weight's rank) to the iOS16 affine form.
 * Throws when the scale varies along more than one axis (per_block) or the type is 4-bit, which
 * iOS16 cannot express.
 */
export function toAffineDequantizeParams(r: QuantizeResult): AffineDequantizeParams {
  if (r.quantizedDtype === 'int4' || r.quantizedDtype === 'uint4') {
    throw new RangeError('4-bit quantization needs the iOS18 constexpr_blockwise_shift_scale op');
  }
  const varying = r.scaleShape.flatMap((d, i) => (d !== 1 ? [i] : []));
  if (varying.length > 1) throw new RangeError(`scale shape [${r.scaleShape}] varies along several axes (per_block needs iOS18)`);
  const axis = varying[0] ?? 0;
  const paramShape = varying.length === 1 ? [r.scaleShape[axis]!] : [];
  const n = r.scale.length;
  const zeroPoint = r.zeroPoint ?? (r.quantizedDtype === 'int8' ? new Int8Array(n) : new Uint8Array(n));
  return { quantizedData: r.quantized, zeroPoint, scale: r.scale, paramShape, axis };
}
