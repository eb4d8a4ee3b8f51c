/**
 * palettizeWeights: coremltools.optimize.coreml.palettize_weights. Each selected weight becomes an
 * n-bit index tensor into a look-up table (spec §4.1/4.2/4.4), clustered natively (exact 1-D
 * k-means, uniform, unique or vector k-means) while the weight file is streamed.
 */
import type { Model } from '../model.js';
import { makeConstexprOp } from '../mil/program.js';
import { tensorType, type MilDType } from '../mil/types.js';
import { ConfigError, UnsupportedError } from '../errors.js';
import {
  OpPalettizerConfig, OptimizationConfig, TARGET_MESSAGES, checkConfigForApi, checkOpConfigTarget,
} from './config.js';
import { runPass, type CompressedModel, type PassContext, type PassHandler, type PassOptions, type PlannedEntry } from './pass.js';
import type { WeightCandidate } from './select.js';
import type { CompressResult } from './native-compress.js';
import { int32Scalar, outputValue, uint32Vector } from './values.js';
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
  const rank = c.shape.length;
  const grouped = config.granularity === 'per_grouped_channel';
  let axis = grouped && config.channel_axis !== null ? (config.channel_axis + rank) % rank : c.axes.output;
  if (axis === null) {
    if (grouped) return { skip: 'its consumers disagree on the output-channel axis' };
    axis = 0;
  }
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
    if (config.mode === 'CUSTOM') return customLutEntry(c, config, ctx);
    if (config.lut_dtype !== null) return { skip: 'lut_dtype (quantized LUT) needs joint compression support, not available yet' };
    if (!(c.dtype === 'fp16' || c.dtype === 'fp32')) return { skip: `dtype ${c.dtype}: only float weights are palettized (joint mode palettizes integer data)` };
    const rank = c.shape.length;
    let axis: number | null = c.axes.output;
    if (config.granularity === 'per_grouped_channel' && config.channel_axis !== null) {
      axis = config.channel_axis < 0 ? config.channel_axis + rank : config.channel_axis;
    }
    const needsAxis = config.granularity === 'per_grouped_channel' || config.cluster_dim > 1 || config.enable_per_channel_scale;
    if (axis === null) {
      if (needsAxis) return { skip: 'its consumers disagree on the output-channel axis' };
      axis = 0;
    }
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
 * Palettize the weights of an ML Program (coremltools' palettize_weights). Returns a new, unsaved
 * model; the input is not modified. `config` is an OptimizationConfig or its dict form.
 */
export async function palettizeWeights(model: Model, config: OptimizationConfig | Record<string, unknown>, options: PalettizeOptions = {}): Promise<CompressedModel> {
  const cfg = config instanceof OptimizationConfig ? config : OptimizationConfig.fromDict({ config_type: 'OpPalettizerConfig', ...config });
  checkConfigForApi(cfg, 'palettize');
  return runPass(model, cfg, palettizeHandler, options);
}
