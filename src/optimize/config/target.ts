/**
 * Minimum deployment target rules of coremltools.optimize.coreml (spec §6), with coremltools' exact
 * messages. coremltools raises these per compressed weight; `checkOpConfigTarget` is that per-weight
 * check, `checkTarget` applies it to every config in an OptimizationConfig up front.
 */
import { configError, targetError } from './common.js';
import { OpLinearQuantizerConfig } from './quantizer.js';
import { OpPalettizerConfig } from './palettizer.js';
import type { OptimizationConfig, OpCompressorConfig } from './optimization-config.js';

export interface ModelTarget {
  /** Model.specificationVersion (7 = iOS16, 8 = iOS17, 9 = iOS18, 10 = iOS26). */
  readonly specVersion: number;
  /** The main function's opset string ("CoreML6", "CoreML8", ...); when given it decides, like coremltools. */
  readonly opset?: string;
}

const IOS18_REQUIRED = 'Please re-convert your model with minimum_deployment_target set to at least ct.target.iOS18.';
export const TARGET_MESSAGES = {
  joint: `Joint compression is only supported since iOS18. ${IOS18_REQUIRED}`,
  perGroupedChannel: `The per_grouped_channel palettization is supported since iOS18. ${IOS18_REQUIRED}`,
  vector: `The vector palettization is supported since iOS18. ${IOS18_REQUIRED}`,
  perChannelScale: 'Palettization with per-channel-scale is only supported since iOS18. Please set minimum_deployment_target accordingly.',
  lutSize: 'Parameter lut should be a vector of size from one of {2, 4, 16, 64, 256}',
  perBlock: `The per_block quantization is supported since iOS18. ${IOS18_REQUIRED}`,
  fourBit: `The 4-bit quantization is supported since iOS18. ${IOS18_REQUIRED}`,
  lutQuantizationPerTensor:
    "When use joint compression for palettization-quantization, please make sure to use per-tensor quantization, because the axis for the data to bequantized (palettization's lut) is different from the original weight.",
} as const;

/** The iOS version the program's ops come from: compression loads models at spec max(spec, 7). */
export function targetIosVersion(target: ModelTarget): number {
  if (!Number.isSafeInteger(target.specVersion) || target.specVersion < 1) {
    throw configError('specVersion', `specVersion must be a positive integer, got ${String(target.specVersion)}.`);
  }
  if (target.opset !== undefined) {
    const m = /^CoreML(\d+)$/.exec(target.opset);
    if (!m) throw configError('opset', `opset must look like "CoreML8", got ${JSON.stringify(target.opset)}.`);
    const n = Number(m[1]);
    // CoreML5 = iOS15 ... CoreML8 = iOS18, CoreML9 = iOS26.
    return n >= 9 ? 26 : Math.max(n + 10, 16);
  }
  const spec = Math.max(target.specVersion, 7);
  return spec >= 10 ? 26 : spec + 9;
}

export function isIos18OrLater(target: ModelTarget): boolean {
  return targetIosVersion(target) >= 18;
}

export interface OpConfigTargetOptions {
  /** The API call has joint_compression=True. */
  readonly jointCompression?: boolean;
  /** This quantization quantizes a LUT (joint mode after palettization). */
  readonly quantizesLut?: boolean;
  /** nbits actually used (unique/custom modes derive it per weight). */
  readonly resolvedNbits?: number;
}

/**
 * coremltools' per-weight target checks, in coremltools' order:
 * palettize: per_grouped_channel, vector, LUT size (iOS16 op), per-channel scale;
 * quantize: LUT per-tensor rule (NotImplementedError), per_block, 4-bit.
 */
export function checkOpConfigTarget(config: OpCompressorConfig, target: ModelTarget, options: OpConfigTargetOptions = {}): void {
  const ios18 = isIos18OrLater(target);
  if (config instanceof OpPalettizerConfig) {
    if (!ios18) {
      if (config.granularity === 'per_grouped_channel') throw targetError('ValueError', TARGET_MESSAGES.perGroupedChannel);
      if (config.cluster_dim > 1) throw targetError('ValueError', TARGET_MESSAGES.vector);
      const nbits = options.resolvedNbits ?? config.nbits;
      // The iOS16 constexpr_lut_to_dense accepts 2, 4, 16, 64 or 256 entries: 3-bit LUTs need iOS18.
      if (nbits !== null && ![1, 2, 4, 6, 8].includes(nbits)) throw targetError('ValueError', TARGET_MESSAGES.lutSize);
      if (config.enable_per_channel_scale) throw targetError('ValueError', TARGET_MESSAGES.perChannelScale);
      // Our lut_dtype extension is joint compression (palettize, then quantize the LUT).
      if (config.lut_dtype !== null) throw targetError('ValueError', TARGET_MESSAGES.joint);
    }
    return;
  }
  if (config instanceof OpLinearQuantizerConfig) {
    if (!ios18) {
      if (config.granularity === 'per_block') throw targetError('ValueError', TARGET_MESSAGES.perBlock);
      if (config.dtype === 'int4' || config.dtype === 'uint4') throw targetError('ValueError', TARGET_MESSAGES.fourBit);
    }
    if (options.jointCompression && options.quantizesLut && config.granularity !== 'per_tensor') {
      throw targetError('NotImplementedError', TARGET_MESSAGES.lutQuantizationPerTensor);
    }
  }
  // Pruning works from iOS16 (every compression call loads the model at spec >= 7).
}

/**
 * All target checks for one compression call: joint compression first (coremltools checks it before
 * looking at any weight), then every config the OptimizationConfig holds. Conservative: coremltools
 * only fails when a weight actually resolves to the offending config.
 */
export function checkTarget(config: OptimizationConfig, target: ModelTarget, options: OpConfigTargetOptions = {}): void {
  if (options.jointCompression && !isIos18OrLater(target)) throw targetError('ValueError', TARGET_MESSAGES.joint);
  for (const c of config.allConfigs()) checkOpConfigTarget(c, target, options);
}
