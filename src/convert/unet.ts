/**
 * diffusers' UNet2DConditionModel (0.25) → an ML Program with apple/ml-stable-diffusion's Unet I/O:
 * inputs `sample` [B, 4, h, w], `timestep` [B], `encoder_hidden_states` [B, C, 1, 77] (and for SDXL's
 * `addition_embed_type: text_time` also `text_embeds` [B, P] and `time_ids` [B, 6]); output
 * `noise_pred` [B, 4, h, w]. Any config `planUnet` accepts builds (see unet-config.ts).
 *
 * Layout: NCHW for the resnets, and ml-stable-diffusion's [B, C, 1, S] inside the transformers, so
 * a Transformer2DModel never transposes: NCHW → [B, C, 1, H·W] is a free reshape, every Linear is a
 * 1×1 conv (a plain GEMM), LayerNorm runs over axis 1, attention views q/k/v as [B, heads, d, S] and
 * `encoder_hidden_states` already arrives as [B, C, 1, 77]. Linear weights are stored [out, in, 1, 1]
 * as in Apple's Unet.mlpackage; every const keeps its diffusers module path (`down_blocks_1_...`).
 *
 * The sinusoidal time projections (timestep, time_ids) are computed in fp32 even at fp16 precision —
 * diffusers does too ("timesteps ... will always return f32 tensors"): with t up to 999 an fp16
 * argument would be off by up to 0.5 rad — and cast to fp16 after the sin/cos.
 */
import path from 'node:path';
import type { Var } from '../mil/builder.js';
import { ConfigError, ModelFormatError } from '../errors.js';
import type { UnetConfig } from './diffusers-config.js';
import {
  attention, computeDType, conv2d, gelu, groupNorm, layerNorm, linear, linearConv, modelInput, modelOutput, opName, param, scalar,
  silu, sliceByIndex, upsampleNearest2x, type AttentionImplementation, type ConvertContext,
} from './layers.js';
import { planUnet, type TransformerPlan, type UnetActivation, type UnetPlan } from './unet-config.js';

export interface UnetConvertOptions {
  /** Latent height / width (default: the config's sample_size). */
  latentHeight?: number;
  latentWidth?: number;
  /** 2 = classifier-free guidance in one call (ml-stable-diffusion's default), 1 = `--unet-batch-one`. */
  batchSize?: number;
  /** Overrides ctx.attention. */
  attention?: AttentionImplementation;
  /** Text tokens (CLIP: 77). */
  sequenceLength?: number;
  /** SDXL time_ids per sample: 6 (base: size, crop, target) or 5 (refiner: size, crop, aesthetic score). */
  timeIdsCount?: number;
}

export interface UnetGraph {
  inputs: Var[];
  outputs: Var[];
  plan: UnetPlan;
}

/** Builds the UNet into ctx.builder; every weight of ctx.weights must be used (ModelFormatError otherwise). */
export function convertUnet(ctx: ConvertContext, config: UnetConfig | Record<string, unknown>, options: UnetConvertOptions = {}): UnetGraph {
  const typed = isUnetConfig(config);
  const raw = typed ? config.reader.raw : config;
  // errors name config.json: the typed config knows its file; a raw one sits beside the weights
  const file = typed ? config.file : path.join(ctx.weights.dir, 'config.json');
  const plan = planUnet(raw, { file });
  const ss = raw['sample_size'];
  const sampleHW = typeof ss === 'number' ? [ss, ss] : Array.isArray(ss) && ss.length === 2 ? ss : [];
  const H = options.latentHeight ?? sampleHW[0];
  const W = options.latentWidth ?? sampleHW[1];
  if (!isPosInt(H) || !isPosInt(W)) throw new ConfigError('UNet conversion needs the latent height and width (options or the config\'s sample_size)', { file });
  const B = options.batchSize ?? 2;
  if (!isPosInt(B)) throw new ConfigError(`UNet batch size must be a positive integer, got ${B}`);
  const L = options.sequenceLength ?? 77;
  const c: ConvertContext = options.attention ? { ...ctx, attention: options.attention } : ctx;
  const net = new UnetBuilder(c, plan, B);

  const b = c.builder;
  const sample = modelInput(c, 'sample', [B, plan.inChannels, H, W]);
  const timestep = b.input('timestep', 'fp32', [B]); // stays fp32: see the file comment
  const ehs = modelInput(c, 'encoder_hidden_states', [B, plan.crossAttentionDim, 1, L]);
  const inputs: Var[] = [sample, timestep, ehs];
  let textEmbeds: Var | undefined, timeIds: Var | undefined;
  const nIds = options.timeIdsCount ?? 6;
  if (plan.textTime) {
    const textDim = plan.textTime.projectionInputDim - nIds * plan.textTime.timeEmbedDim;
    if (textDim <= 0) {
      throw new ConfigError(`projection_class_embeddings_input_dim ${plan.textTime.projectionInputDim} leaves no room for text_embeds beside ${nIds} time ids × addition_time_embed_dim ${plan.textTime.timeEmbedDim}`, { file });
    }
    textEmbeds = modelInput(c, 'text_embeds', [B, textDim]);
    timeIds = b.input('time_ids', 'fp32', [B, nIds]);
    inputs.push(textEmbeds, timeIds);
  }

  const noise = net.forward(sample, timestep, ehs, textEmbeds, timeIds, nIds);
  const out = modelOutput(c, noise, 'noise_pred');

  const unused = c.weights.unusedNames();
  if (unused.length > 0) {
    throw new ModelFormatError(`the UNet config does not use ${unused.length} weight(s) of the checkpoint: ${unused.slice(0, 5).join(', ')}${unused.length > 5 ? ', …' : ''}`, { file: c.weights.dir });
  }
  return { inputs, outputs: [out], plan };
}

function isUnetConfig(c: UnetConfig | Record<string, unknown>): c is UnetConfig {
  const r = (c as UnetConfig).reader;
  return typeof r === 'object' && r !== null && typeof (r as { raw?: unknown }).raw === 'object';
}
const isPosInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;

/** torch's float32 `get_timestep_embedding` frequencies: exp(-ln(10000)·i / (half − shift)), each step rounded to fp32. */
export function timestepFrequencies(half: number, shift: number): Float32Array {
  const f = Math.fround;
  const e0 = f(-Math.log(10000));
  return Float32Array.from({ length: half }, (_, i) => f(Math.exp(f(f(e0 * i) / f(half - shift)))));
}

class UnetBuilder {
  private tact!: Var;
  private ehs!: Var;

  constructor(private readonly ctx: ConvertContext, private readonly plan: UnetPlan, private readonly batch: number) {}

  private get b() { return this.ctx.builder; }

  forward(sample: Var, timestep: Var, ehs: Var, textEmbeds: Var | undefined, timeIds: Var | undefined, nIds: number): Var {
    const { plan, b } = this;
    this.ehs = ehs;
    // 1. time
    let temb = this.timeEmbedding('time_embedding', this.sinusoidal(timestep, plan.blockOutChannels[0]!, 'time_proj'), plan.actFn, plan.timestepPostAct);
    if (plan.textTime && textEmbeds && timeIds) {
      const ad = plan.textTime.timeEmbedDim;
      const flat = b.op('reshape', { x: timeIds, shape: [this.batch * nIds] }, { name: 'add_time_proj_ids' });
      const te = b.op('reshape', { x: this.sinusoidal(flat, ad, 'add_time_proj'), shape: [this.batch, nIds * ad] }, { name: 'add_time_proj_flat' });
      const cat = b.op('concat', { values: [textEmbeds, te], axis: 1 }, { name: 'add_embeds' });
      const aug = this.timeEmbedding('add_embedding', cat, 'silu', null);
      temb = b.op('add', { x: temb, y: aug }, { name: 'time_embedding_with_add' });
    }
    if (plan.timeEmbeddingActFn) temb = this.act(temb, plan.timeEmbeddingActFn, 'time_embed_act');
    // Every ResnetBlock2D applies its nonlinearity to temb before time_emb_proj: compute it once.
    this.tact = this.act(temb, plan.actFn, 'temb_act');

    // 2. pre-process
    let x = sample;
    if (plan.centerInputSample) {
      x = b.op('sub', { x: b.op('mul', { x, y: scalar(this.ctx, 2) }, { name: 'center_input_scaled' }), y: scalar(this.ctx, 1) }, { name: 'center_input' });
    }
    x = this.conv('conv_in', x, { kernel: plan.convInKernel, cout: plan.blockOutChannels[0]!, padding: (plan.convInKernel - 1) / 2 });

    // 3. down
    const skips: Var[] = [x];
    plan.down.forEach((blk, i) => {
      blk.transformers.forEach((t, l) => {
        x = this.resnet(`down_blocks.${i}.resnets.${l}`, x, blk.outChannels);
        if (t) x = this.transformer(`down_blocks.${i}.attentions.${l}`, x, t);
        skips.push(x);
      });
      if (blk.addDownsample) {
        x = this.downsample(`down_blocks.${i}.downsamplers.0.conv`, x, blk.outChannels);
        skips.push(x);
      }
    });

    // 4. mid
    if (plan.mid) {
      x = this.resnet('mid_block.resnets.0', x, plan.mid.channels, plan.mid.outputScaleFactor);
      x = this.transformer('mid_block.attentions.0', x, plan.mid.transformer);
      x = this.resnet('mid_block.resnets.1', x, plan.mid.channels, plan.mid.outputScaleFactor);
    }

    // 5. up
    plan.up.forEach((blk, i) => {
      blk.transformers.forEach((t, l) => {
        const skip = skips.pop();
        if (!skip) throw new ConfigError(`up_blocks.${i} needs more skip connections than the down blocks give`);
        x = b.op('concat', { values: [x, skip], axis: 1 }, { name: opName(`up_blocks.${i}.resnets.${l}`, 'cat') });
        x = this.resnet(`up_blocks.${i}.resnets.${l}`, x, blk.outChannels);
        if (t) x = this.transformer(`up_blocks.${i}.attentions.${l}`, x, t);
      });
      if (blk.addUpsample) x = this.upsample(`up_blocks.${i}.upsamplers.0.conv`, x, blk.outChannels, skips.at(-1));
    });
    if (skips.length !== 0) throw new ConfigError(`the up blocks leave ${skips.length} skip connection(s) of the down blocks unused`);

    // 6. post-process
    const c0 = plan.blockOutChannels[0]!;
    x = groupNorm(this.ctx, x, 'conv_norm_out', { groups: plan.normNumGroups, eps: plan.normEps });
    x = this.act(x, plan.actFn, 'conv_act');
    return this.conv('conv_out', x, { kernel: plan.convOutKernel, cout: plan.outChannels, padding: (plan.convOutKernel - 1) / 2, cin: c0 });
  }

  /** get_timestep_embedding(x, dim, flip_sin_to_cos, freq_shift) on fp32 `x` [N] → [N, dim] in the compute dtype. */
  private sinusoidal(x: Var, dim: number, name: string): Var {
    const { b, plan } = this;
    const half = Math.floor(dim / 2);
    const n = x.shape[0] as number;
    const freqs = b.const(`${name}_freqs`, timestepFrequencies(half, plan.freqShift), [1, half], 'fp32');
    const args = b.op('mul', { x: b.op('reshape', { x, shape: [n, 1] }, { name: `${name}_col` }), y: freqs }, { name: `${name}_args` });
    const sin = b.op('sin', { x: args }, { name: `${name}_sin`, outputs: [{ dtype: 'fp32', shape: [n, half] }] });
    const cos = b.op('cos', { x: args }, { name: `${name}_cos`, outputs: [{ dtype: 'fp32', shape: [n, half] }] });
    const parts: Var[] = plan.flipSinToCos ? [cos, sin] : [sin, cos];
    if (dim % 2 === 1) parts.push(b.const(`${name}_pad`, new Float32Array(n), [n, 1], 'fp32'));
    const emb = b.op('concat', { values: parts, axis: 1 }, { name: `${name}_emb` });
    return computeDType(this.ctx) === 'fp32' ? emb : b.op('cast', { x: emb, dtype: computeDType(this.ctx) }, { name: `${name}_emb_cast` });
  }

  /** TimestepEmbedding: linear_1 → act → linear_2 (→ post act). */
  private timeEmbedding(path: string, x: Var, act: UnetActivation, postAct: UnetActivation | null): Var {
    const tdim = this.plan.timeEmbedDim;
    this.expect(`${path}.linear_1.weight`, [tdim, x.shape[1] as number]);
    this.expect(`${path}.linear_2.weight`, [tdim, tdim]);
    let h = linear(this.ctx, x, `${path}.linear_1`);
    h = this.act(h, act, opName(path, 'act'));
    h = linear(this.ctx, h, `${path}.linear_2`);
    return postAct ? this.act(h, postAct, opName(path, 'post_act')) : h;
  }

  private act(x: Var, kind: UnetActivation, name: string): Var {
    const b = this.b;
    switch (kind) {
      case 'silu': return silu(this.ctx, x, name);
      case 'gelu': return gelu(this.ctx, x, 'exact', name);
      case 'relu': return b.op('relu', { x }, { name });
      case 'mish': // x · tanh(softplus(x)); MIL has no mish
        return b.op('mul', { x, y: b.op('tanh', { x: b.op('softplus', { x }, { name: `${name}_softplus` }) }, { name: `${name}_tanh` }) }, { name });
    }
  }

  /** A weight must have exactly this shape (ModelFormatError naming it otherwise). */
  private expect(name: string, shape: number[]): void {
    const got = this.ctx.weights.shape(name);
    if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
      throw new ModelFormatError(`weight '${name}' has shape [${got.join(', ')}], the config implies [${shape.join(', ')}]`, { file: this.ctx.weights.dir });
    }
  }

  private conv(path: string, x: Var, o: { kernel: number; cout: number; padding: number; cin?: number; stride?: number }): Var {
    this.expect(`${path}.weight`, [o.cout, o.cin ?? (x.shape[1] as number), o.kernel, o.kernel]);
    return conv2d(this.ctx, x, path, { padding: o.padding, stride: o.stride ?? 1 });
  }

  /** ResnetBlock2D (time_embedding_norm default / scale_shift; 1×1 conv_shortcut when channels change). */
  private resnet(path: string, x: Var, cout: number, outputScale = 1): Var {
    const { ctx, b, plan } = this;
    const cin = x.shape[1] as number;
    let h = groupNorm(ctx, x, `${path}.norm1`, { groups: plan.normNumGroups, eps: plan.normEps });
    h = this.act(h, plan.actFn, opName(path, 'act1'));
    h = this.conv(`${path}.conv1`, h, { kernel: 3, cout, padding: 1, cin });
    const shift = plan.resnetTimeScaleShift === 'scale_shift';
    const tw = shift ? 2 * cout : cout;
    this.expect(`${path}.time_emb_proj.weight`, [tw, plan.timeEmbedDim]);
    const t = b.op('reshape', { x: linear(ctx, this.tact, `${path}.time_emb_proj`), shape: [this.batch, tw, 1, 1] }, { name: opName(path, 'temb') });
    if (!shift) h = b.op('add', { x: h, y: t }, { name: opName(path, 'add_temb') });
    h = groupNorm(ctx, h, `${path}.norm2`, { groups: plan.normNumGroups, eps: plan.normEps });
    if (shift) {
      const scale = sliceByIndex(ctx, t, [0, 0, 0, 0], [this.batch, cout, 1, 1], opName(path, 'temb_scale'));
      const bias = sliceByIndex(ctx, t, [0, cout, 0, 0], [this.batch, 2 * cout, 1, 1], opName(path, 'temb_shift'));
      const onePlus = b.op('add', { x: scale, y: scalar(ctx, 1) }, { name: opName(path, 'temb_scale1') });
      h = b.op('add', { x: b.op('mul', { x: h, y: onePlus }, { name: opName(path, 'scaled') }), y: bias }, { name: opName(path, 'shifted') });
    }
    h = this.act(h, plan.actFn, opName(path, 'act2'));
    h = this.conv(`${path}.conv2`, h, { kernel: 3, cout, padding: 1 });
    let skip = x;
    if (cin !== cout || ctx.weights.has(`${path}.conv_shortcut.weight`)) skip = this.conv(`${path}.conv_shortcut`, x, { kernel: 1, cout, padding: 0 });
    let y = b.op('add', { x: skip, y: h }, { name: outputScale === 1 ? opName(path) : opName(path, 'sum') });
    if (outputScale !== 1) y = b.op('real_div', { x: y, y: scalar(ctx, outputScale) }, { name: opName(path) });
    return y;
  }

  /** Transformer2DModel (continuous input) in [B, C, 1, H·W]; proj_in / proj_out as 1×1 convs either way. */
  private transformer(path: string, x: Var, t: TransformerPlan): Var {
    const { ctx, b, plan } = this;
    const [B, C, H, W] = x.shape as [number, number, number, number];
    const inner = t.heads * t.headDim;
    let h = groupNorm(ctx, x, `${path}.norm`, { groups: plan.normNumGroups, eps: 1e-6 });
    h = this.projection(`${path}.proj_in`, h, inner, C);
    let s: Var = b.op('reshape', { x: h, shape: [B, inner, 1, H * W] }, { name: opName(path, 'seq') });
    for (let l = 0; l < t.layers; l++) s = this.basicBlock(`${path}.transformer_blocks.${l}`, s, t);
    h = b.op('reshape', { x: s, shape: [B, inner, H, W] }, { name: opName(path, 'image') });
    h = this.projection(`${path}.proj_out`, h, C, inner);
    return b.op('add', { x: h, y: x }, { name: opName(path) });
  }

  /** proj_in / proj_out: nn.Linear (use_linear_projection) or a 1×1 nn.Conv2d — the same GEMM on NCHW. */
  private projection(path: string, x: Var, cout: number, cin: number): Var {
    if (this.plan.useLinearProjection) {
      this.expect(`${path}.weight`, [cout, cin]);
      return linearConv(this.ctx, x, path);
    }
    return this.conv(path, x, { kernel: 1, cout, padding: 0, cin });
  }

  /** BasicTransformerBlock: self-attention, cross-attention, GEGLU feed-forward, pre-LayerNorm residuals. */
  private basicBlock(path: string, s: Var, t: TransformerPlan): Var {
    const { ctx, b } = this;
    const eps = 1e-5;
    let n = layerNorm(ctx, s, `${path}.norm1`, { eps, axis: 1 });
    s = b.op('add', { x: this.attn(`${path}.attn1`, n, t.onlyCrossAttention ? this.ehs : n, t), y: s }, { name: opName(path, 'attn1_res') });
    n = layerNorm(ctx, s, `${path}.norm2`, { eps, axis: 1 });
    s = b.op('add', { x: this.attn(`${path}.attn2`, n, this.ehs, t), y: s }, { name: opName(path, 'attn2_res') });
    n = layerNorm(ctx, s, `${path}.norm3`, { eps, axis: 1 });
    return b.op('add', { x: this.feedForward(`${path}.ff`, n), y: s }, { name: opName(path) });
  }

  private attn(path: string, x: Var, context: Var, t: TransformerPlan): Var {
    const inner = t.heads * t.headDim;
    this.expect(`${path}.to_q.weight`, [inner, x.shape[1] as number]);
    this.expect(`${path}.to_k.weight`, [inner, context.shape[1] as number]);
    this.expect(`${path}.to_v.weight`, [inner, context.shape[1] as number]);
    this.expect(`${path}.to_out.0.weight`, [x.shape[1] as number, inner]);
    const q = linearConv(this.ctx, x, `${path}.to_q`);
    const k = linearConv(this.ctx, context, `${path}.to_k`);
    const v = linearConv(this.ctx, context, `${path}.to_v`);
    const o = this.ctx.attention === 'original'
      ? this.attentionOriginal(q, k, v, t.heads, opName(path))
      : attention(this.ctx, q, k, v, { heads: t.heads, layout: 'BC1S', name: opName(path) });
    return linearConv(this.ctx, o, `${path}.to_out.0`);
  }

  /**
   * softmax(q·kᵀ/√d)·v on [B, C, 1, S] viewed as [B, heads, d, S] (free reshapes, no transposes).
   * The 1/√d scale goes on q ([B, C, Sq]) rather than on the scores ([B, heads, Sq, Sk]) when that is
   * the smaller tensor — at SD's 64×64 latents the self-attention scores are 4096² per head, and one
   * less pass over them is a sizeable share of the step.
   */
  private attentionOriginal(q: Var, k: Var, v: Var, heads: number, name: string): Var {
    const { ctx, b } = this;
    const [B, C, , Sq] = q.shape as [number, number, number, number];
    const Sk = k.shape[3] as number;
    const d = C / heads;
    const scale = scalar(ctx, 1 / Math.sqrt(d));
    const scaleQ = C <= heads * Sk;
    const qs = scaleQ ? b.op('mul', { x: q, y: scale }, { name: `${name}_q_scaled` }) : q;
    const qh = b.op('reshape', { x: qs, shape: [B, heads, d, Sq] }, { name: `${name}_q_heads` });
    const kh = b.op('reshape', { x: k, shape: [B, heads, d, Sk] }, { name: `${name}_k_heads` });
    const vh = b.op('reshape', { x: v, shape: [B, heads, d, Sk] }, { name: `${name}_v_heads` });
    let w = b.op('matmul', { x: qh, y: kh, transpose_x: true, transpose_y: false }, { name: `${name}_scores` }); // [B, H, Sq, Sk]
    if (!scaleQ) w = b.op('mul', { x: w, y: scale }, { name: `${name}_scaled` });
    w = b.op('softmax', { x: w, axis: 3 }, { name: `${name}_weights` });
    const o = b.op('matmul', { x: vh, y: w, transpose_x: false, transpose_y: true }, { name: `${name}_heads_out` }); // [B, H, d, Sq]
    return b.op('reshape', { x: o, shape: [B, C, 1, Sq] }, { name: `${name}_out` });
  }

  /** FeedForward with GEGLU: proj → (h, gate) halves on the channel axis → h · gelu(gate) → net.2. */
  private feedForward(path: string, x: Var): Var {
    const { ctx, b } = this;
    const [B, C, , S] = x.shape as [number, number, number, number];
    const [two] = ctx.weights.shape(`${path}.net.0.proj.weight`) as [number];
    const ffInner = two / 2;
    this.expect(`${path}.net.0.proj.weight`, [2 * ffInner, C]);
    this.expect(`${path}.net.2.weight`, [C, ffInner]);
    const proj = linearConv(ctx, x, `${path}.net.0.proj`);
    const half = { dtype: proj.dtype, shape: [B, ffInner, 1, S] };
    const parts = b.op('split', { x: proj, num_splits: 2, axis: 1 }, { name: opName(path, 'geglu_split'), outputs: [half, half] }).all;
    const gated = b.op('mul', { x: parts[0]!, y: gelu(ctx, parts[1]!, 'exact', opName(path, 'geglu_gelu')) }, { name: opName(path, 'geglu') });
    return linearConv(ctx, gated, `${path}.net.2`);
  }

  /** Downsample2D: 3×3 conv, stride 2, padding `downsample_padding` (0 → diffusers pads right/bottom by 1). */
  private downsample(path: string, x: Var, cout: number): Var {
    const p = this.plan.downsamplePadding;
    this.expect(`${path}.weight`, [cout, x.shape[1] as number, 3, 3]);
    if (p !== 0) return conv2d(this.ctx, x, path, { stride: 2, padding: p });
    const weight = param(this.ctx, `${path}.weight`);
    const bias = param(this.ctx, `${path}.bias`, { expect: [cout] });
    return this.b.op('conv', { x, weight, bias, strides: [2, 2], pad_type: 'custom', pad: [0, 1, 0, 1], dilations: [1, 1], groups: 1 }, { name: opName(path) });
  }

  /**
   * Upsample2D: nearest ×2, then 3×3 conv. When the latent size is not a multiple of the total
   * downscale, diffusers interpolates straight to the skip's size; for a skip of 2n−1 (what a
   * stride-2, padding-1 conv leaves of an odd size) nearest-to-size equals ×2 cropped by one.
   */
  private upsample(path: string, x: Var, cout: number, next: Var | undefined): Var {
    let h = upsampleNearest2x(this.ctx, x, opName(path, 'upsampled'));
    if (next) {
      const [B, C, H2, W2] = h.shape as [number, number, number, number];
      const th = next.shape[2] as number, tw = next.shape[3] as number;
      if ((th !== H2 && th !== H2 - 1) || (tw !== W2 && tw !== W2 - 1)) {
        throw new ConfigError(`${path}: cannot upsample ${H2 / 2}×${W2 / 2} to the skip connection's ${th}×${tw}; use a latent size divisible by ${2 ** this.plan.up.filter(u => u.addUpsample).length}`);
      }
      if (th !== H2 || tw !== W2) h = sliceByIndex(this.ctx, h, [0, 0, 0, 0], [B, C, th, tw], opName(path, 'cropped'));
    }
    return this.conv(path, h, { kernel: 3, cout, padding: 1 });
  }
}
