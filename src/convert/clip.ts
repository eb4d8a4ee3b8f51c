/**
 * CLIPTextModel / CLIPTextModelWithProjection (transformers 4.36) → an ML Program with
 * apple/ml-stable-diffusion's I/O: input `input_ids` [1, 77] float32 (token ids as floats, as
 * torch2coreml traces it); outputs for SD 1.x `last_hidden_state` (after the final layer norm) and
 * `pooled_outputs`; for SDXL `hidden_embeds` (= hidden_states[-2], the penultimate layer's output
 * WITHOUT the final layer norm, what diffusers' encode_prompt uses) and `pooled_outputs`. The pooled
 * output is the final-layer-normed state at the first end-of-text token (transformers 4.36: argmax of
 * the ids when eos_token_id == 2, the legacy configs; else the first position equal to
 * eos_token_id), projected by `text_projection` for the WithProjection model (`text_embeds`).
 */
import type { Var } from '../mil/builder.js';
import { ModelFormatError } from '../errors.js';
import type { ClipTextConfig } from './diffusers-config.js';
import {
  attention, computeDType, gelu, layerNorm, linear, modelOutput, param, quickGelu, sliceByIndex, type ConvertContext,
} from './layers.js';

export type TextEncoderKind = 'sd' | 'sdxl';

export interface ClipConvertOptions {
  /** `sd`: last_hidden_state + pooled_outputs; `sdxl`: hidden_embeds + pooled_outputs. */
  kind: TextEncoderKind;
  /** Token count (the tokenizer's model_max_length); default 77. */
  sequenceLength?: number;
}

/** Output feature names by kind (what pipeline.json's textEncoderOutputs records). */
export const TEXT_ENCODER_OUTPUTS: Record<TextEncoderKind, { hidden: string; pooled: string }> = {
  sd: { hidden: 'last_hidden_state', pooled: 'pooled_outputs' },
  sdxl: { hidden: 'hidden_embeds', pooled: 'pooled_outputs' },
};

/** Causal-mask fill: ml-stable-diffusion's -1e4 (finite in fp16; exp(-1e4) is 0 in fp32 as well). */
const MASKED = -1e4;

/** Builds the text encoder into ctx.builder (inputs, outputs, weights); every weight is consumed. */
export function buildClipTextEncoder(ctx: ConvertContext, config: ClipTextConfig, options: ClipConvertOptions): void {
  const b = ctx.builder;
  const w = ctx.weights;
  const s = options.sequenceLength ?? 77;
  const c = config.hiddenSize;
  if (s > config.maxPositionEmbeddings) {
    throw config.reader.error('max_position_embeddings', `${config.maxPositionEmbeddings} is shorter than the ${s} tokens the pipeline feeds`);
  }
  w.skip('text_model.embeddings.position_ids'); // a buffer older checkpoints saved; it is arange(max_positions)

  // ids stay fp32 → int32 (never fp16: ids above 2048 are not representable there).
  const ids = b.input('input_ids', 'fp32', [1, s]);
  const idsInt = b.op('cast', { x: ids, dtype: 'int32' }, { name: 'input_ids_int32' });
  const tokenTable = param(ctx, 'text_model.embeddings.token_embedding.weight', { expect: [config.vocabSize, c] });
  const tok = b.op('gather', { x: tokenTable, indices: idsInt, axis: 0 }, { name: 'text_model_embeddings_token_embedding' });
  let pos = param(ctx, 'text_model.embeddings.position_embedding.weight', { expect: [config.maxPositionEmbeddings, c] });
  if (config.maxPositionEmbeddings !== s) pos = sliceByIndex(ctx, pos, [0, 0], [s, c], 'text_model_embeddings_position_ids_slice');
  let h: Var = b.op('add', { x: tok, y: pos }, { name: 'text_model_embeddings' });

  const maskData = new Float32Array(s * s);
  for (let i = 0; i < s; i++) for (let j = i + 1; j < s; j++) maskData[i * s + j] = MASKED;
  const mask = b.const('text_model_causal_attention_mask', maskData, [1, 1, s, s], computeDType(ctx));

  const eps = config.layerNormEps;
  const hidden: Var[] = [h]; // hidden_states as transformers returns them: embeddings, then each layer
  for (let i = 0; i < config.numHiddenLayers; i++) {
    const p = `text_model.encoder.layers.${i}`;
    const x = layerNorm(ctx, h, `${p}.layer_norm1`, { eps });
    const q = linear(ctx, x, `${p}.self_attn.q_proj`);
    const k = linear(ctx, x, `${p}.self_attn.k_proj`);
    const v = linear(ctx, x, `${p}.self_attn.v_proj`);
    const a = attention(ctx, q, k, v, { heads: config.numAttentionHeads, layout: 'BSC', mask, name: `${p.replace(/\./g, '_')}_self_attn`, implementation: 'original' });
    h = b.op('add', { x: h, y: linear(ctx, a, `${p}.self_attn.out_proj`) }, { name: `${p.replace(/\./g, '_')}_attn_residual` });
    let m = linear(ctx, layerNorm(ctx, h, `${p}.layer_norm2`, { eps }), `${p}.mlp.fc1`);
    const actName = `${p.replace(/\./g, '_')}_mlp_act`;
    m = config.hiddenAct === 'quick_gelu' ? quickGelu(ctx, m, actName) : gelu(ctx, m, config.hiddenAct === 'gelu' ? 'exact' : 'tanh', actName);
    h = b.op('add', { x: h, y: linear(ctx, m, `${p}.mlp.fc2`) }, { name: `${p.replace(/\./g, '_')}_mlp_residual` });
    hidden.push(h);
  }
  const last = layerNorm(ctx, h, 'text_model.final_layer_norm', { eps });

  // Pooling position (transformers 4.36 CLIPTextTransformer.forward).
  const key = config.eosTokenId === 2
    ? ids
    : b.op('cast', { x: b.op('equal', { x: idsInt, y: config.eosTokenId }, { name: 'input_ids_is_eos' }), dtype: 'fp32' }, { name: 'input_ids_is_eos_f' });
  const at = b.op('reduce_argmax', { x: key, axis: -1, keep_dims: false }, { name: 'text_model_eos_position', outputs: [{ dtype: 'int32', shape: [1] }] });
  const pooledRow = b.op('gather', { x: last, indices: at, axis: 1 }, { name: 'text_model_pooled_row' }); // [1, 1, C]
  let pooled: Var = b.op('reshape', { x: pooledRow, shape: [1, c] }, { name: 'text_model_pooled' });
  if (config.architecture === 'CLIPTextModelWithProjection') pooled = linear(ctx, pooled, 'text_projection', { bias: false });

  const names = TEXT_ENCODER_OUTPUTS[options.kind];
  modelOutput(ctx, options.kind === 'sd' ? last : hidden[hidden.length - 2]!, names.hidden);
  modelOutput(ctx, pooled, names.pooled);

  const unused = w.unusedNames();
  if (unused.length) throw new ModelFormatError(`weights the CLIP text converter did not use: ${unused.slice(0, 8).join(', ')}${unused.length > 8 ? ` (+${unused.length - 8} more)` : ''}`, { file: w.dir });
}
