/** Linear weight quantization with coremltools' exact numerics (native). */
import { nativeAddon, withCancel, type CancelToken, type ProgressCallback } from '../native.js';
import type { KernelJobOptions } from './decompress.js';

export type QuantMode = 'linear_symmetric' | 'linear';
export type QuantDType = 'int8' | 'uint8' | 'int4' | 'uint4';
export type QuantGranularity = 'per_tensor' | 'per_channel' | 'per_block';

export interface QuantizeRequest {
  /** fp32 values (Float32Array) or fp16 bits (Uint16Array); or give `dtype`. */
  data: Float32Array | Uint16Array;
  dtype?: 'fp16' | 'fp32';
  shape: number[];
  mode?: QuantMode;
  /** Target integer type (default int8). */
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
