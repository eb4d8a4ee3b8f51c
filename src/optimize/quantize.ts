/**
 * linearQuantizeWeights: coremltools.optimize.coreml.linear_quantize_weights. Each selected weight
 * becomes integer data plus a scale (and zero point), quantized natively with coremltools' numerics
 * while the weight file is streamed (spec §5.4): iOS16 `constexpr_affine_dequantize`, iOS18
 * `constexpr_blockwise_shift_scale`. In joint mode (spec §4.5) the non-zeros of a pruned weight
 * (`constexpr_sparse_blockwise_shift_scale`) or the LUT of a palettized one (per tensor) are quantized.
 */
import type { Model } from '../model.js';
import { makeConstexprOp } from '../mil/program.js';
import { tensorShape, tensorType, type MilDType } from '../mil/types.js';
import type { ValueMsg } from '../mil/values.js';
import { encodeImmediateTensor } from '../mil/values.js';
import { ConfigError, UnsupportedError } from '../errors.js';
import {
  OpLinearQuantizerConfig, OptimizationConfig, checkConfigForApi, checkOpConfigTarget, inferBlockSizes,
} from './config.js';
import { runPass, type CompressedModel, type PassContext, type PassHandler, type PassOptions, type PlannedEntry } from './pass.js';
import type { WeightCandidate } from './select.js';
import type { CompressResult } from './native-compress.js';
import { outputValue } from './values.js';
import { bindInput, inputValue, insertBefore, otherBlobInputs } from './joint.js';

export type QuantizeOptions = PassOptions;

function info(r: CompressResult, key: string): number[] {
  const v = r.info[key];
  if (!v) throw new Error(`quantize: native result lacks ${key}`);
  return v;
}

function describe(config: OpLinearQuantizerConfig): string {
  const g = config.granularity === 'per_block' ? `per_block ${Array.isArray(config.block_size) ? `[${String(config.block_size)}]` : String(config.block_size)}` : config.granularity;
  return `${config.dtype} ${config.mode.toLowerCase()}, ${g}`;
}

const FLOAT = new Set<MilDType>(['fp16', 'fp32']);

export const quantizeHandler: PassHandler = {
  api: 'quantize',

  plan(c: WeightCandidate, ctx: PassContext): PlannedEntry | { skip: string } {
    const config = c.config;
    if (!(config instanceof OpLinearQuantizerConfig)) throw new ConfigError(`quantize: weight ${c.name} resolved to a ${config.configType}; linear_quantize_weights takes OpLinearQuantizerConfig`);
    const quantizesLut = c.joint?.input === 'lut';
    checkOpConfigTarget(config, { specVersion: ctx.specVersion, opset: ctx.opset(c.fn) }, { jointCompression: ctx.jointCompression, quantizesLut });
    if (!FLOAT.has(c.dtype)) return { skip: `dtype ${c.dtype}: only float weights are quantized` };
    const base = { kind: 'quantize', mode: config.mode.toLowerCase(), dtype: config.dtype, ios16: ctx.ios(c.fn) < 18 };
    if (c.joint && quantizesLut) {
      // The LUT's axes are not the weight's: per tensor only (checked above).
      return { ...base, form: 'lut', shape: c.shape, blockSizes: c.shape.map(() => 0), extraValues: otherBlobInputs(c.op, 'lut').map((x) => x.value) };
    }
    const shape = c.joint ? c.joint.denseShape : c.shape;
    const inferred = inferBlockSizes(config, shape, c.axes);
    if (!inferred) return { skip: 'its consumers disagree on the channel axes' };
    if (c.joint) {
      const mask = inputValue(c.op, 'mask');
      if (!mask?.blobFileValue) return { skip: 'the sparse weight has no mask in the weight file' };
      return { ...base, form: 'sparse', shape, blockSizes: inferred.blockSizes, extraValues: [mask] };
    }
    return { ...base, form: 'dense', shape, blockSizes: inferred.blockSizes };
  },

  emit(c: WeightCandidate, r: CompressResult, ctx: PassContext): string {
    const config = c.config as OpLinearQuantizerConfig;
    const opset = ctx.opset(c.fn);
    const qdtype = config.dtype as MilDType;
    const scaleShape = info(r, 'scaleShape');
    const hasOffset = info(r, 'hasOffset')[0] === 1;
    const name = `${c.name}_quantized`;
    if (c.joint?.input === 'lut') {
      // palettize → quantize. P1 (opsets below iOS26): blockwise_shift_scale(int LUT, scale) feeds
      // the LUT input. P2 (iOS26+): lut_to_dense(indices, int LUT) → blockwise_shift_scale.
      const floatType = c.dtype;
      const [data, scale] = r.outputs;
      const offset = hasOffset ? r.outputs[2] : undefined;
      const rest = r.outputs.slice(hasOffset ? 3 : 2);
      otherBlobInputs(c.op, 'lut').forEach((x, i) => { x.value.blobFileValue = { fileName: x.value.blobFileValue!.fileName, offset: rest[i]!.offset! }; });
      if (ctx.ios(c.fn) >= 26 && c.op.type === 'constexpr_lut_to_dense') {
        const out = c.op.outputs[0]!;
        const dense = tensorShape(out.type)!.map((d) => d ?? 0);
        const rankK = dense.map(() => 1);
        const lookupName = `${c.op.name}_lut_0_lookup`;
        const lookup = makeConstexprOp(opset, 'constexpr_lut_to_dense', lookupName, [
          ...c.op.inputNames.map((k): [string, ValueMsg | string | undefined] => [k, k === 'lut' ? outputValue(data!, c.shape, qdtype) : inputValue(c.op, k)]),
        ], [{ name: lookupName, type: tensorType(qdtype, dense) }]);
        c.op.msg.type = 'constexpr_blockwise_shift_scale';
        c.op.msg.inputs = {};
        bindInput(c.op, 'data', lookupName);
        bindInput(c.op, 'scale', outputValue(scale!, rankK, floatType));
        if (offset) bindInput(c.op, 'offset', outputValue(offset, rankK, qdtype));
        insertBefore(c.op, [lookup]);
        return `LUT quantized to ${describe(config)}`;
      }
      const op = makeConstexprOp(opset, 'constexpr_blockwise_shift_scale', name, [
        ['data', outputValue(data!, c.shape, qdtype)],
        ['scale', outputValue(scale!, scaleShape, floatType)],
        ['offset', offset ? outputValue(offset, scaleShape, qdtype) : undefined],
      ], [{ name, type: tensorType(floatType, c.shape) }]);
      bindInput(c.op, 'lut', name);
      insertBefore(c.op, [op]);
      return `LUT quantized to ${describe(config)}`;
    }
    if (c.joint) {
      // prune → quantize: sparse_blockwise_shift_scale feeds the non-zeros; the mask input of
      // sparse_to_dense stays a value bound to the same blob as data_mask (as coremltools writes it).
      const [mask, nz, scale, offset] = r.outputs;
      const dense = c.joint.denseShape;
      const op = makeConstexprOp(opset, 'constexpr_sparse_blockwise_shift_scale', name, [
        ['data_mask', outputValue(mask!, dense, 'uint1')],
        ['nonzero_data', outputValue(nz!, c.shape, qdtype)],
        ['scale', outputValue(scale!, scaleShape, c.dtype)],
        ['offset', hasOffset ? outputValue(offset!, scaleShape, qdtype) : undefined],
      ], [{ name: `${name}_0`, type: tensorType('uint1', dense) }, { name: `${name}_1`, type: tensorType(c.dtype, c.shape) }]);
      bindInput(c.op, 'nonzero_data', `${name}_1`);
      bindInput(c.op, 'mask', outputValue(mask!, dense, 'uint1'));
      insertBefore(c.op, [op]);
      return `non-zeros quantized to ${describe(config)}`;
    }
    const outType = tensorType(c.dtype, c.shape);
    if (ctx.ios(c.fn) < 18) {
      const [q, zp, scale] = r.outputs;
      const varying = scaleShape.flatMap((d, i) => (d !== 1 ? [i] : []));
      if (varying.length > 1) throw new UnsupportedError(`quantize: ${c.name}: the scale varies along several axes, which constexpr_affine_dequantize cannot express`);
      const axis = varying[0] ?? 0;
      const paramShape = varying.length === 1 ? [scaleShape[axis]!] : [];
      const op = makeConstexprOp(opset, 'constexpr_affine_dequantize', name, [
        ['quantized_data', outputValue(q!, c.shape, qdtype)],
        ['zero_point', outputValue(zp!, paramShape, qdtype)],
        ['scale', outputValue(scale!, paramShape, c.dtype)],
        ['axis', encodeImmediateTensor('int32', [axis], [])],
      ], [{ name, type: outType }]);
      c.op.block.replaceConst(c.op, [op], name);
      return describe(config);
    }
    const [data, scale, offset] = r.outputs;
    const op = makeConstexprOp(opset, 'constexpr_blockwise_shift_scale', name, [
      ['data', outputValue(data!, c.shape, qdtype)],
      ['scale', outputValue(scale!, scaleShape, c.dtype)],
      ['offset', hasOffset ? outputValue(offset!, scaleShape, qdtype) : undefined],
    ], [{ name, type: outType }]);
    c.op.block.replaceConst(c.op, [op], name);
    return describe(config);
  },
};

/**
 * Linearly quantize the weights of an ML Program (coremltools' linear_quantize_weights). Returns a
 * new, unsaved model; the input is not modified. `config` is an OptimizationConfig or its dict form.
 */
export async function linearQuantizeWeights(model: Model, config: OptimizationConfig | Record<string, unknown>, options: QuantizeOptions = {}): Promise<CompressedModel> {
  const cfg = config instanceof OptimizationConfig ? config : OptimizationConfig.fromDict({ config_type: 'OpLinearQuantizerConfig', ...config });
  checkConfigForApi(cfg, 'quantize');
  return runPass(model, cfg, quantizeHandler, options);
}
