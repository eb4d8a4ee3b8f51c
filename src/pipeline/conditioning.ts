/**
 * Text conditioning as diffusers builds it, in the layouts the UNet takes:
 * - prompt embeddings [77, C] (diffusers' [1, 77, C] without the batch), C = 768 (SD 1.x) or 768 + 1280
 *   (SDXL: both encoders' penultimate hidden states concatenated on the channel axis);
 * - `encoder_hidden_states` rows [C, 1, 77] (ml-stable-diffusion's `transpose(0, 2, 1)[:, :, None, :]`);
 * - SDXL `text_embeds` (encoder 2's pooled projection) and `time_ids` [H, W, 0, 0, H, W].
 * The unconditional branch is row 0, the prompt row 1 (diffusers' `torch.cat([negative, prompt])`).
 */

export interface Embeddings {
  /** [seqLen, channels], row-major. */
  hidden: Float32Array;
  seqLen: number;
  channels: number;
  /** SDXL: pooled text embedding of encoder 2. */
  pooled?: Float32Array;
}

export interface Conditioning {
  uncond: Embeddings;
  cond: Embeddings;
  /** SDXL: original_size + crops_coords_top_left + target_size. */
  timeIds?: Float32Array;
}

/** Concatenates per-token features of several encoders: [S, C1] ++ [S, C2] → [S, C1 + C2]. */
export function concatChannels(parts: { hidden: Float32Array; seqLen: number; channels: number }[]): Embeddings {
  const seqLen = parts[0]!.seqLen;
  for (const p of parts) {
    if (p.seqLen !== seqLen) throw new RangeError(`text encoders disagree on the sequence length (${seqLen} vs ${p.seqLen})`);
    if (p.hidden.length !== p.seqLen * p.channels) throw new RangeError(`embedding has ${p.hidden.length} values, expected ${p.seqLen}x${p.channels}`);
  }
  const channels = parts.reduce((a, p) => a + p.channels, 0);
  const hidden = new Float32Array(seqLen * channels);
  for (let s = 0; s < seqLen; s++) {
    let off = s * channels;
    for (const p of parts) {
      hidden.set(p.hidden.subarray(s * p.channels, (s + 1) * p.channels), off);
      off += p.channels;
    }
  }
  return { hidden, seqLen, channels };
}

/** All-zero embeddings shaped like `like` (SDXL's negative branch with force_zeros_for_empty_prompt). */
export function zerosLike(like: Embeddings): Embeddings {
  return {
    hidden: new Float32Array(like.hidden.length),
    seqLen: like.seqLen,
    channels: like.channels,
    ...(like.pooled ? { pooled: new Float32Array(like.pooled.length) } : {}),
  };
}

/** [S, C] → [C, 1, S]: one row of the UNet's `encoder_hidden_states` [B, C, 1, S]. */
export function toUnetLayout(e: Embeddings): Float32Array {
  const { seqLen: S, channels: C, hidden } = e;
  const out = new Float32Array(S * C);
  for (let s = 0; s < S; s++) for (let c = 0; c < C; c++) out[c * S + s] = hidden[s * C + c]!;
  return out;
}

/** SDXL micro-conditioning: (original_size, crops_coords_top_left, target_size) at the output size. */
export function sdxlTimeIds(height: number, width: number): Float32Array {
  return Float32Array.from([height, width, 0, 0, height, width]);
}

/** Stacks equal-length rows into one batch. */
export function stackRows(rows: Float32Array[]): Float32Array {
  const n = rows[0]!.length;
  const out = new Float32Array(n * rows.length);
  rows.forEach((r, i) => {
    if (r.length !== n) throw new RangeError(`batch rows differ in length (${n} vs ${r.length})`);
    out.set(r, i * n);
  });
  return out;
}

/**
 * Classifier-free guidance `uncond + g · (cond − uncond)` in float32 steps, as torch computes
 * `noise_pred_uncond + guidance_scale * (noise_pred_text - noise_pred_uncond)`.
 */
export function applyGuidance(uncond: Float32Array, cond: Float32Array, scale: number): Float32Array {
  const g = Math.fround(scale);
  const out = new Float32Array(uncond.length);
  for (let i = 0; i < out.length; i++) {
    const u = uncond[i]!;
    out[i] = u + Math.fround(g * Math.fround(cond[i]! - u));
  }
  return out;
}
