/** Loads the fixtures' UNet call (components/<model>/unet) as executor inputs and reference inputs. */
import path from 'node:path';
import fs from 'node:fs';
import { readNpy } from '../../src/runtime/npy.js';
import type { ReferenceInputs } from './unet-reference.js';

export const FIXTURES = path.resolve('../shared/fixtures/pipeline-reference');

export interface UnetCall {
  /** Executor inputs in ml-stable-diffusion layout (encoder_hidden_states [B, C, 1, 77]). */
  inputs: Record<string, { data: Float32Array; shape: number[] }>;
  reference: ReferenceInputs;
  noisePred: Float32Array;
  batch: number;
}

const f32 = (file: string) => {
  const a = readNpy(file);
  const data = a.data instanceof BigInt64Array ? Float32Array.from(a.data, Number) : Float32Array.from(a.data as Float32Array);
  return { data, shape: a.shape };
};

export function loadUnetCall(model: 'tiny-sd15' | 'tiny-sdxl'): UnetCall {
  const dir = path.join(FIXTURES, 'components', model, 'unet');
  const sample = f32(path.join(dir, 'sample.npy'));
  const B = sample.shape[0]!;
  const t = f32(path.join(dir, 'timestep.npy'));
  // diffusers broadcasts a 1-element timestep to the batch (timesteps.expand(B))
  const timestep = Float32Array.from({ length: B }, (_, i) => t.data[t.data.length === 1 ? 0 : i]!);
  const ehs = f32(path.join(dir, 'encoder_hidden_states.npy')); // [B, 77, C] as diffusers takes it
  const [, L, C] = ehs.shape as [number, number, number];
  const ehsT = new Float32Array(ehs.data.length); // → [B, C, 1, L] as ml-stable-diffusion feeds it
  for (let b = 0; b < B; b++) for (let l = 0; l < L; l++) for (let c = 0; c < C; c++) ehsT[(b * C + c) * L + l] = ehs.data[(b * L + l) * C + c]!;
  const inputs: UnetCall['inputs'] = {
    sample, timestep: { data: timestep, shape: [B] }, encoder_hidden_states: { data: ehsT, shape: [B, C, 1, L] },
  };
  const reference: ReferenceInputs = {
    sample: { d: Float64Array.from(sample.data), s: sample.shape },
    timestep: Array.from(timestep),
    encoderHiddenStates: { d: Float64Array.from(ehs.data), s: ehs.shape },
  };
  if (fs.existsSync(path.join(dir, 'text_embeds.npy'))) {
    const te = f32(path.join(dir, 'text_embeds.npy'));
    const ti = f32(path.join(dir, 'time_ids.npy'));
    inputs['text_embeds'] = te;
    inputs['time_ids'] = ti;
    reference.textEmbeds = { d: Float64Array.from(te.data), s: te.shape };
    reference.timeIds = { d: Float64Array.from(ti.data), s: ti.shape };
  }
  return { inputs, reference, noisePred: f32(path.join(dir, 'noise_pred.npy')).data, batch: B };
}

/** max |a - b| / max |b|: the error relative to the reference's scale. */
export function relMaxErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let e = 0, m = 0;
  for (let i = 0; i < b.length; i++) {
    e = Math.max(e, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return e / m;
}
