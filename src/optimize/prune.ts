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
import { outputValue, uint32Vector } from './values.js';

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
    if (c.joint) return { skip: 'pruning an already compressed weight is not supported' };
    if (!FLOAT.has(c.dtype)) return { skip: `dtype ${c.dtype}: only float weights are pruned` };
    const base = { kind: 'prune', shape: c.shape, ios16: ctx.ios(c.fn) < 18 };
    if (config instanceof OpThresholdPrunerConfig) {
      return { ...base, method: 'threshold', threshold: config.threshold, minimumSparsity: config.minimum_sparsity_percentile };
    }
    if (config.isStructural()) {
      if (!c.namedInConfig && !structuredTarget(c)) return { skip: 'block / n:m pruning only applies to the weight of conv and linear ops' };
      if (c.shape.length < 2 || c.shape.length > 5) return { skip: `rank ${c.shape.length}: block / n:m pruning needs a rank 2 to 5 weight` };
      if (config.n_m_ratio) return { ...base, method: 'nm', n: config.n_m_ratio[0], m: config.n_m_ratio[1], dim: config.dim ?? 1 };
      return { ...base, method: 'block', targetSparsity: config.target_sparsity ?? 0, blockSize: config.block_size!, dim: config.dim ?? 0 };
    }
    return { ...base, method: 'magnitude', targetSparsity: config.target_sparsity ?? 0 };
  },

  emit(c: WeightCandidate, r: CompressResult, ctx: PassContext): string {
    const config = c.config as OpMagnitudePrunerConfig | OpThresholdPrunerConfig;
    const opset = ctx.opset(c.fn);
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
