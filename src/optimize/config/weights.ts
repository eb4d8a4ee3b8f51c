/**
 * Which consts get compressed and along which axes (spec §4.3, §5.1; coremltools
 * optimize/_utils.py select_input_output_channel_axis / infer_block_sizes). Pure functions.
 */
import { configError } from './common.js';
import { OpLinearQuantizerConfig } from './quantizer.js';
import { OpPalettizerConfig } from './palettizer.js';
import { STRUCTURAL_PRUNING_INPUTS } from './pruners.js';
import type { CompressionApi } from './optimization-config.js';

export interface ChannelAxes {
  /** Output-channel axis (non-negative). */
  readonly output: number;
  /** Input-channel axis (non-negative; may be >= rank for rank-1 tensors, as in coremltools). */
  readonly input: number;
}

export interface ChannelAxisOptions {
  /** matmul's transpose_x / transpose_y (default false). */
  readonly transposeX?: boolean;
  readonly transposeY?: boolean;
}

/**
 * Output/input channel axes of a weight fed to `inputName` of an `opType` op, as coremltools 9.0's
 * select_input_output_channel_axis (optimize/coreml/_utils.py) picks them:
 *   `output_channel_axis, input_channel_axis = 0, 1` by default (conv, linear, gather, einsum, ...);
 *   `if child_op.op_type == "conv_transpose": output_channel_axis = 1; input_channel_axis = 0`;
 *   matmul y: `-1, -2`, with `transpose_y.val`: `-2, -1`; matmul x: `-2, -1`, with `transpose_x.val`: `-1, -2`.
 * Negative axes are normalized with `rank` (`if output_channel_axis < 0: output_channel_axis += var.rank`).
 */
export function channelAxes(opType: string, inputName: string, rank: number, options: ChannelAxisOptions = {}): ChannelAxes {
  if (!Number.isSafeInteger(rank) || rank < 0) throw configError('rank', `rank must be a non-negative integer, got ${String(rank)}.`);
  let output = 0, input = 1;
  if (opType === 'conv_transpose') {
    output = 1; input = 0;
  } else if (opType === 'matmul') {
    if (inputName === 'y') {
      [output, input] = options.transposeY ? [-2, -1] : [-1, -2];
    } else {
      [output, input] = options.transposeX ? [-1, -2] : [-2, -1];
    }
  }
  return { output: output < 0 ? output + rank : output, input: input < 0 ? input + rank : input };
}

/** The output-channel axis coremltools picks when channel_axis is null. */
export function defaultChannelAxis(opType: string, inputName: string, rank: number, options: ChannelAxisOptions = {}): number {
  return channelAxes(opType, inputName, rank, options).output;
}

export interface WeightConsumer {
  readonly type: string;
  readonly input: string;
  readonly transposeX?: boolean;
  readonly transposeY?: boolean;
  /** conv / conv_transpose `groups` (absent: 1). */
  readonly groups?: number;
}

/**
 * coremltools' is_cluster_dim_valid (optimize/coreml/_utils.py): for each conv / conv_transpose
 * consumer, `effective_shape[0] //= child_op.groups.val` (when groups > 1) and
 * `if effective_shape[channel_axis] % cluster_dim != 0: return False`. A depthwise conv weight
 * [C, 1, kh, kw] has effective dim 1 on axis 0, so vector palettization skips it.
 * Returns null when valid, else the reason.
 */
export function clusterDimInvalidReason(consumers: readonly WeightConsumer[], shape: readonly number[], clusterDim: number, channelAxis: number): string | null {
  const axis = channelAxis < 0 ? channelAxis + shape.length : channelAxis;
  for (const c of consumers) {
    if (c.type !== 'conv' && c.type !== 'conv_transpose') continue;
    const effective = [...shape];
    const groups = c.groups ?? 1;
    if (groups > 1) effective[0] = Math.floor(effective[0]! / groups);
    if ((effective[axis] ?? 0) % clusterDim !== 0) {
      return `cluster_dim ${clusterDim} does not divide the ${c.type}'s per-group size ${effective[axis]} on axis ${axis} (groups ${groups}), as coremltools requires`;
    }
  }
  return null;
}

/**
 * Axes for a const with several consumers: each axis must agree across consumers, else it is
 * unknown (null) and per-channel / grouped / block modes skip the weight.
 */
export function channelAxesForConsumers(consumers: readonly WeightConsumer[], rank: number): { output: number | null; input: number | null } {
  if (consumers.length === 0) return { output: 0, input: 1 };
  const outs = new Set<number>(), ins = new Set<number>();
  for (const c of consumers) {
    const a = channelAxes(c.type, c.input, rank, { transposeX: c.transposeX ?? false, transposeY: c.transposeY ?? false });
    outs.add(a.output);
    ins.add(a.input);
  }
  return { output: outs.size === 1 ? [...outs][0]! : null, input: ins.size === 1 ? [...ins][0]! : null };
}

/**
 * Which inputs of an `opType` op take a weight the API may compress.
 * 'any': every constant input (coremltools does not limit compression to conv/linear/matmul: an
 * embedding table feeding gather.x, a large layer_norm gamma, ... are all compressed).
 * Structured pruning (block / n:m) only takes conv/linear `weight`. A constexpr op's inputs are only
 * candidates in joint mode (spec §4.5).
 */
export function eligibleWeightInputs(
  opType: string,
  options: { api?: CompressionApi; structuredPruning?: boolean; jointCompression?: boolean } = {},
): 'any' | readonly string[] {
  if (opType === 'const') return [];
  if (opType.startsWith('constexpr_')) {
    if (!options.jointCompression) return [];
    if (options.api === 'palettize') {
      if (opType === 'constexpr_sparse_to_dense') return ['nonzero_data'];
      if (opType === 'constexpr_blockwise_shift_scale') return ['data'];
    } else if (options.api === 'quantize') {
      if (opType === 'constexpr_lut_to_dense' || opType === 'constexpr_lut_to_sparse') return ['lut'];
      if (opType === 'constexpr_sparse_to_dense') return ['nonzero_data'];
    }
    return [];
  }
  if (options.structuredPruning) return Object.hasOwn(STRUCTURAL_PRUNING_INPUTS, opType) ? STRUCTURAL_PRUNING_INPUTS[opType]! : [];
  return 'any';
}

/** Element dtypes coremltools stores in weight.bin (the iOS15 blob rule) and hence may compress. */
const BLOB_DTYPES = new Set(['fp16', 'fp32', 'uint8', 'int8']);

export interface ConstCandidate {
  readonly shape: readonly number[];
  /** MIL dtype name: fp16, fp32, int8, uint8, ... */
  readonly dtype: string;
  /** Number of ops reading the const (0: it only feeds block outputs). */
  readonly consumerCount: number;
  /** The first consumer is a constexpr_* op (joint mode intermediates). */
  readonly firstConsumerIsConstexpr?: boolean;
  /** Element count of the final dense weight (joint mode); defaults to the const's own count. */
  readonly denseElementCount?: number;
}

/**
 * coremltools' size/shape gate (need_compress_const): blob-stored (>= 10 elements, fp16/fp32/int8/uint8),
 * has a consumer, rank >= 2 unless it feeds a constexpr op, and element count > weight_threshold.
 */
export function passesWeightGate(c: ConstCandidate, weightThreshold: number): boolean {
  const count = c.shape.reduce((a, b) => a * b, 1);
  if (count < 10 || !BLOB_DTYPES.has(c.dtype)) return false;
  if (c.consumerCount === 0) return false;
  if (!c.firstConsumerIsConstexpr && c.shape.length <= 1) return false;
  return (c.denseElementCount ?? count) > weightThreshold;
}

/**
 * Block size per weight axis for quantization / palettization (coremltools infer_block_sizes):
 * 0 = whole axis. per_tensor all 0; per_channel 1 on the output axis; per_grouped_channel group_size
 * on the output axis (or channel_axis); per_block b on the input axis and 1 on the output axis, or the
 * per-axis list as given. null when an axis is unknown (the weight is skipped).
 */
export function inferBlockSizes(
  config: OpLinearQuantizerConfig | OpPalettizerConfig,
  shape: readonly number[],
  axes: { output: number | null; input: number | null },
): { blockSizes: number[]; channelAxis: number | null } | null {
  let { output, input } = axes;
  if (config instanceof OpLinearQuantizerConfig && config.granularity === 'per_block' && Array.isArray(config.block_size)) {
    const bs = config.block_size as readonly number[];
    if (bs.length !== shape.length) {
      throw configError('block_size', `The block_size in config must has one element for each axis. However, there are ${bs.length} elements in block_size, but there are ${shape.length} axes in the weight.`);
    }
    const candidates = bs.flatMap((b, i) => (b !== 0 && b !== shape[i] ? [i] : []));
    if (candidates.length === 1) output = candidates[0]!;
    return { blockSizes: [...bs], channelAxis: output };
  }
  if (input === null || output === null) return null;
  if (config instanceof OpPalettizerConfig && config.granularity === 'per_grouped_channel' && config.channel_axis !== null) {
    output = config.channel_axis;
    const rank = shape.length;
    if (!(-rank <= output && output < rank)) {
      throw configError('channel_axis', `Invalid channel_axis. Should be in range [${-rank}, ${rank}), but got ${output}`);
    }
    if (output < 0) output += rank;
  }
  let inSize = 0, outSize = 0;
  switch (config.granularity) {
    case 'per_tensor': break;
    case 'per_channel': outSize = 1; break;
    case 'per_grouped_channel': outSize = (config as OpPalettizerConfig).group_size; break;
    case 'per_block': inSize = config.block_size as number; outSize = 1; break;
  }
  const blockSizes = new Array<number>(shape.length).fill(0);
  if (input < blockSizes.length) blockSizes[input] = inSize;
  if (output < blockSizes.length) blockSizes[output] = outSize;
  return { blockSizes, channelAxis: output };
}
