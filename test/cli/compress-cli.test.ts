/**
 * `coreml-optimize prune | quantize | compress | decompress`: flags and plan files produce the same
 * weights as coremltools (sha256 of the materialized values in the golden sidecars), rejected
 * options fail with coremltools' message, and models without their weights fail clearly.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { loadModel } from '../../src/model.js';
import { runCli as run } from './run-cli.js';
import { materializeWeights } from '../../src/optimize/materialize.js';
import { goldenDir, loadSidecar } from '../optimize/golden.js';
import { describeModel, sha256F32 } from '../optimize/golden-compare.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'compress-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Every compressed weight of the sidecar has the recorded values in the model at `file`. */
async function expectGoldenValues(file: string, golden: string): Promise<void> {
  const sidecar = loadSidecar(golden);
  const model = await loadModel(file);
  const weights = await materializeWeights(model);
  const chains = describeModel(model).chains;
  let n = 0;
  for (const w of sidecar.weights) {
    expect(chains.get(w.name), w.name).toEqual(w.chain);
    if (w.chain[0] === 'const') continue;
    expect(sha256F32(weights.get(w.name)!.values), w.name).toBe(w.sha256_f32le);
    n++;
  }
  expect(n).toBeGreaterThan(0);
}

const src = (name: string) => path.join(goldenDir, name);

describe('coreml-optimize prune / quantize / compress / decompress', () => {
  it('prune --n-m-ratio 2:4 gives coremltools 2:4 pruning', async () => {
    const out = path.join(tmp, 'nm24.mlpackage');
    const r = await run(['prune', src('src_a_ios18.mlpackage'), out, '--n-m-ratio', '2:4']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/prune: 5 weights compressed/);
    await expectGoldenValues(out, 'prune_nm24_ios18');
  });

  it('prune --target-sparsity 0.5 --json on an iOS16 model (packed uint8 masks)', async () => {
    const out = path.join(tmp, 'mag50.mlpackage');
    const r = await run(['prune', src('src_a_ios16.mlpackage'), out, '--target-sparsity', '0.5', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { api: string; weights: { status: string }[] };
    expect(report.api).toBe('prune');
    expect(report.weights.filter((w) => w.status === 'compressed').length).toBe(7);
    await expectGoldenValues(out, 'prune_mag50_ios16');
  });

  it('prune --threshold 0.01 (threshold pruner, minimum sparsity default)', async () => {
    const out = path.join(tmp, 'thr.mlpackage');
    const r = await run(['prune', src('src_a_ios18.mlpackage'), out, '--threshold', '0.01']);
    expect(r.code, r.stderr).toBe(0);
    await expectGoldenValues(out, 'prune_thr001_ios18');
  });

  it('quantize --dtype int4 --granularity per_block --block-size 32', async () => {
    const out = path.join(tmp, 'int4.mlpackage');
    const r = await run(['quantize', src('src_a_ios18.mlpackage'), out, '--dtype', 'int4', '--granularity', 'per_block', '--block-size', '32']);
    expect(r.code, r.stderr).toBe(0);
    await expectGoldenValues(out, 'q_int4_linsym_block32_ios18');
  });

  it('quantize with a --config file (uint8 linear per tensor, iOS16 affine op)', async () => {
    const cfg = path.join(tmp, 'q.yaml');
    fs.writeFileSync(cfg, 'config_type: OpLinearQuantizerConfig\nglobal_config: {mode: linear, dtype: uint8, granularity: per_tensor}\n');
    const out = path.join(tmp, 'u8.mlpackage');
    const r = await run(['quantize', src('src_a_ios16.mlpackage'), out, '--config', cfg]);
    expect(r.code, r.stderr).toBe(0);
    await expectGoldenValues(out, 'q_uint8_linear_pertensor_ios16');
  });

  it('rejects what coremltools rejects, with its message', async () => {
    const r = await run(['quantize', src('src_a_ios16.mlpackage'), path.join(tmp, 'x.mlpackage'), '--dtype', 'uint4']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(loadSidecar('q_uint4_linsym_perchannel_ios16').error_message!);
    const j = await run(['prune', src('src_a_ios16.mlpackage'), path.join(tmp, 'y.mlpackage'), '--target-sparsity', '0.5', '--joint-compression']);
    expect(j.code).toBe(1);
    expect(j.stderr).toContain('Joint compression is only supported since iOS18');
    const both = await run(['prune', src('src_a_ios18.mlpackage'), path.join(tmp, 'z.mlpackage'), '--target-sparsity', '0.5', '--config', 'x.yaml']);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/either --config or option flags/);
    expect(fs.existsSync(path.join(tmp, 'x.mlpackage'))).toBe(false);
  });

  it('compress --config <golden sidecar> runs its steps; decompress writes the same weights back as plain consts', async () => {
    const out = path.join(tmp, 'joint.mlpackage');
    const r = await run(['compress', src('src_a_ios18.mlpackage'), out, '--config', path.join(goldenDir, 'joint_prune50_q8_ios18.json')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/step 2 of 2 \(joint\)/);
    expect(r.stdout).toMatch(/2 steps in 1 pass over the weights/);
    await expectGoldenValues(out, 'joint_prune50_q8_ios18');
    const separate = path.join(tmp, 'joint-2pass.mlpackage');
    const r2 = await run(['compress', src('src_a_ios18.mlpackage'), separate, '--config', path.join(goldenDir, 'joint_prune50_q8_ios18.json'), '--no-fuse']);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stdout).toMatch(/2 steps in 2 passes over the weights/);
    await expectGoldenValues(separate, 'joint_prune50_q8_ios18');

    const plain = path.join(tmp, 'plain.mlpackage');
    const d = await run(['decompress', out, plain]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toMatch(/decompress: 7 weights/);
    const model = await loadModel(plain);
    const chains = describeModel(model).chains;
    const weights = await materializeWeights(model);
    for (const w of loadSidecar('joint_prune50_q8_ios18').weights) {
      expect(chains.get(w.name), w.name).toEqual(['const']);
      expect(sha256F32(weights.get(w.name)!.values), w.name).toBe(w.sha256_f32le);
    }
  });

  it('compress with a plan in YAML (prune 0.5, then 4-bit palettization of the non-zeros)', async () => {
    const planFile = path.join(tmp, 'plan.yaml');
    fs.writeFileSync(planFile, [
      'steps:',
      '  - api: prune',
      '    config: {config_type: OpMagnitudePrunerConfig, global_config: {target_sparsity: 0.5}}',
      '  - api: palettize',
      '    joint_compression: true',
      '    config: {config_type: OpPalettizerConfig, global_config: {nbits: 4, granularity: per_grouped_channel, group_size: 16}}',
      '',
    ].join('\n'));
    const out = path.join(tmp, 'pp.mlpackage');
    const r = await run(['compress', src('src_a_ios18.mlpackage'), out, '--config', planFile, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { passes: number; steps: { api: string }[] };
    expect(report.steps.map((s) => s.api)).toEqual(['prune', 'palettize']);
    expect(report.passes).toBe(1);
    const chains = describeModel(await loadModel(out)).chains;
    expect(chains.get('fc1_weight_to_fp16_sparsified')).toEqual(['constexpr_lut_to_sparse', 'constexpr_sparse_to_dense']);
  });

  it('a program-only package (int8 weights missing) fails with a clear message', async () => {
    const p = path.join(goldenDir, '../int8-transformer-program-only/ios/CoreMLAudioApp/CoreMLAudioApp/MLModels/Transformer_Encoder_int8.mlpackage');
    const r = await run(['compress', p, path.join(tmp, 'int8.mlpackage'), '--config', path.join(goldenDir, 'joint_q8_pal4_ios18.json')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/weight file .* is missing, so the weights cannot be compressed/);
    const d = await run(['decompress', p, path.join(tmp, 'int8-plain.mlpackage')]);
    expect(d.code).toBe(1);
    expect(d.stderr).toMatch(/is missing, so the weights cannot be decompressed/);
  });

  it('--help lists the flags', async () => {
    const chunks: string[] = [];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => { chunks.push(String(s)); return true; });
    try {
      await run(['prune', '--help']);
    } catch { /* commander exits after help */ } finally {
      write.mockRestore();
    }
    expect(chunks.join('')).toMatch(/--n-m-ratio/);
  });
});
