/**
 * GPTQ on the graph and the sparsegpt / gptq CLI: error below round-to-nearest on the same grid,
 * the written ops (iOS18 constexpr_blockwise_shift_scale per channel / per block, iOS16
 * constexpr_affine_dequantize), values on the grid, SparseGPT with quantized survivors, the CLI
 * table and JSON.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Model } from '../../src/model.js';
import { loadModel } from '../../src/model.js';
import { gptq, sparseGPT } from '../../src/optimize/sparsegpt/index.js';
import { materializeWeights, type MaterializedWeight } from '../../src/optimize/materialize.js';
import { createExecutor } from '../../src/runtime/executor.js';
import { loadSample, openCalibrationSet } from '../../src/optimize/sparsegpt/calibration.js';
import { runCli } from '../cli/run-cli.js';
import { buildNet, writeCalibration } from './sparsegpt-helpers.js';
import { openProgram } from '../../src/optimize/pass.js';
import { opTypes } from './op-types.js';
import { decompressWeights } from '../../src/optimize/compress.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cmo-gptq-'));
const LAYERS = ['down_blocks.\\d+', 'mid_block', 'up_blocks.\\d+'];
let net: Model;
let calib: string;

beforeAll(async () => {
  net = await buildNet(dir, 'net');
  calib = writeCalibration(path.join(dir, 'calib'), 6);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function weightOf(weights: Map<string, MaterializedWeight>, name: string): MaterializedWeight {
  const w = weights.get(name) ?? [...weights.values()].find((x) => x.name.startsWith(`${name}_`));
  if (!w) throw new Error(`no materialized weight for ${name}`);
  return w;
}

async function runs(m: Model): Promise<void> {
  const desc = createExecutor(m);
  const set = openCalibrationSet(calib, desc.inputs.map((i) => ({ name: i.name, type: { dtype: i.dtype, shape: i.shape } })), 1);
  const out = await desc.predict(loadSample(set.samples[0]!, desc.inputs.map((i) => ({ name: i.name, type: { dtype: i.dtype, shape: i.shape } }))) as never);
  for (const t of Object.values(out)) expect(Array.from(t.data as Float32Array).every(Number.isFinite)).toBe(true);
}

describe('gptq on the graph', () => {
  it('4-bit per channel: below round-to-nearest on the same grid, ≤ 16 levels per row, constexpr_blockwise_shift_scale', async () => {
    const m = await gptq(net, { global_config: { weight_dtype: 'uint4', quantization_scheme: 'affine' }, layers: LAYERS }, calib);
    const done = m.layerwise.ops.filter((o) => o.status === 'compressed');
    expect(done.length).toBe(10);
    expect(m.layerwise.api).toBe('gptq');
    for (const o of done) expect(o.error!, o.name).toBeLessThan(o.baselineError!);
    expect(opTypes(m).filter((t) => t === 'constexpr_blockwise_shift_scale').length).toBe(10);
    const weights = await materializeWeights(m);
    for (const o of done) {
      const w = weightOf(weights, o.weight);
      const cols = o.type === 'matmul' ? w.shape[1]! : w.values.length / w.shape[0]!;
      const rows = w.values.length / cols;
      for (let r = 0; r < rows; r++) {
        const levels = new Set<number>();
        if (o.type === 'matmul') for (let k = 0; k < w.shape[0]!; k++) levels.add(w.values[k * cols + r]!);
        else for (let c = 0; c < cols; c++) levels.add(w.values[r * cols + c]!);
        expect(levels.size, `${o.name} row ${r}`).toBeLessThanOrEqual(16);
      }
    }
    await runs(m);
  });

  it('per_block (block_size × kh·kw columns for a conv) and act-order', async () => {
    const m = await gptq(net, { global_config: { weight_dtype: 'uint4', granularity: 'per_block', block_size: 4 }, layers: LAYERS, module_name_configs: {
      mid_block_ff2: { algorithm: 'gptq', weight_dtype: 'uint8', use_activation_order_heuristic: true },
      // act-order with blocks: static groups (as coremltools forces), so the blocks stay contiguous.
      mid_block_ff1: { algorithm: 'gptq', weight_dtype: 'uint4', granularity: 'per_block', block_size: 4, use_activation_order_heuristic: true },
    } }, calib);
    const done = m.layerwise.ops.filter((o) => o.status === 'compressed');
    expect(done.length).toBe(10);
    for (const o of done) expect(o.error!, o.name).toBeLessThanOrEqual(o.baselineError! * 1.0001);
    const { program, close } = openProgram(m, 'test');
    try {
      const conv = [...program.main.walk()].find((o) => o.name === 'down_blocks_0_conv_in_weight_quantized')!;
      const scale = conv.param('scale')!;
      // conv_in [16, 4, 3, 3]: blocks of 4 input channels → one block per output channel.
      expect(scale.kind === 'value' && scale.value.shape).toEqual([16, 1, 1, 1]);
      const ff1 = [...program.main.walk()].find((o) => o.name === 'mid_block_ff1_weight_quantized')!;
      const s1 = ff1.param('scale')!;
      expect(s1.kind === 'value' && s1.value.shape).toEqual([64, 4]);
    } finally {
      close();
    }
    await runs(m);
  });

  it('leaves a layer whose blocks do not divide its channels dense, also when it shares its Hessian', async () => {
    // mid_block_v is the last of q / k / v, which share one Hessian.
    const m = await gptq(net, { global_config: { weight_dtype: 'uint4' }, layers: LAYERS, module_name_configs: { mid_block_v: { algorithm: 'gptq', weight_dtype: 'uint4', granularity: 'per_block', block_size: 5 } } }, calib);
    const byName = new Map(m.layerwise.ops.map((o) => [o.name, o]));
    expect(byName.get('mid_block_v')!.status).toBe('skipped');
    expect(byName.get('mid_block_v')!.detail).toMatch(/per_block 5 does not divide 16/);
    expect(byName.get('mid_block_q')!.status).toBe('compressed');
    expect(byName.get('mid_block_k')!.status).toBe('compressed');
    await runs(m);
  });

  it('per_tensor: one grid for the whole weight', async () => {
    const m = await gptq(net, { global_config: { weight_dtype: 'uint8', granularity: 'per_tensor' }, layers: ['mid_block'] }, calib);
    const { program, close } = openProgram(m, 'test');
    try {
      const op = [...program.main.walk()].find((o) => o.name === 'mid_block_ff1_weight_quantized')!;
      const scale = op.param('scale')!;
      const values = scale.kind === 'value' ? Array.from(scale.value.toFloat32()) : [];
      expect(values.length).toBe(64);
      expect(new Set(values).size).toBe(1);
    } finally {
      close();
    }
    for (const o of m.layerwise.ops.filter((x) => x.status === 'compressed')) expect(o.error!, o.name).toBeLessThanOrEqual(o.baselineError! * 1.0001);
  });

  it('8-bit per channel in an iOS16 model: constexpr_affine_dequantize', async () => {
    const net16 = await buildNet(dir, 'net16', { specVersion: 7, dtype: 'fp16' });
    const m = await gptq(net16, { global_config: { weight_dtype: 'uint8' }, layers: LAYERS }, calib);
    expect(opTypes(m).filter((t) => t === 'constexpr_affine_dequantize').length).toBe(10);
    for (const o of m.layerwise.ops.filter((x) => x.status === 'compressed')) expect(o.error!, o.name).toBeLessThanOrEqual(o.baselineError! * 1.0001);
    await runs(m);
  });

  it('SparseGPT with survivors on coremltools\' default 8-bit grid', async () => {
    const m = await sparseGPT(net, { global_config: { target_sparsity: 0.5 }, layers: LAYERS }, calib);
    const weights = await materializeWeights(m);
    const ff1 = weightOf(weights, 'mid_block_ff1_weight');
    const orig = weightOf(await materializeWeights(net), 'mid_block_ff1_weight');
    let survivors = 0;
    for (let r = 0; r < 64; r++) {
      const row = Array.from(ff1.values.subarray(r * 16, r * 16 + 16)).filter((v) => v !== 0);
      // The grid comes from the unpruned row (coremltools: find_params on the full weight):
      // symmetric 8-bit, scale = 2·max|w|/255; every survivor is an integer multiple of it.
      const step = (2 * Math.max(...Array.from(orig.values.subarray(r * 16, r * 16 + 16), Math.abs))) / 255;
      for (const v of row) expect(Math.abs(v / step - Math.round(v / step)), `row ${r}`).toBeLessThan(1e-3);
      survivors += row.length;
    }
    expect(survivors / (64 * 16)).toBeCloseTo(0.5, 1);
  });
});

describe('SparseGPT with quantized survivors in an iOS18 model', () => {
  const bytesOf = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  for (const dtype of ['fp32', 'fp16'] as const) {
    it(`${dtype}: constexpr_sparse_blockwise_shift_scale → constexpr_sparse_to_dense, decoding bit for bit to the values form`, async () => {
      const model = dtype === 'fp32' ? net : await buildNet(dir, 'net18h', { dtype: 'fp16' });
      const cfg = { global_config: { target_sparsity: 0.5, weight_dtype: 'uint4', quantization_scheme: 'affine' }, layers: LAYERS };
      const codes = await sparseGPT(model, cfg, calib);
      // The same run with the survivors written as their in-memory values (the iOS16 form).
      const values = await sparseGPT(model, cfg, calib, { quantizedSurvivors: 'values' });
      const done = codes.layerwise.ops.filter((o) => o.status === 'compressed');
      expect(done.length).toBe(10);
      expect(opTypes(codes).filter((t) => t === 'constexpr_sparse_blockwise_shift_scale').length).toBe(10);
      expect(opTypes(codes).filter((t) => t === 'constexpr_sparse_to_dense').length).toBe(10);
      expect(opTypes(values).filter((t) => t === 'constexpr_sparse_blockwise_shift_scale').length).toBe(0);
      const { program, close } = openProgram(codes, 'test');
      try {
        const q = [...program.main.walk()].find((o) => o.name === 'mid_block_ff1_weight_sparsified_nonzero_data_0_quantized')!;
        const nz = q.param('nonzero_data')!;
        expect(nz.kind === 'value' && nz.value.dtype).toBe('uint4');
        const scale = q.param('scale')!;
        expect(scale.kind === 'value' && scale.value.shape).toEqual([64, 1]);
        const std = [...program.main.walk()].find((o) => o.name === 'mid_block_ff1_weight_sparsified')!;
        expect(std.type).toBe('constexpr_sparse_to_dense');
      } finally {
        close();
      }
      // decompress's decoders read the new chain: every weight equals the in-memory result bit for bit.
      const wc = await materializeWeights(codes), wv = await materializeWeights(values);
      let zeros = 0, total = 0;
      for (const o of done) {
        const a = weightOf(wc, o.weight).values, b = weightOf(wv, o.weight).values;
        expect(a.length, o.name).toBe(b.length);
        expect(bytesOf(a).equals(bytesOf(b)), o.name).toBe(true);
        zeros += a.filter((v) => v === 0).length;
        total += a.length;
      }
      expect(zeros / total).toBeGreaterThanOrEqual(0.49);
      // The executor decodes it too, and the sequential driver calibrated every later layer on those weights.
      const desc = createExecutor(codes);
      const inputs = desc.inputs.map((i) => ({ name: i.name, type: { dtype: i.dtype, shape: i.shape } }));
      const sample = loadSample(openCalibrationSet(calib, inputs, 1).samples[0]!, inputs);
      const oc = await desc.predict(sample as never), ov = await createExecutor(values).predict(sample as never);
      for (const k of Object.keys(ov)) expect(Buffer.from((oc[k]!.data as Float32Array).buffer).equals(Buffer.from((ov[k]!.data as Float32Array).buffer)), k).toBe(true);
      // decompressWeights (coreml-optimize decompress) gives plain consts with the same values.
      const plain = await decompressWeights(codes);
      const wp = await materializeWeights(plain);
      for (const o of done) expect(bytesOf(weightOf(wp, o.weight).values).equals(bytesOf(weightOf(wv, o.weight).values)), o.name).toBe(true);
    });
  }
});

describe('sparsegpt / gptq CLI', () => {
  it('sparsegpt prints the per-op table and writes a model that loads and runs', async () => {
    const out = path.join(dir, 'cli-sparse.mlpackage');
    const r = await runCli(['sparsegpt', net.path!, out, '--calibration', calib, '--n-m-ratio', '2:4', '--weight-dtype', 'float16', '--layers', 'down_blocks.\\d+', 'mid_block', '--calibration-nsamples', '4']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/magnitude error/);
    expect(r.stdout).toMatch(/mid_block_ff1\s+linear\s+mid_block\s+16/);
    expect(r.stdout).toMatch(/up_blocks_0_conv\s+conv\s+no `layers` regex/);
    expect(r.stdout).toMatch(/sparsegpt \(sequential\): 9 ops in 2 layers compressed/);
    expect(r.stdout).toMatch(/4 of 6 calibration samples/);
    await runs(await loadModel(out));
  });

  it('compress --config runs a plan with a sparsegpt step (calibration relative to the plan file)', async () => {
    const plan = {
      steps: [
        { api: 'sparsegpt', config: { global_config: { target_sparsity: 0.4, weight_dtype: 'float16' }, layers: LAYERS, calibration_nsamples: 3 }, calibration: path.basename(calib), mode: 'oneshot' },
        { api: 'palettize', config: { config_type: 'OpPalettizerConfig', global_config: { nbits: 4, granularity: 'per_grouped_channel', group_size: 4, weight_threshold: 0 } }, joint_compression: true },
      ],
    };
    const planFile = path.join(dir, 'plan.json');
    fs.writeFileSync(planFile, JSON.stringify(plan));
    const out = path.join(dir, 'cli-plan.mlpackage');
    const r = await runCli(['compress', net.path!, out, '--config', planFile]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/step 1 of 2:[\s\S]*SparseGPT 40\.0%[\s\S]*sparsegpt: 10 weights compressed, 1 left as is/);
    expect(r.stdout).toMatch(/up_blocks_0_upsample: conv_transpose/);
    expect(r.stdout).toMatch(/step 2 of 2 \(joint\)/);
    await runs(await loadModel(out));
    const bad = await runCli(['compress', net.path!, out, '--config', writePlan({ steps: [{ api: 'sparsegpt', config: {} }] })]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/steps\[0\].*calibration/);
  });

  it('gptq --json gives the report; bad flags are one-line errors', async () => {
    const out = path.join(dir, 'cli-gptq.mlpackage');
    const r = await runCli(['gptq', net.path!, out, '--calibration', calib, '--nbits', '4', '--mode', 'oneshot', '--max-memory', '64M', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { api: string; mode: string; ops: { status: string; error: number; baselineError: number }[]; maxMemory: number };
    expect(j.api).toBe('gptq');
    expect(j.mode).toBe('oneshot');
    expect(j.maxMemory).toBe(64 * 1024 * 1024);
    expect(j.ops.filter((o) => o.status === 'compressed').length).toBe(10);
    const bad = await runCli(['gptq', net.path!, out, '--calibration', calib]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--nbits/);
    const bad2 = await runCli(['sparsegpt', net.path!, out, '--calibration', calib, '--n-m-ratio', '2-4']);
    expect(bad2.stderr).toMatch(/2:4/);
  });
});

function writePlan(plan: unknown): string {
  const f = path.join(dir, `plan-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(f, JSON.stringify(plan));
  return f;
}
