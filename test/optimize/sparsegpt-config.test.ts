/** LayerwiseCompressorConfig / ModuleSparseGPTConfig / ModuleGPTQConfig as coremltools' dicts, and the CLI's size parser. */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { LayerwiseCompressorConfig, ModuleGPTQConfig, ModuleSparseGPTConfig } from '../../src/optimize/config/layerwise.js';
import { loadCompressPlan, compressPlanToData } from '../../src/optimize/steps.js';
import { parseSize } from '../../src/cli/layerwise-command.js';

describe('layerwise configs', () => {
  it('reads Apple\'s SDXL config with coremltools\' defaults', () => {
    const c = LayerwiseCompressorConfig.fromDict({
      global_config: { algorithm: 'sparse_gpt', target_sparsity: 0.4 },
      layers: ['down_blocks.\\d+', 'mid_block', 'up_blocks.\\d+'],
      input_cacher: 'gpt',
      calibration_nsamples: 128,
    });
    const g = c.global_config as ModuleSparseGPTConfig;
    expect(g).toBeInstanceOf(ModuleSparseGPTConfig);
    expect([g.target_sparsity, g.weight_dtype, g.bits, g.quantization_granularity, g.quantization_scheme, g.hessian_dampening, g.processing_group_size])
      .toEqual([0.4, 'uint8', 8, 'per_channel', 'symmetric', 0.01, 128]);
    expect(c.layers).toEqual(['down_blocks.\\d+', 'mid_block', 'up_blocks.\\d+']);
    expect(LayerwiseCompressorConfig.fromDict(c.toDict()).equals(c)).toBe(true);
    expect(new ModuleSparseGPTConfig({ weight_dtype: 'torch.float16' }).bits).toBe(0);
  });

  it('resolves module name, then module type (torch names mapped to ops), then global', () => {
    const c = LayerwiseCompressorConfig.fromDict({
      global_config: { target_sparsity: 0.5 },
      module_type_configs: { Linear: { algorithm: 'gptq', weight_dtype: 'uint4' }, Conv2d: null },
      module_name_configs: { 'proj_weight': { target_sparsity: 0.3 } },
    });
    expect(c.configFor('fc', 'fc_weight', 'linear')).toBeInstanceOf(ModuleGPTQConfig);
    expect(c.configFor('mm', 'mm_weight', 'matmul')).toBeInstanceOf(ModuleGPTQConfig);
    expect(c.configFor('conv', 'conv_weight', 'conv')).toBeNull();
    expect((c.configFor('proj', 'proj_weight', 'linear') as ModuleSparseGPTConfig).target_sparsity).toBe(0.3);
    const g = LayerwiseCompressorConfig.fromDict({ global_config: { weight_dtype: 'uint4', granularity: 'per_block', block_size: 32 } }, 'gptq');
    expect((g.global_config as ModuleGPTQConfig).block_size).toBe(32);
  });

  it('rejects bad dicts with errors naming the key', () => {
    const bad: [unknown, RegExp][] = [
      [{ global_config: { block_size: 4 } }, /block_size.*ModuleSparseGPTConfig/],
      [{ global_config: { n_m_ratio: [3, 2] } }, /n_m_ratio/],
      [{ global_config: { n_m_ratio: [2, 3] } }, /processing_group_size.*multiple of m/],
      [{ global_config: { target_sparsity: 1.5 } }, /target_sparsity/],
      [{ global_config: { weight_dtype: 'int3' } }, /weight_dtype/],
      [{ global_config: { algorithm: 'gptq', weight_dtype: 'float32' } }, /GPTQ quantizes/],
      [{ global_config: { algorithm: 'gptq', granularity: 'per_block' } }, /block_size.*required/],
      [{ global_config: { quantization_granularity: 'per_block' } }, /per_channel or per_tensor/],
      [{ global_config: { algorithm: 'obs' } }, /unknown algorithm/],
      [{ layers: ['down_blocks.(\\d+'] }, /not a valid regex/],
      [{ module_type_configs: { Embedding: {} } }, /Unknown module type/],
      [{ calibration_nsamples: 0 }, /calibration_nsamples/],
      [{ layer: ['x'] }, /Unknown key "layer"/],
    ];
    for (const [d, re] of bad) {
      expect(() => LayerwiseCompressorConfig.fromDict(d), JSON.stringify(d)).toThrow(ConfigError);
      expect(() => LayerwiseCompressorConfig.fromDict(d), JSON.stringify(d)).toThrow(re);
    }
  });

  it('plan steps: sparsegpt / gptq with a calibration folder, round trip to data', () => {
    const plan = loadCompressPlan({ steps: [
      { api: 'sparse_gpt', config: { global_config: { target_sparsity: 0.4 } }, calibration: '/data/calib', mode: 'oneshot' },
      { api: 'palettize', config: { config_type: 'OpPalettizerConfig', global_config: { nbits: 4 } }, joint_compression: true },
    ] });
    expect(plan.steps[0]!.api).toBe('sparsegpt');
    expect(plan.steps[0]!.layerwise!.calibration).toBe('/data/calib');
    expect(plan.steps[0]!.layerwise!.mode).toBe('oneshot');
    expect(compressPlanToData(plan).steps[0]).toMatchObject({ api: 'sparsegpt', calibration: '/data/calib', mode: 'oneshot' });
    expect(() => loadCompressPlan({ steps: [{ api: 'gptq', config: {}, calibration: 'c', joint_compression: true }] })).toThrow(/Unknown key "joint_compression"/);
  });

  it('reads --max-memory sizes', () => {
    expect(parseSize('8G')).toBe(8 * 2 ** 30);
    expect(parseSize('512MiB')).toBe(512 * 2 ** 20);
    expect(parseSize('1.5g')).toBe(1.5 * 2 ** 30);
    expect(parseSize('1000')).toBe(1000);
    expect(() => parseSize('lots')).toThrow(ConfigError);
    expect(() => parseSize('0')).toThrow(ConfigError);
  });
});
