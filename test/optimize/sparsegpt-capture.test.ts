/**
 * Calibration capture through the executor: the Hessians accumulated natively while sub-programs run
 * equal the ones computed here in float64 from the explicit activations (the same sub-program run
 * with the op's input as an output): linear, conv with custom padding and groups (explicit unfold),
 * matmul with transpose_x, and one Hessian shared by q / k / v.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProgramBuilder } from '../../src/mil/builder.js';
import type { Model } from '../../src/model.js';
import { executorModelOf, lowerProgram } from '../../src/runtime/executor.js';
import { CaptureGraph, createHessianSet, type CaptureCacheLimits, type NativeTensor } from '../../src/kernels/calibrate.js';
import { ProgramGraph, type LayerOp } from '../../src/optimize/sparsegpt/graph.js';
import { groupLayers, planWaves } from '../../src/optimize/sparsegpt/groups.js';
import { ConfigError } from '../../src/errors.js';
import { loadSample, openCalibrationSet } from '../../src/optimize/sparsegpt/calibration.js';
import { syntheticFp32 } from '../../src/util/synthetic.js';
import { buildNet, gaussian, writeCalibration } from './sparsegpt-helpers.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cmo-capture-'));
let net: Model;
let samples: Record<string, NativeTensor>[];

beforeAll(async () => {
  net = await buildNet(dir, 'net');
  const calib = writeCalibration(path.join(dir, 'calib'), 5);
  const desc = lowerProgram(executorModelOf(net));
  samples = openCalibrationSet(calib, desc.inputs, 128).samples.map((s) => loadSample(s, desc.inputs));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The reference's add_batch in float64: H *= n/(n+tmp); n += tmp; H += (2/n)·Σ x xᵀ. */
class RefHessian {
  readonly h: Float64Array;
  n = 0;
  constructor(readonly cols: number) {
    this.h = new Float64Array(cols * cols);
  }
  add(rows: Float64Array[], batch: number): void {
    const s = this.n / (this.n + batch);
    for (let i = 0; i < this.h.length; i++) this.h[i]! *= s;
    this.n += batch;
    const f = 2 / this.n;
    for (const x of rows) for (let i = 0; i < this.cols; i++) for (let j = 0; j < this.cols; j++) this.h[i * this.cols + j]! += f * x[i]! * x[j]!;
  }
}

function expectClose(native: Float32Array, ref: RefHessian, what: string): void {
  let scale = 0, diff = 0;
  for (let i = 0; i < ref.h.length; i++) {
    scale = Math.max(scale, Math.abs(ref.h[i]!));
    diff = Math.max(diff, Math.abs(native[i]! - ref.h[i]!));
  }
  expect(scale, what).toBeGreaterThan(0);
  expect(diff / scale, what).toBeLessThan(2e-6);
}

const layer = (layers: LayerOp[], name: string) => layers.find((l) => l.name === name)!;

describe('Hessian capture through the executor', () => {
  it('linear and a grouped, custom-padded conv equal the explicit activations\' Hessians', async () => {
    const desc = lowerProgram(executorModelOf(net));
    const graph = new ProgramGraph(desc);
    const { layers } = graph.findLayers();
    const ff1 = layer(layers, 'mid_block_ff1');
    const conv2 = layer(layers, 'down_blocks_0_conv2');
    expect(conv2.groups).toBe(2);
    expect(conv2.columns).toBe(8 * 9);
    const end = Math.max(ff1.position, conv2.position);
    // The explicit inputs: the same sub-program with the ops' inputs as outputs.
    const sub = graph.subProgram(0, end, [ff1.input, conv2.input]);
    const set = createHessianSet([16, 72, 72]);
    const capture = new CaptureGraph(sub, [
      { op: ff1.name, kind: 'linear', hessians: [0] },
      { op: conv2.name, kind: 'conv', hessians: [1, 2] },
    ], set);
    const refLinear = new RefHessian(16);
    const refConv = [new RefHessian(72), new RefHessian(72)];
    for (const s of samples) {
      const { outputs, hits } = await capture.run(s);
      const x = outputs[ff1.input]!;
      const rows: Float64Array[] = [];
      for (let t = 0; t < x.data.length / 16; t++) rows.push(Float64Array.from((x.data as Float32Array).subarray(t * 16, t * 16 + 16)));
      refLinear.add(rows, x.shape[0]!);
      const a = outputs[conv2.input]!;
      for (let g = 0; g < 2; g++) refConv[g]!.add(unfold(a.data as Float32Array, a.shape, g), a.shape[0]!);
      expect(hits).toEqual([1, 1].map((k) => k * (samples.indexOf(s) + 1)));
    }
    expect(set.samples(0)).toBe(samples.length * 2);
    expectClose(set.data(0), refLinear, 'linear');
    expectClose(set.data(1), refConv[0]!, 'conv group 0');
    expectClose(set.data(2), refConv[1]!, 'conv group 1');
  });

  it('matmul with transpose_x takes the contracted rows', async () => {
    const b = new ProgramBuilder({ specVersion: 9, weightsPath: path.join(dir, 'mm.bin') });
    const x = b.input('x', 'fp32', [2, 12, 5]);
    const y = b.op('matmul', { x, y: b.const('w', syntheticFp32({ count: 12 * 7, fanIn: 12, seed: 3 }), [12, 7], 'fp32'), transpose_x: true, transpose_y: false }, { name: 'mm' });
    b.output(y, 'out');
    const model = await b.save(path.join(dir, 'mm.mlpackage'));
    const graph = new ProgramGraph(lowerProgram(executorModelOf(model)));
    const { layers } = graph.findLayers();
    const mm = layer(layers, 'mm');
    expect([mm.rows, mm.columns, mm.transposed]).toEqual([7, 12, true]);
    const set = createHessianSet([12]);
    const capture = new CaptureGraph(graph.subProgram(0, mm.position, []), [{ op: 'mm', kind: 'matmul', hessians: [0] }], set);
    const ref = new RefHessian(12);
    for (let k = 0; k < 3; k++) {
      const data = Float32Array.from(gaussian(2 * 12 * 5, 40 + k));
      await capture.run({ x: { dtype: 'fp32', shape: [2, 12, 5], data } });
      const rows: Float64Array[] = [];
      for (let bb = 0; bb < 2; bb++) for (let m = 0; m < 5; m++) rows.push(Float64Array.from({ length: 12 }, (_, i) => data[(bb * 12 + i) * 5 + m]!));
      ref.add(rows, 2);
    }
    expectClose(set.data(0), ref, 'matmul transpose_x');
    // close() drops the graph and its Hessian references at once (the set keeps its own).
    capture.close();
    await expect(Promise.resolve().then(() => capture.run({ x: { dtype: 'fp32', shape: [2, 12, 5], data: new Float32Array(120) } }))).rejects.toThrow(/closed/);
    expectClose(set.data(0), ref, 'after close');
  });

  it('q, k and v (one input) share one Hessian; their watches all count', async () => {
    const desc = lowerProgram(executorModelOf(net));
    const graph = new ProgramGraph(desc);
    const { layers } = graph.findLayers();
    const { groups } = groupLayers(layers, ['mid_block']);
    const waves = planWaves(groups[0]!.layers, 1 << 30);
    expect(waves.length).toBe(1);
    const w = waves[0]!;
    const q = layer(layers, 'mid_block_q'), k = layer(layers, 'mid_block_k'), v = layer(layers, 'mid_block_v');
    expect(w.hessians.get(q)).toEqual(w.hessians.get(k));
    expect(w.hessians.get(q)).toEqual(w.hessians.get(v));
    // 5 distinct inputs: tokens (q/k/v), attention (out), residual (ff1), gelu (ff2), residual2 (proj).
    expect(w.columns.length).toBe(5);
    expect(w.release.get(q)).toEqual([]);
    expect(w.release.get(v)).toEqual(w.hessians.get(v));
    const set = createHessianSet(w.columns);
    const capture = new CaptureGraph(graph.subProgram(groups[0]!.start, groups[0]!.end, []), w.watches, set);
    let hits: number[] = [];
    for (const s of samples) hits = (await capture.run({ tokens: s['tokens']! })).hits;
    expect(hits).toEqual(w.watches.map(() => samples.length));
    const qi = w.hessians.get(q)![0]!;
    expect(set.samples(qi)).toBe(samples.length * 2);
  });

  it('finds the weights it can compress and says why it leaves the others', async () => {
    const b = new ProgramBuilder({ specVersion: 9, weightsPath: path.join(dir, 'odd.bin') });
    const x = b.input('x', 'fp32', [2, 4, 16]);
    const w = (n: string, shape: number[]) => b.const(n, syntheticFp32({ count: shape.reduce((a, c) => a * c, 1), fanIn: 16, seed: 9 }), shape, 'fp32');
    const shared = w('shared_weight', [16, 16]);
    const a = b.op('linear', { x, weight: shared }, { name: 'uses_shared_a' });
    const a2 = b.op('linear', { x: a, weight: shared }, { name: 'uses_shared_b' });
    const left = b.op('matmul', { x: w('left_weight', [4, 16]), y: b.op('reshape', { x: a2, shape: [16, 8] }, { name: 'flat' }), transpose_x: false, transpose_y: false }, { name: 'const_x', outputs: [{ dtype: 'fp32', shape: [4, 8] }] });
    const batched = b.op('matmul', { x: a2, y: w('batched_weight', [2, 16, 16]), transpose_x: false, transpose_y: false }, { name: 'batched' });
    const ein = b.op('einsum', { values: [a2, w('einsum_weight', [16, 8])], equation: 'bij,jk->bik' }, { name: 'ein', outputs: [{ dtype: 'fp32', shape: [2, 4, 8] }] });
    const ok = b.op('linear', { x: ein, weight: w('fine_weight', [8, 8]) }, { name: 'fine' });
    b.output(left, 'o1');
    b.output(batched, 'o2');
    b.output(ok, 'o3');
    const model = await b.save(path.join(dir, 'odd.mlpackage'));
    const { layers, skipped } = new ProgramGraph(lowerProgram(executorModelOf(model))).findLayers();
    expect(layers.map((l) => l.name)).toEqual(['fine']);
    const why = Object.fromEntries(skipped.map((s) => [s.name, s.reason]));
    expect(why['uses_shared_a']).toMatch(/feeds several ops/);
    expect(why['uses_shared_b']).toMatch(/feeds several ops/);
    expect(why['const_x']).toMatch(/const operand is x/);
    expect(why['batched']).toMatch(/batched/);
    expect(why['ein']).toMatch(/einsum/);
  });

  it('waves fit the memory budget; a share set larger than the budget is a typed error naming the ops, their size and the budget', async () => {
    const graph = new ProgramGraph(lowerProgram(executorModelOf(net)));
    const { layers } = graph.findLayers();
    const mid = groupLayers(layers, ['mid_block']).groups[0]!.layers;
    const bytes16 = 16 * 16 * 4 + 16 * 4, bytes64 = 64 * 64 * 4 + 64 * 4;
    // Inputs in order: tokens, attention, residual (16 columns each), gelu (64), residual2 (16).
    expect(planWaves(mid, bytes64).map((w) => w.columns)).toEqual([[16, 16, 16], [64], [16]]);
    expect(planWaves(mid, bytes64 + bytes16).map((w) => w.columns)).toEqual([[16, 16, 16], [64, 16]]);
    for (const w of planWaves(mid, bytes64)) expect(w.bytes).toBeLessThanOrEqual(bytes64);
    expect(() => planWaves(mid, bytes64 - 1)).toThrow(ConfigError);
    expect(() => planWaves(mid, bytes64 - 1)).toThrow(/16639 bytes .*Hessians of mid_block_ff2: a 64×64 fp32 Hessian = 16640 bytes .*at least 16640 bytes/);
    expect(() => planWaves(mid, 1)).toThrow(/Hessians of mid_block_q, mid_block_k, mid_block_v: a 16×16 fp32 Hessian = 1088 bytes/);
    // A grouped conv's set is all its groups' Hessians.
    const down = groupLayers(layers, ['down_blocks.\\d+']).groups[0]!.layers;
    expect(() => planWaves(down, 40000)).toThrow(/down_blocks_0_conv2: 2 Hessians of 72×72 fp32 \(one per conv group\) = 42048 bytes/);
  });

  it('a capture graph keeps its weight caches within the limits it is given and reads them back', async () => {
    // fp16 weights: the default executor widens them to fp32 once, transposes the linears and pools
    // buffers; with limits 0 it keeps none of that and computes the same Hessians.
    const net16 = await buildNet(dir, 'net16', { dtype: 'fp16' });
    const desc = lowerProgram(executorModelOf(net16));
    const graph = new ProgramGraph(desc);
    const { layers } = graph.findLayers();
    const ff1 = layer(layers, 'mid_block_ff1');
    const conv2 = layer(layers, 'down_blocks_0_conv2');
    const sub = graph.subProgram(0, Math.max(ff1.position, conv2.position), []);
    const watches = [{ op: ff1.name, kind: 'linear' as const, hessians: [0] }, { op: conv2.name, kind: 'conv' as const, hessians: [1, 2] }];
    const inputs = samples.map((s) => Object.fromEntries(Object.entries(s).map(([k, v]) => [k, { ...v, dtype: 'fp32' as const, data: Float32Array.from(v.data as Float32Array) }])));
    const runAll = async (limits?: CaptureCacheLimits) => {
      const set = createHessianSet([16, 72, 72]);
      const capture = new CaptureGraph(sub, watches, set, limits);
      for (const s of inputs) await capture.run(s);
      const stats = capture.cacheStats();
      capture.close();
      expect(() => capture.cacheStats()).toThrow(/closed/);
      return { stats, h: [0, 1, 2].map((i) => set.data(i)) };
    };
    const dflt = await runAll();
    expect(dflt.stats.widenLimit).toBe(2048 * 2 ** 20);
    expect(dflt.stats.derivedLimit).toBe(1024 * 2 ** 20);
    expect(dflt.stats.poolLimit).toBe(1024 * 2 ** 20);
    // The linears' fp32 transposes (16×16 ×3, 64×16, 16×64 floats … those in the range) and the conv weights widened.
    expect(dflt.stats.pack).toBeGreaterThanOrEqual((3 * 16 * 16 + 64 * 16) * 4);
    expect(dflt.stats.widen).toBeGreaterThanOrEqual((16 * 4 * 9 + 16 * 8 * 9) * 4);
    expect(dflt.stats.pool).toBeGreaterThan(0);
    const none = await runAll({ widen: 0, pack: 0, derived: 0, pool: 0 });
    expect(none.stats).toEqual({ widen: 0, pack: 0, derived: 0, pool: 0, widenLimit: 0, packLimit: 0, derivedLimit: 0, poolLimit: 0 });
    // A 4 KiB pack limit holds a 16×16 linear's prepared weight (transposed, or packed in panels of the
    // GEMM kernel's NR ≤ 64 columns) but not all of them; the other caches keep their defaults.
    const one = await runAll({ pack: 4096 });
    expect(one.stats.packLimit).toBe(4096);
    expect(one.stats.pack).toBeGreaterThanOrEqual(16 * 16 * 4);
    expect(one.stats.pack).toBeLessThanOrEqual(4096);
    expect(one.stats.pack).toBeLessThan(dflt.stats.pack);
    expect(one.stats.widenLimit).toBe(2048 * 2 ** 20);
    for (let i = 0; i < 3; i++) {
      const a = dflt.h[i]!, b = none.h[i]!;
      let scale = 0, diff = 0;
      for (let k = 0; k < a.length; k++) {
        scale = Math.max(scale, Math.abs(a[k]!));
        diff = Math.max(diff, Math.abs(a[k]! - b[k]!));
      }
      expect(scale).toBeGreaterThan(0);
      expect(diff / scale, `Hessian ${i}`).toBeLessThan(1e-5);
    }
    await expect(Promise.resolve().then(() => new CaptureGraph(sub, watches, createHessianSet([16, 72, 72]), { pack: -1 }))).rejects.toThrow(/cacheLimits\.pack/);
  });
});

/** Explicit unfold of conv2 (3×3, pad top 1 / bottom 0 / left 0 / right 1, groups 2): rows of 72 columns. */
function unfold(x: Float32Array, shape: number[], group: number): Float64Array[] {
  const [n, c, h, w] = shape as [number, number, number, number];
  const cg = c / 2, kh = 3, kw = 3, padTop = 1, padLeft = 0;
  const oh = h + 1 + 0 - kh + 1, ow = w + 0 + 1 - kw + 1;
  const rows: Float64Array[] = [];
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        const row = new Float64Array(cg * kh * kw);
        for (let ch = 0; ch < cg; ch++) {
          for (let ky = 0; ky < kh; ky++) {
            for (let kx = 0; kx < kw; kx++) {
              const iy = oy + ky - padTop, ix = ox + kx - padLeft;
              const inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
              row[(ch * kh + ky) * kw + kx] = inside ? x[((b * c + group * cg + ch) * h + iy) * w + ix]! : 0;
            }
          }
        }
        rows.push(row);
      }
    }
  }
  return rows;
}
