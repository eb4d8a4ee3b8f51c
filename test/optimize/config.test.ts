import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ConfigError, OpLinearQuantizerConfig, OpMagnitudePrunerConfig, OpPalettizerConfig, OpThresholdPrunerConfig,
  OptimizationConfig, UnsupportedError, loadCompressPlan, loadConfigFile, type CompressPlan, type OpCompressorConfig,
} from '../../src/index.js';
import {
  channelAxes, channelAxesForConsumers, checkConfigForApi, checkOpConfigTarget, checkPlanTarget, checkTarget, compressPlanToData,
  configFromCliFlags, defaultChannelAxis, eligibleWeightInputs, inferBlockSizes, lutDtypeQuantizerOptions, normalizeApiName,
  passesWeightGate, type OpRef,
} from '../../src/optimize/index.js';

const GOLDEN = fileURLToPath(new URL('../../../shared/fixtures/coremltools-golden/', import.meta.url));

interface SidecarWeight {
  name: string; consumers: string[]; chain: string[]; shape: number[]; dtype: string;
  constexpr_inputs?: { op_type: string; input: string; dtype: string; shape: number[] }[];
}
interface SidecarStep { api: string; joint_compression: boolean; config?: Record<string, unknown>; config_as_passed: Record<string, unknown> }
interface Sidecar {
  file: string; status: 'ok' | 'rejected'; source?: string; steps?: SidecarStep[]; spec_version?: number; opset?: string;
  ops?: { type: string; name: string }[]; weights?: SidecarWeight[]; coremltools_warnings?: string[];
  error_type?: string; error_message?: string; failed_step?: number; failed_stage?: string;
}

const sidecars: Sidecar[] = readdirSync(GOLDEN).filter((f) => f.endsWith('.json')).sort()
  .map((f) => ({ ...(JSON.parse(readFileSync(join(GOLDEN, f), 'utf8')) as Sidecar), file: f }));
const byFile = new Map(sidecars.map((s) => [s.file, s]));
const withSteps = sidecars.filter((s) => s.steps !== undefined);

function sourceTarget(s: Sidecar): { specVersion: number; opset: string } {
  const src = byFile.get(s.source!.replace(/\.mlpackage$/, '.json'))!;
  return { specVersion: src.spec_version!, opset: src.opset! };
}

/** The const a sidecar weight came from: compressed outputs are named <const>_palettized etc. */
function constNameOf(w: SidecarWeight): string {
  return w.name.replace(/_(palettized|quantized|sparsified)(_pcs)?$/, '');
}

function consumersOf(s: Sidecar, w: SidecarWeight): (OpRef & { input: string })[] {
  const types = new Map(s.ops!.map((o) => [o.name, o.type]));
  return w.consumers.map((c) => {
    const dot = c.lastIndexOf('.');
    const name = c.slice(0, dot);
    return { name, type: types.get(name)!, input: c.slice(dot + 1) };
  });
}

function thrown(fn: () => unknown): Error & Record<string, unknown> {
  try {
    fn();
  } catch (e) {
    return e as Error & Record<string, unknown>;
  }
  throw new Error('expected an error');
}

describe('golden sidecar configs', () => {
  it('finds the golden sidecars', () => {
    expect(withSteps.length).toBeGreaterThanOrEqual(60);
  });

  it('accepts every stored config as is and writes it back identically (key order included)', () => {
    let n = 0;
    for (const s of withSteps) {
      for (const step of s.steps!) {
        if (!step.config) continue;
        const cfg = OptimizationConfig.fromDict(structuredClone(step.config));
        expect(JSON.stringify(cfg.toDict()), s.file).toBe(JSON.stringify(step.config));
        const again = OptimizationConfig.fromDict(cfg.toDict());
        expect(again.equals(cfg), s.file).toBe(true);
        n++;
      }
    }
    expect(n).toBeGreaterThanOrEqual(70);
  });

  it('builds from config_as_passed (constructor kwargs) the same config coremltools normalized', () => {
    for (const s of withSteps) {
      const plan = loadCompressPlan({ steps: s.steps!.map((st) => ({ api: st.api, joint_compression: st.joint_compression, config_as_passed: st.config_as_passed })) });
      s.steps!.forEach((st, i) => {
        if (!st.config) return;
        expect(plan.steps[i]!.config.equals(OptimizationConfig.fromDict(st.config)), `${s.file} step ${i}`).toBe(true);
      });
    }
  });

  it('loads each sidecar as a compress plan with the api verbs', () => {
    for (const s of withSteps) {
      const plan = loadCompressPlan(s);
      expect(plan.steps.length).toBe(s.steps!.length);
      plan.steps.forEach((st, i) => {
        const api = s.steps![i]!.api;
        expect(st.api).toBe(api.endsWith('palettize_weights') ? 'palettize' : api.endsWith('prune_weights') ? 'prune' : 'quantize');
        expect(st.joint_compression).toBe(s.steps![i]!.joint_compression);
      });
    }
    const joint = loadCompressPlan(byFile.get('joint_pal4_q8lut_ios18.json')!);
    expect(compressPlanToData(joint).steps.map((x) => [x.api, x.joint_compression])).toEqual([['palettize', false], ['quantize', true]]);
  });

  it('accepts lut_dtype as our extension (coremltools 9.0 raised TypeError for it)', () => {
    const s = byFile.get('pal_n4_lut_dtype_int8_ios18.json')!;
    expect(s.status).toBe('rejected');
    expect(s.failed_stage).toBe('config construction');
    expect(s.error_type).toBe('TypeError');
    expect(s.error_message).toBe("OpPalettizerConfig.__init__() got an unexpected keyword argument 'lut_dtype'");
    const plan = loadCompressPlan(s);
    const pal = plan.steps[0]!.config.global_config as OpPalettizerConfig;
    expect(pal.lut_dtype).toBe('int8');
    expect(pal.nbits).toBe(4);
    // Implemented as joint per-tensor LUT quantization, as joint_pal4_q8lut_ios18 does.
    expect(lutDtypeQuantizerOptions(pal)).toEqual({ mode: 'linear_symmetric', dtype: 'int8', granularity: 'per_tensor', weight_threshold: 2048 });
    const q = new OpLinearQuantizerConfig(lutDtypeQuantizerOptions(pal)!);
    const golden = OptimizationConfig.fromDict(byFile.get('joint_pal4_q8lut_ios18.json')!.steps![1]!.config!);
    expect(q.equals(golden.global_config)).toBe(true);
    expect(pal.toDict()['lut_dtype']).toBe('int8');
    expect(OpPalettizerConfig.fromDict(pal.toDict() as Record<string, unknown> & { config_type?: never }).lut_dtype).toBe('int8');
    expect(() => checkPlanTarget(plan, sourceTarget(s))).not.toThrow();
    expect(thrown(() => checkPlanTarget(plan, { specVersion: 7, opset: 'CoreML6' })).message)
      .toBe('Joint compression is only supported since iOS18. Please re-convert your model with minimum_deployment_target set to at least ct.target.iOS18.');
  });
});

describe('deployment target rules vs the golden rejections', () => {
  const rejected = withSteps.filter((s) => s.status === 'rejected' && s.failed_stage === 'compression call');

  it('covers every config/target rejection', () => {
    expect(rejected.map((s) => s.file)).toEqual([
      'joint_pal4_q8lut_ios16.json', 'joint_pal4_q8lut_perchannel_ios18.json', 'joint_prune50_pal4gs16_ios16.json',
      'joint_prune50_q8_ios16.json', 'joint_q8_pal4_ios16.json', 'pal_mixed_optype_opname_ios16.json',
      'pal_n3_pertensor_ios16.json', 'pal_n4_cd2_gs16_ios16.json', 'pal_n4_cd4_pertensor_ios16.json',
      'pal_n4_gs16_ios16.json', 'pal_n4_gs32_ios16.json', 'pal_n4_gs4_ios16.json', 'pal_n4_pcs_pertensor_ios16.json',
      'q_int4_linsym_block32_ios16.json', 'q_uint4_linsym_perchannel_ios16.json',
    ]);
  });

  for (const s of rejected) {
    it(`rejects ${s.file} with coremltools' message`, () => {
      const plan = loadCompressPlan(s);
      const e = thrown(() => checkPlanTarget(plan, sourceTarget(s)));
      expect(e).toBeInstanceOf(UnsupportedError);
      expect(e.message).toBe(s.error_message);
      expect(e['coremltoolsType']).toBe(s.error_type);
      expect(e['stepIndex']).toBe(s.failed_step);
    });
  }

  it('accepts every configuration coremltools compressed, on its source target', () => {
    const ok = withSteps.filter((s) => s.status === 'ok' && s.source);
    expect(ok.length).toBeGreaterThanOrEqual(50);
    for (const s of ok) expect(() => checkPlanTarget(loadCompressPlan(s), sourceTarget(s)), s.file).not.toThrow();
  });

  it('decides iOS18 from the opset when given, else from the spec version', () => {
    const gs = new OptimizationConfig({ global_config: new OpPalettizerConfig({ nbits: 4, granularity: 'per_grouped_channel' }) });
    expect(() => checkTarget(gs, { specVersion: 9 })).not.toThrow();
    expect(() => checkTarget(gs, { specVersion: 10, opset: 'CoreML9' })).not.toThrow();
    expect(() => checkTarget(gs, { specVersion: 8 })).toThrow(/per_grouped_channel palettization is supported since iOS18/);
    expect(() => checkTarget(gs, { specVersion: 6 })).toThrow(UnsupportedError);
    expect(() => checkTarget(gs, { specVersion: 9, opset: 'CoreML7' })).toThrow(UnsupportedError);
    expect(() => checkTarget(gs, { specVersion: 9, opset: 'iOS18' })).toThrow(ConfigError);
  });

  it('checks in coremltools order and knows derived nbits', () => {
    const ios16 = { specVersion: 7 };
    const both = new OpPalettizerConfig({ nbits: 3, granularity: 'per_grouped_channel', cluster_dim: 2, enable_per_channel_scale: true });
    expect(thrown(() => checkOpConfigTarget(both, ios16)).message).toMatch(/^The per_grouped_channel palettization/);
    const vec3 = new OpPalettizerConfig({ nbits: 3, cluster_dim: 2, enable_per_channel_scale: true });
    expect(thrown(() => checkOpConfigTarget(vec3, ios16)).message).toMatch(/^The vector palettization/);
    const pcs3 = new OpPalettizerConfig({ nbits: 3, enable_per_channel_scale: true });
    expect(thrown(() => checkOpConfigTarget(pcs3, ios16)).message).toBe('Parameter lut should be a vector of size from one of {2, 4, 16, 64, 256}');
    const unique = new OpPalettizerConfig({ mode: 'unique' });
    expect(() => checkOpConfigTarget(unique, ios16)).not.toThrow();
    expect(() => checkOpConfigTarget(unique, ios16, { resolvedNbits: 3 })).toThrow(/Parameter lut should be a vector/);
    const q = new OpLinearQuantizerConfig({ dtype: 'int4', granularity: 'per_block' });
    expect(thrown(() => checkOpConfigTarget(q, ios16)).message).toMatch(/^The per_block quantization/);
    expect(() => checkOpConfigTarget(new OpMagnitudePrunerConfig({ n_m_ratio: [2, 4] }), ios16)).not.toThrow();
    expect(() => checkOpConfigTarget(new OpLinearQuantizerConfig({ granularity: 'per_block' }), { specVersion: 9 }, { jointCompression: true, quantizesLut: true }))
      .toThrow(/per-tensor quantization/);
    expect(() => checkOpConfigTarget(new OpLinearQuantizerConfig({ granularity: 'per_tensor' }), { specVersion: 9 }, { jointCompression: true, quantizesLut: true }))
      .not.toThrow();
  });
});

describe('config lookup (op name > op type > global) against pal_mixed_optype_opname_ios18', () => {
  const s = byFile.get('pal_mixed_optype_opname_ios18.json')!;
  const cfg = OptimizationConfig.fromDict(s.steps![0]!.config!);

  it('resolves each weight as coremltools did', () => {
    const nbitsOf = (w: SidecarWeight): number | null => {
      const idx = w.constexpr_inputs?.find((c) => c.input === 'indices');
      return idx ? Number(idx.dtype.replace('uint', '')) : null;
    };
    const seen: Record<string, number | null> = {};
    for (const w of s.weights!) {
      const constName = constNameOf(w);
      const resolved = cfg.configForConst(constName, consumersOf(s, w)) as OpPalettizerConfig | null;
      const gate = resolved !== null && passesWeightGate({ shape: w.shape, dtype: w.dtype, consumerCount: w.consumers.length }, resolved.weight_threshold);
      seen[constName] = gate ? resolved!.nbits : null;
      expect(gate ? resolved!.nbits : null, constName).toBe(nbitsOf(w));
      if (gate && resolved!.granularity === 'per_grouped_channel') {
        const lut = w.constexpr_inputs!.find((c) => c.input === 'lut')!;
        expect(lut.shape[0], constName).toBe(w.shape[0]! / resolved!.group_size);
      }
    }
    expect(seen).toEqual({
      conv1_bias_to_fp16: null, conv1_weight_to_fp16: 6, conv2_weight_to_fp16: 6, embed_table_to_fp16: null,
      fc1_bias_to_fp16: null, fc1_weight_to_fp16: 4, fc2_bias_to_fp16: null, fc2_weight_to_fp16: 4,
      fc3_bias_to_fp16: null, fc3_weight_to_fp16: 2, ln_beta_to_fp16: null, ln_gamma_to_fp16: null, mm_y_to_fp16: 8,
    });
  });

  it('lets op_name_configs name a const (null skips it) or an op', () => {
    expect(cfg.configForConst('embed_table_to_fp16', [{ name: 'embed', type: 'gather' }])).toBeNull();
    expect((cfg.configFor({ name: 'fc3_cast_fp16', type: 'linear' }) as OpPalettizerConfig).nbits).toBe(2);
    expect((cfg.configFor({ name: 'fc1_cast_fp16', type: 'linear' }) as OpPalettizerConfig).nbits).toBe(4);
    expect((cfg.configFor({ name: 'conv9', type: 'conv' }) as OpPalettizerConfig).nbits).toBe(6);
    expect((cfg.configFor({ name: 'mm', type: 'matmul' }) as OpPalettizerConfig).nbits).toBe(8);
    expect(cfg.configFor({ name: 'x', type: 'gather' }, 'embed_table_to_fp16')).toBeNull();
    expect(() => cfg.configForOp({ name: 'w', type: 'const' })).toThrow(ConfigError);
  });

  it('returns null for a const without consumers and follows constexpr chains', () => {
    expect(cfg.configForConst('lonely', [])).toBeNull();
    const graph: Record<string, OpRef[]> = { w_sparsified: [{ name: 'fc3_cast_fp16', type: 'linear' }] };
    const viaChain = cfg.configForConst('w_nonzero', [{ name: 'w_sparsified', type: 'constexpr_sparse_to_dense' }], (n) => graph[n] ?? []);
    expect((viaChain as OpPalettizerConfig).nbits).toBe(2);
    expect(() => cfg.configForConst('w', [{ name: 'c', type: 'constexpr_lut_to_dense' }])).toThrow(/consumersOf/);
  });

  it('raises coremltools\' conflict error when consumers resolve differently', () => {
    const e = thrown(() => cfg.configForConst('shared', [{ name: 'fc1_cast_fp16', type: 'linear' }, { name: 'conv1', type: 'conv' }]));
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toMatch(/^compression config conflict detected between ops fc1_cast_fp16 and conv1\. fc1_cast_fp16 has config OpPalettizerConfig\(mode=KMEANS, nbits=4/);
    expect((cfg.configForConst('shared', [{ name: 'a', type: 'linear' }, { name: 'b', type: 'linear' }]) as OpPalettizerConfig).nbits).toBe(4);
  });
});

describe('which weights get compressed (size gate + config) across the golden files', () => {
  const single = withSteps.filter((s) => s.status === 'ok' && s.steps!.length === 1 && s.weights);

  it('never compresses a weight the gate or the config rules out, and explains every other skip', () => {
    let compressed = 0, skippedWithReason = 0;
    for (const s of single) {
      const cfg = OptimizationConfig.fromDict(s.steps![0]!.config!);
      const warnings = s.coremltools_warnings ?? [];
      let unexplained = 0;
      for (const w of s.weights!) {
        const constName = constNameOf(w);
        const consumers = consumersOf(s, w);
        const c = cfg.configForConst(constName, consumers);
        let eligible = c !== null && passesWeightGate({ shape: w.shape, dtype: w.dtype, consumerCount: consumers.length }, c.weight_threshold);
        if (eligible && c instanceof OpMagnitudePrunerConfig && c.isStructural()) {
          const allowed = consumers.every((k) => {
            const inputs = eligibleWeightInputs(k.type, { structuredPruning: true });
            return inputs === 'any' || inputs.includes(k.input);
          });
          eligible = allowed || cfg.op_name_configs.has(constName);
        }
        const isConst = w.chain.length === 1 && w.chain[0] === 'const';
        if (!eligible) {
          expect(isConst, `${s.file}: ${constName} should stay const`).toBe(true);
        } else if (isConst) {
          if (warnings.some((x) => x.includes(constName))) skippedWithReason++;
          else unexplained++;
        } else {
          compressed++;
        }
      }
      // coremltools names every weight it skipped for an algorithmic reason (group size, unique values, sparsity, ...).
      expect(unexplained, s.file).toBe(0);
    }
    expect(compressed).toBeGreaterThan(200);
    expect(skippedWithReason).toBeGreaterThan(5);
  });

  it('applies weight_threshold as "strictly more elements" (conv2 has exactly 8192)', () => {
    const conv2 = { shape: [128, 64, 1, 1], dtype: 'fp16', consumerCount: 1 };
    expect(passesWeightGate(conv2, 8191)).toBe(true);
    expect(passesWeightGate(conv2, 8192)).toBe(false);
    expect(passesWeightGate({ shape: [4096], dtype: 'fp16', consumerCount: 1 }, 0)).toBe(false);
    expect(passesWeightGate({ shape: [4096], dtype: 'uint8', consumerCount: 1, firstConsumerIsConstexpr: true }, 0)).toBe(true);
    expect(passesWeightGate({ shape: [3, 3], dtype: 'fp16', consumerCount: 1 }, 0)).toBe(false);
    expect(passesWeightGate({ shape: [64, 64], dtype: 'int32', consumerCount: 1 }, 0)).toBe(false);
    expect(passesWeightGate({ shape: [64, 64], dtype: 'fp32', consumerCount: 0 }, 0)).toBe(false);
    expect(passesWeightGate({ shape: [16, 16], dtype: 'fp16', consumerCount: 1, denseElementCount: 4096 }, 2048)).toBe(true);
  });
});

describe('channel axes and block sizes', () => {
  it('picks coremltools\' default axes by op type and input', () => {
    expect(defaultChannelAxis('conv', 'weight', 4)).toBe(0);
    expect(defaultChannelAxis('linear', 'weight', 2)).toBe(0);
    expect(defaultChannelAxis('gather', 'x', 2)).toBe(0);
    expect(channelAxes('conv_transpose', 'weight', 4)).toEqual({ output: 1, input: 0 });
    expect(channelAxes('matmul', 'y', 2)).toEqual({ output: 1, input: 0 });
    expect(channelAxes('matmul', 'y', 4, { transposeY: true })).toEqual({ output: 2, input: 3 });
    expect(channelAxes('matmul', 'x', 3)).toEqual({ output: 1, input: 2 });
    expect(channelAxes('matmul', 'x', 3, { transposeX: true })).toEqual({ output: 2, input: 1 });
    expect(channelAxesForConsumers([{ type: 'linear', input: 'weight' }, { type: 'conv', input: 'weight' }], 2)).toEqual({ output: 0, input: 1 });
    expect(channelAxesForConsumers([{ type: 'linear', input: 'weight' }, { type: 'matmul', input: 'y' }], 2)).toEqual({ output: null, input: null });
  });

  it('reproduces the spec examples', () => {
    const q9 = new OpLinearQuantizerConfig({ granularity: 'per_block', block_size: 9 });
    expect(inferBlockSizes(q9, [70, 81], channelAxes('linear', 'weight', 2))!.blockSizes).toEqual([1, 9]);
    const q2 = new OpLinearQuantizerConfig({ granularity: 'per_block', block_size: 2 });
    expect(inferBlockSizes(q2, [90, 30, 2, 2], channelAxes('conv', 'weight', 4))!.blockSizes).toEqual([1, 2, 0, 0]);
    const p = new OpPalettizerConfig({ nbits: 3, granularity: 'per_grouped_channel', group_size: 2 });
    expect(inferBlockSizes(p, [30, 4, 21, 10], channelAxes('conv_transpose', 'weight', 4))).toEqual({ blockSizes: [0, 2, 0, 0], channelAxis: 1 });
    const pAxis = new OpPalettizerConfig({ nbits: 4, granularity: 'per_grouped_channel', group_size: 8, channel_axis: -1 });
    expect(inferBlockSizes(pAxis, [16, 32], channelAxes('linear', 'weight', 2))).toEqual({ blockSizes: [0, 8], channelAxis: 1 });
    const pBad = new OpPalettizerConfig({ nbits: 4, granularity: 'per_grouped_channel', channel_axis: 2 });
    expect(() => inferBlockSizes(pBad, [16, 32], { output: 0, input: 1 })).toThrow(/Invalid channel_axis/);
    const tuple = new OpLinearQuantizerConfig({ granularity: 'per_block', block_size: [0, 1, 0, 0] });
    expect(inferBlockSizes(tuple, [8, 4, 3, 3], { output: 0, input: 1 })).toEqual({ blockSizes: [0, 1, 0, 0], channelAxis: 1 });
    expect(() => inferBlockSizes(tuple, [8, 4], { output: 0, input: 1 })).toThrow(/one element for each axis/);
    expect(inferBlockSizes(new OpLinearQuantizerConfig(), [8, 4], { output: null, input: 1 })).toBeNull();
  });

  // The LUT / scale shapes coremltools wrote follow from the block sizes: groups per axis = dim / block.
  const shapeCases: [string, string][] = [
    ['pal_n4_gs4_ios18.json', 'lut'], ['pal_n4_gs16_ios18.json', 'lut'], ['pal_n4_gs32_ios18.json', 'lut'],
    ['pal_n4_cd2_gs16_ios18.json', 'lut'], ['pal_n4_cd4_pertensor_ios18.json', 'lut'], ['pal_n4_pertensor_ios18.json', 'lut'],
    ['q_int4_linsym_block32_ios18.json', 'scale'], ['q_int8_linsym_perchannel_ios18.json', 'scale'],
    ['q_uint4_linsym_perchannel_ios18.json', 'scale'], ['q_uint8_linear_pertensor_ios18.json', 'scale'],
  ];
  for (const [file, input] of shapeCases) {
    it(`matches the ${input} shapes in ${file}`, () => {
      const s = byFile.get(file)!;
      const cfg = OptimizationConfig.fromDict(s.steps![0]!.config!);
      let checked = 0;
      for (const w of s.weights!) {
        const ci = w.constexpr_inputs?.find((c) => c.input === input);
        if (!ci) continue;
        const consumers = consumersOf(s, w);
        const c = cfg.configForConst(constNameOf(w), consumers) as OpPalettizerConfig | OpLinearQuantizerConfig;
        const axes = channelAxesForConsumers(consumers.map((k) => ({ type: k.type, input: k.input })), w.shape.length);
        const { blockSizes, channelAxis } = inferBlockSizes(c, w.shape, axes)!;
        const groups = w.shape.map((d, i) => (blockSizes[i] === 0 ? 1 : d / blockSizes[i]!));
        if (c instanceof OpPalettizerConfig) {
          expect(ci.shape, w.name).toEqual([...groups, 2 ** c.nbits!, c.cluster_dim]);
          const idx = w.constexpr_inputs!.find((x) => x.input === 'indices')!;
          const expectedIdx = [...w.shape];
          expectedIdx[channelAxis!] = expectedIdx[channelAxis!]! / c.cluster_dim;
          expect(idx.shape, w.name).toEqual(expectedIdx);
        } else {
          expect(ci.shape, w.name).toEqual(groups);
        }
        checked++;
      }
      expect(checked).toBeGreaterThanOrEqual(6);
    });
  }

  it('limits structured pruning to conv/linear weight and joint inputs to the spec list', () => {
    expect(eligibleWeightInputs('gather')).toBe('any');
    expect(eligibleWeightInputs('conv', { structuredPruning: true })).toEqual(['weight']);
    expect(eligibleWeightInputs('matmul', { structuredPruning: true })).toEqual([]);
    expect(eligibleWeightInputs('toString', { structuredPruning: true })).toEqual([]);
    expect(eligibleWeightInputs('const')).toEqual([]);
    expect(eligibleWeightInputs('constexpr_lut_to_dense', { api: 'quantize' })).toEqual([]);
    expect(eligibleWeightInputs('constexpr_lut_to_dense', { api: 'quantize', jointCompression: true })).toEqual(['lut']);
    expect(eligibleWeightInputs('constexpr_sparse_to_dense', { api: 'palettize', jointCompression: true })).toEqual(['nonzero_data']);
    expect(eligibleWeightInputs('constexpr_blockwise_shift_scale', { api: 'palettize', jointCompression: true })).toEqual(['data']);
    expect(eligibleWeightInputs('constexpr_blockwise_shift_scale', { api: 'quantize', jointCompression: true })).toEqual([]);
  });
});

describe('op config defaults and normalization', () => {
  it('uses coremltools defaults', () => {
    expect(new OpPalettizerConfig({ nbits: 4 }).toDict()).toEqual({
      mode: 'KMEANS', nbits: 4, granularity: 'per_tensor', group_size: 32, channel_axis: null, cluster_dim: 1,
      enable_per_channel_scale: false, num_kmeans_workers: 1, weight_threshold: 2048, config_type: 'OpPalettizerConfig',
    });
    expect(new OpLinearQuantizerConfig().toDict()).toEqual({
      mode: 'LINEAR_SYMMETRIC', dtype: 'int8', granularity: 'per_channel', block_size: 32, weight_threshold: 2048, config_type: 'OpLinearQuantizerConfig',
    });
    expect(new OpThresholdPrunerConfig().toDict()).toEqual({ threshold: 1e-12, minimum_sparsity_percentile: 0.5, weight_threshold: 2048, config_type: 'OpThresholdPrunerConfig' });
    expect(new OpMagnitudePrunerConfig({ target_sparsity: 0.5 }).dim).toBeNull();
    expect(new OpMagnitudePrunerConfig({ target_sparsity: 0.5, block_size: 2 }).dim).toBe(0);
    expect(new OpMagnitudePrunerConfig({ n_m_ratio: [2, 4] }).dim).toBe(1);
    expect(new OpMagnitudePrunerConfig({ n_m_ratio: [2, 4], dim: 0 }).dim).toBe(0);
  });

  it('upper-cases modes and accepts numpy / MIL dtype spellings', () => {
    expect(new OpPalettizerConfig({ mode: 'Uniform', nbits: 2 }).mode).toBe('UNIFORM');
    expect(new OpPalettizerConfig({ mode: 'UNIQUE' }).nbits).toBeNull();
    expect(new OpLinearQuantizerConfig({ mode: 'linear' }).mode).toBe('LINEAR');
    for (const [given, dtype] of [['int8', 'int8'], ['np.uint8', 'uint8'], ['numpy.int8', 'int8'], ["<class 'numpy.uint8'>", 'uint8'], ['types.int4', 'int4'], ['uint4', 'uint4']] as const) {
      expect(new OpLinearQuantizerConfig({ dtype: given }).dtype).toBe(dtype);
    }
    const q4 = new OpLinearQuantizerConfig({ dtype: 'uint4' });
    expect([q4.nbits, q4.signed]).toEqual([4, false]);
    expect(new OpLinearQuantizerConfig({ granularity: 'per_block', block_size: [1, 32] }).toDict()['block_size']).toEqual([1, 32]);
  });

  it('takes a JS LUT function in custom mode (never through from_dict)', () => {
    const fn = () => ({ lut: [0, 1], indices: [0, 1, 1] });
    const c = new OpPalettizerConfig({ mode: 'custom', lutFunction: fn });
    expect(c.lutFunction).toBe(fn);
    expect(c.nbits).toBeNull();
    expect(new OpPalettizerConfig({ mode: 'custom', lut_function: fn }).equals(c)).toBe(true);
    expect(new OpPalettizerConfig({ mode: 'custom', lut_function: () => ({ lut: [], indices: [] }) }).equals(c)).toBe(false);
    expect('lut_function' in c.toDict()).toBe(false);
    expect(thrown(() => OpPalettizerConfig.fromDict({ mode: 'custom', lut_function: 'x' })).message)
      .toBe('_from_dict method does not support lut_function. Please create the OpPalettizerConfig from scratch.');
  });

  it('freezes configs', () => {
    const c = new OpPalettizerConfig({ nbits: 4 });
    expect(Object.isFrozen(c)).toBe(true);
  });
});

describe('invalid op configs are rejected naming the key, value and allowed values', () => {
  const cases: [string, () => unknown, string, RegExp][] = [
    ['palettizer nbits 5', () => new OpPalettizerConfig({ nbits: 5 }), 'nbits', /Invalid value of "nbits" \(5\) for palettization\. Supported "nbits" are \(1, 2, 3, 4, 6, 8\)/],
    ['palettizer nbits missing', () => new OpPalettizerConfig({ mode: 'kmeans' }), 'nbits', /"nbits" must be provided for kmeans mode/],
    ['palettizer nbits for unique', () => new OpPalettizerConfig({ mode: 'unique', nbits: 4 }), 'nbits', /"nbits" must NOT be provided for unique mode/],
    ['palettizer bad mode', () => new OpPalettizerConfig({ mode: 'median', nbits: 4 }), 'mode', /Only modes \('KMEANS', 'UNIFORM', 'UNIQUE', 'CUSTOM'\) are supported for weight palettization\. Got "mode": "median"\./],
    ['palettizer mode not a string', () => new OpPalettizerConfig({ mode: 4 as unknown as string, nbits: 4 }), 'mode', /"mode" must be a string/],
    ['palettizer custom without function', () => new OpPalettizerConfig({ mode: 'custom' }), 'lut_function', /"lut_function" can not be None, if "mode" is "custom"\./],
    ['palettizer function without custom', () => new OpPalettizerConfig({ nbits: 4, lutFunction: () => ({ lut: [], indices: [] }) }), 'lut_function', /must be None, if "mode" is not "custom"/],
    ['palettizer function not callable', () => new OpPalettizerConfig({ mode: 'custom', lut_function: 3 as never }), 'lut_function', /A function object must be provided/],
    ['palettizer per_channel', () => new OpPalettizerConfig({ nbits: 4, granularity: 'per_channel' }), 'granularity', /"granularity" must be one of per_tensor, per_grouped_channel, but got per_channel/],
    ['palettizer unknown granularity', () => new OpPalettizerConfig({ nbits: 4, granularity: 'PER_TENSOR' }), 'granularity', /Invalid granularity=PER_TENSOR\. "granularity" must be one of per_tensor, per_grouped_channel/],
    ['palettizer group_size float', () => new OpPalettizerConfig({ nbits: 4, group_size: 1.5 }), 'group_size', /"group_size" must be an integer, got 1\.5/],
    ['palettizer group_size negative', () => new OpPalettizerConfig({ nbits: 4, group_size: -1 }), 'group_size', /"group_size" must be >= 0/],
    ['palettizer channel_axis string', () => new OpPalettizerConfig({ nbits: 4, channel_axis: '0' as never }), 'channel_axis', /"channel_axis" must be an integer/],
    ['palettizer cluster_dim 0', () => new OpPalettizerConfig({ nbits: 4, cluster_dim: 0 }), 'cluster_dim', /"cluster_dim" must be >= 1, got 0/],
    ['palettizer uniform vector', () => new OpPalettizerConfig({ mode: 'uniform', nbits: 4, cluster_dim: 2 }), 'cluster_dim', /doesn't support UNIFORM mode/],
    ['palettizer pcs not bool', () => new OpPalettizerConfig({ nbits: 4, enable_per_channel_scale: 1 as never }), 'enable_per_channel_scale', /must be a boolean \(true or false\), got 1/],
    ['palettizer workers 0', () => new OpPalettizerConfig({ nbits: 4, num_kmeans_workers: 0 }), 'num_kmeans_workers', /"num_kmeans_workers" must be >= 1/],
    ['palettizer weight_threshold -1', () => new OpPalettizerConfig({ nbits: 4, weight_threshold: -1 }), 'weight_threshold', /"weight_threshold" must be a non-negative integer\. Got -1\./],
    ['palettizer weight_threshold null', () => new OpPalettizerConfig({ nbits: 4, weight_threshold: null as never }), 'weight_threshold', /weight_threshold cannot be None/],
    ['palettizer lut_dtype fp16', () => new OpPalettizerConfig({ nbits: 4, lut_dtype: 'fp16' as never }), 'lut_dtype', /"lut_dtype" must be one of int8, uint8 or null, got fp16/],
    ['palettizer unknown key', () => new OpPalettizerConfig({ nbits: 4, bits: 4 } as never), 'bits', /Unknown key "bits" for OpPalettizerConfig\. Allowed keys: mode, nbits,/],
    ['quantizer bad mode', () => new OpLinearQuantizerConfig({ mode: 'affine' }), 'mode', /Only mode \('LINEAR_SYMMETRIC', 'LINEAR'\) supported for weight affine quantization\. Got mode: "affine"\./],
    ['quantizer fp16 dtype', () => new OpLinearQuantizerConfig({ dtype: 'fp16' }), 'dtype', /Invalid dtype\. Should be int4\/8 or uint4\/8, but got fp16/],
    ['quantizer int16 numpy', () => new OpLinearQuantizerConfig({ dtype: 'np.int16' }), 'dtype', /Invalid dtype\. Should be int4\/8 or uint4\/8, but got int16/],
    ['quantizer np.float16', () => new OpLinearQuantizerConfig({ dtype: 'np.float16' }), 'dtype', /dtype=np\.float16 is unsupported for OpLinearQuantizerConfig/],
    ['quantizer unknown dtype', () => new OpLinearQuantizerConfig({ dtype: 'INT8' }), 'dtype', /Invalid dtype INT8\. Only support int8\/uint8\/int4\/uint4\./],
    ['quantizer per_grouped_channel', () => new OpLinearQuantizerConfig({ granularity: 'per_grouped_channel' }), 'granularity', /must be one of per_tensor, per_channel, per_block, but got per_grouped_channel/],
    ['quantizer block_size -1', () => new OpLinearQuantizerConfig({ block_size: -1 }), 'block_size', /The block_size must be non-negative values, but got -1/],
    ['quantizer block_size list', () => new OpLinearQuantizerConfig({ block_size: [1, -2] }), 'block_size', /All values in block_size must be non-negative values/],
    ['quantizer block_size string', () => new OpLinearQuantizerConfig({ block_size: '32' as never }), 'block_size', /The block_size should be int or list\/tuple of int, but got 32/],
    ['quantizer weight_threshold float', () => new OpLinearQuantizerConfig({ weight_threshold: 2.5 }), 'weight_threshold', /"weight_threshold" must be an integer, got 2\.5/],
    ['quantizer unknown key', () => new OpLinearQuantizerConfig({ nbits: 8 } as never), 'nbits', /Unknown key "nbits" for OpLinearQuantizerConfig\. Allowed keys: mode, dtype, granularity, block_size, weight_threshold\./],
    ['threshold negative', () => new OpThresholdPrunerConfig({ threshold: -0.1 }), 'threshold', /Invalid value of "threshold": -0\.1\. Needs to be in \[0, inf\)/],
    ['threshold NaN', () => new OpThresholdPrunerConfig({ threshold: NaN }), 'threshold', /"threshold" must be a finite number/],
    ['min sparsity 1.5', () => new OpThresholdPrunerConfig({ minimum_sparsity_percentile: 1.5 }), 'minimum_sparsity_percentile', /Invalid value of "minimum_sparsity_percentile": 1\.5\. Needs to be in \[0, 1\]/],
    ['magnitude neither', () => new OpMagnitudePrunerConfig({}), 'target_sparsity', /Either "target_sparsity" or "n_m_ratio" need to be set\. They cannot be set at the same time\./],
    ['magnitude both', () => new OpMagnitudePrunerConfig({ target_sparsity: 0.5, n_m_ratio: [2, 4] }), 'n_m_ratio', /Either "target_sparsity" or "n_m_ratio"/],
    ['magnitude sparsity 2', () => new OpMagnitudePrunerConfig({ target_sparsity: 2 }), 'target_sparsity', /Invalid value of "target_sparsity": 2\. Needs to be in \[0, 1\]\./],
    ['magnitude block_size 1', () => new OpMagnitudePrunerConfig({ target_sparsity: 0.5, block_size: 1 }), 'block_size', /"block_size" must be an integer > 1\. Got 1\./],
    ['magnitude block_size with n:m', () => new OpMagnitudePrunerConfig({ n_m_ratio: [2, 4], block_size: 2 }), 'block_size', /"block_size" and "n_m_ratio" cannot be set at the same time\./],
    ['magnitude n > m', () => new OpMagnitudePrunerConfig({ n_m_ratio: [4, 2] }), 'n_m_ratio', /"n_m_ratio" must be a tuple of two integers \(n, m\)\. n <= m\. Got \[4, 2\]/],
    ['magnitude n:m three', () => new OpMagnitudePrunerConfig({ n_m_ratio: [1, 2, 3] }), 'n_m_ratio', /must be a tuple of two integers/],
    ['magnitude n:m zero m', () => new OpMagnitudePrunerConfig({ n_m_ratio: [0, 0] }), 'n_m_ratio', /m >= 1/],
    ['magnitude dim alone', () => new OpMagnitudePrunerConfig({ target_sparsity: 0.5, dim: 1 }), 'dim', /"dim" can only be set along with "block_size" or "n_m_ratio"\./],
    ['magnitude dim 2', () => new OpMagnitudePrunerConfig({ n_m_ratio: [2, 4], dim: 2 }), 'dim', /"dim" must be 1 or 0\. Got 2\./],
    ['magnitude unknown key', () => new OpMagnitudePrunerConfig({ sparsity: 0.5 } as never), 'sparsity', /Unknown key "sparsity" for OpMagnitudePrunerConfig/],
  ];
  for (const [title, fn, key, message] of cases) {
    it(title, () => {
      const e = thrown(fn);
      expect(e).toBeInstanceOf(ConfigError);
      expect(e['key']).toBe(key);
      expect(e.message).toMatch(message);
    });
  }
});

describe('OptimizationConfig.fromDict rules', () => {
  const pal4 = { config_type: 'OpPalettizerConfig', global_config: { mode: 'kmeans', nbits: 4 } };

  it('reads the coremltools docstring example and lets nested dicts override config_type', () => {
    const cfg = OptimizationConfig.fromDict({
      config_type: 'OpThresholdPrunerConfig',
      global_config: { threshold: 0.01 },
      op_type_configs: { conv: { config_type: 'OpMagnitudePrunerConfig', n_m_ratio: [3, 4] }, linear: null },
    });
    expect(cfg.global_config).toBeInstanceOf(OpThresholdPrunerConfig);
    const conv = cfg.op_type_configs.get('conv') as OpMagnitudePrunerConfig;
    expect(conv.n_m_ratio).toEqual([3, 4]);
    expect(conv.dim).toBe(1);
    expect(cfg.op_type_configs.get('linear')).toBeNull();
    expect(cfg.configFor({ name: 'fc', type: 'linear' })).toBeNull();
    expect(() => checkConfigForApi(cfg, 'prune')).not.toThrow();
    expect(thrown(() => checkConfigForApi(cfg, 'palettize')).message)
      .toBe('palettize_weights only accept OpPalettizerConfig type config. Got OpThresholdPrunerConfig.');
    const round = OptimizationConfig.fromDict(cfg.toDict());
    expect(round.equals(cfg)).toBe(true);
    expect(round.toDict()).toEqual(cfg.toDict());
  });

  const bad: [string, unknown, string, RegExp][] = [
    ['unknown top-level key', { ...pal4, extra: 1 }, 'extra', /^Invalid key extra to construct an OptimizationConfig object\. Supported keys are \('config_type', 'global_config', 'op_name_configs', 'op_type_configs'\)\.$/],
    ['missing config_type', { global_config: { nbits: 4 } }, 'config_type', /^config_type must be provided with type of string\./],
    ['unknown config_type', { config_type: 'OpKMeansConfig', global_config: { nbits: 4 } }, 'config_type', /Invalid config_type OpKMeansConfig in global_config\. Supported config types are \('OpPalettizerConfig', 'OpLinearQuantizerConfig', 'OpMagnitudePrunerConfig', 'OpThresholdPrunerConfig'\)/],
    ['unknown field', { config_type: 'OpPalettizerConfig', global_config: { nbits: 4, nbit: 2 } }, 'nbit', /^global_config: Unknown key "nbit" for OpPalettizerConfig/],
    ['bad nested value', { config_type: 'OpPalettizerConfig', op_name_configs: { conv_1: { nbits: 5 } } }, 'nbits', /^op_name_configs\[conv_1\]: Invalid value of "nbits" \(5\)/],
    ['op_type_configs not a dict', { config_type: 'OpPalettizerConfig', op_type_configs: ['conv'] }, 'op_type_configs', /^op_type_configs must be type of dict/],
    ['config not a dict', { config_type: 'OpPalettizerConfig', op_type_configs: { conv: 4 } }, 'op_type_configs[conv]', /must be a dict of config fields or null/],
    ['const op type', { config_type: 'OpPalettizerConfig', op_type_configs: { const: { nbits: 4 } } }, 'op_type_configs', /^const ops cannot be set by the `set_op_type` function\. Please use `set_global`$/],
    ['structured pruning op type', { config_type: 'OpMagnitudePrunerConfig', op_type_configs: { matmul: { n_m_ratio: [2, 4] } } }, 'op_type_configs', /^block sparsity or n:m pruning does not support op type matmul\.$/],
    ['lut_function through a dict', { config_type: 'OpPalettizerConfig', global_config: { mode: 'custom', lut_function: 'f' } }, 'lut_function', /_from_dict method does not support lut_function/],
    ['not a mapping', 'nbits: 4', 'config', /must be a mapping/],
    ['prototype name as config_type', { config_type: 'toString', global_config: {} }, 'config_type', /Invalid config_type toString/],
  ];
  for (const [title, d, key, message] of bad) {
    it(`rejects: ${title}`, () => {
      const e = thrown(() => OptimizationConfig.fromDict(d));
      expect(e).toBeInstanceOf(ConfigError);
      expect(e['key']).toBe(key);
      expect(e.message).toMatch(message);
    });
  }

  it('keeps an empty config_type-only dict round-trippable and supports set_* helpers', () => {
    const empty = OptimizationConfig.fromDict({ config_type: 'OpLinearQuantizerConfig' });
    expect(empty.toDict()).toEqual({ config_type: 'OpLinearQuantizerConfig' });
    expect(empty.configFor({ name: 'a', type: 'linear' })).toBeNull();
    const cfg = new OptimizationConfig()
      .setGlobal(new OpPalettizerConfig({ nbits: 8 }))
      .setOpType('conv', new OpPalettizerConfig({ nbits: 2 }))
      .setOpName('conv_1', null);
    expect((cfg.configFor({ name: 'conv_2', type: 'conv' }) as OpPalettizerConfig).nbits).toBe(2);
    expect(cfg.configFor({ name: 'conv_1', type: 'conv' })).toBeNull();
    expect(() => cfg.setOpType('const', null)).toThrow(/const ops cannot be set/);
    expect(() => new OptimizationConfig().setOpType('gather', new OpMagnitudePrunerConfig({ target_sparsity: 0.5, block_size: 4 })))
      .toThrow(/does not support op type gather/);
    expect(() => new OptimizationConfig({ global_config: { nbits: 4 } as unknown as OpCompressorConfig })).toThrow(/config must be type of OpCompressorConfig/);
  });
});

describe('config files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cmo-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  it('loads the coremltools from_yaml example', () => {
    const p = write('pal.yaml', [
      'config_type: OpPalettizerConfig',
      'global_config: {mode: kmeans, nbits: 4}',
      'op_type_configs:',
      '  conv: {mode: uniform, nbits: 1}',
      'op_name_configs:',
      '  conv_1: {mode: unique}',
      '  skip_me: null',
    ].join('\n'));
    const cfg = loadConfigFile(p);
    expect((cfg.global_config as OpPalettizerConfig).nbits).toBe(4);
    expect((cfg.op_type_configs.get('conv') as OpPalettizerConfig).mode).toBe('UNIFORM');
    expect((cfg.op_name_configs.get('conv_1') as OpPalettizerConfig).mode).toBe('UNIQUE');
    expect(cfg.op_name_configs.get('skip_me')).toBeNull();
    expect(OptimizationConfig.fromYaml(readFileSync(p, 'utf8')).equals(cfg)).toBe(true);
  });

  it('loads JSON (a golden sidecar config) and .yml', () => {
    const golden = byFile.get('q_int4_linsym_block32_ios18.json')!.steps![0]!.config!;
    const p = write('q.json', JSON.stringify(golden));
    expect(loadConfigFile(p).toDict()).toEqual(golden);
    expect(OptimizationConfig.fromJson(JSON.stringify(golden)).toDict()).toEqual(golden);
    // YAML 1.1 like PyYAML: yes is a boolean.
    const pcs = write('pcs.yaml', 'config_type: OpPalettizerConfig\nglobal_config: {nbits: 4, enable_per_channel_scale: yes}\n');
    expect((loadConfigFile(pcs).global_config as OpPalettizerConfig).enable_per_channel_scale).toBe(true);
    const y = write('prune.yml', 'config_type: OpMagnitudePrunerConfig\nglobal_config:\n  n_m_ratio: [2, 4]\n');
    expect((loadConfigFile(y).global_config as OpMagnitudePrunerConfig).n_m_ratio).toEqual([2, 4]);
  });

  it('names the file in every error', () => {
    const bad = write('bad.yaml', 'config_type: OpPalettizerConfig\nglobal_config: {nbits: 5}\n');
    const e = thrown(() => loadConfigFile(bad));
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toBe(`${bad}: global_config: Invalid value of "nbits" (5) for palettization. Supported "nbits" are (1, 2, 3, 4, 6, 8)`);
    expect(e['file']).toBe(bad);
    expect(e['key']).toBe('nbits');
    const broken = write('broken.yaml', 'config_type: [unclosed\n');
    expect(thrown(() => loadConfigFile(broken)).message).toMatch(new RegExp(`^${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid YAML`));
    const brokenJson = write('broken.json', '{"config_type": ');
    expect(thrown(() => loadConfigFile(brokenJson)).message).toMatch(/broken\.json: invalid JSON/);
    const txt = write('c.txt', '{}');
    expect(thrown(() => loadConfigFile(txt)).message).toMatch(/c\.txt: unsupported config file extension "\.txt"/);
    expect(thrown(() => loadConfigFile(join(dir, 'missing.yaml'))).message).toMatch(/missing\.yaml: file not found/);
    const dup = write('dup.yaml', 'config_type: OpPalettizerConfig\nconfig_type: OpPalettizerConfig\n');
    expect(() => loadConfigFile(dup)).toThrow(ConfigError);
  });

  it('loads compress plans from YAML and JSON and names the file and step in errors', () => {
    const p = write('plan.yaml', [
      'steps:',
      '  - api: prune',
      '    config: {config_type: OpMagnitudePrunerConfig, global_config: {target_sparsity: 0.5}}',
      '  - api: palettize_weights',
      '    joint_compression: true',
      '    config:',
      '      config_type: OpPalettizerConfig',
      '      global_config: {nbits: 4, granularity: per_grouped_channel, group_size: 16}',
    ].join('\n'));
    const plan: CompressPlan = loadCompressPlan(p);
    expect(plan.steps.map((s) => [s.api, s.joint_compression])).toEqual([['prune', false], ['palettize', true]]);
    const golden = byFile.get('joint_prune50_pal4gs16_ios18.json')!;
    plan.steps.forEach((s, i) => expect(s.config.equals(OptimizationConfig.fromDict(golden.steps![i]!.config!))).toBe(true));
    const j = write('plan.json', JSON.stringify(compressPlanToData(plan)));
    expect(compressPlanToData(loadCompressPlan(j))).toEqual(compressPlanToData(plan));
    expect(() => checkPlanTarget(plan, { specVersion: 7 })).toThrow(/^Joint compression is only supported since iOS18/);

    const wrong = write('wrong.yaml', 'steps:\n  - api: quantize\n    config: {config_type: OpPalettizerConfig, global_config: {nbits: 4}}\n');
    expect(thrown(() => loadCompressPlan(wrong)).message)
      .toBe(`${wrong}: steps[0]: linear_quantize_weights only accept OpLinearQuantizerConfig type config. Got OpPalettizerConfig.`);
    const noApi = write('noapi.yaml', 'steps:\n  - api: sparsify\n    config: {config_type: OpPalettizerConfig}\n');
    expect(thrown(() => loadCompressPlan(noApi)).message).toMatch(/noapi\.yaml: steps\[0\]: Unknown api sparsify/);
    expect(thrown(() => loadCompressPlan({ steps: [] })).message).toMatch(/"steps" must be a non-empty list/);
    expect(thrown(() => loadCompressPlan({ steps: [{ api: 'prune' }] })).message).toMatch(/steps\[0\]: a step needs "config"/);
    expect(thrown(() => loadCompressPlan({ steps: [{ api: 'prune', config: {}, joint: true }] })).message).toMatch(/Unknown key "joint" in a step/);
    expect(thrown(() => loadCompressPlan({ steps: [{ api: 'prune', config: { config_type: 'OpThresholdPrunerConfig' }, joint_compression: 'yes' }] })).message)
      .toMatch(/"joint_compression" must be true or false/);
    expect(thrown(() => loadCompressPlan({ plan: [] })).message).toMatch(/Unknown key "plan" in a compress plan/);
  });

  it('normalizes api names', () => {
    expect(normalizeApiName('coremltools.optimize.coreml.linear_quantize_weights')).toBe('quantize');
    expect(normalizeApiName('prune_weights')).toBe('prune');
    expect(normalizeApiName('palettize')).toBe('palettize');
    expect(() => normalizeApiName('quantize_weights')).toThrow(ConfigError);
  });
});

describe('CLI flags', () => {
  it('maps palettize flags (kebab-case and commander camelCase) to a global config', () => {
    const cfg = configFromCliFlags('palettize', {
      '--nbits': '4', mode: 'kmeans', granularity: 'per_grouped_channel', 'group-size': '16', channelAxis: '1',
      'cluster-dim': '2', 'enable-per-channel-scale': true, 'lut-dtype': 'int8', 'weight-threshold': '0', 'num-kmeans-workers': undefined,
    });
    expect(cfg.global_config!.toDict()).toEqual({
      mode: 'KMEANS', nbits: 4, granularity: 'per_grouped_channel', group_size: 16, channel_axis: 1, cluster_dim: 2,
      enable_per_channel_scale: true, num_kmeans_workers: 1, weight_threshold: 0, lut_dtype: 'int8', config_type: 'OpPalettizerConfig',
    });
    expect((configFromCliFlags('palettize', { mode: 'unique', 'channel-axis': 'none' }).global_config as OpPalettizerConfig).channel_axis).toBeNull();
  });

  it('maps prune flags to the right pruner', () => {
    expect(configFromCliFlags('prune', { 'n-m-ratio': '2:4' }).global_config!.toDict())
      .toEqual(OptimizationConfig.fromDict(byFile.get('prune_nm24_ios18.json')!.steps![0]!.config!).global_config!.toDict());
    expect(configFromCliFlags('prune', { 'target-sparsity': '0.5', 'block-size': '2' }).equals(
      OptimizationConfig.fromDict(byFile.get('prune_mag50_block2_ios18.json')!.steps![0]!.config!))).toBe(true);
    expect(configFromCliFlags('prune', { threshold: '0.01' }).equals(
      OptimizationConfig.fromDict(byFile.get('prune_thr001_ios18.json')!.steps![0]!.config!))).toBe(true);
    const t = configFromCliFlags('prune', { threshold: 0.001, minimumSparsityPercentile: '0.25', dim: undefined }).global_config as OpThresholdPrunerConfig;
    expect([t.threshold, t.minimum_sparsity_percentile]).toEqual([0.001, 0.25]);
    expect((configFromCliFlags('prune', { 'n-m-ratio': '[3, 4]', dim: '0' }).global_config as OpMagnitudePrunerConfig).n_m_ratio).toEqual([3, 4]);
  });

  it('maps quantize flags, including per-axis block sizes', () => {
    expect(configFromCliFlags('quantize', { mode: 'linear_symmetric', dtype: 'int4', granularity: 'per_block', 'block-size': '32' }).equals(
      OptimizationConfig.fromDict(byFile.get('q_int4_linsym_block32_ios18.json')!.steps![0]!.config!))).toBe(true);
    expect((configFromCliFlags('quantize', { 'block-size': '1,32', granularity: 'per_block' }).global_config as OpLinearQuantizerConfig).block_size).toEqual([1, 32]);
  });

  const bad: [string, Parameters<typeof configFromCliFlags>[0], Record<string, string | number | boolean>, RegExp][] = [
    ['bad nbits', 'palettize', { nbits: '5' }, /^--nbits: Invalid value of "nbits" \(5\) for palettization/],
    ['non-integer nbits', 'palettize', { nbits: 'four' }, /^--nbits "four": expected an integer\.$/],
    ['flag of another kind', 'palettize', { nbits: '4', dtype: 'int8' }, /^--dtype is not an option of palettize\. Options: --mode, --nbits,/],
    ['bad group size', 'palettize', { nbits: '4', 'group-size': '-2' }, /^--group-size: "group_size" must be >= 0/],
    ['bad boolean', 'palettize', { nbits: '4', 'enable-per-channel-scale': 'maybe' }, /^--enable-per-channel-scale "maybe": expected true or false\.$/],
    ['bad n:m', 'prune', { 'n-m-ratio': '4:2' }, /^--n-m-ratio: "n_m_ratio" must be a tuple of two integers/],
    ['empty n:m', 'prune', { 'n-m-ratio': '' }, /^--n-m-ratio "": expected a list of integers/],
    ['threshold with sparsity', 'prune', { threshold: '0.1', 'target-sparsity': '0.5' }, /^--threshold \(threshold pruning\) cannot be combined with --target-sparsity/],
    ['no prune target', 'prune', {}, /^--target-sparsity: Either "target_sparsity" or "n_m_ratio" need to be set/],
    ['sparsity out of range', 'prune', { 'target-sparsity': '1.5' }, /^--target-sparsity: Invalid value of "target_sparsity": 1\.5/],
    ['bad dtype', 'quantize', { dtype: 'int2' }, /^--dtype: Invalid dtype int2\. Only support int8\/uint8\/int4\/uint4\./],
    ['bad granularity', 'quantize', { granularity: 'per_grouped_channel' }, /^--granularity: "granularity" must be one of per_tensor, per_channel, per_block/],
    ['prototype name as flag', 'quantize', { constructor: 'x' }, /^--constructor is not an option of quantize/],
    ['bad weight threshold', 'quantize', { 'weight-threshold': '1e3' }, /^--weight-threshold "1e3": expected an integer\.$/],
  ];
  for (const [title, kind, flags, message] of bad) {
    it(`rejects ${title} naming the flag`, () => {
      const e = thrown(() => configFromCliFlags(kind, flags));
      expect(e).toBeInstanceOf(ConfigError);
      expect(e.message).toMatch(message);
    });
  }
});
