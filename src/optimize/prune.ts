/**
 * pruneWeights: coremltools.optimize.coreml.prune_weights. Each selected weight is pruned natively
 * with coremltools' numerics (magnitude, block, n:m or threshold; spec §5.3) while the weight file is
 * streamed and becomes `constexpr_sparse_to_dense` (iOS16: packed uint8 mask + shape; iOS18: uint1
 * mask of the weight's shape). Ties at the magnitude percentile are all pruned, as numpy does in
 * coremltools, so the sparsity can exceed the target.
 */
import type { Model } from '../model.js';
import { makeConstexprOp } from '../mil/program.js';
import { tensorType } from '../mil/types.js';
import { ConfigError } from '../errors.js';
import {
  OpMagnitudePrunerConfig, OpThresholdPrunerConfig, OptimizationConfig, STRUCTURAL_PRUNING_INPUTS, checkConfigForApi,
} from './config.js';
import { runPass, type CompressedModel, type PassContext, type PassHandler, type PassOptions, type PlannedEntry } from './pass.js';
import type { WeightCandidate } from './select.js';
import type { CompressResult } from './native-compress.js';
import { outputValue, uint32Vector, WEIGHT_FILE_NAME } from './values.js';
import { bindInput, inputValue, insertBefore } from './joint.js';
import { chainEntry } from './chain-entry.js';
import type { ValueMsg } from '../mil/values.js';

export type PruneOptions = PassOptions;

const FLOAT = new Set(['fp16', 'fp32']);

function describe(config: OpMagnitudePrunerConfig | OpThresholdPrunerConfig, sparsity: number): string {
  const pct = `${(sparsity * 100).toFixed(1)}% zeros`;
  if (config instanceof OpThresholdPrunerConfig) return `threshold ${config.threshold}, ${pct}`;
  if (config.n_m_ratio) return `${config.n_m_ratio[0]}:${config.n_m_ratio[1]} along dim ${config.dim}, ${pct}`;
  if (config.block_size !== null) return `block ${config.block_size} along dim ${config.dim}, ${pct}`;
  return `magnitude, ${pct}`;
}

/** Structured pruning only reads conv/linear `weight` (coremltools' _SUPPORTED_OPS_FOR_STRUCTURAL_PRUNING). */
function structuredTarget(c: WeightCandidate): boolean {
  return c.consumers.length > 0 && c.consumers.every((u) => STRUCTURAL_PRUNING_INPUTS[u.op.type]?.includes(u.input) ?? false);
}

export const pruneHandler: PassHandler = {
  api: 'prune',

  plan(c: WeightCandidate, ctx: PassContext): PlannedEntry | { skip: string } {
    const config = c.config;
    if (!(config instanceof OpMagnitudePrunerConfig) && !(config instanceof OpThresholdPrunerConfig)) {
      throw new ConfigError(`prune: weight ${c.name} resolved to a ${config.configType}; prune_weights takes OpMagnitudePrunerConfig or OpThresholdPrunerConfig`);
    }
    const shape = c.joint ? c.joint.denseShape : c.shape;
    let base: PlannedEntry = { kind: 'prune', shape, ios16: ctx.ios(c.fn) < 18 };
    if (c.joint) {
      // quantize → prune / palettize → prune (spec §4.5): prune the op's output, mask what it stores.
      if (c.joint.end !== c.op) return { skip: 'the compressed weight feeds a longer constexpr chain' };
      if (c.op.param('vector_axis')) return { skip: 'vector-palettized weights are not pruned in joint mode' };
      if (c.op.type === 'constexpr_lut_to_dense' && c.op.param('shape')) return { skip: 'iOS16 LUT form' };
      if (!FLOAT.has(c.joint.denseDtype)) return { skip: `dtype ${c.joint.denseDtype}: only float weights are pruned` };
      let entry;
      try {
        entry = chainEntry(c.fn, [c.op], c.joint.value);
      } catch (e) {
        return { skip: (e as Error).message };
      }
      base = { kind: 'prune_compressed', shape, opset: 'ios18', ops: entry.ops, resultOp: 0, resultOutput: 0, extraValues: entry.sources.slice(1) };
    } else if (!FLOAT.has(c.dtype)) {
      return { skip: `dtype ${c.dtype}: only float weights are pruned` };
    }
    if (config instanceof OpThresholdPrunerConfig) {
      return { ...base, method: 'threshold', threshold: config.threshold, minimumSparsity: config.minimum_sparsity_percentile };
    }
    if (config.isStructural()) {
      if (!c.namedInConfig && !structuredTarget(c)) return { skip: 'block / n:m pruning only applies to the weight of conv and linear ops' };
      if (shape.length < 2 || shape.length > 5) return { skip: `rank ${shape.length}: block / n:m pruning needs a rank 2 to 5 weight` };
      if (config.n_m_ratio) return { ...base, method: 'nm', n: config.n_m_ratio[0], m: config.n_m_ratio[1], dim: config.dim ?? 1 };
      return { ...base, method: 'block', targetSparsity: config.target_sparsity ?? 0, blockSize: config.block_size!, dim: config.dim ?? 0 };
    }
    return { ...base, method: 'magnitude', targetSparsity: config.target_sparsity ?? 0 };
  },

  emit(c: WeightCandidate, r: CompressResult, ctx: PassContext): string {
    const config = c.config as OpMagnitudePrunerConfig | OpThresholdPrunerConfig;
    const opset = ctx.opset(c.fn);
    if (c.joint) return `${emitJoint(c, r, opset)}: ${describe(config, r.info['sparsity']![0]!)}`;
    const name = `${c.name}_sparsified`;
    const [nonzero, mask] = r.outputs;
    const count = r.info['nonzeroCount']![0]!;
    const ios16 = ctx.ios(c.fn) < 18;
    const op = makeConstexprOp(opset, 'constexpr_sparse_to_dense', name, [
      ['nonzero_data', outputValue(nonzero!, [count], c.dtype)],
      ['mask', ios16 ? outputValue(mask!, [mask!.elementCount], 'uint8') : outputValue(mask!, c.shape, 'uint1')],
      ['shape', ios16 ? uint32Vector(c.shape) : undefined],
    ], [{ name, type: tensorType(c.dtype, c.shape) }]);
    c.op.block.replaceConst(c.op, [op], name);
    return describe(config, r.info['sparsity']![0]!);
  },
};

/** A blob value moved to `out`'s offset, or the same immediate. */
function moved(v: ValueMsg, out: CompressResult['outputs'][number] | undefined): ValueMsg {
  if (!v.blobFileValue) return v;
  return { ...v, blobFileValue: { fileName: WEIGHT_FILE_NAME, offset: out!.offset! } };
}

/**
 * quantize → prune: sparse_blockwise_shift_scale(mask, data[mask], scale, offset) → sparse_to_dense;
 * palettize → prune: lut_to_sparse(mask, indices[mask], lut) → sparse_to_dense. The compressed op
 * becomes the sparse_to_dense (its output var, which the model reads, keeps its name).
 */
function emitJoint(c: WeightCandidate, r: CompressResult, opset: string): string {
  const joint = c.joint!;
  const op = c.op;
  const dense = joint.denseShape;
  const count = r.info['nonzeroCount']![0]!;
  const [mask, selected, ...copies] = r.outputs;
  const copyOf = new Map<ValueMsg, CompressResult['outputs'][number]>();
  let k = 0;
  const stored = new Set<number>([Number(joint.value.blobFileValue!.offset ?? 0)]);
  for (const key of op.paramNames) {
    const v = inputValue(op, key);
    if (!v?.blobFileValue) continue;
    const off = Number(v.blobFileValue.offset ?? 0);
    if (stored.has(off)) continue;
    stored.add(off);
    copyOf.set(v, copies[k++]);
  }
  const keep = (key: string): ValueMsg | undefined => {
    const v = inputValue(op, key);
    return v ? moved(v, copyOf.get(v)) : undefined;
  };
  const name = `${op.name}_sparse`;
  const valuesType = tensorType(joint.denseDtype, [count]);
  let first;
  let kind: string;
  if (op.type === 'constexpr_blockwise_shift_scale') {
    first = makeConstexprOp(opset, 'constexpr_sparse_blockwise_shift_scale', name, [
      ['data_mask', outputValue(mask!, dense, 'uint1')],
      ['nonzero_data', outputValue(selected!, [count], c.dtype)],
      ['scale', keep('scale')],
      ['offset', keep('offset')],
    ], [{ name: `${name}_0`, type: tensorType('uint1', dense) }, { name: `${name}_1`, type: valuesType }]);
    kind = 'quantized weight pruned';
  } else {
    first = makeConstexprOp(opset, 'constexpr_lut_to_sparse', name, [
      ['indices_mask', outputValue(mask!, dense, 'uint1')],
      ['indices_nonzero_data', outputValue(selected!, [count], c.dtype)],
      ['lut', keep('lut')],
    ], [{ name: `${name}_0`, type: tensorType('uint1', dense) }, { name: `${name}_1`, type: valuesType }]);
    kind = 'palettized weight pruned';
  }
  op.msg.type = 'constexpr_sparse_to_dense';
  op.msg.inputs = {};
  bindInput(op, 'nonzero_data', `${name}_1`);
  bindInput(op, 'mask', `${name}_0`);
  insertBefore(op, [first]);
  return kind;
}

/**
 * Prune the weights of an ML Program (coremltools' prune_weights). Returns a new, unsaved model; the
 * input is not modified. `config` is an OptimizationConfig or its dict form (config_type defaults to
 * OpMagnitudePrunerConfig).
 */
export async function pruneWeights(model: Model, config: OptimizationConfig | Record<string, unknown>, options: PruneOptions = {}): Promise<CompressedModel> {
  const cfg = config instanceof OptimizationConfig ? config : OptimizationConfig.fromDict({ config_type: 'OpMagnitudePrunerConfig', ...config });
  checkConfigForApi(cfg, 'prune');
  return runPass(model, cfg, pruneHandler, options);
}
