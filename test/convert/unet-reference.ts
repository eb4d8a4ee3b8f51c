/**
 * A slow, independent UNet2DConditionModel forward in float64 plain loops, written from diffusers 0.25's
 * modules (unet_2d_condition.py, unet_2d_blocks.py, resnet.py, transformer_2d.py, attention.py,
 * embeddings.py) without sharing any code with src/convert. It is the oracle for configs the fixtures
 * do not cover; it is itself checked against diffusers' own output on the fixture UNets.
 *
 * Weights come from `param(name, shape)`: a store backed by real safetensors, or one that invents
 * seeded random weights on first use (then written out as safetensors for the converter) — so one
 * forward pass both defines a synthetic model's weights and computes its reference output.
 */
import type { WeightStore } from '../../src/convert/safetensors.js';

export interface T { d: Float64Array; s: number[] }
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const zeros = (s: number[]): T => ({ d: new Float64Array(size(s)), s });

export type Param = (name: string, shape: number[], kind?: 'weight' | 'bias' | 'norm') => Float64Array;

/** Params from a safetensors WeightStore (checks the shape diffusers' module would have). */
export function storeParams(store: WeightStore): Param {
  return (name, shape) => {
    const got = store.shape(name);
    if (got.join(',') !== shape.join(',')) throw new Error(`reference: ${name} has shape [${got}], expected [${shape}]`);
    return Float64Array.from(store.read(name, 'fp32'));
  };
}

/** Seeded random params, created on first use and kept (fp32-representable values). */
export function randomParams(seed: number): { param: Param; tensors: Map<string, { shape: number[]; data: Float32Array }> } {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  const param: Param = (name, shape, kind = 'weight') => {
    let t = tensors.get(name);
    if (!t) {
      const n = size(shape);
      const fanIn = shape.length > 1 ? size(shape.slice(1)) : 1;
      const data = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        data[i] = kind === 'norm' ? 1 + 0.1 * normal() : kind === 'bias' ? 0.1 * normal() : normal() / Math.sqrt(fanIn);
      }
      t = { shape, data };
      tensors.set(name, t);
    }
    if (t.shape.join(',') !== shape.join(',')) throw new Error(`reference: ${name} used with shapes [${t.shape}] and [${shape}]`);
    return Float64Array.from(t.data);
  };
  return { param, tensors };
}

/* ---------------- primitive ops (NCHW / [..., C]) ---------------- */

function conv2d(x: T, w: Float64Array, b: Float64Array | null, cout: number, k: number, stride: number, padB: number, padA: number): T {
  const [B, C, H, W] = x.s as [number, number, number, number];
  const OH = Math.floor((H + padB + padA - k) / stride) + 1, OW = Math.floor((W + padB + padA - k) / stride) + 1;
  const y = zeros([B, cout, OH, OW]);
  for (let n = 0; n < B; n++)
    for (let o = 0; o < cout; o++)
      for (let i = 0; i < OH; i++)
        for (let j = 0; j < OW; j++) {
          let acc = b ? b[o]! : 0;
          for (let c = 0; c < C; c++)
            for (let u = 0; u < k; u++) {
              const hi = i * stride + u - padB;
              if (hi < 0 || hi >= H) continue;
              for (let v = 0; v < k; v++) {
                const wi = j * stride + v - padB;
                if (wi < 0 || wi >= W) continue;
                acc += x.d[((n * C + c) * H + hi) * W + wi]! * w[((o * C + c) * k + u) * k + v]!;
              }
            }
          y.d[((n * cout + o) * OH + i) * OW + j] = acc;
        }
  return y;
}

function groupNorm(x: T, G: number, g: Float64Array, b: Float64Array, eps: number): T {
  const [B, C] = x.s as [number, number];
  const inner = size(x.s.slice(2));
  const per = (C / G) * inner;
  const y = zeros(x.s);
  for (let n = 0; n < B; n++)
    for (let gi = 0; gi < G; gi++) {
      const off = (n * C + gi * (C / G)) * inner;
      let m = 0;
      for (let i = 0; i < per; i++) m += x.d[off + i]!;
      m /= per;
      let v = 0;
      for (let i = 0; i < per; i++) v += (x.d[off + i]! - m) ** 2;
      v /= per;
      const inv = 1 / Math.sqrt(v + eps);
      for (let i = 0; i < per; i++) {
        const c = gi * (C / G) + Math.floor(i / inner);
        y.d[off + i] = (x.d[off + i]! - m) * inv * g[c]! + b[c]!;
      }
    }
  return y;
}

function layerNorm(x: T, g: Float64Array, b: Float64Array, eps: number): T {
  const C = x.s.at(-1)!;
  const y = zeros(x.s);
  for (let r = 0; r < x.d.length / C; r++) {
    let m = 0;
    for (let c = 0; c < C; c++) m += x.d[r * C + c]!;
    m /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x.d[r * C + c]! - m) ** 2;
    v /= C;
    const inv = 1 / Math.sqrt(v + eps);
    for (let c = 0; c < C; c++) y.d[r * C + c] = (x.d[r * C + c]! - m) * inv * g[c]! + b[c]!;
  }
  return y;
}

function linear(x: T, w: Float64Array, b: Float64Array | null, out: number): T {
  const inn = x.s.at(-1)!;
  const rows = x.d.length / inn;
  const y = zeros([...x.s.slice(0, -1), out]);
  for (let r = 0; r < rows; r++)
    for (let o = 0; o < out; o++) {
      let acc = b ? b[o]! : 0;
      for (let i = 0; i < inn; i++) acc += x.d[r * inn + i]! * w[o * inn + i]!;
      y.d[r * out + o] = acc;
    }
  return y;
}

const map = (x: T, f: (v: number) => number): T => ({ d: x.d.map(f), s: x.s });
const add = (a: T, b: T): T => ({ d: a.d.map((v, i) => v + b.d[i]!), s: a.s });
const erf = (x: number): number => {
  // Abramowitz–Stegun 7.1.26 is too coarse; use a series / continued fraction with ~1e-15 error.
  const ax = Math.abs(x);
  if (ax < 3) {
    let sum = 0, term = ax, k = 0;
    while (Math.abs(term) > 1e-17 * Math.abs(sum) || k < 3) {
      sum += term / (2 * k + 1);
      k++;
      term *= (-ax * ax) / k;
      if (k > 200) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction for large |x|
  let f = 0;
  for (let k = 60; k >= 1; k--) f = (k / 2) / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return Math.sign(x) * (1 - erfc);
};
const ACT: Record<string, (v: number) => number> = {
  silu: v => v / (1 + Math.exp(-v)),
  swish: v => v / (1 + Math.exp(-v)),
  gelu: v => 0.5 * v * (1 + erf(v / Math.SQRT2)),
  relu: v => Math.max(0, v),
  mish: v => v * Math.tanh(Math.log1p(Math.exp(v))),
};

/** [B, S, h*d] attention of x over ctx. */
function attention(p: Param, pre: string, x: T, ctx: T, heads: number, dim: number, ctxDim: number): T {
  const inner = dim;
  const q = linear(x, p(`${pre}.to_q.weight`, [inner, x.s[2]!]), null, inner);
  const k = linear(ctx, p(`${pre}.to_k.weight`, [inner, ctxDim]), null, inner);
  const v = linear(ctx, p(`${pre}.to_v.weight`, [inner, ctxDim]), null, inner);
  const [B, S] = x.s as [number, number];
  const L = ctx.s[1]!;
  const hd = inner / heads;
  const scale = 1 / Math.sqrt(hd);
  const o = zeros([B, S, inner]);
  const sc = new Float64Array(L);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < heads; h++)
      for (let i = 0; i < S; i++) {
        let mx = -Infinity;
        for (let j = 0; j < L; j++) {
          let acc = 0;
          for (let e = 0; e < hd; e++) acc += q.d[(b * S + i) * inner + h * hd + e]! * k.d[(b * L + j) * inner + h * hd + e]!;
          sc[j] = acc * scale;
          mx = Math.max(mx, sc[j]!);
        }
        let sum = 0;
        for (let j = 0; j < L; j++) sum += (sc[j] = Math.exp(sc[j]! - mx));
        for (let e = 0; e < hd; e++) {
          let acc = 0;
          for (let j = 0; j < L; j++) acc += sc[j]! * v.d[(b * L + j) * inner + h * hd + e]!;
          o.d[(b * S + i) * inner + h * hd + e] = acc / sum;
        }
      }
  return linear(o, p(`${pre}.to_out.0.weight`, [x.s[2]!, inner]), p(`${pre}.to_out.0.bias`, [x.s[2]!], 'bias'), x.s[2]!);
}

/** torch's float32 get_timestep_embedding (exponent, exp, product rounded to fp32 as torch does). */
export function timestepEmbedding(t: number[], dim: number, flip: boolean, shift: number): T {
  const half = Math.floor(dim / 2);
  const f = Math.fround;
  const e0 = f(-Math.log(10000));
  const freqs = Array.from({ length: half }, (_, i) => f(Math.exp(f(f(e0 * i) / f(half - shift)))));
  const y = zeros([t.length, dim]);
  t.forEach((tv, b) => {
    for (let i = 0; i < half; i++) {
      const a = f(f(tv) * freqs[i]!);
      const s = Math.sin(a), c = Math.cos(a);
      y.d[b * dim + (flip ? half + i : i)] = s;
      y.d[b * dim + (flip ? i : half + i)] = c;
    }
  });
  return y;
}

/* ---------------- diffusers modules ---------------- */

interface Ctx { p: Param; cfg: Record<string, any>; temb: T; ehs: T; act: (v: number) => number; groups: number; eps: number }

function resnet(c: Ctx, pre: string, x: T, cout: number, outScale = 1): T {
  const cin = x.s[1]!;
  const { p } = c;
  let h = groupNorm(x, c.groups, p(`${pre}.norm1.weight`, [cin], 'norm'), p(`${pre}.norm1.bias`, [cin], 'bias'), c.eps);
  h = map(h, c.act);
  h = conv2d(h, p(`${pre}.conv1.weight`, [cout, cin, 3, 3]), p(`${pre}.conv1.bias`, [cout], 'bias'), cout, 3, 1, 1, 1);
  const scaleShift = c.cfg.resnet_time_scale_shift === 'scale_shift';
  const tdim = c.temb.s[1]!;
  const tp = linear(map(c.temb, c.act), p(`${pre}.time_emb_proj.weight`, [scaleShift ? 2 * cout : cout, tdim]), p(`${pre}.time_emb_proj.bias`, [scaleShift ? 2 * cout : cout], 'bias'), scaleShift ? 2 * cout : cout);
  const [B, , H, W] = h.s as [number, number, number, number];
  const addT = (z: T, off: number) => { for (let n = 0; n < B; n++) for (let o = 0; o < cout; o++) for (let k = 0; k < H * W; k++) z.d[(n * cout + o) * H * W + k] += tp.d[n * tp.s[1]! + off + o]!; };
  if (!scaleShift) addT(h, 0);
  h = groupNorm(h, c.groups, p(`${pre}.norm2.weight`, [cout], 'norm'), p(`${pre}.norm2.bias`, [cout], 'bias'), c.eps);
  if (scaleShift) {
    for (let n = 0; n < B; n++) for (let o = 0; o < cout; o++) for (let k = 0; k < H * W; k++) {
      const i = (n * cout + o) * H * W + k;
      h.d[i] = h.d[i]! * (1 + tp.d[n * 2 * cout + o]!) + tp.d[n * 2 * cout + cout + o]!;
    }
  }
  h = map(h, c.act);
  h = conv2d(h, p(`${pre}.conv2.weight`, [cout, cout, 3, 3]), p(`${pre}.conv2.bias`, [cout], 'bias'), cout, 3, 1, 1, 1);
  const sc = cin !== cout ? conv2d(x, p(`${pre}.conv_shortcut.weight`, [cout, cin, 1, 1]), p(`${pre}.conv_shortcut.bias`, [cout], 'bias'), cout, 1, 1, 0, 0) : x;
  return map(add(sc, h), v => v / outScale);
}

function transformer2d(c: Ctx, pre: string, x: T, heads: number, layers: number, onlyCross: boolean): T {
  const { p } = c;
  const [B, C, H, W] = x.s as [number, number, number, number];
  const inner = C; // heads * (C / heads)
  const linearProj = Boolean(c.cfg.use_linear_projection);
  let h = groupNorm(x, c.groups, p(`${pre}.norm.weight`, [C], 'norm'), p(`${pre}.norm.bias`, [C], 'bias'), 1e-6);
  const toSeq = (z: T): T => {
    const ch = z.s[1]!;
    const o = zeros([B, H * W, ch]);
    for (let n = 0; n < B; n++) for (let cc = 0; cc < ch; cc++) for (let k = 0; k < H * W; k++) o.d[(n * H * W + k) * ch + cc] = z.d[(n * ch + cc) * H * W + k]!;
    return o;
  };
  const toImg = (z: T): T => {
    const ch = z.s[2]!;
    const o = zeros([B, ch, H, W]);
    for (let n = 0; n < B; n++) for (let cc = 0; cc < ch; cc++) for (let k = 0; k < H * W; k++) o.d[(n * ch + cc) * H * W + k] = z.d[(n * H * W + k) * ch + cc]!;
    return o;
  };
  let s: T;
  if (linearProj) s = linear(toSeq(h), p(`${pre}.proj_in.weight`, [inner, C]), p(`${pre}.proj_in.bias`, [inner], 'bias'), inner);
  else s = toSeq(conv2d(h, p(`${pre}.proj_in.weight`, [inner, C, 1, 1]), p(`${pre}.proj_in.bias`, [inner], 'bias'), inner, 1, 1, 0, 0));
  const crossDim = c.ehs.s[2]!;
  for (let l = 0; l < layers; l++) {
    const bp = `${pre}.transformer_blocks.${l}`;
    let n = layerNorm(s, p(`${bp}.norm1.weight`, [inner], 'norm'), p(`${bp}.norm1.bias`, [inner], 'bias'), 1e-5);
    s = add(attention(p, `${bp}.attn1`, n, onlyCross ? c.ehs : n, heads, inner, onlyCross ? crossDim : inner), s);
    n = layerNorm(s, p(`${bp}.norm2.weight`, [inner], 'norm'), p(`${bp}.norm2.bias`, [inner], 'bias'), 1e-5);
    s = add(attention(p, `${bp}.attn2`, n, c.ehs, heads, inner, crossDim), s);
    n = layerNorm(s, p(`${bp}.norm3.weight`, [inner], 'norm'), p(`${bp}.norm3.bias`, [inner], 'bias'), 1e-5);
    const ffIn = 4 * inner;
    const pr = linear(n, p(`${bp}.ff.net.0.proj.weight`, [2 * ffIn, inner]), p(`${bp}.ff.net.0.proj.bias`, [2 * ffIn], 'bias'), 2 * ffIn);
    const g = zeros([...n.s.slice(0, -1), ffIn]);
    for (let r = 0; r < g.d.length / ffIn; r++) for (let k = 0; k < ffIn; k++) g.d[r * ffIn + k] = pr.d[r * 2 * ffIn + k]! * ACT.gelu!(pr.d[r * 2 * ffIn + ffIn + k]!);
    s = add(linear(g, p(`${bp}.ff.net.2.weight`, [inner, ffIn]), p(`${bp}.ff.net.2.bias`, [inner], 'bias'), inner), s);
  }
  let out: T;
  if (linearProj) out = toImg(linear(s, p(`${pre}.proj_out.weight`, [C, inner]), p(`${pre}.proj_out.bias`, [C], 'bias'), C));
  else out = conv2d(toImg(s), p(`${pre}.proj_out.weight`, [C, inner, 1, 1]), p(`${pre}.proj_out.bias`, [C], 'bias'), C, 1, 1, 0, 0);
  return add(out, x);
}

function upsampleNearest(x: T, OH: number, OW: number): T {
  const [B, C, H, W] = x.s as [number, number, number, number];
  const y = zeros([B, C, OH, OW]);
  for (let n = 0; n < B * C; n++)
    for (let i = 0; i < OH; i++)
      for (let j = 0; j < OW; j++) y.d[(n * OH + i) * OW + j] = x.d[(n * H + Math.floor((i * H) / OH)) * W + Math.floor((j * W) / OW)]!;
  return y;
}

function concat1(a: T, b: T): T {
  const [B, C1, H, W] = a.s as [number, number, number, number];
  const C2 = b.s[1]!;
  const y = zeros([B, C1 + C2, H, W]);
  for (let n = 0; n < B; n++) {
    y.d.set(a.d.subarray(n * C1 * H * W, (n + 1) * C1 * H * W), n * (C1 + C2) * H * W);
    y.d.set(b.d.subarray(n * C2 * H * W, (n + 1) * C2 * H * W), (n * (C1 + C2) + C1) * H * W);
  }
  return y;
}

export interface ReferenceInputs {
  sample: T; // [B, 4, H, W]
  timestep: number[]; // [B]
  encoderHiddenStates: T; // [B, 77, C] (diffusers layout)
  textEmbeds?: T; // [B, P]
  timeIds?: T; // [B, 6]
}

/** diffusers' UNet2DConditionModel.forward(...).sample for the subset of configs the converter builds. */
export function referenceUnet(cfg: Record<string, any>, p: Param, inp: ReferenceInputs): T {
  const nb = (cfg.down_block_types as string[]).length;
  const perLevel = <V>(v: V | V[]): V[] => (Array.isArray(v) ? v : Array(nb).fill(v));
  const boc = cfg.block_out_channels as number[];
  const heads = perLevel<number>(cfg.num_attention_heads ?? cfg.attention_head_dim);
  const lpb = perLevel<number>(cfg.layers_per_block);
  // transformer_layers_per_block: an int, or per level an int or a per-layer list (then the up
  // blocks take reverse_transformer_layers_per_block); a block reads entry l for its layer l.
  const tlpb = perLevel<number | number[]>(cfg.transformer_layers_per_block ?? 1);
  const rtl: (number | number[])[] = cfg.reverse_transformer_layers_per_block ?? [...tlpb].reverse();
  const depth = (v: number | number[], l: number): number => (Array.isArray(v) ? v[l]! : v);
  const onlyCross = perLevel<boolean>(cfg.only_cross_attention ?? false);
  const act = ACT[cfg.act_fn ?? 'silu']!;
  const tdim = cfg.time_embedding_dim ?? boc[0]! * 4;

  // time
  let temb = timestepEmbedding(inp.timestep, boc[0]!, cfg.flip_sin_to_cos ?? true, cfg.freq_shift ?? 0);
  temb = linear(temb, p('time_embedding.linear_1.weight', [tdim, boc[0]!]), p('time_embedding.linear_1.bias', [tdim], 'bias'), tdim);
  temb = map(temb, act);
  temb = linear(temb, p('time_embedding.linear_2.weight', [tdim, tdim]), p('time_embedding.linear_2.bias', [tdim], 'bias'), tdim);
  if (cfg.timestep_post_act) temb = map(temb, ACT[cfg.timestep_post_act]!);
  if (cfg.addition_embed_type === 'text_time') {
    const B = inp.sample.s[0]!;
    const ad = cfg.addition_time_embed_dim as number;
    const ids = Array.from(inp.timeIds!.d);
    const te = timestepEmbedding(ids, ad, cfg.flip_sin_to_cos ?? true, cfg.freq_shift ?? 0); // [B*6, ad]
    const per = te.d.length / B;
    const P = inp.textEmbeds!.s[1]!;
    const cat = zeros([B, P + per]);
    for (let b = 0; b < B; b++) {
      cat.d.set(inp.textEmbeds!.d.subarray(b * P, (b + 1) * P), b * (P + per));
      cat.d.set(te.d.subarray(b * per, (b + 1) * per), b * (P + per) + P);
    }
    const pin = cfg.projection_class_embeddings_input_dim as number;
    let a = linear(cat, p('add_embedding.linear_1.weight', [tdim, pin]), p('add_embedding.linear_1.bias', [tdim], 'bias'), tdim);
    a = map(a, ACT.silu!);
    a = linear(a, p('add_embedding.linear_2.weight', [tdim, tdim]), p('add_embedding.linear_2.bias', [tdim], 'bias'), tdim);
    temb = add(temb, a);
  }
  if (cfg.time_embedding_act_fn) temb = map(temb, ACT[cfg.time_embedding_act_fn]!);

  const c: Ctx = { p, cfg, temb, ehs: inp.encoderHiddenStates, act, groups: cfg.norm_num_groups ?? 32, eps: cfg.norm_eps ?? 1e-5 };
  let x = inp.sample;
  if (cfg.center_input_sample) x = map(x, v => 2 * v - 1);
  const kin = cfg.conv_in_kernel ?? 3;
  x = conv2d(x, p('conv_in.weight', [boc[0]!, x.s[1]!, kin, kin]), p('conv_in.bias', [boc[0]!], 'bias'), boc[0]!, kin, 1, (kin - 1) / 2, (kin - 1) / 2);

  const skips: T[] = [x];
  for (let i = 0; i < nb; i++) {
    const type = cfg.down_block_types[i] as string;
    const out = boc[i]!;
    for (let l = 0; l < lpb[i]!; l++) {
      x = resnet(c, `down_blocks.${i}.resnets.${l}`, x, out);
      if (type === 'CrossAttnDownBlock2D') x = transformer2d(c, `down_blocks.${i}.attentions.${l}`, x, heads[i]!, depth(tlpb[i]!, l), onlyCross[i]!);
      skips.push(x);
    }
    if (i < nb - 1) {
      const pad = cfg.downsample_padding ?? 1;
      x = conv2d(x, p(`down_blocks.${i}.downsamplers.0.conv.weight`, [out, out, 3, 3]), p(`down_blocks.${i}.downsamplers.0.conv.bias`, [out], 'bias'), out, 3, 2, pad, pad === 0 ? 1 : pad);
      skips.push(x);
    }
  }
  if (cfg.mid_block_type !== null) {
    const ch = boc[nb - 1]!;
    const osf = cfg.mid_block_scale_factor ?? 1;
    x = resnet(c, 'mid_block.resnets.0', x, ch, osf);
    x = transformer2d(c, 'mid_block.attentions.0', x, heads[nb - 1]!, depth(tlpb[nb - 1]!, 0), false);
    x = resnet(c, 'mid_block.resnets.1', x, ch, osf);
  }
  const rboc = [...boc].reverse(), rheads = [...heads].reverse(), rlpb = [...lpb].reverse(), roc = [...onlyCross].reverse();
  for (let i = 0; i < nb; i++) {
    const type = cfg.up_block_types[i] as string;
    const out = rboc[i]!;
    for (let l = 0; l < rlpb[i]! + 1; l++) {
      x = concat1(x, skips.pop()!);
      x = resnet(c, `up_blocks.${i}.resnets.${l}`, x, out);
      if (type === 'CrossAttnUpBlock2D') x = transformer2d(c, `up_blocks.${i}.attentions.${l}`, x, rheads[i]!, depth(rtl[i]!, l), roc[i]!);
    }
    if (i < nb - 1) {
      const target = skips.at(-1)!;
      x = upsampleNearest(x, target.s[2]!, target.s[3]!);
      x = conv2d(x, p(`up_blocks.${i}.upsamplers.0.conv.weight`, [out, out, 3, 3]), p(`up_blocks.${i}.upsamplers.0.conv.bias`, [out], 'bias'), out, 3, 1, 1, 1);
    }
  }
  x = groupNorm(x, c.groups, p('conv_norm_out.weight', [boc[0]!], 'norm'), p('conv_norm_out.bias', [boc[0]!], 'bias'), c.eps);
  x = map(x, act);
  const kout = cfg.conv_out_kernel ?? 3;
  const oc = cfg.out_channels ?? 4;
  return conv2d(x, p('conv_out.weight', [oc, boc[0]!, kout, kout]), p('conv_out.bias', [oc], 'bias'), oc, kout, 1, (kout - 1) / 2, (kout - 1) / 2);
}
