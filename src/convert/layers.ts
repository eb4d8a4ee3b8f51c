/**
 * Layer primitives the diffusers converters (CLIP text encoders, VAE decoder, UNet) build ML
 * Programs from. Every helper takes a `ConvertContext` ({ builder, weights, precision, attention })
 * and, for layers with parameters, the diffusers / transformers module path as weight prefix
 * (`down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q`): the parameters are read from the
 * WeightStore as `<path>.weight` / `<path>.bias` (which marks them consumed) and become const ops
 * named with the dots replaced by `_` (`down_blocks_1_..._to_q_weight`), as coremltools names
 * PyTorch parameters, so Apple's layer-selection regexes work on our packages. Exports:
 * `modelInput` / `modelOutput` (fp32 model I/O; at fp16 precision a cast to fp16 after each input and
 * back to fp32 before each output, as coremltools' FLOAT16 compute precision inserts them), `param`
 * (one weight as a const, optionally reshaped), `scalar` (a literal in the compute dtype), `linear`
 * (last axis, [..., C]), `linearConv` (a Linear applied as a 1×1 conv on [B, C, 1, S], the layout
 * ml-stable-diffusion's UNet uses), `conv2d`, `groupNorm` (coremltools' torch lowering: reshape to
 * groups, reduce_mean, variance, sqrt, divide, affine), `layerNorm` (any axis), `silu`, `gelu`
 * (`exact` erf / `tanh` approximation), `quickGelu`, `upsampleNearest2x`, and `attention` (multi-head
 * softmax attention on [B, S, C] or [B, C, 1, S] tensors; `ctx.attention` picks `original` = batched
 * matmul–softmax–matmul or `split_einsum` = ml-stable-diffusion's per-head einsum form; an additive
 * mask is optional). `sliceByIndex` is a static slice;
 * `opName(path, suffix)` names non-const ops after their module.
 */
import { ProgramBuilder, tensor, type TensorLiteral, type Var } from '../mil/builder.js';
import type { Dim, MilDType } from '../mil/types.js';
import { ConfigError, ModelFormatError } from '../errors.js';
import type { WeightStore } from './safetensors.js';

export type Precision = 'fp16' | 'fp32';
export type AttentionImplementation = 'original' | 'split_einsum';

export interface ConvertContext {
  builder: ProgramBuilder;
  weights: WeightStore;
  /** Weight storage and compute dtype; model I/O stays fp32 either way. */
  precision: Precision;
  attention: AttentionImplementation;
}

/** The compute dtype of a context. */
export const computeDType = (ctx: ConvertContext): MilDType => ctx.precision;

/** `a.b.0.c` → `a_b_0_c` (a MIL identifier). */
export function constName(path: string): string {
  return path.replace(/\./g, '_');
}

/** A name for a non-const op of module `path` (`<path_with_underscores>_<suffix>`). */
export function opName(path: string, suffix?: string): string {
  const base = constName(path);
  return suffix ? `${base}_${suffix}` : base;
}

/** A scalar literal in the compute dtype (MIL binary ops need both operands of one dtype). */
export function scalar(ctx: ConvertContext, v: number): TensorLiteral {
  return tensor(computeDType(ctx), [v], []);
}

/**
 * One weight (`name` is the full parameter name, e.g. `conv_in.weight`) as a const op in the compute
 * dtype. `expect` checks the stored shape (ModelFormatError naming the weight otherwise); `shape`
 * re-views the same values (e.g. [C] → [1, C, 1, 1] for broadcasting, [O, I] → [O, I, 1, 1]).
 */
export function param(ctx: ConvertContext, name: string, options: { expect?: number[]; shape?: number[] } = {}): Var {
  const stored = ctx.weights.shape(name);
  if (options.expect && (stored.length !== options.expect.length || stored.some((d, i) => d !== options.expect![i]))) {
    throw new ModelFormatError(`weight '${name}' has shape [${stored.join(', ')}], the config implies [${options.expect.join(', ')}]`, { file: ctx.weights.dir });
  }
  const shape = options.shape ?? stored;
  const count = stored.reduce((a, d) => a * d, 1);
  if (shape.reduce((a, d) => a * d, 1) !== count) throw new ConfigError(`cannot view weight '${name}' [${stored.join(', ')}] as [${shape.join(', ')}]`);
  const data = ctx.weights.read(name, ctx.precision);
  return ctx.builder.const(constName(name), data, shape, computeDType(ctx));
}

/** A model input (fp32 unless `dtype` says otherwise), cast to the compute dtype when that differs. */
export function modelInput(ctx: ConvertContext, name: string, shape: Dim[], dtype: MilDType = 'fp32'): Var {
  const v = ctx.builder.input(name, dtype, shape);
  if (dtype === 'fp32' && ctx.precision === 'fp16') return ctx.builder.op('cast', { x: v, dtype: 'fp16' }, { name: `${name}_to_fp16` });
  return v;
}

/** Marks `v` as the model output `name` (fp32; cast back from fp16 when computing in fp16). */
export function modelOutput(ctx: ConvertContext, v: Var, name: string): Var {
  if (v.dtype === 'fp16') return ctx.builder.output(ctx.builder.op('cast', { x: v, dtype: 'fp32' }, { name }));
  return ctx.builder.output(v, name);
}

const has = (ctx: ConvertContext, name: string) => ctx.weights.has(name);

/** torch.nn.Linear on the last axis: x [..., in] → [..., out]. */
export function linear(ctx: ConvertContext, x: Var, path: string, options: { bias?: boolean } = {}): Var {
  const inF = x.shape.at(-1) as number;
  const [outF] = ctx.weights.shape(`${path}.weight`) as [number];
  const weight = param(ctx, `${path}.weight`, { expect: [outF, inF] });
  const bias = (options.bias ?? has(ctx, `${path}.bias`)) ? param(ctx, `${path}.bias`, { expect: [outF] }) : undefined;
  return ctx.builder.op('linear', { x, weight, bias }, { name: opName(path) });
}

/** torch.nn.Linear applied as a 1×1 conv on [B, C, 1, S] (ml-stable-diffusion's layout). */
export function linearConv(ctx: ConvertContext, x: Var, path: string, options: { bias?: boolean } = {}): Var {
  const inF = x.shape[1] as number;
  const [outF] = ctx.weights.shape(`${path}.weight`) as [number];
  const weight = param(ctx, `${path}.weight`, { expect: [outF, inF], shape: [outF, inF, 1, 1] });
  const bias = (options.bias ?? has(ctx, `${path}.bias`)) ? param(ctx, `${path}.bias`, { expect: [outF] }) : undefined;
  return ctx.builder.op('conv', { x, weight, bias, strides: [1, 1], pad_type: 'valid', dilations: [1, 1], groups: 1 }, { name: opName(path) });
}

export interface Conv2dOptions {
  stride?: number;
  /** Symmetric zero padding (torch's `padding=`). */
  padding?: number;
  groups?: number;
  dilation?: number;
  bias?: boolean;
}

/** torch.nn.Conv2d on NCHW. */
export function conv2d(ctx: ConvertContext, x: Var, path: string, options: Conv2dOptions = {}): Var {
  const shape = ctx.weights.shape(`${path}.weight`);
  if (shape.length !== 4) throw new ModelFormatError(`weight '${path}.weight' is not a 4-D conv weight: [${shape.join(', ')}]`, { file: ctx.weights.dir });
  const groups = options.groups ?? 1;
  const inC = x.shape[1] as number;
  if (shape[1]! * groups !== inC) throw new ModelFormatError(`weight '${path}.weight' [${shape.join(', ')}] does not take ${inC} input channels`, { file: ctx.weights.dir });
  const weight = param(ctx, `${path}.weight`);
  const bias = (options.bias ?? has(ctx, `${path}.bias`)) ? param(ctx, `${path}.bias`, { expect: [shape[0]!] }) : undefined;
  const p = options.padding ?? 0;
  const s = options.stride ?? 1;
  const d = options.dilation ?? 1;
  return ctx.builder.op('conv', {
    x, weight, bias, strides: [s, s], pad_type: 'custom', pad: [p, p, p, p], dilations: [d, d], groups,
  }, { name: opName(path) });
}

/**
 * torch.nn.GroupNorm on [N, C, ...] as coremltools' torch frontend lowers it (MIL has no group
 * norm): reshape to [N, G, C/G, ...], mean and biased variance over the group axes, (x − mean) /
 * sqrt(var + eps), reshape back, × weight + bias ([1, C, 1, …] consts named after the module).
 */
export function groupNorm(ctx: ConvertContext, x: Var, path: string, options: { groups: number; eps: number; affine?: boolean }): Var {
  const b = ctx.builder;
  const shape = x.shape as number[];
  const [n, c] = shape as [number, number];
  const g = Math.min(options.groups, c);
  if (c % g !== 0) throw new ConfigError(`${path}: ${c} channels do not split into ${g} groups`);
  const spatial = shape.slice(2);
  const grouped = b.op('reshape', { x, shape: [n, g, c / g, ...spatial] }, { name: opName(path, 'grouped') });
  const axes = Array.from({ length: spatial.length + 1 }, (_, i) => i + 2);
  const mean = b.op('reduce_mean', { x: grouped, axes, keep_dims: true }, { name: opName(path, 'mean') });
  const centered = b.op('sub', { x: grouped, y: mean }, { name: opName(path, 'centered') });
  const sq = b.op('square', { x: centered }, { name: opName(path, 'square') });
  const variance = b.op('reduce_mean', { x: sq, axes, keep_dims: true }, { name: opName(path, 'var') });
  const std = b.op('sqrt', { x: b.op('add', { x: variance, y: scalar(ctx, options.eps) }, { name: opName(path, 'var_eps') }) }, { name: opName(path, 'std') });
  const normed = b.op('real_div', { x: centered, y: std }, { name: opName(path, 'normed') });
  let y = b.op('reshape', { x: normed, shape }, { name: opName(path, 'ungrouped') });
  if (options.affine ?? true) {
    const bshape = [1, c, ...spatial.map(() => 1)];
    y = b.op('mul', { x: y, y: param(ctx, `${path}.weight`, { expect: [c], shape: bshape }) }, { name: opName(path, 'scaled') });
    y = b.op('add', { x: y, y: param(ctx, `${path}.bias`, { expect: [c], shape: bshape }) }, { name: opName(path) });
  }
  return y;
}

/** torch.nn.LayerNorm over one axis (default the last; 1 for [B, C, 1, S]). */
export function layerNorm(ctx: ConvertContext, x: Var, path: string, options: { eps: number; axis?: number }): Var {
  const axis = options.axis ?? -1;
  const c = x.shape.at(axis) as number;
  const gamma = param(ctx, `${path}.weight`, { expect: [c] });
  const beta = param(ctx, `${path}.bias`, { expect: [c] });
  return ctx.builder.op('layer_norm', { x, axes: [axis], gamma, beta, epsilon: scalar(ctx, options.eps) }, { name: opName(path) });
}

export function silu(ctx: ConvertContext, x: Var, name?: string): Var {
  return ctx.builder.op('silu', { x }, name ? { name } : {});
}

/** GELU: `exact` (erf, torch's default) or `tanh` (torch's approximate='tanh' / gelu_new). */
export function gelu(ctx: ConvertContext, x: Var, mode: 'exact' | 'tanh', name?: string): Var {
  return ctx.builder.op('gelu', { x, mode: mode === 'exact' ? 'EXACT' : 'TANH_APPROXIMATION' }, name ? { name } : {});
}

/** CLIP's quick_gelu: x · sigmoid(1.702 x). */
export function quickGelu(ctx: ConvertContext, x: Var, name?: string): Var {
  const b = ctx.builder;
  const s = b.op('sigmoid', { x: b.op('mul', { x, y: scalar(ctx, 1.702) }) });
  return b.op('mul', { x, y: s }, name ? { name } : {});
}

/** Nearest-neighbour ×2 upsampling of NCHW (diffusers' Upsample2D, `F.interpolate(scale_factor=2)`). */
export function upsampleNearest2x(ctx: ConvertContext, x: Var, name?: string): Var {
  const [n, c, h, w] = x.shape as number[];
  return ctx.builder.op('upsample_nearest_neighbor', { x, scale_factor_height: 2, scale_factor_width: 2 }, {
    ...(name ? { name } : {}),
    outputs: [{ dtype: x.dtype, shape: [n!, c!, 2 * h!, 2 * w!] }],
  });
}

export interface AttentionOptions {
  heads: number;
  /** `BSC`: q [B, Sq, C], k/v [B, Sk, C]. `BC1S`: q [B, C, 1, Sq], k/v [B, C, 1, Sk] (ml-stable-diffusion). */
  layout: 'BSC' | 'BC1S';
  /** Additive mask broadcastable to the scores: [.., Sq, Sk] for BSC / original; for BC1S split_einsum [.., Sk, 1, Sq]. */
  mask?: Var;
  /** Prefix for the op names. */
  name: string;
  /** Overrides ctx.attention (the text encoders and VAE always use `original`). */
  implementation?: AttentionImplementation;
}

/**
 * Multi-head scaled-dot-product attention, softmax(q·kᵀ / √d + mask)·v. Output: same layout as q
 * with C = heads × d channels.
 */
export function attention(ctx: ConvertContext, q: Var, k: Var, v: Var, options: AttentionOptions): Var {
  const b = ctx.builder;
  const { heads, name } = options;
  const impl = options.implementation ?? ctx.attention;
  const bsc = options.layout === 'BSC';
  const batch = q.shape[0] as number;
  const c = (bsc ? q.shape[2] : q.shape[1]) as number;
  const sq = (bsc ? q.shape[1] : q.shape[3]) as number;
  const sk = (bsc ? k.shape[1] : k.shape[3]) as number;
  if (c % heads !== 0) throw new ConfigError(`${name}: ${c} channels do not split into ${heads} heads`);
  const d = c / heads;
  const scale = scalar(ctx, 1 / Math.sqrt(d));

  if (impl === 'split_einsum') {
    if (bsc) throw new ConfigError(`${name}: split_einsum attention needs the [B, C, 1, S] layout`);
    // ml-stable-diffusion's SPLIT_EINSUM: per head, scores [B, Sk, 1, Sq] = einsum(k_h, q_h),
    // softmax over Sk (axis 1), out_h [B, d, 1, Sq] = einsum(v_h, w); heads concatenated on C.
    // Both einsums use the one equation Core ML's einsum op accepts ("nchw,nwhu->nchu").
    const kt = b.op('transpose', { x: k, perm: [0, 3, 2, 1] }, { name: `${name}_k_t` }); // [B, Sk, 1, C]
    const outs: Var[] = [];
    for (let h = 0; h < heads; h++) {
      const qh = sliceByIndex(ctx, q, [0, h * d, 0, 0], [batch, (h + 1) * d, 1, sq], `${name}_q_${h}`);
      const kh = sliceByIndex(ctx, kt, [0, 0, 0, h * d], [batch, sk, 1, (h + 1) * d], `${name}_k_${h}`);
      const vh = sliceByIndex(ctx, v, [0, h * d, 0, 0], [batch, (h + 1) * d, 1, sk], `${name}_v_${h}`);
      let w = b.op('einsum', { values: [kh, qh], equation: 'nchw,nwhu->nchu' }, { name: `${name}_scores_${h}`, outputs: [{ dtype: q.dtype, shape: [batch, sk, 1, sq] }] });
      w = b.op('mul', { x: w, y: scale }, { name: `${name}_scaled_${h}` });
      if (options.mask) w = b.op('add', { x: w, y: options.mask }, { name: `${name}_masked_${h}` });
      w = b.op('softmax', { x: w, axis: 1 }, { name: `${name}_weights_${h}` });
      outs.push(b.op('einsum', { values: [vh, w], equation: 'nchw,nwhu->nchu' }, { name: `${name}_out_${h}`, outputs: [{ dtype: q.dtype, shape: [batch, d, 1, sq] }] }));
    }
    return heads === 1 ? outs[0]! : b.op('concat', { values: outs, axis: 1 }, { name: `${name}_out` });
  }

  if (bsc) {
    // [B, S, C] → [B, H, S, d]; scores [B, H, Sq, Sk]; out [B, Sq, C].
    const split = (x: Var, s: number, tag: string) =>
      b.op('transpose', { x: b.op('reshape', { x, shape: [batch, s, heads, d] }, { name: `${name}_${tag}_heads` }), perm: [0, 2, 1, 3] }, { name: `${name}_${tag}_t` });
    const qh = split(q, sq, 'q'), kh = split(k, sk, 'k'), vh = split(v, sk, 'v');
    let w = b.op('matmul', { x: qh, y: kh, transpose_x: false, transpose_y: true }, { name: `${name}_scores` });
    w = b.op('mul', { x: w, y: scale }, { name: `${name}_scaled` });
    if (options.mask) w = b.op('add', { x: w, y: options.mask }, { name: `${name}_masked` });
    w = b.op('softmax', { x: w, axis: -1 }, { name: `${name}_weights` });
    const o = b.op('matmul', { x: w, y: vh, transpose_x: false, transpose_y: false }, { name: `${name}_heads_out` });
    return b.op('reshape', { x: b.op('transpose', { x: o, perm: [0, 2, 1, 3] }, { name: `${name}_out_t` }), shape: [batch, sq, c] }, { name: `${name}_out` });
  }
  // ml-stable-diffusion's ORIGINAL on [B, C, 1, S]: view as [B, H, d, S]; scores [B, H, Sq, Sk].
  const qh = b.op('reshape', { x: q, shape: [batch, heads, d, sq] }, { name: `${name}_q_heads` });
  const kh = b.op('reshape', { x: k, shape: [batch, heads, d, sk] }, { name: `${name}_k_heads` });
  const vh = b.op('reshape', { x: v, shape: [batch, heads, d, sk] }, { name: `${name}_v_heads` });
  let w = b.op('matmul', { x: qh, y: kh, transpose_x: true, transpose_y: false }, { name: `${name}_scores` });
  w = b.op('mul', { x: w, y: scale }, { name: `${name}_scaled` });
  if (options.mask) w = b.op('add', { x: w, y: options.mask }, { name: `${name}_masked` });
  w = b.op('softmax', { x: w, axis: 3 }, { name: `${name}_weights` });
  const o = b.op('matmul', { x: vh, y: w, transpose_x: false, transpose_y: true }, { name: `${name}_heads_out` }); // [B, H, d, Sq]
  return b.op('reshape', { x: o, shape: [batch, c, 1, sq] }, { name: `${name}_out` });
}

/** x[begin:end] (static bounds; slice_by_index has no shape inference in the builder). */
export function sliceByIndex(ctx: ConvertContext, x: Var, begin: number[], end: number[], name?: string): Var {
  const shape = begin.map((b0, i) => end[i]! - b0);
  return ctx.builder.op('slice_by_index', { x, begin, end }, { ...(name ? { name } : {}), outputs: [{ dtype: x.dtype, shape }] });
}
