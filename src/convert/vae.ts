/**
 * AutoencoderKL's decoder (diffusers 0.25) → an ML Program with ml-stable-diffusion's VAEDecoder
 * I/O: input `z` [1, latent_channels, h, w] (latents already divided by the scaling factor), output
 * `image` [1, out_channels, 8h, 8w], the raw decode (not clamped, not rescaled to [0, 1]) —
 * torch2coreml's VAEDecoder is `decoder(post_quant_conv(z))`.
 * Structure: post_quant_conv (1×1) → decoder.conv_in → mid block (resnet, single-head attention over
 * the H·W positions, resnet) → up blocks (reversed channels; layers_per_block + 1 resnets each, a
 * nearest ×2 upsample + 3×3 conv on all but the last) → conv_norm_out → SiLU → conv_out.
 * The encoder's weights (`encoder.*`, `quant_conv.*`) live in the same file and are skipped.
 */
import type { Var } from '../mil/builder.js';
import { ModelFormatError } from '../errors.js';
import type { VaeConfig } from './diffusers-config.js';
import { attention, conv2d, groupNorm, linear, modelInput, modelOutput, opName, silu, upsampleNearest2x, type ConvertContext } from './layers.js';

/** The decoder's resnets and attention use eps 1e-6 (diffusers hard-codes it for the VAE). */
const EPS = 1e-6;

export interface VaeDecoderOptions {
  /** Latent height and width (the image is 2^(blocks−1) times larger: 8× for SD). */
  latentHeight: number;
  latentWidth: number;
}

/** Spatial upscaling of the decoder: 2^(number of up blocks − 1). */
export function vaeScaleFactor(config: VaeConfig): number {
  return 2 ** (config.blockOutChannels.length - 1);
}

export function buildVaeDecoder(ctx: ConvertContext, config: VaeConfig, options: VaeDecoderOptions): void {
  const w = ctx.weights;
  for (const name of w.names()) if (name.startsWith('encoder.') || name.startsWith('quant_conv.')) w.skip(name);
  const g = config.normNumGroups;

  let x: Var = modelInput(ctx, 'z', [1, config.latentChannels, options.latentHeight, options.latentWidth]);
  if (config.usePostQuantConv) x = conv2d(ctx, x, 'post_quant_conv');
  const channels = [...config.blockOutChannels].reverse();
  x = conv2d(ctx, x, 'decoder.conv_in', { padding: 1 });
  x = resnet(ctx, x, 'decoder.mid_block.resnets.0', g);
  x = attentionBlock(ctx, x, 'decoder.mid_block.attentions.0', g);
  x = resnet(ctx, x, 'decoder.mid_block.resnets.1', g);
  for (let i = 0; i < channels.length; i++) {
    const p = `decoder.up_blocks.${i}`;
    for (let j = 0; j < config.layersPerBlock + 1; j++) x = resnet(ctx, x, `${p}.resnets.${j}`, g);
    if (i < channels.length - 1) {
      x = upsampleNearest2x(ctx, x, opName(`${p}.upsamplers.0`, 'nearest'));
      x = conv2d(ctx, x, `${p}.upsamplers.0.conv`, { padding: 1 });
    }
  }
  x = groupNorm(ctx, x, 'decoder.conv_norm_out', { groups: g, eps: EPS });
  x = silu(ctx, x, 'decoder_conv_act');
  x = conv2d(ctx, x, 'decoder.conv_out', { padding: 1 });
  modelOutput(ctx, x, 'image');

  const unused = w.unusedNames();
  if (unused.length) throw new ModelFormatError(`weights the VAE decoder converter did not use: ${unused.slice(0, 8).join(', ')}${unused.length > 8 ? ` (+${unused.length - 8} more)` : ''}`, { file: w.dir });
}

/** diffusers ResnetBlock2D without a time embedding (pre-norm, SiLU, 3×3 convs, 1×1 shortcut when channels change). */
function resnet(ctx: ConvertContext, x: Var, p: string, groups: number): Var {
  const b = ctx.builder;
  let h = silu(ctx, groupNorm(ctx, x, `${p}.norm1`, { groups, eps: EPS }), opName(p, 'act1'));
  h = conv2d(ctx, h, `${p}.conv1`, { padding: 1 });
  h = silu(ctx, groupNorm(ctx, h, `${p}.norm2`, { groups, eps: EPS }), opName(p, 'act2'));
  h = conv2d(ctx, h, `${p}.conv2`, { padding: 1 });
  const shortcut = ctx.weights.has(`${p}.conv_shortcut.weight`) ? conv2d(ctx, x, `${p}.conv_shortcut`) : x;
  return b.op('add', { x: shortcut, y: h }, { name: opName(p) });
}

/**
 * The mid block's Attention (one head of all channels, group norm first, residual). Checkpoints
 * saved before diffusers 0.14 name its layers query / key / value / proj_attn; both are read.
 */
function attentionBlock(ctx: ConvertContext, x: Var, p: string, groups: number): Var {
  const b = ctx.builder;
  const [n, c, hh, ww] = x.shape as [number, number, number, number];
  const legacy = !ctx.weights.has(`${p}.to_q.weight`) && ctx.weights.has(`${p}.query.weight`);
  const names = legacy ? { q: 'query', k: 'key', v: 'value', out: 'proj_attn' } : { q: 'to_q', k: 'to_k', v: 'to_v', out: 'to_out.0' };
  const normed = groupNorm(ctx, x, `${p}.group_norm`, { groups, eps: EPS });
  const seq = b.op('transpose', { x: b.op('reshape', { x: normed, shape: [n, c, hh * ww] }, { name: opName(p, 'flat') }), perm: [0, 2, 1] }, { name: opName(p, 'tokens') });
  const q = linear(ctx, seq, `${p}.${names.q}`);
  const k = linear(ctx, seq, `${p}.${names.k}`);
  const v = linear(ctx, seq, `${p}.${names.v}`);
  const a = attention(ctx, q, k, v, { heads: 1, layout: 'BSC', name: opName(p, 'attn'), implementation: 'original' });
  const o = linear(ctx, a, `${p}.${names.out}`);
  const back = b.op('reshape', { x: b.op('transpose', { x: o, perm: [0, 2, 1] }, { name: opName(p, 'channels') }), shape: [n, c, hh, ww] }, { name: opName(p, 'unflat') });
  return b.op('add', { x: back, y: x }, { name: opName(p) });
}
