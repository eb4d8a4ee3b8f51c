/**
 * SparseGPT on the graph, end to end on a small conv + attention + feed-forward network with real
 * activations: reconstruction error against magnitude pruning, 2:4 in the written model, both modes,
 * the written ops (iOS16 / iOS18 forms), output PSNR, the plan step, calibration errors.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Model } from '../../src/model.js';
import { sparseGPT, type LayerwiseModel } from '../../src/optimize/sparsegpt/index.js';
import { materializeWeights, type MaterializedWeight } from '../../src/optimize/materialize.js';
import { openProgram } from '../../src/optimize/pass.js';
import { pruneWeights } from '../../src/optimize/prune.js';
import { compressModel } from '../../src/optimize/compress.js';
import { compareModels } from '../../src/runtime/compare.js';
import { createExecutor, executorModelOf, lowerProgram, type TensorInput } from '../../src/runtime/executor.js';
import { loadSample, openCalibrationSet } from '../../src/optimize/sparsegpt/calibration.js';
import { writeNpy } from '../../src/runtime/npy.js';
import { ProgramGraph } from '../../src/optimize/sparsegpt/graph.js';
import { hessianBytes } from '../../src/optimize/sparsegpt/groups.js';
import { AbortError, ConfigError, UnsupportedError } from '../../src/errors.js';
import { buildCondNet, buildNet, buildTailNet, writeCalibration, LATENT, TOKENS } from './sparsegpt-helpers.js';

const APPLE_LAYERS = ['down_blocks.\\d+', 'mid_block', 'up_blocks.\\d+'];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cmo-sgpt-'));
let net: Model;
let calib: string;
let sequential: LayerwiseModel;

const config = (global: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  global_config: { algorithm: 'sparse_gpt', weight_dtype: 'float32', ...global }, layers: APPLE_LAYERS, ...extra,
});

beforeAll(async () => {
  net = await buildNet(dir, 'net');
  calib = writeCalibration(path.join(dir, 'calib'), 8);
  sequential = await sparseGPT(net, config({ target_sparsity: 0.5 }), calib);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The materialized weight the model reads for a const (its compressed chain's output is named after it). */
function weightOf(weights: Map<string, MaterializedWeight>, name: string): MaterializedWeight {
  const w = weights.get(name) ?? [...weights.values()].find((x) => x.name.startsWith(`${name}_`));
  if (!w) throw new Error(`no materialized weight for ${name}`);
  return w;
}

function compressedOps(m: LayerwiseModel) {
  return m.layerwise.ops.filter((o) => o.status === 'compressed');
}

/** Every op's weight as SparseGPT's [rows, columns] matrix (a matmul's y transposed). */
function asMatrix(values: Float32Array, shape: number[], transposed: boolean): { rows: number; cols: number; at: (r: number, c: number) => number } {
  if (transposed) return { rows: shape[1]!, cols: shape[0]!, at: (r, c) => values[c * shape[1]! + r]! };
  const cols = values.length / shape[0]!;
  return { rows: shape[0]!, cols, at: (r, c) => values[r * cols + c]! };
}

describe('sparseGPT on the graph', () => {
  it('compresses every linear / matmul(const y) / conv weight by layer and leaves conv_transpose with the reason', () => {
    const r = sequential.layerwise;
    expect(r.api).toBe('sparsegpt');
    expect(r.mode).toBe('sequential');
    expect(r.samples).toBe(8);
    expect(r.layers.map((l) => l.key)).toEqual(['down_blocks_0', 'mid_block', 'up_blocks_0']);
    expect(compressedOps(sequential).map((o) => o.name)).toEqual([
      'down_blocks_0_conv_in', 'down_blocks_0_conv2', 'mid_block_q', 'mid_block_k', 'mid_block_v', 'mid_block_out',
      'mid_block_ff1', 'mid_block_ff2', 'mid_block_proj', 'up_blocks_0_conv',
    ]);
    const ct = r.ops.find((o) => o.name === 'up_blocks_0_upsample')!;
    expect(ct.status).toBe('skipped');
    expect(ct.detail).toMatch(/conv_transpose/);
    // The grouped conv has one Hessian per group of C_in/groups·kh·kw columns.
    const conv2 = r.ops.find((o) => o.name === 'down_blocks_0_conv2')!;
    expect(conv2.hessianColumns).toBe(72);
    expect(conv2.groups).toBe(2);
    // Samples as the reference counts them: the batch dimension of every calibration sample.
    expect(conv2.samples).toBe(8 * LATENT[0]!);
    expect(sequential.compression.api).toBe('sparsegpt');
  });

  it('has a layer error well below magnitude pruning at the same sparsity', () => {
    for (const o of compressedOps(sequential)) {
      expect(o.sparsity!, o.name).toBeGreaterThanOrEqual(0.5);
      expect(o.sparsity!, o.name).toBeLessThan(0.56);
      expect(o.error!, o.name).toBeLessThan(o.baselineError!);
    }
    // Well below: a tenth or less for most layers (a 1×1 conv of 8 channels has little to trade).
    expect(compressedOps(sequential).filter((o) => o.error! < 0.2 * o.baselineError!).length).toBeGreaterThanOrEqual(8);
    const mean = (k: 'error' | 'baselineError') => compressedOps(sequential).reduce((s, o) => s + o[k]!, 0) / compressedOps(sequential).length;
    expect(mean('error')).toBeLessThan(0.3 * mean('baselineError'));
  });

  it('reports the error the written weights have on the calibration inputs (recomputed in float64)', async () => {
    // mid_block_q reads the model input `tokens`: its inputs are the calibration files themselves.
    const weights = await materializeWeights(sequential);
    const original = await materializeWeights(net);
    const w = weightOf(original, 'mid_block_q_weight').values;
    const wh = weightOf(weights, 'mid_block_q_weight').values;
    const set = openCalibrationSet(calib, createExecutor(net).inputs.map((i) => ({ name: i.name, type: { dtype: i.dtype, shape: i.shape } })), 128);
    let num = 0, den = 0;
    for (const s of set.samples) {
      const x = loadSample(s, [{ name: 'tokens', type: { dtype: 'fp32', shape: TOKENS } }])['tokens']!.data as Float32Array;
      for (let t = 0; t < x.length / 16; t++) {
        for (let r = 0; r < 16; r++) {
          let a = 0, b = 0;
          for (let c = 0; c < 16; c++) { a += w[r * 16 + c]! * x[t * 16 + c]!; b += wh[r * 16 + c]! * x[t * 16 + c]!; }
          num += (a - b) ** 2;
          den += a * a;
        }
      }
    }
    const reported = compressedOps(sequential).find((o) => o.name === 'mid_block_q')!.error!;
    expect(reported).toBeCloseTo(num / den, 5);
    expect(Math.abs(reported - num / den) / (num / den)).toBeLessThan(1e-3);
  });

  it('writes constexpr_sparse_to_dense (iOS18 uint1 mask) and the model runs on the executor', async () => {
    const { program, close } = openProgram(sequential, 'test');
    try {
      const ops = [...program.main.walk()];
      const sparse = ops.filter((o) => o.type === 'constexpr_sparse_to_dense');
      expect(sparse.length).toBe(10);
      const mask = sparse[0]!.param('mask')!;
      expect(mask.kind === 'value' && mask.value.dtype).toBe('uint1');
    } finally {
      close();
    }
    const ex = createExecutor(sequential);
    const out = await ex.predict(inputsOf(0));
    expect(out['text']!.shape).toEqual([2, 6, 24]);
    expect(Array.from(out['text']!.data as Float32Array).every(Number.isFinite)).toBe(true);
  });

  it('beats magnitude pruning of the same weights at the same sparsity on the model outputs (PSNR)', async () => {
    const names = compressedOps(sequential).map((o) => o.weight);
    const magnitude = await pruneWeights(net, {
      config_type: 'OpMagnitudePrunerConfig', global_config: null,
      op_name_configs: Object.fromEntries(names.map((n) => [n, { target_sparsity: 0.5, weight_threshold: 0 }])),
    });
    const heldOut = writeCalibration(path.join(dir, 'heldout'), 4, 9000);
    const inputs = loadAll(heldOut);
    const a = await compareModels(net, sequential, { inputs });
    const b = await compareModels(net, magnitude, { inputs });
    for (const o of a.outputs) {
      const m = b.outputs.find((x) => x.name === o.name)!;
      expect(o.psnr!, o.name).toBeGreaterThan(m.psnr! + 1);
    }
  });

  it('holds 2:4 in every group of 4 columns of the written weights', async () => {
    const nm = await sparseGPT(net, config({ n_m_ratio: [2, 4] }), calib);
    const weights = await materializeWeights(nm);
    const ops = compressedOps(nm);
    expect(ops.length).toBe(10);
    for (const o of ops) {
      const w = weightOf(weights, o.weight);
      const m = asMatrix(w.values, w.shape, o.type === 'matmul');
      expect(m.cols % 4, o.name).toBe(0);
      for (let r = 0; r < m.rows; r++) {
        for (let c = 0; c < m.cols; c += 4) {
          let zeros = 0;
          for (let k = 0; k < 4; k++) zeros += m.at(r, c + k) === 0 ? 1 : 0;
          expect(zeros, `${o.name} row ${r} cols ${c}..${c + 3}`).toBeGreaterThanOrEqual(2);
        }
      }
      expect(o.error!, o.name).toBeLessThan(o.baselineError!);
    }
  });

  it('runs one-shot (all Hessians from the uncompressed model) and reports it', async () => {
    const oneshot = await sparseGPT(net, config({ target_sparsity: 0.5 }), calib, { mode: 'oneshot' });
    expect(oneshot.layerwise.mode).toBe('oneshot');
    const err = (m: LayerwiseModel, name: string) => m.layerwise.ops.find((o) => o.name === name)!.error!;
    // The first layers see the same inputs either way; up_blocks_0 reads down_blocks_0's output,
    // compressed in sequential mode only.
    expect(err(oneshot, 'down_blocks_0_conv_in')).toBe(err(sequential, 'down_blocks_0_conv_in'));
    expect(err(oneshot, 'mid_block_ff1')).toBe(err(sequential, 'mid_block_ff1'));
    expect(err(oneshot, 'up_blocks_0_conv')).not.toBe(err(sequential, 'up_blocks_0_conv'));
  });

  it('gives the same weights when the boundary cache spills to disk and the Hessians come in waves', async () => {
    // The tightest budget that holds every share set next to the other parts: the one the error names.
    const { layers } = new ProgramGraph(lowerProgram(executorModelOf(net))).findLayers();
    const largest = Math.max(...layers.map((l) => hessianBytes(l.columns) * l.groups));
    const err = await sparseGPT(net, config({ target_sparsity: 0.5 }), calib, { cacheMemory: 1, maxMemory: largest }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const need = Number(/at least (\d+) bytes/.exec((err as Error).message)![1]);
    expect(need).toBeGreaterThan(largest);
    const tight = await sparseGPT(net, config({ target_sparsity: 0.5 }), calib, { cacheMemory: 1, maxMemory: need });
    expect(tight.layerwise.peakHessianBytes).toBeLessThanOrEqual(largest);
    expect(tight.layerwise.memory.budget.hessians).toBeLessThan(2 * largest);
    expect(tight.layerwise.memory.bound).toBeLessThanOrEqual(need);
    // One byte less does not hold it.
    await expect(sparseGPT(net, config({ target_sparsity: 0.5 }), calib, { cacheMemory: 1, maxMemory: need - 1 })).rejects.toThrow(ConfigError);
    expect(tight.layerwise.cacheSpilledBytes).toBeGreaterThan(0);
    expect(tight.layerwise.cachePeakBytes).toBe(0);
    expect(tight.layerwise.waves).toBeGreaterThan(sequential.layerwise.waves);
    const a = await materializeWeights(sequential);
    const b = await materializeWeights(tight);
    for (const o of compressedOps(sequential)) expect(Array.from(weightOf(b, o.weight).values), o.name).toEqual(Array.from(weightOf(a, o.weight).values));
  });

  it('fails before any work when one share set\'s Hessians exceed maxMemory, naming the ops, their size and the budget', async () => {
    let progress = 0;
    const run = sparseGPT(net, config({ target_sparsity: 0.5 }), calib, { maxMemory: 4096, onProgress: () => { progress++; } });
    await expect(run).rejects.toThrow(ConfigError);
    await expect(run).rejects.toThrow(/4096 bytes .*cannot hold the Hessians of down_blocks_0_conv2: 2 Hessians of 72×72 fp32 \(one per conv group\) = 42048 bytes, .*next to the boundary cache .*activations ≈ [\d.]+ MiB.*at least \d+ bytes/);
    expect(progress).toBe(0);
  });

  it('maxMemory bounds the executors\' weight caches too: the capture graphs get their share, and the report shows the parts', async () => {
    const m = sequential.layerwise.memory;
    const budget = sequential.layerwise.maxMemory;
    const b = m.budget;
    expect(b.boundaryCache).toBe(Math.floor(budget / 8));
    expect(b.executorCaches).toBe(Math.floor(budget / 8));
    expect(b.executorCacheLimits.widen + b.executorCacheLimits.pack + b.executorCacheLimits.derived + b.executorCacheLimits.pool).toBe(b.executorCaches);
    expect(b.hessians + b.boundaryCache + Math.max(b.executorCaches + b.activations + b.weights, b.pruneWorking)).toBeLessThanOrEqual(budget);
    expect(b.activations).toBeGreaterThan(0);
    // The parts of the sub-program with the most activations + weights: down_blocks_0 (its convs'
    // im2col); its weights are conv_in's 16·4·3·3 and conv2's 16·8·3·3 fp32 values.
    expect(b.weights).toBe((16 * 4 * 9 + 16 * 8 * 9) * 4);
    expect(b.pruneWorking).toBeGreaterThan(0);
    // The fp32 linears are kept transposed (mid_block: 3·16·16 + 64·16 + 16·64 floats at least).
    expect(m.peak.executorCaches).toBeGreaterThanOrEqual((3 * 16 * 16 + 2 * 64 * 16) * 4);
    expect(m.peak.hessians).toBe(sequential.layerwise.peakHessianBytes);
    expect(m.bound).toBeLessThanOrEqual(budget);
    // A share smaller than those caches bounds them (each capture graph's stats read back after its runs) …
    const small = 2048;
    const bounded = await sparseGPT(net, config({ target_sparsity: 0.5 }), calib, { executorCacheMemory: small });
    expect(bounded.layerwise.memory.budget.executorCacheLimits).toEqual({ widen: 0, pack: 512, derived: 1024, pool: 512 });
    expect(bounded.layerwise.memory.peak.executorCaches).toBeLessThanOrEqual(small);
    // … and none at all keeps nothing; the layers come out as from the cached executors (same masks).
    const none = await sparseGPT(net, config({ target_sparsity: 0.5 }), calib, { executorCacheMemory: 0 });
    expect(none.layerwise.memory.peak.executorCaches).toBe(0);
    for (const o of compressedOps(sequential)) {
      const other = none.layerwise.ops.find((x) => x.name === o.name)!;
      expect(other.sparsity, o.name).toBe(o.sparsity);
      expect(other.error!, o.name).toBeCloseTo(o.error!, 4);
    }
    await expect(sparseGPT(net, config({ target_sparsity: 0.5 }), calib, { executorCacheMemory: -1 })).rejects.toThrow(/executorCacheMemory/);
  });

  it('writes the iOS16 form (packed uint8 mask + shape) for an iOS16 model', async () => {
    const net16 = await buildNet(dir, 'net16', { specVersion: 7, dtype: 'fp16' });
    const m = await sparseGPT(net16, config({ target_sparsity: 0.4 }), calib);
    const { program, close } = openProgram(m, 'test');
    try {
      const op = [...program.main.walk()].find((o) => o.type === 'constexpr_sparse_to_dense')!;
      const mask = op.param('mask')!;
      expect(mask.kind === 'value' && mask.value.dtype).toBe('uint8');
      expect(op.param('shape')).toBeDefined();
    } finally {
      close();
    }
    for (const o of compressedOps(m)) expect(o.sparsity!, o.name).toBeGreaterThanOrEqual(0.39);
    const out = await createExecutor(m).predict(inputsOf(1));
    expect(Array.from(out['features']!.data as Uint16Array).length).toBe(2 * 16 * 7 * 7);
  });

  it('runs Apple\'s joint recipe as one plan: sparsegpt then palettize with joint_compression', async () => {
    const result = await compressModel(net, {
      steps: [
        { api: 'sparsegpt', config: config({ target_sparsity: 0.4 }), calibration: calib },
        { api: 'palettize', config: { config_type: 'OpPalettizerConfig', global_config: { nbits: 4, granularity: 'per_grouped_channel', group_size: 4, weight_threshold: 0 } }, joint_compression: true },
      ],
    });
    expect(result.steps.map((s) => s.api)).toEqual(['sparsegpt', 'palettize']);
    const { program, close } = openProgram(result, 'test');
    try {
      expect([...program.main.walk()].filter((o) => o.type === 'constexpr_lut_to_sparse').length).toBe(10);
    } finally {
      close();
    }
    const weights = await materializeWeights(result);
    const w = weightOf(weights, 'mid_block_ff1_weight').values;
    expect(w.filter((v) => v === 0).length / w.length).toBeGreaterThanOrEqual(0.4);
    const out = await createExecutor(result).predict(inputsOf(2));
    expect(Array.from(out['upsampled']!.data as Float32Array).every(Number.isFinite)).toBe(true);
  });

  it('rejects a mis-shaped or missing calibration input before any work, naming the sample and input', async () => {
    const bad = writeCalibration(path.join(dir, 'bad'), 3);
    writeNpy(path.join(bad, 'sample_002', 'tokens.npy'), { dtype: 'float32', shape: [2, 6, 15], data: new Float32Array(180) });
    let progress = 0;
    const run = sparseGPT(net, config({ target_sparsity: 0.5 }), bad, { onProgress: () => { progress++; } });
    await expect(run).rejects.toThrow(ConfigError);
    await expect(run).rejects.toThrow(/sample_002.*tokens.*\(2, 6, 15\)/);
    expect(progress).toBe(0);
    fs.rmSync(path.join(bad, 'sample_001', 'latent.npy'));
    await expect(sparseGPT(net, config({ target_sparsity: 0.5 }), bad)).rejects.toThrow(/sample_001.*latent/);
    await expect(sparseGPT(net, config({ target_sparsity: 0.5 }), path.join(dir, 'nowhere'))).rejects.toThrow(ConfigError);
  });

  it('picks calibration_nsamples spread over the folder', () => {
    const inputs = [{ name: 'latent', type: { dtype: 'fp32', shape: LATENT } }, { name: 'tokens', type: { dtype: 'fp32', shape: TOKENS } }];
    const set = openCalibrationSet(calib, inputs, 3);
    expect(set.available).toBe(8);
    expect(set.samples.map((s) => path.basename(s.dir))).toEqual(['sample_000', 'sample_002', 'sample_005']);
    // float64 files (numpy's default) become fp32.
    expect(loadSample(set.samples[2]!, inputs)['latent']!.dtype).toBe('fp32');
  });

  it('leaves ops out of `layers` and ops whose config is None, with the reason', async () => {
    const m = await sparseGPT(net, config({ target_sparsity: 0.5 }, { layers: ['mid_block'], module_name_configs: { mid_block_proj: null } }), calib);
    const byName = new Map(m.layerwise.ops.map((o) => [o.name, o]));
    expect(byName.get('down_blocks_0_conv_in')!.detail).toMatch(/no `layers` regex/);
    expect(byName.get('mid_block_proj')!.detail).toMatch(/None/);
    expect(byName.get('mid_block_ff1')!.status).toBe('compressed');
  });

  it('leaves a layer no calibration sample reaches (an untaken cond branch) dense and says so', async () => {
    const cond = await buildCondNet(dir, 'cond');
    const m = await sparseGPT(cond, { global_config: { weight_dtype: 'float32' } }, calib);
    const byName = new Map(m.layerwise.ops.map((o) => [o.name, o]));
    expect(byName.get('mid_block_branch')!.status).toBe('skipped');
    expect(byName.get('mid_block_branch')!.detail).toBe('no calibration sample reached it');
    expect(byName.get('mid_block_pre')!.status).toBe('compressed');
    expect(byName.get('mid_block_post')!.status).toBe('compressed');
    const out = await createExecutor(m).predict({ tokens: inputsOf(0)['tokens']! });
    expect(out['out']!.shape).toEqual(TOKENS);
    // Taken, the branch's weight (a const inside the cond block) is compressed in place, and the
    // layer after it is calibrated on the compressed branch.
    const taken = await sparseGPT(await buildCondNet(dir, 'cond-taken', true), { global_config: { weight_dtype: 'float32' } }, calib);
    expect(taken.layerwise.ops.filter((o) => o.status === 'compressed').map((o) => o.name)).toEqual(['mid_block_pre', 'mid_block_branch', 'mid_block_post']);
    expect(weightOf(await materializeWeights(taken), 'mid_block_branch_weight').values.filter((v) => v === 0).length).toBeGreaterThanOrEqual(128);
    const r = await createExecutor(taken).predict({ tokens: inputsOf(0)['tokens']! });
    expect(Array.from(r['out']!.data as Float32Array).every(Number.isFinite)).toBe(true);
  });

  it('zeroes dead columns (an input channel no sample ever sets) and reports them', async () => {
    const zero = writeCalibration(path.join(dir, 'dead'), 4, 100, { zeroTokenChannel: 3 });
    const m = await sparseGPT(net, config({ target_sparsity: 0.5 }), zero);
    const q = m.layerwise.ops.find((o) => o.name === 'mid_block_q')!;
    expect(q.deadColumns).toBe(1);
    const w = weightOf(await materializeWeights(m), 'mid_block_q_weight').values;
    for (let r = 0; r < 16; r++) expect(w[r * 16 + 3], `row ${r}`).toBe(0);
    expect(m.layerwise.ops.find((o) => o.name === 'mid_block_ff1')!.deadColumns).toBe(0);
  });

  it('prunes the tail of a 9-column layer proportionally under 2:4 and says so', async () => {
    const { model, calibration } = await buildTailNet(dir);
    const m = await sparseGPT(model, { global_config: { n_m_ratio: [2, 4], weight_dtype: 'float32' } }, calibration);
    const op = m.layerwise.ops.find((o) => o.name === 'tail_conv')!;
    expect(op.status).toBe('compressed');
    expect(op.hessianColumns).toBe(9);
    expect(op.detail).toMatch(/\(.+\)/);
    const w = weightOf(await materializeWeights(m), 'tail_conv_weight').values;
    for (let r = 0; r < 8; r++) {
      for (const c0 of [0, 4]) expect([0, 1, 2, 3].filter((k) => w[r * 9 + c0 + k] === 0).length, `row ${r}`).toBeGreaterThanOrEqual(2);
    }
    expect(op.error!).toBeLessThan(op.baselineError!);
  });

  it('stops on an AbortSignal', async () => {
    const controller = new AbortController();
    const run = sparseGPT(net, config({ target_sparsity: 0.5 }), calib, { signal: controller.signal, onProgress: (done) => { if (done === 3) controller.abort(); } });
    await expect(run).rejects.toThrow(AbortError);
  });

  it('names the algorithm limits: a gptq 4-bit layer in an iOS16 model', async () => {
    const net16 = await buildNet(dir, 'net16b', { specVersion: 7 });
    await expect(sparseGPT(net16, { global_config: { algorithm: 'gptq', weight_dtype: 'uint4' } }, calib)).rejects.toThrow(UnsupportedError);
  });
});

function loadAll(folder: string): Record<string, TensorInput>[] {
  const inputs = [{ name: 'latent', type: { dtype: 'fp32', shape: LATENT } }, { name: 'tokens', type: { dtype: 'fp32', shape: TOKENS } }];
  return openCalibrationSet(folder, inputs, 128).samples.map((s) => loadSample(s, inputs) as Record<string, TensorInput>);
}

function inputsOf(k: number): Record<string, TensorInput> {
  return loadAll(calib)[k]!;
}
