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

export const palettizeHandler: PassHandler = {
  api: 'palettize',

  plan(c: WeightCandidate, ctx: PassContext): PlannedEntry | { skip: string } {
    const config = c.config;
    if (!(config instanceof OpPalettizerConfig)) throw new ConfigError(`palettize: weight ${c.name} resolved to a ${config.configType}; palettize_weights takes OpPalettizerConfig`);
    checkOpConfigTarget(config, { specVersion: ctx.specVersion, opset: ctx.opset(c.fn) }, { jointCompression: ctx.jointCompression });
    if (config.mode === 'CUSTOM') return { skip: 'custom lut_function mode is not supported by the streaming pass yet' };
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
