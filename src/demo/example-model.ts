/**
 * The built-in example for `coreml-optimize demo`: a small diffusion-style ML Program (an SD-like
 * conv stem on a latent, and a transformer feed-forward + projection on text tokens) with
 * deterministic trained-looking fp16 weights. About 6.5 M weights, 13 MB.
 */
import { ProgramBuilder } from '../mil/builder.js';
import type { Model } from '../model.js';
import { syntheticFp16 } from '../util/synthetic.js';

export interface ExampleModelOptions {
  /** Core ML spec version: 9 (iOS18, default) allows every compression option; 7 is iOS16. */
  specVersion?: 7 | 9;
  seed?: number;
}

export async function buildExampleModel(dest: string, weightsPath: string, options: ExampleModelOptions = {}): Promise<Model> {
  const specVersion = options.specVersion ?? 9;
  let seed = options.seed ?? 2024;
  const b = new ProgramBuilder({ specVersion, weightsPath, shortDescription: 'coreml-optimize demo: SD-style conv stem + transformer feed-forward' });
  const weight = (name: string, shape: number[], fanIn: number) =>
    b.const(name, syntheticFp16({ count: shape.reduce((a, c) => a * c, 1), fanIn, seed: seed++ }), shape, 'fp16');
  const bias = (name: string, n: number) => b.const(name, syntheticFp16({ count: n, kind: 'bias', seed: seed++ }), [n], 'fp16');

  // Latent branch: conv 4→320 (3×3) → SiLU → conv 320→320 (3×3).
  const latent = b.input('sample', 'fp16', [1, 4, 32, 32]);
  const convIn = b.op('conv', { x: latent, weight: weight('conv_in_weight', [320, 4, 3, 3], 36), bias: bias('conv_in_bias', 320), pad_type: 'same', strides: [1, 1], dilations: [1, 1], groups: 1 }, { name: 'conv_in' });
  const act = b.op('silu', { x: convIn }, { name: 'conv_in_silu' });
  const conv2 = b.op('conv', { x: act, weight: weight('resnet_conv_weight', [320, 320, 3, 3], 2880), bias: bias('resnet_conv_bias', 320), pad_type: 'same', strides: [1, 1], dilations: [1, 1], groups: 1 }, { name: 'resnet_conv' });
  b.output(conv2, 'latent_features');

  // Text branch: feed-forward 768→3072→768 with GELU, residual, then a projection matmul.
  const tokens = b.input('hidden_states', 'fp16', [1, 77, 768]);
  const ff1 = b.op('linear', { x: tokens, weight: weight('ff_in_weight', [3072, 768], 768), bias: bias('ff_in_bias', 3072) }, { name: 'ff_in' });
  const gelu = b.op('gelu', { x: ff1, mode: 'EXACT' }, { name: 'ff_gelu' });
  const ff2 = b.op('linear', { x: gelu, weight: weight('ff_out_weight', [768, 3072], 3072), bias: bias('ff_out_bias', 768) }, { name: 'ff_out' });
  const residual = b.op('add', { x: tokens, y: ff2 }, { name: 'ff_residual' });
  const proj = b.op('matmul', { x: residual, y: weight('proj_weight', [768, 1024], 768), transpose_x: false, transpose_y: false }, { name: 'proj' });
  b.output(proj, 'text_features');
  return b.save(dest);
}
