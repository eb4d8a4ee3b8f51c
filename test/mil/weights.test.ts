import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { GOLDEN, hasFixtures, loadProgramFixture, packageModelFile } from './helpers.js';
import { listWeights, type CompressionInfo, type WeightInfo } from '../../src/mil/weights.js';
import type { Program } from '../../src/mil/program.js';

interface SidecarInput { op: string; op_type: string; input: string; dtype?: string; shape?: number[]; from_op?: string; value?: number[] }
interface SidecarWeight { name: string; consumers: string[]; chain: string[]; shape: number[]; dtype: string; n_elements: number; n_zero: number; n_distinct: number; source_weight?: string; constexpr_inputs?: SidecarInput[] }
interface StepConfig { [k: string]: unknown }
interface Sidecar {
  status?: string; weights: SidecarWeight[];
  steps?: { api: string; joint_compression: boolean; config: { global_config: StepConfig | null; op_type_configs?: Record<string, StepConfig | null>; op_name_configs?: Record<string, StepConfig | null> } }[];
}

const packages = hasFixtures ? fs.readdirSync(GOLDEN).filter(n => n.endsWith('.mlpackage')).map(n => n.replace(/\.mlpackage$/, '')) : [];

function effectiveConfig(step: NonNullable<Sidecar['steps']>[number], w: SidecarWeight, consumerOp: string, consumerType: string): StepConfig | null {
  const c = step.config;
  for (const key of [w.source_weight ?? '', consumerOp]) if (c.op_name_configs && key in c.op_name_configs) return c.op_name_configs[key]!;
  if (c.op_type_configs && consumerType in c.op_type_configs) return c.op_type_configs[consumerType]!;
  return c.global_config;
}

function checkAgainstConfig(program: Program, w: WeightInfo, sw: SidecarWeight, sidecar: Sidecar): void {
  const [consumerOp] = sw.consumers[0]!.split('.');
  const consumerType = [...program.main.walk()].find(o => o.name === consumerOp)!.type;
  const of = <K extends CompressionInfo['kind']>(k: K) => w.compression.filter((c): c is Extract<CompressionInfo, { kind: K }> => c.kind === k);
  for (const step of sidecar.steps ?? []) {
    const cfg = effectiveConfig(step, sw, consumerOp!, consumerType);
    if (!cfg) continue;
    if (step.api.endsWith('palettize_weights')) {
      const [p] = of('palettization');
      expect(p, `${w.name}: palettization`).toBeDefined();
      if (cfg['nbits'] !== null) expect(p!.nbits, w.name).toBe(cfg['nbits']);
      expect(p!.granularity, w.name).toBe(cfg['granularity']);
      if (cfg['granularity'] === 'per_grouped_channel') expect(p!.groupSize, w.name).toBe(cfg['group_size']);
      expect(p!.clusterDim, w.name).toBe(cfg['cluster_dim']);
      expect(of('per_channel_scale').length > 0, w.name).toBe(Boolean(cfg['enable_per_channel_scale']));
      expect(p!.lutSize).toBe(2 ** p!.nbits);
    } else if (step.api.endsWith('linear_quantize_weights')) {
      const [q] = of('quantization');
      expect(q, `${w.name}: quantization`).toBeDefined();
      expect(q!.dtype, w.name).toBe(cfg['dtype']);
      if (cfg['granularity'] === 'per_block') {
        const bs = cfg['block_size'] as number;
        expect(q!.blockSizes!.some(b => b === bs) || q!.granularity === 'per_channel', w.name).toBe(true);
      } else expect(q!.granularity, w.name).toBe(cfg['granularity']);
      expect(q!.symmetric, `${w.name} symmetric`).toBe(cfg['mode'] === 'LINEAR_SYMMETRIC');
      if (cfg['mode'] === 'LINEAR') expect(q!.offset).not.toBe('none');
    } else if (step.api.endsWith('prune_weights')) {
      const [s] = of('sparsity');
      expect(s, `${w.name}: sparsity`).toBeDefined();
      expect(s!.elementCount).toBe(w.elementCount);
      expect(s!.maskPopcount).toBe(s!.nonzeroCount);
      expect(sw.n_zero).toBeGreaterThanOrEqual(w.elementCount - s!.nonzeroCount);
      if ((sidecar.steps ?? []).length === 1) expect(sw.n_zero).toBe(w.elementCount - s!.nonzeroCount);
    }
  }
}

const norm = (i: SidecarInput) => (i.from_op !== undefined ? `${i.op}|${i.op_type}|${i.input}|from ${i.from_op}` : `${i.op}|${i.op_type}|${i.input}|${i.dtype}|${JSON.stringify(i.shape)}`);

describe.skipIf(!hasFixtures)('weights of every golden package match their sidecar', () => {
  it('has the golden packages', () => expect(packages.length).toBe(59));
  for (const name of packages) {
    it(name, () => {
      const sidecar = JSON.parse(fs.readFileSync(path.join(GOLDEN, `${name}.json`), 'utf8')) as Sidecar;
      const { program, readers } = loadProgramFixture(packageModelFile(path.join(GOLDEN, `${name}.mlpackage`)));
      try {
        const weights = listWeights(program, { readData: true });
        expect(weights.map(w => w.name).sort()).toEqual(sidecar.weights.map(w => w.name).sort());
        for (const sw of sidecar.weights) {
          const w = weights.find(x => x.name === sw.name)!;
          expect(w.consumers, w.name).toEqual(sw.consumers);
          expect(w.chain, w.name).toEqual(sw.chain);
          expect(w.shape, w.name).toEqual(sw.shape);
          expect(w.dtype, w.name).toBe(sw.dtype);
          expect(w.elementCount).toBe(sw.n_elements);
          const mine = w.inputs.map(i => norm({ op: i.op, op_type: i.opType, input: i.input, dtype: i.dtype, shape: i.shape as number[], from_op: i.fromOp })).sort();
          expect(mine, w.name).toEqual((sw.constexpr_inputs ?? []).map(norm).sort());
          expect(w.bytes).toBeGreaterThan(0);
          if (w.chain[0] === 'const') expect(w.bytes).toBe(w.denseBytes);
          else checkAgainstConfig(program, w, sw, sidecar);
        }
      } finally {
        for (const r of readers) r.close();
      }
    });
  }
});

describe.skipIf(!hasFixtures)('compression facts on specific golden files', () => {
  const load = (n: string) => loadProgramFixture(packageModelFile(path.join(GOLDEN, `${n}.mlpackage`))).program;
  it('pal_n4_cd2_gs16_ios18: vector palettization facts', () => {
    const fc1 = listWeights(load('pal_n4_cd2_gs16_ios18')).find(w => w.name.startsWith('fc1_weight'))!;
    expect(fc1.compression).toEqual([expect.objectContaining({ kind: 'palettization', encoding: 'ios18', nbits: 4, groups: [16, 1], groupAxis: 0, numGroups: 16, groupSize: 16, clusterDim: 2, vectorAxis: 0 })]);
    const mm = listWeights(load('pal_n4_cd2_gs16_ios18')).find(w => w.name.startsWith('mm_y'))!;
    expect(mm.compression[0]).toMatchObject({ groups: [1, 24], groupAxis: 1, groupSize: 16, vectorAxis: 1 });
  });
  it('q_int4_linsym_block32_ios18: per-block scale', () => {
    const fc1 = listWeights(load('q_int4_linsym_block32_ios18')).find(w => w.name.startsWith('fc1_weight'))!;
    expect(fc1.compression[0]).toMatchObject({ kind: 'quantization', dtype: 'int4', granularity: 'per_block', axis: 0, blockSize: 32, scaleShape: [256, 16], offset: 'none', symmetric: true });
    // int4 data (65536 × 4 bits) + fp16 scale (4096 × 2 bytes)
    expect(fc1.bytes).toBe(131072 / 2 + 4096 * 2);
    expect(fc1.denseBytes).toBe(131072 * 2);
  });
  it('q_uint8_linear_pertensor_ios16: affine with an immediate zero point', () => {
    const w = listWeights(load('q_uint8_linear_pertensor_ios16')).find(x => x.name.startsWith('fc1_weight'))!;
    expect(w.compression[0]).toMatchObject({ kind: 'quantization', encoding: 'ios16', dtype: 'uint8', granularity: 'per_tensor', offset: 'constant', symmetric: false });
  });
  it('joint_prune50_pal4gs16_ios18: chain lut_to_sparse → sparse_to_dense', () => {
    const w = listWeights(load('joint_prune50_pal4gs16_ios18')).find(x => x.name === 'conv1_weight_to_fp16_sparsified')!;
    expect(w.compression.map(c => c.kind)).toEqual(['palettization', 'sparsity']);
    expect(w.compression[0]).toMatchObject({ target: 'nonzero_data', groups: [4, 1, 1, 1], groupSize: 16 });
    expect(w.compression[1]).toMatchObject({ nonzeroCount: 9214, elementCount: 18432 });
  });
  it('pal_n4_pertensor_ios16: packed indices and 1-D LUT', () => {
    const w = listWeights(load('pal_n4_pertensor_ios16')).find(x => x.name === 'conv1_weight_to_fp16_palettized')!;
    expect(w.compression).toEqual([expect.objectContaining({ encoding: 'ios16', nbits: 4, lutSize: 16, lutDtype: 'fp16', granularity: 'per_tensor' })]);
    expect(w.bytes).toBe(9216 + 32 + 16);
  });
  it('int8-transformer encoder: 22 blockwise-quantized weights without weight.bin', () => {
    const p = loadProgramFixture(path.join(GOLDEN, '../int8-transformer-program-only/ios/CoreMLAudioApp/CoreMLAudioApp/MLModels/Transformer_Encoder_int8.mlpackage/Data/com.apple.CoreML/model.mlmodel')).program;
    const q = listWeights(p).filter(w => w.chain.includes('constexpr_blockwise_shift_scale'));
    expect(q.length).toBe(22);
    for (const w of q) expect(w.compression[0]).toMatchObject({ kind: 'quantization', dtype: 'int8' });
  });
});

describe.skipIf(!hasFixtures)('weightValueStats (get_weights_metadata sparsity / unique values)', () => {
  for (const src of ['src_a_ios18', 'src_a_fp32_ios16']) {
    it(`${src}: zeros and distinct values match the sidecar`, async () => {
      const { weightValueStats } = await import('../../src/mil/weights.js');
      const sidecar = JSON.parse(fs.readFileSync(path.join(GOLDEN, `${src}.json`), 'utf8')) as Sidecar;
      const { program, readers } = loadProgramFixture(packageModelFile(path.join(GOLDEN, `${src}.mlpackage`)));
      for (const w of listWeights(program)) {
        const sw = sidecar.weights.find(x => x.name === w.name)!;
        const s = weightValueStats(program, w);
        expect([w.name, s.zeros, s.uniqueValues]).toEqual([w.name, sw.n_zero, sw.n_distinct]);
      }
      for (const r of readers) r.close();
    });
  }
  it('refuses compressed weights', async () => {
    const { weightValueStats } = await import('../../src/mil/weights.js');
    const { program } = loadProgramFixture(packageModelFile(path.join(GOLDEN, 'pal_n4_pertensor_ios18.mlpackage')));
    const w = listWeights(program).find(x => x.chain[0] !== 'const')!;
    expect(() => weightValueStats(program, w)).toThrow(/uncompressed const/);
  });
});
