/** Weight pruning with coremltools' exact numerics (native). */
import { nativeAddon, withCancel, type CancelToken, type ProgressCallback } from '../native.js';
import type { KernelJobOptions } from './decompress.js';

export type PruneKind = 'magnitude' | 'block' | 'nm' | 'threshold';

export interface PruneRequest {
  /** fp32 values (Float32Array) or fp16 bits (Uint16Array); or give `dtype`. */
  data: Float32Array | Uint16Array;
  dtype?: 'fp16' | 'fp32';
  shape: number[];
  kind: PruneKind;
  /** magnitude / block: fraction in [0, 1]. */
  targetSparsity?: number;
  /** block: channels per block (> 1). */
  blockSize?: number;
  /** nm: zero n of every m. */
  n?: number;
  m?: number;
  /** block / nm: 0 or 1 (defaults 0 for block, 1 for nm, as coremltools). */
  dim?: number;
  /** threshold: |w| <= threshold → 0 (default 1e-12). */
  threshold?: number;
  /** Report `skipped` when the resulting sparsity is below this (threshold default 0.5). */
  minimumSparsity?: number;
}

export interface PruneResult {
  /** 1 where a non-zero is stored, per element, row-major. */
  mask: Uint8Array;
  /** The mask packed LSB-first (iOS16 uint8 mask bytes = iOS18 uint1 blob bytes). */
  maskPackedLsb: Uint8Array;
  /** Stored values, same element type as the input (fp16 bits as Uint16Array). */
  nonzero: Float32Array | Uint16Array;
  sparsity: number;
  /** Why coremltools would leave this weight dense (structured config not applicable, too sparse...). */
  skipped?: string;
}

interface PruneAddon {
  pruneTensor(req: PruneRequest, onProgress?: ProgressCallback, token?: CancelToken): Promise<PruneResult>;
}

export function pruneTensor(req: PruneRequest, options: KernelJobOptions = {}): Promise<PruneResult> {
  const addon = nativeAddon<PruneAddon>();
  return withCancel(options.signal, (token) => addon.pruneTensor(req, options.onProgress, token));
}
