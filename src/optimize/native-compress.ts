/**
 * Typed binding of the native compressWeights job (native/addon/compress.cc): the new weight.bin
 * is written in one streaming pass over the mapped old one.
 */
import { nativeAddon, withCancel, type CancelToken, type ProgressCallback } from '../native.js';
import { WeightFileError } from '../errors.js';

/** One blob (or value) of the old file, in op order: copied, or transformed by `kind`. */
export interface CompressEntry {
  /** Metadata offset of the input record. */
  source: number;
  /** Further input records the transform reads (joint compression: e.g. the mask of a sparse weight). */
  extraSources?: number[];
  kind: 'copy' | 'palettize' | 'quantize' | 'prune' | 'precomputed' | string;
  [param: string]: unknown;
}

export interface CompressOutput {
  /** Blob dtype name: float16, float32, uint8, int8, uint4, ... */
  dtype: string;
  elementCount: number;
  /** Metadata offset in the new file, when the value went to the file. */
  offset?: number;
  /** The raw (packed) bytes, when coremltools' blob rule makes it an immediate (< 10 elements). */
  bytes?: Uint8Array;
}

export interface CompressResult {
  /** One per blob the transform produced; a copied or skipped entry has one per input record. */
  outputs: CompressOutput[];
  info: Record<string, number[]>;
  /** Set when the transform left the weight as it was (the record was copied); says why. */
  skipped?: string;
  /** A fused entry whose second stage left the weight as it was: `outputs` are stage 1's values, written as they are; says why. */
  passedThrough?: string;
}

interface CompressAddon {
  compressWeights(
    job: { input: string; output: string; entries: CompressEntry[]; windowBytes?: number },
    onProgress: ProgressCallback | undefined,
    token: CancelToken,
  ): Promise<CompressResult[]>;
  compressEntryKinds: string[];
}

export interface CompressJobOptions {
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  /** Input bytes processed per window (bounds memory); default 256 MiB. */
  windowBytes?: number;
}

export async function runCompressJob(input: string, output: string, entries: CompressEntry[], options: CompressJobOptions = {}): Promise<CompressResult[]> {
  const addon = nativeAddon<CompressAddon>();
  return withCancel(options.signal, async (token) => {
    try {
      return await addon.compressWeights(
        { input, output, entries, ...(options.windowBytes ? { windowBytes: options.windowBytes } : {}) },
        options.onProgress,
        token,
      );
    } catch (err) {
      const e = err as { code?: string; message?: string };
      if (e.code === 'ABORT_ERR') throw err;
      if (e.code === 'EWEIGHTS' || e.code === 'ENOENT' || e.code === 'EIO') throw new WeightFileError(e.message ?? String(err), { cause: err });
      throw err;
    }
  });
}
