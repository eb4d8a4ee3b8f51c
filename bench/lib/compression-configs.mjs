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
};

const pal = (name, global_config, publishedGB) => ({ name, api: 'palettize', global_config, publishedGB });

export const CONFIGS = [
  pal('palettize 8-bit per_tensor', { nbits: 8 }, 2.40),
  pal('palettize 6-bit per_tensor', { nbits: 6 }, 1.80),
  pal('palettize 4-bit per_tensor', { nbits: 4 }, 1.21),
  pal('palettize 4-bit gs4', { nbits: 4, granularity: 'per_grouped_channel', group_size: 4 }, 1.22),
  pal('palettize 4-bit gs16', { nbits: 4, granularity: 'per_grouped_channel', group_size: 16 }, 1.21),
  pal('palettize 4-bit gs32', { nbits: 4, granularity: 'per_grouped_channel', group_size: 32 }, 1.21),
  { name: 'quantize int8 per_channel', api: 'quantize', global_config: { mode: 'linear_symmetric', dtype: 'int8', granularity: 'per_channel' } },
  { name: 'prune 50% magnitude', api: 'prune', global_config: { target_sparsity: 0.5 } },
];

/** Configurations whose names contain any of the comma-separated filters (all when none). */
export function selectConfigs(filter) {
  if (!filter || filter === true) return CONFIGS;
  const parts = String(filter).split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  return CONFIGS.filter((c) => parts.some((p) => c.name.toLowerCase().includes(p)));
}
