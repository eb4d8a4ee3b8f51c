import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProgramBuilder, type Var } from '../../src/mil/builder.js';
import { WeightStore } from '../../src/convert/safetensors.js';
import {
  attention, conv2d, gelu, groupNorm, layerNorm, linear, linearConv, modelInput, modelOutput, quickGelu, silu, upsampleNearest2x,
  type ConvertContext, type Precision, type AttentionImplementation,
} from '../../src/convert/layers.js';
import { loadModel } from '../../src/model.js';
import { createExecutor } from '../../src/runtime/executor.js';

/* Float64 plain-loop references of the torch modules (the oracle for the MIL lowerings). */
type T = { data: Float64Array; shape: number[] };
const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);
let seed = 7;
const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
const rand = (shape: number[], scale = 1): T => ({ data: Float64Array.from({ length: numel(shape) }, () => rnd() * scale), shape });
const f32 = (t: T) => Float32Array.from(t.data);

function refLinear(x: T, w: T, b: T): T {
  const [o, i] = w.shape as [number, number];
  const rows = numel(x.shape) / i;
  const out = new Float64Array(rows * o);
  for (let r = 0; r < rows; r++) for (let j = 0; j < o; j++) {
    let s = b.data[j]!;
    for (let k = 0; k < i; k++) s += x.data[r * i + k]! * w.data[j * i + k]!;
    out[r * o + j] = s;
  }
  return { data: out, shape: [...x.shape.slice(0, -1), o] };
}
function refConv(x: T, w: T, b: T, stride: number, pad: number, groups: number): T {
  const [n, c, h, wd] = x.shape as [number, number, number, number];
  const [o, cg, kh, kw] = w.shape as [number, number, number, number];
  const oh = Math.floor((h + 2 * pad - kh) / stride) + 1, ow = Math.floor((wd + 2 * pad - kw) / stride) + 1;
  const out = new Float64Array(n * o * oh * ow);
  const og = o / groups;
  for (let bi = 0; bi < n; bi++) for (let oc = 0; oc < o; oc++) for (let y = 0; y < oh; y++) for (let xx = 0; xx < ow; xx++) {
    let s = b.data[oc]!;
    const g = Math.floor(oc / og);
    for (let ic = 0; ic < cg; ic++) for (let ky = 0; ky < kh; ky++) for (let kx = 0; kx < kw; kx++) {
      const iy = y * stride - pad + ky, ix = xx * stride - pad + kx;
      if (iy < 0 || ix < 0 || iy >= h || ix >= wd) continue;
      s += x.data[((bi * c + g * cg + ic) * h + iy) * wd + ix]! * w.data[((oc * cg + ic) * kh + ky) * kw + kx]!;
    }
    out[((bi * o + oc) * oh + y) * ow + xx] = s;
  }
  return { data: out, shape: [n, o, oh, ow] };
}
function refGroupNorm(x: T, groups: number, w: T, b: T, eps: number): T {
  const [n, c] = x.shape as [number, number];
  const sp = numel(x.shape.slice(2)), cg = c / groups;
  const out = new Float64Array(x.data.length);
  for (let bi = 0; bi < n; bi++) for (let g = 0; g < groups; g++) {
    const base = (bi * c + g * cg) * sp, cnt = cg * sp;
    let m = 0; for (let i = 0; i < cnt; i++) m += x.data[base + i]!; m /= cnt;
    let v = 0; for (let i = 0; i < cnt; i++) v += (x.data[base + i]! - m) ** 2; v /= cnt;
    for (let i = 0; i < cnt; i++) { const ch = g * cg + Math.floor(i / sp); out[base + i] = ((x.data[base + i]! - m) / Math.sqrt(v + eps)) * w.data[ch]! + b.data[ch]!; }
  }
  return { data: out, shape: x.shape };
}
/** LayerNorm over `axis` of x. */
function refLayerNorm(x: T, axis: number, w: T, b: T, eps: number): T {
  const s = x.shape, a = axis < 0 ? axis + s.length : axis;
  const inner = numel(s.slice(a + 1)), c = s[a]!, outer = numel(s.slice(0, a));
  const out = new Float64Array(x.data.length);
  for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) {
    const idx = (k: number) => (o * c + k) * inner + i;
    let m = 0; for (let k = 0; k < c; k++) m += x.data[idx(k)]!; m /= c;
    let v = 0; for (let k = 0; k < c; k++) v += (x.data[idx(k)]! - m) ** 2; v /= c;
    for (let k = 0; k < c; k++) out[idx(k)] = ((x.data[idx(k)]! - m) / Math.sqrt(v + eps)) * w.data[k]! + b.data[k]!;
  }
  return { data: out, shape: s };
}
const map = (x: T, f: (v: number) => number): T => ({ data: x.data.map(f), shape: x.shape });
const erf = (x: number) => { // Abramowitz–Stegun 7.1.26 is too coarse; use a series / continued fraction pair
  const ax = Math.abs(x);
  if (ax < 2.5) { let sum = x, term = x; for (let n = 1; n < 60; n++) { term *= -x * x / n; sum += term / (2 * n + 1); } return (2 / Math.sqrt(Math.PI)) * sum; }
  // erfc continued fraction (Lentz) for |x| ≥ 2.5
  let f = ax, c = ax, d = 0;
  for (let n = 1; n < 80; n++) { const an = n / 2; d = ax + an * d; d = 1 / d; c = ax + an / c; f *= c * d; }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
};
/** softmax(q kᵀ/√d + mask) v per head; q [B, Sq, C], k/v [B, Sk, C]. */
function refAttention(q: T, k: T, v: T, heads: number, mask?: (i: number, j: number) => number): T {
  const [bn, sq, c] = q.shape as [number, number, number];
  const sk = k.shape[1]!, d = c / heads;
  const out = new Float64Array(bn * sq * c);
  for (let b = 0; b < bn; b++) for (let h = 0; h < heads; h++) for (let i = 0; i < sq; i++) {
    const s = new Float64Array(sk);
    for (let j = 0; j < sk; j++) {
      let acc = 0; for (let t = 0; t < d; t++) acc += q.data[(b * sq + i) * c + h * d + t]! * k.data[(b * sk + j) * c + h * d + t]!;
      s[j] = acc / Math.sqrt(d) + (mask ? mask(i, j) : 0);
    }
    const mx = Math.max(...s); let z = 0; for (let j = 0; j < sk; j++) { s[j] = Math.exp(s[j]! - mx); z += s[j]!; }
    for (let t = 0; t < d; t++) { let acc = 0; for (let j = 0; j < sk; j++) acc += (s[j]! / z) * v.data[(b * sk + j) * c + h * d + t]!; out[(b * sq + i) * c + h * d + t] = acc; }
  }
  return { data: out, shape: [bn, sq, c] };
}
/** [B, S, C] ↔ [B, C, 1, S]. */
const toBC1S = (x: T): T => { const [b, s, c] = x.shape as [number, number, number]; const o = new Float64Array(x.data.length); for (let i = 0; i < b; i++) for (let j = 0; j < s; j++) for (let k = 0; k < c; k++) o[(i * c + k) * s + j] = x.data[(i * s + j) * c + k]!; return { data: o, shape: [b, c, 1, s] }; };

function writeSafetensors(file: string, tensors: Record<string, T>): void {
  const header: Record<string, unknown> = {};
  const parts: Buffer[] = [];
  let at = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const b = Buffer.from(f32(t).buffer);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [at, at + b.length] };
    parts.push(b); at += b.length;
  }
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8); len.writeBigUInt64LE(BigInt(h.length));
  fs.writeFileSync(file, Buffer.concat([len, h, ...parts]));
}

const maxRel = (got: ArrayLike<number>, want: T) => {
  let peak = 0, err = 0;
  for (let i = 0; i < want.data.length; i++) { peak = Math.max(peak, Math.abs(want.data[i]!)); err = Math.max(err, Math.abs(got[i]! - want.data[i]!)); }
  return err / peak;
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cmo-layers-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const W = {
  'blk.lin.weight': rand([4, 5]), 'blk.lin.bias': rand([4]),
  'blk.conv.weight': rand([6, 2, 3, 3]), 'blk.conv.bias': rand([6]),
  'blk.gn.weight': rand([4]), 'blk.gn.bias': rand([4]),
  'blk.ln.weight': rand([5]), 'blk.ln.bias': rand([5]),
  'blk.ln_c.weight': rand([6]), 'blk.ln_c.bias': rand([6]),
  'blk.proj.weight': rand([3, 6]), 'blk.proj.bias': rand([3]),
};
const X = { x: rand([2, 3, 5]), img: rand([1, 4, 6, 6], 3), q: rand([2, 4, 6]), k: rand([2, 7, 6]), v: rand([2, 7, 6]), act: rand([2, 9], 4) };
const causal = (i: number, j: number) => (j > i ? -1e9 : 0);

async function buildAndRun(precision: Precision, attn: AttentionImplementation) {
  const out = path.join(dir, `${precision}-${attn}`);
  fs.mkdirSync(out, { recursive: true });
  const weights = WeightStore.openDir(dir);
  const builder = new ProgramBuilder({ specVersion: 7, weightsPath: path.join(out, 'weight.bin') });
  const ctx: ConvertContext = { builder, weights, precision, attention: attn };
  const x = modelInput(ctx, 'x', [2, 3, 5]);
  modelOutput(ctx, linear(ctx, x, 'blk.lin'), 'linear');
  modelOutput(ctx, layerNorm(ctx, x, 'blk.ln', { eps: 1e-5 }), 'layer_norm');
  const img = modelInput(ctx, 'img', [1, 4, 6, 6]);
  const conv = conv2d(ctx, img, 'blk.conv', { stride: 2, padding: 1, groups: 2 });
  modelOutput(ctx, conv, 'conv');
  modelOutput(ctx, layerNorm(ctx, builder.op('reshape', { x: conv, shape: [1, 6, 1, 9] }), 'blk.ln_c', { eps: 1e-5, axis: 1 }), 'layer_norm_c');
  modelOutput(ctx, groupNorm(ctx, img, 'blk.gn', { groups: 2, eps: 1e-6 }), 'group_norm');
  modelOutput(ctx, upsampleNearest2x(ctx, img), 'upsample');
  const act = modelInput(ctx, 'act', [2, 9]);
  modelOutput(ctx, gelu(ctx, act, 'exact'), 'gelu');
  modelOutput(ctx, gelu(ctx, act, 'tanh'), 'gelu_tanh');
  modelOutput(ctx, quickGelu(ctx, act), 'quick_gelu');
  modelOutput(ctx, silu(ctx, act), 'silu');
  const q = modelInput(ctx, 'q', [2, 4, 6]), k = modelInput(ctx, 'k', [2, 7, 6]), v = modelInput(ctx, 'v', [2, 7, 6]);
  const maskData = new Float32Array(4 * 7).map((_, i) => causal(Math.floor(i / 7), i % 7));
  const mask = builder.const('mask', maskData, [1, 1, 4, 7], precision);
  modelOutput(ctx, attention(ctx, q, k, v, { heads: 2, layout: 'BSC', name: 'attn_bsc', implementation: 'original', mask }), 'attn_bsc');
  const tr = (t: Var, n: string) => builder.op('expand_dims', { x: builder.op('transpose', { x: t, perm: [0, 2, 1] }), axes: [2] }, { name: n });
  const a = attention(ctx, tr(q, "q4"), tr(k, "k4"), tr(v, "v4"), { heads: 3, layout: 'BC1S', name: 'attn_bc1s' });
  modelOutput(ctx, a, 'attn_bc1s');
  modelOutput(ctx, linearConv(ctx, a, 'blk.proj'), 'proj');
  const pkg = path.join(out, 'm.mlpackage');
  await builder.save(pkg);
  expect(weights.unusedNames()).toEqual([]);
  weights.close();
  const model = await loadModel(pkg);
  const exec = createExecutor(model);
  const res = await exec.predict(Object.fromEntries(Object.entries(X).map(([n, t]) => [n, { data: f32(t), shape: t.shape }])));
  return { res, builder, model };
}

describe('layers (float64 references through the executor)', () => {
  beforeAll(() => writeSafetensors(path.join(dir, 'model.safetensors'), W));

  const refs = () => {
    const attnBc1s = toBC1S(refAttention(X.q, X.k, X.v, 3));
    const [b, c, , s] = attnBc1s.shape as number[];
    const flat: T = { data: new Float64Array(b! * s! * c!), shape: [b!, s!, c!] };
    for (let i = 0; i < b!; i++) for (let j = 0; j < s!; j++) for (let kk = 0; kk < c!; kk++) flat.data[(i * s! + j) * c! + kk] = attnBc1s.data[(i * c! + kk) * s! + j]!;
    const conv = refConv(X.img, W['blk.conv.weight'], W['blk.conv.bias'], 2, 1, 2);
    const up = { data: new Float64Array(4 * 12 * 12), shape: [1, 4, 12, 12] };
    for (let ch = 0; ch < 4; ch++) for (let y = 0; y < 12; y++) for (let xx = 0; xx < 12; xx++) up.data[(ch * 12 + y) * 12 + xx] = X.img.data[(ch * 6 + (y >> 1)) * 6 + (xx >> 1)]!;
    return {
      linear: refLinear(X.x, W['blk.lin.weight'], W['blk.lin.bias']),
      layer_norm: refLayerNorm(X.x, -1, W['blk.ln.weight'], W['blk.ln.bias'], 1e-5),
      conv,
      layer_norm_c: refLayerNorm({ data: conv.data, shape: [1, 6, 1, 9] }, 1, W['blk.ln_c.weight'], W['blk.ln_c.bias'], 1e-5),
      group_norm: refGroupNorm(X.img, 2, W['blk.gn.weight'], W['blk.gn.bias'], 1e-6),
      upsample: up,
      gelu: map(X.act, v => 0.5 * v * (1 + erf(v / Math.SQRT2))),
      gelu_tanh: map(X.act, v => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))),
      quick_gelu: map(X.act, v => v / (1 + Math.exp(-1.702 * v))),
      silu: map(X.act, v => v / (1 + Math.exp(-v))),
      attn_bsc: refAttention(X.q, X.k, X.v, 2, causal),
      attn_bc1s: attnBc1s,
      proj: toBC1S(refLinear(flat, W['blk.proj.weight'], W['blk.proj.bias'])),
    };
  };

  for (const attn of ['original', 'split_einsum'] as const) {
    it(`fp32, ${attn} attention: every layer within 1e-5 of float64`, async () => {
      const { res, builder } = await buildAndRun('fp32', attn);
      for (const [name, want] of Object.entries(refs())) {
        expect(res[name]!.shape, name).toEqual(want.shape);
        expect(maxRel(res[name]!.data as Float32Array, want), name).toBeLessThan(1e-5);
      }
      // weights keep their module path; the builder keeps no copy of blob-stored weight values
      const consts = (builder as unknown as { constOps: Map<string, { literal: { data: ArrayLike<number> } }> }).constOps;
      expect(consts.get('blk_conv_weight')!.literal.data.length).toBe(0);
    });
  }

  it('fp16: weights stored as fp16, I/O fp32, errors at fp16 weight-rounding level', async () => {
    const { res, model } = await buildAndRun('fp16', 'split_einsum');
    expect(model.spec.description!.input!.every(i => i.type!.multiArrayType!.dataType === 65568)).toBe(true);
    expect(model.spec.description!.output!.every(i => i.type!.multiArrayType!.dataType === 65568)).toBe(true);
    // The executor computes in fp32; fp16 only rounds weights and the cast inputs (2^-11 relative
    // each), so outputs stay within a few 1e-3 of float64 — and must differ from fp32 (the weights
    // really are fp16).
    let anyDiff = false;
    for (const [name, want] of Object.entries(refs())) {
      const e = maxRel(res[name]!.data as Float32Array, want);
      expect(e, name).toBeLessThan(4e-3);
      if (e > 1e-5) anyDiff = true;
    }
    expect(anyDiff).toBe(true);
  });
});
