/**
 * Issue 11 on a real graph: the tiny random-weight SDXL diffusers pipeline of the fixtures,
 * converted (iOS18, fp32), calibrated from generation with `recordUnetInputs` on the three
 * calibration prompts of Apple's study, then compressed with Apple's joint recipe — SparseGPT 40 %
 * on `down_blocks.\d+`, `mid_block`, `up_blocks.\d+` followed by 4-bit per_grouped_channel gs16
 * palettization with joint_compression — against magnitude pruning 40 % of the same weights + the
 * same palettization. The UNet output PSNR is measured on held-out UNet inputs (another prompt and
 * seed), and both SparseGPT modes (sequential, one-shot) run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertDiffusers } from '../../src/convert/convert.js';
import { ConfigError } from '../../src/errors.js';
import { loadModel, type Model } from '../../src/model.js';
import { compressModel, type MultiStepModel } from '../../src/optimize/compress.js';
import { materializeWeights } from '../../src/optimize/materialize.js';
import type { LayerwiseReport } from '../../src/optimize/sparsegpt/index.js';
import { StableDiffusionPipeline } from '../../src/pipeline/stable-diffusion.js';
import { compareModels } from '../../src/runtime/compare.js';
import type { TensorInput } from '../../src/runtime/executor.js';
import { readNpy } from '../../src/runtime/npy.js';
import { opTypes } from './op-types.js';

const REF = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/fixtures/pipeline-reference');
const TINY_SDXL = path.join(REF, 'models', 'tiny-sdxl');
const hasFixtures = fs.existsSync(TINY_SDXL);

/** issue 13's calibration prompts (Apple's study). */
const CALIBRATION_PROMPTS = [
  'modern office building, 8 stories tall, glass and steel, 3D render style, wide angle view, very detailed, sharp photographic image, in an office park, bright sunny day, clear blue skies, trees and landscaping',
  'image of a transparent tall glass with ice, fruits and mint, photograph, commercial, food, warm background, beautiful image, detailed',
  'german castle on a mountain, blue sky, realistic, photograph, dramatic, wide angle view',
];
const HELD_OUT = { prompt: 'cat in a tuxedo, oil on canvas', seed: 231 };
const STEPS = 3;
/** 8×8 latents (64×64 images) keep the test fast; the graph is the same UNet. */
const LATENT: [number, number] = [8, 8];
const APPLE_LAYERS = ['down_blocks.\\d+', 'mid_block', 'up_blocks.\\d+'];
const BLOCKS = ['down_blocks_0', 'down_blocks_1', 'mid_block', 'up_blocks_0', 'up_blocks_1'];
const PALETTIZE_GS16 = {
  api: 'palettize', joint_compression: true,
  config: { config_type: 'OpPalettizerConfig', global_config: { nbits: 4, granularity: 'per_grouped_channel', group_size: 16 } },
};

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cmo-sgpt-unet-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let unet: Model;
let calibration: string;
let heldOut: Record<string, TensorInput>[];
const disposables: Model[] = [];

const sparsegptStep = (mode: 'sequential' | 'oneshot') => ({
  api: 'sparsegpt', mode, calibration,
  config: { global_config: { algorithm: 'sparse_gpt', target_sparsity: 0.4 }, layers: APPLE_LAYERS, calibration_nsamples: 128 },
});

function inputsOf(dir: string): Record<string, TensorInput> {
  const out: Record<string, TensorInput> = {};
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.npy'))) {
    const a = readNpy(path.join(dir, f));
    out[f.slice(0, -4)] = { data: a.data as Float32Array, shape: a.shape, dtype: 'fp32' };
  }
  return out;
}

async function unetPsnr(m: Model): Promise<number> {
  const r = await compareModels(unet, m, { inputs: heldOut, threads: 2 });
  const out = r.outputs.find((o) => o.name === 'noise_pred')!;
  expect(out.identical).toBe(false);
  return out.psnr!;
}

function layerwiseOf(m: MultiStepModel): LayerwiseReport {
  return (m.steps[0] as unknown as { layerwise: LayerwiseReport }).layerwise;
}

describe.skipIf(!hasFixtures)('SparseGPT on a converted tiny SDXL UNet, calibrated from generation', () => {
  beforeAll(async () => {
    const converted = path.join(tmp, 'tiny-sdxl');
    await convertDiffusers(TINY_SDXL, { outDir: converted, precision: 'fp32', specVersion: 9, latentSize: LATENT });
    const pipeline = await StableDiffusionPipeline.load(converted, { backend: 'executor', threads: 2 });
    // One sample folder per UNet call of each prompt, gathered in one calibration folder.
    calibration = path.join(tmp, 'calibration');
    fs.mkdirSync(calibration);
    for (const [i, prompt] of CALIBRATION_PROMPTS.entries()) {
      const rec = path.join(tmp, `rec-${i}`);
      const r = await pipeline.generate({ prompt, seed: 93 + i, numInferenceSteps: STEPS, recordUnetInputs: rec });
      for (const d of r.unetSampleDirs) fs.renameSync(d, path.join(calibration, `p${i}_${path.basename(d)}`));
    }
    const rec = path.join(tmp, 'held-out');
    const r = await pipeline.generate({ ...HELD_OUT, numInferenceSteps: STEPS, recordUnetInputs: rec });
    heldOut = r.unetSampleDirs.map(inputsOf);
    unet = await loadModel(path.join(converted, 'Unet.mlpackage'));
  }, 120_000);
  afterAll(() => {
    for (const m of disposables) m.dispose();
  });

  it('convertDiffusers rejects a specification version it does not write', async () => {
    await expect(convertDiffusers(TINY_SDXL, { outDir: path.join(tmp, 'bad'), specVersion: 6 as 7 })).rejects.toThrow(ConfigError);
    expect(fs.existsSync(path.join(tmp, 'bad'))).toBe(false);
  });

  let joint: MultiStepModel;
  let sparsegptPsnr: number;

  it('records 3 × 3 calibration samples and 3 held-out samples of the UNet\'s inputs', () => {
    expect(fs.readdirSync(calibration).length).toBe(3 * STEPS);
    expect(heldOut.length).toBe(STEPS);
    expect(Object.keys(heldOut[0]!).sort()).toEqual(['encoder_hidden_states', 'sample', 'text_embeds', 'time_ids', 'timestep']);
    expect(heldOut[0]!['sample']!.shape).toEqual([2, 4, ...LATENT]);
    // Converted for iOS18 (specVersion 9), which joint compression needs.
    expect(unet.spec.specificationVersion).toBe(9);
  });

  it('SparseGPT 40 % + 4-bit gs16 joint: every block selected, per-op sparsity ≈ 0.4, sparse + palettized chains, runs', async () => {
    joint = await compressModel(unet, { steps: [sparsegptStep('sequential'), PALETTIZE_GS16] });
    disposables.push(joint);
    expect(joint.steps.map((s) => s.api)).toEqual(['sparsegpt', 'palettize']);
    const lw = layerwiseOf(joint);
    expect(lw.mode).toBe('sequential');
    expect(lw.samples).toBe(3 * STEPS);
    // Apple's regexes select weights in every down / mid / up block of the converted graph.
    expect(lw.layers.map((l) => l.key)).toEqual(BLOCKS);
    const compressed = lw.ops.filter((o) => o.status === 'compressed');
    for (const block of BLOCKS) expect(compressed.filter((o) => o.weight.startsWith(`${block}_`)).length, block).toBeGreaterThan(4);
    for (const o of compressed) {
      // Unstructured 40 %: each op's mask keeps round(0.6·n) per processing group; no dead columns here.
      expect(o.sparsity!, o.name).toBeGreaterThan(0.39);
      expect(o.sparsity!, o.name).toBeLessThan(0.41);
      // Hessian samples are counted as the reference's nsamples: batch items (2 per UNet call, CFG) of
      // a ≥ 3-D input, one per call for a 2-D input (the time-embedding projections read [2, C]).
      expect(o.samples, o.name).toBe(o.type === 'linear' && /time_emb_proj$/.test(o.name) ? 3 * STEPS : 2 * 3 * STEPS);
      // The layer error is measured on the calibration inputs: SparseGPT below magnitude pruning.
      expect(o.error!, o.name).toBeLessThan(o.baselineError!);
    }
    // Outside the blocks (conv_in, time / add embeddings, conv_out) nothing is pruned.
    const skipped = lw.ops.filter((o) => o.status === 'skipped');
    expect(skipped.map((o) => o.name).some((n) => /^(conv_in|conv_out|time_embedding|add_embedding)/.test(n))).toBe(true);
    for (const o of skipped) expect(o.name).not.toMatch(/^(down_blocks|mid_block|up_blocks)/);

    // iOS18 joint form: the palettized LUT feeds the sparse data (constexpr_lut_to_sparse → constexpr_sparse_to_dense).
    const types = opTypes(joint);
    const sparse = types.filter((t) => t === 'constexpr_sparse_to_dense').length;
    const lutToSparse = types.filter((t) => t === 'constexpr_lut_to_sparse').length;
    expect(sparse).toBe(compressed.length);
    // Every sparse weight of ≥ 2048 elements (palettize's default weight_threshold) is palettized jointly.
    const big = compressed.filter((o) => o.shape.reduce((a, d) => a * d, 1) > 2048).length;
    expect(lutToSparse).toBe(big);
    expect(big).toBeGreaterThan(compressed.length / 2);
    // Materialized, each pruned weight keeps its zeros through palettization.
    const weights = await materializeWeights(joint);
    for (const o of compressed) {
      const w = [...weights.values()].find((x) => x.name === o.weight || x.name.startsWith(`${o.weight}_`));
      expect(w, o.weight).toBeDefined();
      const zeros = w!.values.filter((v) => v === 0).length / w!.values.length;
      expect(zeros, o.weight).toBeGreaterThanOrEqual(o.sparsity! - 1e-9);
    }
    sparsegptPsnr = await unetPsnr(joint);
    expect(Number.isFinite(sparsegptPsnr)).toBe(true);
  }, 120_000);

  it('beats magnitude pruning 40 % of the same weights + the same 4-bit gs16 joint palettization on held-out inputs', async () => {
    const pruned = layerwiseOf(joint).ops.filter((o) => o.status === 'compressed').map((o) => o.weight);
    const magnitude = await compressModel(unet, {
      steps: [
        {
          api: 'prune',
          config: {
            config_type: 'OpMagnitudePrunerConfig',
            op_name_configs: Object.fromEntries(pruned.map((w) => [w, { target_sparsity: 0.4, weight_threshold: 0 }])),
          },
        },
        PALETTIZE_GS16,
      ],
    });
    disposables.push(magnitude);
    const pruneReport = magnitude.steps[0]!.weights.filter((w) => w.status === 'compressed');
    expect(pruneReport.map((w) => w.name).sort()).toEqual([...pruned].sort());
    const types = opTypes(magnitude);
    expect(types.filter((t) => t === 'constexpr_sparse_to_dense').length).toBe(pruned.length);
    const magnitudePsnr = await unetPsnr(magnitude);
    console.log(`tiny SDXL UNet, held-out noise_pred PSNR: SparseGPT 40 % + 4-bit gs16 ${sparsegptPsnr.toFixed(2)} dB, magnitude 40 % + 4-bit gs16 ${magnitudePsnr.toFixed(2)} dB`);
    expect(sparsegptPsnr).toBeGreaterThan(magnitudePsnr);
  }, 120_000);

  it('one-shot mode (all Hessians from the uncompressed model) runs the same plan and is reported', async () => {
    const oneshot = await compressModel(unet, { steps: [sparsegptStep('oneshot'), PALETTIZE_GS16] });
    disposables.push(oneshot);
    const lw = layerwiseOf(oneshot);
    expect(lw.mode).toBe('oneshot');
    const seq = layerwiseOf(joint);
    expect(lw.ops.filter((o) => o.status === 'compressed').map((o) => o.name)).toEqual(seq.ops.filter((o) => o.status === 'compressed').map((o) => o.name));
    // The first block sees the same inputs in both modes; later blocks see uncompressed inputs in one-shot.
    const first = (r: LayerwiseReport) => r.ops.find((o) => o.status === 'compressed' && o.weight.startsWith('down_blocks_0_'))!;
    expect(first(lw).error).toBeCloseTo(first(seq).error!, 10);
    const psnr = await unetPsnr(oneshot);
    console.log(`tiny SDXL UNet, held-out noise_pred PSNR: SparseGPT sequential ${sparsegptPsnr.toFixed(2)} dB, one-shot ${psnr.toFixed(2)} dB`);
    expect(Number.isFinite(psnr)).toBe(true);
  }, 120_000);
});
