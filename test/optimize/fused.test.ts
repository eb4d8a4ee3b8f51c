/**
 * compressModel fuses prune → palettize / quantize (joint) into one pass over the weight file. The
 * fused run must write exactly what the step-by-step run writes (model.mlmodel and weight.bin byte
 * for byte) and report the same per-weight figures; cases it cannot fuse fall back to two passes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Model } from '../../src/model.js';
import { compressModel, type MultiStepModel } from '../../src/optimize/compress.js';
import { loadSidecar } from './golden.js';
import { OptimizationConfig, OpPalettizerConfig } from '../../src/optimize/config.js';
import { loadCompressPlan } from '../../src/optimize/steps.js';
import { fusablePair } from '../../src/optimize/fused.js';
import { expectSameAsGolden, goldenSource } from './golden-compare.js';
import { buildExampleModel } from '../../src/demo/example-model.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fused-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let saved = 0;
/** Every file of the saved package, by relative path. */
async function savedFiles(model: Model): Promise<Map<string, Buffer>> {
  const dir = path.join(tmp, `m${saved++}.mlpackage`);
  await model.save(dir);
  const out = new Map<string, Buffer>();
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(path.relative(dir, p), fs.readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

function stepFigures(m: MultiStepModel): unknown {
  return m.steps.map((s) => ({ api: s.api, before: s.weightFileBytesBefore, after: s.weightFileBytesAfter, weights: s.weights }));
}

async function expectSameAsSequential(src: Model, plan: object): Promise<MultiStepModel> {
  const fused = await compressModel(src, plan);
  const sequential = await compressModel(src, plan, { fuse: false });
  expect(sequential.passes).toBe((plan as { steps: unknown[] }).steps.length);
  expect(stepFigures(fused)).toEqual(stepFigures(sequential));
  const a = await savedFiles(fused);
  const b = await savedFiles(sequential);
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [name, bytes] of b) expect(a.get(name)!.equals(bytes), name).toBe(true);
  return fused;
}

const prune = (global_config: object) => ({ api: 'prune', config: { config_type: 'OpMagnitudePrunerConfig', global_config } });
const palettize = (config: object) => ({ api: 'palettize', joint_compression: true, config: { config_type: 'OpPalettizerConfig', ...config } });
const quantize = (config: object) => ({ api: 'quantize', joint_compression: true, config: { config_type: 'OpLinearQuantizerConfig', ...config } });

describe('fused prune → joint step (one pass)', () => {
  // prune → quantize is bit-exact with coremltools; prune → palettize clusters with scikit-learn
  // there, so ours is compared by error (joint-golden.test.ts).
  for (const [name, bySse] of [['joint_prune50_pal4gs16_ios18', true], ['joint_prune50_q8_ios18', false]] as const) {
    it(`${name}: one pass, same bytes as two passes, same as coremltools`, async () => {
      const sidecar = loadSidecar(name);
      const src = await goldenSource(sidecar.source);
      const fused = await compressModel(src, sidecar);
      expect(fused.passes).toBe(1);
      expect(await expectSameAsGolden(fused, sidecar, { bySse })).toBe(7);
      expect((await expectSameAsSequential(src, sidecar)).passes).toBe(1);
    });
  }

  const plans: [string, object][] = [
    ['n:m 2:4 → 4-bit gs4', { steps: [prune({ n_m_ratio: [2, 4] }), palettize({ global_config: { nbits: 4, granularity: 'per_grouped_channel', group_size: 4 } })] }],
    ['block 2 → int4 per_block 16', { steps: [prune({ target_sparsity: 0.4, block_size: 2 }), quantize({ global_config: { dtype: 'int4', granularity: 'per_block', block_size: 16 } })] }],
    ['40 % → 2-bit per-tensor uniform', { steps: [prune({ target_sparsity: 0.4 }), palettize({ global_config: { nbits: 2, mode: 'uniform' } })] }],
    ['op-type configs: only linear pruned, everything palettized', {
      steps: [
        { api: 'prune', config: { config_type: 'OpMagnitudePrunerConfig', op_type_configs: { linear: { target_sparsity: 0.5 } } } },
        palettize({ global_config: { nbits: 3 } }),
      ],
    }],
  ];
  for (const [label, plan] of plans) {
    it(`${label}: one pass, same bytes as two passes`, async () => {
      const fused = await expectSameAsSequential(await goldenSource('src_a_ios18.mlpackage'), plan);
      expect(fused.passes).toBe(1);
    });
  }

  it('the demo\'s SD-style model (conv stem + feed-forward + projection) gives the same bytes, in one pass', async () => {
    const fused = await expectSameAsSequential(await buildExampleModel(path.join(tmp, 'example.mlpackage'), path.join(tmp, 'example-weights.bin')), {
      steps: [prune({ target_sparsity: 0.5 }), palettize({ global_config: { nbits: 4, granularity: 'per_grouped_channel', group_size: 16 } })],
    });
    expect(fused.passes).toBe(1);
    expect(fused.steps[1]!.weights.filter((w) => w.status === 'compressed').length).toBeGreaterThan(3);
  });

  it('a weight the second step leaves as it was keeps the pruned values, still in one pass and the same bytes', async () => {
    // group_size 3 divides none of most weights' channel counts: palettize skips those natively,
    // and the two-step run copies their pruned form (as SDXL's conv_out.weight with gs16).
    const plan = { steps: [prune({ target_sparsity: 0.5 }), palettize({ global_config: { nbits: 4, granularity: 'per_grouped_channel', group_size: 3 } })] };
    const fused = await expectSameAsSequential(await goldenSource('src_a_ios18.mlpackage'), plan);
    expect(fused.passes).toBe(1);
    expect(fused.steps[1]!.weights.filter((w) => /not divisible by group_size 3/.test(w.detail)).length).toBe(5);
  });

  it('falls back to two passes when the first step leaves weights as they were at run time, and still matches', async () => {
    // minimum_sparsity_percentile: the threshold pruner leaves a weight dense when it would prune
    // too little, so the second step sees a plain const there — not what one pass planned.
    const plan = {
      steps: [
        { api: 'prune', config: { config_type: 'OpThresholdPrunerConfig', global_config: { threshold: 0.01, minimum_sparsity_percentile: 0.3 } } },
        palettize({ global_config: { nbits: 4 } }),
      ],
    };
    const fused = await expectSameAsSequential(await goldenSource('src_a_ios18.mlpackage'), plan);
    expect(fused.passes).toBe(2);
    const kept = fused.steps[0]!.weights.filter((w) => /minimum_sparsity_percentile/.test(w.detail)).length;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(7);
  });

  it('a custom LUT function is never fused (it reads weights in JS)', async () => {
    const custom = new OpPalettizerConfig({ mode: 'custom', lut_function: (w) => ({ lut: [-1, 1], indices: Array.from(w.data, (x) => (x > 0 ? 1 : 0)) }) });
    const plan = loadCompressPlan({ steps: [prune({ target_sparsity: 0.5 })] });
    const steps = [...plan.steps, { api: 'palettize' as const, joint_compression: true, config: new OptimizationConfig({ global_config: custom }) }];
    expect(fusablePair(steps[0]!, steps[1]!)).toBe(false);
    expect(fusablePair(steps[0]!, { ...steps[1]!, config: OptimizationConfig.fromDict({ config_type: 'OpPalettizerConfig', global_config: { nbits: 4 } }) })).toBe(true);
    expect(fusablePair(steps[0]!, { ...steps[1]!, joint_compression: false })).toBe(false);
  });

  it('three steps: the fusable pair runs as one pass, the rest after it', async () => {
    const plan = { steps: [prune({ target_sparsity: 0.5 }), palettize({ global_config: { nbits: 4 } }), prune({ target_sparsity: 0.3 })] };
    const src = await goldenSource('src_a_ios18.mlpackage');
    const fused = await compressModel(src, plan);
    const sequential = await compressModel(src, plan, { fuse: false });
    expect(fused.passes).toBe(2);
    expect(sequential.passes).toBe(3);
    expect(stepFigures(fused)).toEqual(stepFigures(sequential));
  });
});
