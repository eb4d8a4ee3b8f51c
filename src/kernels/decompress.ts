/**
 * Materializes Core ML compression ops (constexpr_lut_to_dense, constexpr_sparse_to_dense,
 * constexpr_affine_dequantize, constexpr_cast, constexpr_blockwise_shift_scale,
 * constexpr_lut_to_sparse, constexpr_sparse_blockwise_shift_scale) in native code.
 * Chains (spec §4.5) are decoded op by op: feed an op's output (`data`, `dtype`, `shape`) as the
 * next op's parameter.
 */
import { nativeAddon, withCancel, type CancelToken, type ProgressCallback } from '../native.js';

/** Element types of compression-op parameters (MIL names). */
export type KernelDType =
  | 'fp16' | 'fp32' | 'uint8' | 'int8' | 'int16' | 'uint16' | 'int32' | 'uint32'
  | 'int4' | 'uint1' | 'uint2' | 'uint3' | 'uint4' | 'uint6';

/**
 * One parameter. `data` holds the raw little-endian elements (fp16 as Uint16Array bits or bytes).
 * Sub-byte types may be packed LSB-first (as in weight.bin) or one value per byte.
 */
export interface KernelTensor {
  dtype: KernelDType;
  shape: number[];
  data: ArrayBufferView | ArrayBuffer;
}

export type CompressionOpType =
  | 'constexpr_lut_to_dense'
  | 'constexpr_sparse_to_dense'
  | 'constexpr_affine_dequantize'
  | 'constexpr_cast'
  | 'constexpr_blockwise_shift_scale'
  | 'constexpr_lut_to_sparse'
  | 'constexpr_sparse_blockwise_shift_scale';

export interface DecompressRequest {
  type: CompressionOpType;
  /** Which op definition: iOS16 (packed indices/masks + `shape`) or iOS18. Default ios18. */
  opset?: 'ios16' | 'ios18';
  /** Parameters by name (`indices`, `lut`, `shape`, `mask`, `nonzero_data`, `scale`, `offset`, `axis`, ...). */
  params: Record<string, KernelTensor>;
  /** Op name (or file) used in error messages. */
  name?: string;
  /**
   * Return `values` (float32 copy) / `data` (output-dtype copy); both default true. Turn one off
   * for big weights to halve the JS-side memory; the omitted field is then an empty array.
   */
  values?: boolean;
  data?: boolean;
}

export interface DecompressedTensor {
  dtype: KernelDType;
  shape: number[];
  /** Every element as float32. */
  values: Float32Array;
  /** The elements in the output dtype (fp16 → Uint16Array bits, uint1 → Uint8Array, int8 → Int8Array...). */
  data: Float32Array | Uint16Array | Int8Array | Uint8Array | Int16Array | Int32Array | Uint32Array;
}

export interface DecompressResult extends DecompressedTensor {
  /** All outputs in op order ([mask, values] for the two-output sparse ops). */
  outputs: DecompressedTensor[];
}

export interface KernelJobOptions {
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
}

interface DecompressAddon {
  decompressOp(req: DecompressRequest, onProgress?: ProgressCallback, token?: CancelToken): Promise<DecompressResult>;
}

/** Decodes one compression op. Rejects with an Error (code EINVAL / EUNSUPPORTED) naming the op and the problem. */
export async function decompressOp(req: DecompressRequest, options: KernelJobOptions = {}): Promise<DecompressResult> {
  const addon = nativeAddon<DecompressAddon>();
  const r = await withCancel(options.signal, (token) => addon.decompressOp(req, options.onProgress, token));
  for (const o of [r, ...r.outputs]) {
    o.values ??= new Float32Array(0);
    o.data ??= new Uint8Array(0);
  }
  return r;
}

/** A decoded output as a parameter for the next op of a chain. */
export function asKernelTensor(t: DecompressedTensor): KernelTensor {
  return { dtype: t.dtype, shape: t.shape, data: t.data };
}
