/**
 * palettizeWeights: coremltools.optimize.coreml.palettize_weights. Each selected weight becomes an
 * n-bit index tensor into a look-up table (spec §4.1/4.2/4.4), clustered natively (exact 1-D
 * k-means, uniform, unique or vector k-means) while the weight file is streamed.
 */
import type { Model } from '../model.js';
import { makeConstexprOp } from '../mil/program.js';
import { tensorDType, tensorShape, tensorType, type MilDType } from '../mil/types.js';
import { ConfigError, UnsupportedError } from '../errors.js';
import {
  OpPalettizerConfig, OptimizationConfig, TARGET_MESSAGES, checkConfigForApi, checkOpConfigTarget,
  clusterDimInvalidReason,
} from './config.js';
import { runPass, type CompressedModel, type PassContext, type PassHandler, type PassOptions, type PlannedEntry } from './pass.js';
import type { WeightCandidate } from './select.js';
import type { CompressResult } from './native-compress.js';
import { int32Scalar, outputValue, uint32Vector } from './values.js';
import { bindInput, inputValue, insertBefore } from './joint.js';
import { linearQuantizeWeights } from './quantize.js';
import { lutDtypeQuantizerOptions, OpLinearQuantizerConfig } from './config.js';
import type { ValueMsg } from '../mil/values.js';
import { floatToHalfBits, halfBitsToFloat } from '../mil/values.js';
import { packSubByte, type BlobDType } from '../format/blob.js';

export type PalettizeOptions = PassOptions;

function shapeInfo(result: CompressResult, key: string): number[] {
  const v = result.info[key];
  if (!v) throw new Error(`palettize: native result lacks ${key}`);
  return v;
}

function describe(config: OpPalettizerConfig, nbits: number): string {
  const parts = [`${nbits}-bit ${config.mode.toLowerCase()} LUT`];
  parts.push(config.granularity === 'per_grouped_channel' ? `per_grouped_channel gs${config.group_size}` : 'per_tensor');
  if (config.cluster_dim > 1) parts.push(`cluster_dim ${config.cluster_dim}`);
  if (config.enable_per_channel_scale) parts.push('per-channel scale');
  return parts.join(', ');
}

const ALLOWED_NBITS = [1, 2, 3, 4, 6, 8];

/**
 * mode 'custom': the user's lut_function runs in JS on each group (the channel slab with the
 * channel axis moved first, as coremltools passes it); the result is written by the same native
 * job at the weight's place in op order ("precomputed" entry).
 */
function customLutEntry(c: WeightCandidate, config: OpPalettizerConfig, ctx: PassContext): PlannedEntry | { skip: string } {
  const fn = config.lutFunction!;
  const grouped = config.granularity === 'per_grouped_channel';
  const axis = paletteAxis(c, config, c.shape);
  if (typeof axis !== 'number') return axis;
  const channels = c.shape[axis]!;
  const groupSize = grouped && config.group_size > 0 ? config.group_size : channels;
  if (channels % groupSize !== 0) return { skip: `${channels} channels are not divisible by group_size ${groupSize}` };
  const values = c.op.constValue().toFloat32();
  const inner = c.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = c.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const groups = channels / groupSize;
  const slabShape = [groupSize, ...c.shape.slice(0, axis), ...c.shape.slice(axis + 1)];
  const indices = new Uint8Array(values.length);
  const luts: number[][] = [];
  for (let g = 0; g < groups; g++) {
    // Element k of the slab (channel axis first, row-major) sits at flat index `at[k]` of the weight.
    const at = new Int32Array(groupSize * outer * inner);
    let k = 0;
    for (let ch = 0; ch < groupSize; ch++) {
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < inner; i++) at[k++] = (o * channels + g * groupSize + ch) * inner + i;
      }
    }
    const data = Float32Array.from(at, (j) => values[j]!);
    const r = fn({ data, shape: slabShape });
    if (r.indices.length !== data.length) throw new ConfigError(`lut_function returned ${r.indices.length} indices for ${data.length} values of ${c.name}`);
    for (let j = 0; j < at.length; j++) {
      const idx = r.indices[j]!;
      if (!Number.isInteger(idx) || idx < 0 || idx >= r.lut.length) throw new ConfigError(`lut_function returned index ${idx} outside its ${r.lut.length}-entry LUT for ${c.name}`);
      indices[at[j]!] = idx;
    }
    luts.push(Array.from(r.lut));
  }
  const needed = Math.max(1, Math.ceil(Math.log2(Math.max(...luts.map((l) => l.length)))));
  const nbits = ALLOWED_NBITS.find((n) => n >= needed);
  if (nbits === undefined) return { skip: `lut_function returned more than 256 LUT entries` };
  const entries = 1 << nbits;
  const f16 = c.dtype === 'fp16';
  const lutValues = new Float32Array(groups * entries);
  luts.forEach((l, g) => l.forEach((v, k) => (lutValues[g * entries + k] = f16 ? halfBitsToFloat(floatToHalfBits(v)) : v)));
  let sse = 0, signal = 0;
  for (let j = 0; j < values.length; j++) {
    const g = Math.floor((Math.floor(j / inner) % channels) / groupSize);
    const d = values[j]! - lutValues[g * entries + indices[j]!]!;
    sse += d * d;
    signal += values[j]! * values[j]!;
  }
  const lutBytes = f16
    ? new Uint8Array(Uint16Array.from(lutValues, (v) => floatToHalfBits(v)).buffer)
    : new Uint8Array(lutValues.buffer);
  const packed = packSubByte(`uint${nbits}` as BlobDType, indices);
  const ios16 = ctx.ios(c.fn) < 18;
  const lutShape = [...c.shape.map((_, a) => (a === axis ? groups : 1)), entries, 1];
  return {
    kind: 'precomputed',
    blobs: [
      { dtype: ios16 ? 'uint8' : `uint${nbits}`, bytes: packed, elementCount: ios16 ? packed.length : indices.length },
      { dtype: f16 ? 'float16' : 'float32', bytes: lutBytes, elementCount: lutValues.length },
    ],
    info: { nbits: [nbits], lutShape, indicesShape: c.shape, vectorAxis: [-1], sse: [sse], signal: [signal], groups: [groups] },
  };
}

export const palettizeHandler: PassHandler = {
  api: 'palettize',

  plan(c: WeightCandidate, ctx: PassContext): PlannedEntry | { skip: string } {
    const config = c.config;
    if (!(config instanceof OpPalettizerConfig)) throw new ConfigError(`palettize: weight ${c.name} resolved to a ${config.configType}; palettize_weights takes OpPalettizerConfig`);
    checkOpConfigTarget(config, { specVersion: ctx.specVersion, opset: ctx.opset(c.fn) }, { jointCompression: ctx.jointCompression });
    if (c.joint) return config.mode === 'CUSTOM' ? { skip: 'custom lut_function mode is not supported in joint mode' } : planJoint(c, config, ctx);
    if (config.mode === 'CUSTOM') return customLutEntry(c, config, ctx);
    if (!(c.dtype === 'fp16' || c.dtype === 'fp32')) return { skip: `dtype ${c.dtype}: only float weights are palettized (joint mode palettizes integer data)` };
    const axis = paletteAxis(c, config, c.shape);
    if (typeof axis !== 'number') return axis;
    return {
      kind: 'palettize',
      shape: c.shape,
      mode: config.mode.toLowerCase(),
      nbits: config.nbits ?? 8,
      groupSize: config.granularity === 'per_grouped_channel' ? config.group_size : 0,
      channelAxis: axis,
      clusterDim: config.cluster_dim,
      perChannelScale: config.enable_per_channel_scale,
      seed: 0,
      ios16: ctx.ios(c.fn) < 18,
    };
  },

  emit(c: WeightCandidate, r: CompressResult, ctx: PassContext): string {
    const config = c.config as OpPalettizerConfig;
    if (c.joint) return emitJoint(c, r, ctx);
    const nbits = shapeInfo(r, 'nbits')[0]!;
    const opset = ctx.opset(c.fn);
    const ios16 = ctx.ios(c.fn) < 18;
    // unique mode decides nbits per weight: an 8-entry LUT does not exist in the iOS16 op.
    checkOpConfigTarget(config, { specVersion: ctx.specVersion, opset }, { resolvedNbits: nbits, jointCompression: ctx.jointCompression });
    const dtype = c.dtype as MilDType;
    const outType = tensorType(dtype, c.shape);
    const name = `${c.name}_palettized`;
    const block = c.op.block;
    if (ios16) {
      if (![1, 2, 4, 6, 8].includes(nbits)) throw new UnsupportedError(TARGET_MESSAGES.lutSize);
      const [indices, lut] = r.outputs;
      const op = makeConstexprOp(opset, 'constexpr_lut_to_dense', name, [
        ['indices', outputValue(indices!, [indices!.elementCount], 'uint8')],
        ['lut', outputValue(lut!, [1 << nbits], dtype)],
        ['shape', uint32Vector(c.shape)],
      ], [{ name, type: outType }]);
      block.replaceConst(c.op, [op], name);
      return describe(config, nbits);
    }
    const indicesDtype = `uint${nbits}` as MilDType;
    const indicesShape = shapeInfo(r, 'indicesShape');
    const lutShape = shapeInfo(r, 'lutShape');
    const vectorAxis = config.cluster_dim > 1 ? int32Scalar(shapeInfo(r, 'vectorAxis')[0]!) : undefined;
    if (config.enable_per_channel_scale) {
      // The file form coremltools writes for opsets below iOS26 (spec §4.4): the LUT repeated over
      // the scale's positions is scaled first, then looked up.
      const [data, scale, indices] = r.outputs;
      const dataShape = shapeInfo(r, 'dataShape');
      const scaleShape = [...shapeInfo(r, 'scaleShape'), 1, 1];
      const scaled = makeConstexprOp(opset, 'constexpr_blockwise_shift_scale', name, [
        ['data', outputValue(data!, dataShape, dtype)],
        ['scale', outputValue(scale!, scaleShape, dtype)],
      ], [{ name, type: tensorType(dtype, dataShape) }]);
      const lookup = makeConstexprOp(opset, 'constexpr_lut_to_dense', `${name}_pcs`, [
        ['indices', outputValue(indices!, indicesShape, indicesDtype)],
        ['lut', name],
        ['vector_axis', vectorAxis],
      ], [{ name: `${name}_pcs`, type: outType }]);
      block.replaceConst(c.op, [scaled, lookup], `${name}_pcs`);
      return describe(config, nbits);
    }
    const [indices, lut] = r.outputs;
    const op = makeConstexprOp(opset, 'constexpr_lut_to_dense', name, [
      ['indices', outputValue(indices!, indicesShape, indicesDtype)],
      ['lut', outputValue(lut!, lutShape, dtype)],
      ['vector_axis', vectorAxis],
    ], [{ name, type: outType }]);
    block.replaceConst(c.op, [op], name);
    return describe(config, nbits);
  },
};

/**
 * The grouping / vector axis of a weight of `shape`, or why coremltools leaves it dense. Follows
 * palettize_weights.transform_op (optimize/coreml/_quantization_passes.py):
 *  - `infer_block_sizes(...)` returns None when `input_channel_axis is None or output_channel_axis
 *    is None` (consumers disagree), for every granularity → "block_sizes is None. Skipped this op.";
 *  - the axis is the consumers' output axis, or `op_config.channel_axis` for per_grouped_channel;
 *  - `if op_config.cluster_dim > 1: if not is_cluster_dim_valid(op, cluster_dim, channel_axis)` → skip.
 * The group-size and cluster_dim divisibility rules of grouped_channelwise_compress run natively.
 */
function paletteAxis(c: WeightCandidate, config: OpPalettizerConfig, shape: readonly number[]): number | { skip: string } {
  if (c.axes.output === null || c.axes.input === null) {
    return { skip: `its consumers disagree on the ${c.axes.output === null ? 'output' : 'input'}-channel axis (coremltools: block_sizes is None)` };
  }
  const rank = shape.length;
  const axis = config.granularity === 'per_grouped_channel' && config.channel_axis !== null
    ? (config.channel_axis < 0 ? config.channel_axis + rank : config.channel_axis)
    : c.axes.output;
  if (config.cluster_dim > 1) {
    const why = clusterDimInvalidReason(c.weightConsumers, shape, config.cluster_dim, axis);
    if (why) return { skip: why };
  }
  return axis;
}

function clusteringParams(config: OpPalettizerConfig, axis: number): Record<string, unknown> {
  return {
    mode: config.mode.toLowerCase(),
    nbits: config.nbits ?? 8,
    groupSize: config.granularity === 'per_grouped_channel' ? config.group_size : 0,
    channelAxis: axis,
    clusterDim: config.cluster_dim,
    perChannelScale: config.enable_per_channel_scale,
    seed: 0,
  };
}

/**
 * Joint mode (spec §4.5): palettize the non-zeros of a pruned weight (constexpr_sparse_to_dense) or
 * the integer data of a quantized one (constexpr_blockwise_shift_scale).
 */
function planJoint(c: WeightCandidate, config: OpPalettizerConfig, ctx: PassContext): PlannedEntry | { skip: string } {
  const joint = c.joint!;
  if (joint.end !== c.op) return { skip: 'the value feeds a longer constexpr chain' };
  if (config.cluster_dim > 1 || config.enable_per_channel_scale) return { skip: 'vector palettization and per-channel scale are not supported in joint mode' };
  const axis = paletteAxis(c, config, joint.denseShape);
  if (typeof axis !== 'number') return axis;
  if (joint.input === 'nonzero_data') {
    if (!(c.dtype === 'fp16' || c.dtype === 'fp32')) return { skip: `non-zeros of dtype ${c.dtype} are not palettized` };
    const mask = inputValue(c.op, 'mask');
    if (!mask?.blobFileValue) return { skip: 'the sparse weight has no mask in the weight file' };
    return { kind: 'palettize_sparse', shape: joint.denseShape, ...clusteringParams(config, axis), extraValues: [mask] };
  }
  if (!(c.dtype === 'int8' || c.dtype === 'uint8')) return { skip: `data of dtype ${c.dtype} is not palettized in joint mode (int8/uint8 only)` };
  const scale = inputValue(c.op, 'scale');
  if (!scale) return { skip: 'the quantized weight has no constant scale' };
  const offset = inputValue(c.op, 'offset');
  const extraValues = [scale, offset].filter((v): v is ValueMsg => Boolean(v?.blobFileValue));
  const scaleShape = (tensorShape(scale.type) ?? []).map((d) => d ?? 1);
  // Below iOS26 coremltools writes the P1 form (LUT repeated over the scale's blocks), from iOS26 P2.
  return { kind: 'palettize_int', shape: c.shape, scaleShape, repeatLut: ctx.ios(c.fn) < 26, ...clusteringParams(config, axis), extraValues };
}

/** A constant value (blob written by the job, or the old immediate) retyped to `shape`. */
function retyped(v: ValueMsg, dtype: MilDType, shape: number[], out: CompressResult['outputs'][number] | undefined): ValueMsg {
  if (v.blobFileValue) return outputValue(out!, shape, dtype);
  return { ...v, type: tensorType(dtype, shape) };
}

function emitJoint(c: WeightCandidate, r: CompressResult, ctx: PassContext): string {
  const config = c.config as OpPalettizerConfig;
  const joint = c.joint!;
  const opset = ctx.opset(c.fn);
  const nbits = shapeInfo(r, 'nbits')[0]!;
  const indicesDtype = `uint${nbits}` as MilDType;
  const name = `${c.name}_palettized`;
  if (joint.input === 'nonzero_data') {
    const [mask, indices, lut] = r.outputs;
    const dense = joint.denseShape;
    const op = makeConstexprOp(opset, 'constexpr_lut_to_sparse', name, [
      ['indices_mask', outputValue(mask!, dense, 'uint1')],
      ['indices_nonzero_data', outputValue(indices!, c.shape, indicesDtype)],
      ['lut', outputValue(lut!, shapeInfo(r, 'lutShape'), c.dtype)],
    ], [{ name: `${name}_0`, type: tensorType('uint1', dense) }, { name: `${name}_1`, type: tensorType(c.dtype, c.shape) }]);
    bindInput(c.op, 'nonzero_data', `${name}_1`);
    bindInput(c.op, 'mask', `${name}_0`);
    insertBefore(c.op, [op]);
    return `non-zeros: ${describe(config, nbits)}`;
  }
  // quantize → palettize. P1 file form (opsets below iOS26): shift_scale(int LUT repeated over the
  // scale's blocks) → lut_to_dense; P2 (iOS26+): lut_to_dense(int LUT) → shift_scale.
  const scale = inputValue(c.op, 'scale')!;
  const offset = inputValue(c.op, 'offset');
  const scaleDtype = tensorDType(scale.type)!;
  const scaleRankK = (tensorShape(scale.type) ?? []).map((d) => d ?? 1);
  const dataShape = shapeInfo(r, 'dataShape');
  let k = 1;
  const scaleOut = scale.blobFileValue ? r.outputs[k++] : undefined;
  const offsetOut = offset?.blobFileValue ? r.outputs[k++] : undefined;
  const indices = r.outputs[k]!;
  const vectorAxis = config.cluster_dim > 1 ? int32Scalar(shapeInfo(r, 'vectorAxis')[0]!) : undefined;
  const indicesValue = outputValue(indices, shapeInfo(r, 'indicesShape'), indicesDtype);
  if (ctx.ios(c.fn) >= 26) {
    const lookup = makeConstexprOp(opset, 'constexpr_lut_to_dense', name, [
      ['indices', indicesValue],
      ['lut', outputValue(r.outputs[0]!, dataShape, c.dtype)],
      ['vector_axis', vectorAxis],
    ], [{ name, type: tensorType(c.dtype, c.shape) }]);
    bindInput(c.op, 'data', name);
    bindInput(c.op, 'scale', retyped(scale, scaleDtype, scaleRankK, scaleOut));
    if (offset) bindInput(c.op, 'offset', retyped(offset, tensorDType(offset.type)!, scaleRankK, offsetOut));
    insertBefore(c.op, [lookup]);
    return `${c.dtype} data: ${describe(config, nbits)}`;
  }
  const scaleShape = [...scaleRankK, 1, 1];
  const lutOp = makeConstexprOp(opset, 'constexpr_blockwise_shift_scale', name, [
    ['data', outputValue(r.outputs[0]!, dataShape, c.dtype)],
    ['scale', retyped(scale, scaleDtype, scaleShape, scaleOut)],
    ['offset', offset ? retyped(offset, tensorDType(offset.type)!, scaleShape, offsetOut) : undefined],
  ], [{ name, type: tensorType(scaleDtype, dataShape) }]);
  c.op.msg.type = 'constexpr_lut_to_dense';
  c.op.msg.inputs = {};
  bindInput(c.op, 'indices', indicesValue);
  bindInput(c.op, 'lut', name);
  if (vectorAxis) bindInput(c.op, 'vector_axis', vectorAxis);
  insertBefore(c.op, [lutOp]);
  return `${c.dtype} data: ${describe(config, nbits)}`;
}

/**
 * coremltools' num_kmeans_workers sizes its process pool; here it sizes the native thread pool for
 * the call when larger than 1 (its default, 1, leaves the pool as setThreads left it).
 */
export function kmeansWorkerThreads(config: OptimizationConfig): number | undefined {
  const workers = Math.max(1, ...config.allConfigs().map((c) => (c instanceof OpPalettizerConfig ? c.num_kmeans_workers : 1)));
  return workers > 1 ? workers : undefined;
}

/**
 * Palettize the weights of an ML Program (coremltools' palettize_weights). Returns a new, unsaved
 * model; the input is not modified. `config` is an OptimizationConfig or its dict form.
 */
export async function palettizeWeights(model: Model, config: OptimizationConfig | Record<string, unknown>, options: PalettizeOptions = {}): Promise<CompressedModel> {
  const cfg = config instanceof OptimizationConfig ? config : OptimizationConfig.fromDict({ config_type: 'OpPalettizerConfig', ...config });
  checkConfigForApi(cfg, 'palettize');
  // Weights whose config has lut_dtype get their LUT quantized by a second, joint pass.
  const lutWeights = new Map<string, OpPalettizerConfig>();
  const handler: PassHandler = {
    ...palettizeHandler,
    emit(c, r, ctx) {
      const detail = palettizeHandler.emit(c, r, ctx);
      const pc = c.config as OpPalettizerConfig;
      if (pc.lut_dtype !== null && !c.joint && !pc.enable_per_channel_scale) lutWeights.set(c.name, pc);
      return detail;
    },
  };
  const threads = options.threads ?? kmeansWorkerThreads(cfg);
  const passOptions = { ...options, ...(threads !== undefined ? { threads } : {}) };
  const palettized = await runPass(model, cfg, handler, passOptions);
  return quantizeLuts(palettized, lutWeights, passOptions);
}

/**
 * Our lut_dtype extension: a joint per-tensor quantization of the LUTs of the weights whose config
 * asks for it (the coremltools 9.0 way to get an int8 LUT, as in joint_pal4_q8lut_ios18).
 */
async function quantizeLuts(palettized: CompressedModel, lutWeights: Map<string, OpPalettizerConfig>, options: PalettizeOptions): Promise<CompressedModel> {
  const lutConfigs: Record<string, OpLinearQuantizerConfig> = {};
  for (const [name, pc] of lutWeights) lutConfigs[`${name}_palettized_lut_0`] = new OpLinearQuantizerConfig(lutDtypeQuantizerOptions(pc)!);
  if (Object.keys(lutConfigs).length === 0) return palettized;
  const quantized = await linearQuantizeWeights(palettized, new OptimizationConfig({ op_name_configs: lutConfigs }), { ...options, jointCompression: true });
  const byName = new Map(quantized.compression.weights.map((w) => [w.name, w]));
  const weights = palettized.compression.weights.map((w) => {
    const q = byName.get(`${w.name}_palettized_lut_0`);
    return q?.status === 'compressed' ? { ...w, detail: `${w.detail}, ${q.detail}`, bytesAfter: w.bytesAfter - q.bytesBefore + q.bytesAfter } : w;
  });
  return Object.assign(quantized, { compression: { ...palettized.compression, weights, weightFileBytesAfter: quantized.compression.weightFileBytesAfter } }) as CompressedModel;
}
