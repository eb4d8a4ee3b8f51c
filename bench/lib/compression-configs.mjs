/**
 * The compression configurations the benchmark runs, one line each. `api` picks the pass (see
 * PASSES); a pass whose module is not built yet is reported as unavailable rather than failing the
 * run, so prune/quantize rows start producing figures as soon as those passes land.
 * `publishedGB`: the size Apple publishes for the real SDXL UNet under that configuration.
 */
export const PASSES = {
  palettize: { module: 'optimize/palettize.js', fn: 'palettizeWeights', configType: 'OpPalettizerConfig' },
  quantize: { module: 'optimize/quantize.js', fn: 'linearQuantizeWeights', configType: 'OpLinearQuantizerConfig' },
  prune: { module: 'optimize/prune.js', fn: 'pruneWeights', configType: 'OpMagnitudePrunerConfig' },
  // Multi-step plans ({steps: [{api, config, joint_compression}]}) through compressModel.
  plan: { module: 'optimize/compress.js', fn: 'compressModel', plan: true },
};

const jointPlan = (sparsity, groupSize) => ({
  steps: [
    { api: 'prune', config: { config_type: 'OpMagnitudePrunerConfig', global_config: { target_sparsity: sparsity } } },
    { api: 'palettize', joint_compression: true, config: { config_type: 'OpPalettizerConfig', global_config: { nbits: 4, granularity: 'per_grouped_channel', group_size: groupSize } } },
  ],
});
const joint = (sparsity, groupSize, publishedGB) => ({ name: `prune ${sparsity * 100}% + palettize 4-bit gs${groupSize} (joint)`, api: 'plan', global_config: jointPlan(sparsity, groupSize), publishedGB });

const pal = (name, global_config, publishedGB) => ({ name, api: 'palettize', global_config, publishedGB });

export const CONFIGS = [
  pal('palettize 8-bit per_tensor', { nbits: 8 }, 2.40),
  pal('palettize 6-bit per_tensor', { nbits: 6 }, 1.80),
  pal('palettize 4-bit per_tensor', { nbits: 4 }, 1.21),
  pal('palettize 4-bit gs4', { nbits: 4, granularity: 'per_grouped_channel', group_size: 4 }, 1.22),
  pal('palettize 4-bit gs16', { nbits: 4, granularity: 'per_grouped_channel', group_size: 16 }, 1.21),
  pal('palettize 4-bit gs32', { nbits: 4, granularity: 'per_grouped_channel', group_size: 32 }, 1.21),
  { name: 'quantize int8 per_channel', api: 'quantize', global_config: { mode: 'linear_symmetric', dtype: 'int8', granularity: 'per_channel' } },
  { name: 'quantize int4 per_block 32', api: 'quantize', global_config: { mode: 'linear_symmetric', dtype: 'int4', granularity: 'per_block', block_size: 32 } },
  { name: 'prune 50% magnitude', api: 'prune', global_config: { target_sparsity: 0.5 } },
  joint(0.4, 4, 1.04),
  joint(0.4, 16, 1.03),
  joint(0.5, 4, 0.942),
  joint(0.5, 16, 0.933),
];

/** Configurations whose names contain any of the comma-separated filters (all when none). */
export function selectConfigs(filter) {
  if (!filter || filter === true) return CONFIGS;
  const parts = String(filter).split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  return CONFIGS.filter((c) => parts.some((p) => c.name.toLowerCase().includes(p)));
}
