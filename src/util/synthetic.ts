/** Deterministic synthetic weights (native) for generated benchmark and demo models. */
import { nativeAddon } from '../native.js';

export interface SyntheticOptions {
  count: number;
  /** weight: ~N(0, 1/fan_in) with rare outliers; bias: small around 0; norm: around 1. */
  kind?: 'weight' | 'bias' | 'norm';
  fanIn?: number;
  seed?: number;
  /** Element index of the first value (values depend only on seed and index). */
  first?: number;
}

interface SyntheticAddon {
  syntheticWeights(o: SyntheticOptions & { dtype: 'float16' | 'float32' }): Uint16Array | Float32Array;
}

/** fp16 bit patterns. */
export function syntheticFp16(options: SyntheticOptions): Uint16Array {
  return nativeAddon<SyntheticAddon>().syntheticWeights({ ...options, dtype: 'float16' }) as Uint16Array;
}

export function syntheticFp32(options: SyntheticOptions): Float32Array {
  return nativeAddon<SyntheticAddon>().syntheticWeights({ ...options, dtype: 'float32' }) as Float32Array;
}
