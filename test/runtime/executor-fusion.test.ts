// Graph fusion at executor build (native/executor/fusion.h), on a CLIP-style transformer layer built
// with the ProgramBuilder as coremltools lowers one: layer_norm → q / k / v linears → heads →
// matmul(q, kᵀ) → mul(scale) → add(mask) → softmax → matmul(·, v) → out linear, then an MLP with
// quick_gelu (mul → sigmoid → mul) and a GEGLU (gelu → mul). The same package runs with fusion on and
// off (COREML_OPTIMIZE_FUSION=0, read when the executor is built): the fused nodes must run and give
// the unfused outputs within 2e-6 absolute (outputs are O(1): one fp32 rounding apart per fused step);
// the chain must not fuse when an intermediate is also a program output.
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProgramBuilder } from '../../src/mil/builder.js';
import { createExecutor, type ExecutorProfile } from '../../src/runtime/executor.js';
import { syntheticFp32 } from '../../src/util/synthetic.js';

const [B, T, D, H] = [2, 13, 32, 4]; // 13 tokens: odd, not a multiple of any SIMD width
const HD = D / H;
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

async function buildLayer(extraOutputs: 'none' | 'probs'): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cmo-fusion-test-'));
  dirs.push(dir);
  let seed = 11;
  const b = new ProgramBuilder({ specVersion: 9, weightsPath: path.join(dir, 'w.bin') });
  const w = (name: string, shape: number[], fanIn: number) =>
    b.const(name, syntheticFp32({ count: shape.reduce((a, c) => a * c, 1), fanIn, seed: seed++ }), shape, 'fp32');
  const x = b.input('x', 'fp32', [B, T, D]);
  const mask = b.input('mask', 'fp32', [B, 1, 1, T]);
  const ln = b.op('layer_norm', { x, axes: [-1], gamma: w('ln_g', [D], 1), beta: w('ln_b', [D], D), epsilon: 1e-5 });
  const heads = (v: typeof x, name: string) => {
    const r = b.op('reshape', { x: v, shape: [B, T, H, HD] }, { name: `${name}_r` });
    return b.op('transpose', { x: r, perm: [0, 2, 1, 3] }, { name: `${name}_h` });
  };
  const q = heads(b.op('linear', { x: ln, weight: w('wq', [D, D], D), bias: w('bq', [D], D) }), 'q');
  const k = heads(b.op('linear', { x: ln, weight: w('wk', [D, D], D), bias: w('bk', [D], D) }), 'k');
  const v = heads(b.op('linear', { x: ln, weight: w('wv', [D, D], D), bias: w('bv', [D], D) }), 'v');
  const scores = b.op('matmul', { x: q, y: k, transpose_x: false, transpose_y: true }, { name: 'scores' });
  const scaled = b.op('mul', { x: scores, y: 1 / Math.sqrt(HD) }, { name: 'scaled' });
  const masked = b.op('add', { x: scaled, y: mask }, { name: 'masked' });
  const probs = b.op('softmax', { x: masked, axis: -1 }, { name: 'probs' });
  const att = b.op('matmul', { x: probs, y: v, transpose_x: false, transpose_y: false }, { name: 'att' });
  const merged = b.op('reshape', { x: b.op('transpose', { x: att, perm: [0, 2, 1, 3] }), shape: [B, T, D] });
  const h1 = b.op('add', { x, y: b.op('linear', { x: merged, weight: w('wo', [D, D], D) }) });
  const f1 = b.op('linear', { x: h1, weight: w('w1', [4 * D, D], D), bias: w('b1', [4 * D], D) });
  const quick = b.op('mul', { x: f1, y: b.op('sigmoid', { x: b.op('mul', { x: f1, y: 1.702 }) }) }, { name: 'quick' });
  const gate = b.op('linear', { x: h1, weight: w('wg', [4 * D, D], D) });
  const geglu = b.op('mul', { x: quick, y: b.op('gelu', { x: gate, mode: 'TANH_APPROXIMATION' }) }, { name: 'geglu' });
  b.output(b.op('add', { x: h1, y: b.op('linear', { x: geglu, weight: w('w2', [D, 4 * D], 4 * D) }) }), 'y');
  if (extraOutputs === 'probs') b.output(probs, 'p');
  const pkg = path.join(dir, 'layer.mlpackage');
  await b.save(pkg);
  return pkg;
}

const inputs = () => {
  const x = syntheticFp32({ count: B * T * D, fanIn: 1, seed: 99 });
  const mask = new Float32Array(B * T).fill(0);
  for (let t = 9; t < T; t++) mask[T + t] = -1e9; // second sequence: the last 4 tokens are padding
  mask[3] = -Infinity;
  return { x: { data: x, shape: [B, T, D] }, mask: { data: mask, shape: [B, 1, 1, T] } };
};

async function run(pkg: string, fusion: boolean) {
  const { loadModel } = await import('../../src/model.js');
  const model = await loadModel(pkg);
  const saved = process.env.COREML_OPTIMIZE_FUSION;
  if (fusion) delete process.env.COREML_OPTIMIZE_FUSION;
  else process.env.COREML_OPTIMIZE_FUSION = '0';
  try {
    const exec = createExecutor(model);
    let profile: ExecutorProfile | undefined;
    const out = await exec.predict(inputs(), { profile: (p) => (profile = p) });
    return { out, types: profile!.ops.map((o) => o.type) };
  } finally {
    if (saved === undefined) delete process.env.COREML_OPTIMIZE_FUSION;
    else process.env.COREML_OPTIMIZE_FUSION = saved;
  }
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

describe('executor graph fusion', () => {
  it('fuses attention and the activation chains, with the unfused result', async () => {
    const pkg = await buildLayer('none');
    const fused = await run(pkg, true);
    const plain = await run(pkg, false);
    expect(fused.types).toContain('fused_attention');
    expect(fused.types).toContain('fused_activation');
    expect(fused.types).not.toContain('softmax');
    expect(fused.types).not.toContain('sigmoid');
    expect(fused.types).not.toContain('gelu');
    expect(plain.types).toEqual(expect.arrayContaining(['softmax', 'sigmoid', 'gelu', 'matmul']));
    expect(plain.types).not.toContain('fused_attention');
    const y = fused.out.y!.data as Float32Array, want = plain.out.y!.data as Float32Array;
    expect(fused.out.y!.shape).toEqual([B, T, D]);
    expect(Math.max(...Array.from(want, Math.abs))).toBeGreaterThan(0.5); // O(1) outputs: the tolerance is meaningful
    expect(maxDiff(y, want)).toBeLessThan(2e-6);
  });

  it('does not fuse the attention when the softmax output is also a program output', async () => {
    const pkg = await buildLayer('probs');
    const fused = await run(pkg, true);
    const plain = await run(pkg, false);
    expect(fused.types).toContain('softmax');
    expect(fused.types).not.toContain('fused_attention');
    expect(fused.types).toContain('fused_activation'); // the MLP's chains still fuse
    expect(fused.out.p!.shape).toEqual([B, H, T, T]);
    expect(maxDiff(fused.out.p!.data as Float32Array, plain.out.p!.data as Float32Array)).toBe(0);
    expect(maxDiff(fused.out.y!.data as Float32Array, plain.out.y!.data as Float32Array)).toBeLessThan(2e-6);
  });
});
