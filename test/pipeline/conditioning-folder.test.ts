/**
 * SDXL conditioning from the encoders' outputs equals diffusers' prompt_embeds / add_text_embeds /
 * add_time_ids for the reference case; models-folder resolution for our layout and ml-stable-diffusion's.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, ModelFormatError, UnsupportedError } from '../../src/errors.js';
import { applyGuidance, concatChannels, sdxlTimeIds, toUnetLayout, zerosLike } from '../../src/pipeline/conditioning.js';
import { resolvePipelineFolder } from '../../src/pipeline/pipeline-folder.js';
import { readNpy } from '../../src/runtime/npy.js';

const REF = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/fixtures/pipeline-reference');
const hasFixtures = fs.existsSync(path.join(REF, 'cases'));
const f32 = (p: string) => readNpy(path.join(REF, p)).data as Float32Array;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sd-folder-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(!hasFixtures)('SDXL conditioning vs diffusers (tiny-sdxl, cat231)', () => {
  it('penultimate hidden states of both encoders concatenated = prompt_embeds; pooled from encoder 2; time_ids', () => {
    const enc = 'components/tiny-sdxl/text_encoder';
    const a = { hidden: f32(`${enc}/cat231/hidden_states_m2.npy`), seqLen: 77, channels: 32 };
    const b = { hidden: f32(`${enc}_2/cat231/hidden_states_m2.npy`), seqLen: 77, channels: 32 };
    const joined = concatChannels([a, b]);
    expect(joined.channels).toBe(64);
    expect(Buffer.from(joined.hidden.buffer).equals(Buffer.from(f32('cases/sdxl-euler-cat231/prompt_embeds.npy').buffer))).toBe(true);
    const neg = zerosLike({ ...joined, pooled: f32(`${enc}_2/cat231/text_embeds.npy`) });
    expect(Array.from(f32('cases/sdxl-euler-cat231/negative_prompt_embeds.npy')).every((v) => v === 0)).toBe(true);
    expect(neg.hidden.every((v) => v === 0) && neg.pooled!.every((v) => v === 0)).toBe(true);
    const addText = f32('cases/sdxl-euler-cat231/add_text_embeds.npy');
    expect(Array.from(addText.subarray(32))).toEqual(Array.from(f32(`${enc}_2/cat231/text_embeds.npy`)));
    expect(Array.from(f32('cases/sdxl-euler-cat231/add_time_ids.npy'))).toEqual([...sdxlTimeIds(128, 128), ...sdxlTimeIds(128, 128)]);
  });

  it('toUnetLayout: [77, C] → [C, 1, 77] (ml-stable-diffusion transpose(0, 2, 1)[:, :, None, :])', () => {
    const e = { hidden: f32('cases/sd15-pndm-cat231/prompt_embeds.npy'), seqLen: 77, channels: 32 };
    const t = toUnetLayout(e);
    for (const [s, c] of [[0, 0], [5, 31], [76, 7], [40, 20]] as const) expect(t[c * 77 + s]).toBe(e.hidden[s * 32 + c]);
  });

  it('guidance in float32 equals numpy float32 uncond + g*(cond - uncond) from the recorded UNet outputs', () => {
    const pred = readNpy(path.join(REF, 'cases/sd15-pndm-cat231/unet_noise_pred.npy'));
    const n = 4 * 16 * 16;
    const u = (pred.data as Float32Array).subarray(0, n);
    const c = (pred.data as Float32Array).subarray(n, 2 * n);
    const g = applyGuidance(u, c, 7.5);
    // float64 reference: the float32 result is within one rounding of the exact value.
    for (let i = 0; i < n; i++) {
      const exact = u[i]! + 7.5 * (c[i]! - u[i]!);
      expect(Math.abs(g[i]! - exact)).toBeLessThanOrEqual(Math.abs(exact) * 3e-7 + 1e-7);
    }
  });
});

function touchPackage(dir: string, name: string): string {
  const p = path.join(dir, name);
  fs.mkdirSync(p, { recursive: true });
  return p;
}

describe('models folder resolution', () => {
  it('ml-stable-diffusion packages: components by name, model version, tokenizer files', () => {
    const dir = path.join(tmp, 'mlsd-xl');
    for (const c of ['text_encoder', 'text_encoder_2', 'unet', 'vae_decoder', 'vae_encoder']) {
      touchPackage(dir, `Stable_Diffusion_version_stabilityai_stable-diffusion-xl-base-1.0_${c}.mlpackage`);
    }
    fs.writeFileSync(path.join(dir, 'vocab.json'), '{}');
    fs.writeFileSync(path.join(dir, 'merges.txt'), '#version: 0.2\n');
    const f = resolvePipelineFolder(dir);
    expect(f.layout).toBe('ml-stable-diffusion-packages');
    expect(f.modelName).toBe('stabilityai_stable-diffusion-xl-base-1.0');
    expect(path.basename(f.models.textEncoder)).toMatch(/_text_encoder\.mlpackage$/);
    expect(path.basename(f.models.textEncoder2!)).toMatch(/_text_encoder_2\.mlpackage$/);
    expect(path.basename(f.models.unet)).toMatch(/_unet\.mlpackage$/);
    expect(f.tokenizers).toEqual([{ dir, padToken: '<|endoftext|>' }, { dir, padToken: '!' }]);
    expect(f.modelKind).toBeUndefined(); // decided from the models at load
  });

  it('compiled Resources/*.mlmodelc (Swift layout)', () => {
    const dir = path.join(tmp, 'swift');
    for (const c of ['TextEncoder', 'Unet', 'VAEDecoder', 'SafetyChecker']) touchPackage(path.join(dir, 'Resources'), `${c}.mlmodelc`);
    const f = resolvePipelineFolder(dir);
    expect(f.layout).toBe('ml-stable-diffusion-compiled');
    expect(f.models.textEncoder2).toBeUndefined();
    expect(f.models.unet).toBe(path.join(dir, 'Resources', 'Unet.mlmodelc'));
    expect(f.tokenizers).toEqual([]);
  });

  it('pipeline.json: paths resolved and checked, fields typed', () => {
    const dir = path.join(tmp, 'ours');
    for (const c of ['TextEncoder', 'Unet', 'VAEDecoder']) touchPackage(dir, `${c}.mlpackage`);
    const json = {
      format: 'coreml-optimize-pipeline', version: 1, modelKind: 'sd', source: '/models/tiny-sd15',
      models: { textEncoder: 'TextEncoder.mlpackage', unet: 'Unet.mlpackage', vaeDecoder: 'VAEDecoder.mlpackage' },
      tokenizers: [{ dir: '.', padToken: '<|endoftext|>' }],
      scheduler: { className: 'PNDMScheduler', config: { steps_offset: 1 } },
      vaeScalingFactor: 0.18215, latentHeight: 16, latentWidth: 16, vaeScaleFactor: 8, unetBatchSize: 2,
    };
    fs.writeFileSync(path.join(dir, 'pipeline.json'), JSON.stringify(json));
    const f = resolvePipelineFolder(dir);
    expect(f.layout).toBe('pipeline.json');
    expect(f.modelKind).toBe('sd');
    expect(f.modelName).toBe('tiny-sd15');
    expect(f.scheduler).toEqual(json.scheduler);
    expect([f.latentHeight, f.latentWidth, f.unetBatchSize, f.vaeScalingFactor]).toEqual([16, 16, 2, 0.18215]);
    fs.writeFileSync(path.join(dir, 'pipeline.json'), JSON.stringify({ ...json, models: { ...json.models, unet: 'Missing.mlpackage' } }));
    expect(() => resolvePipelineFolder(dir)).toThrow(ModelFormatError);
    expect(() => resolvePipelineFolder(dir)).toThrow(/"models.unet" names Missing.mlpackage, which does not exist/);
    fs.writeFileSync(path.join(dir, 'pipeline.json'), JSON.stringify({ ...json, version: 2 }));
    expect(() => resolvePipelineFolder(dir)).toThrow(UnsupportedError);
    fs.writeFileSync(path.join(dir, 'pipeline.json'), '{"format": "coreml-optimize-pipeline", "x": Infinity, ');
    expect(() => resolvePipelineFolder(dir)).toThrow(/pipeline\.json: invalid JSON/);
  });

  it('clear errors: no folder, no UNet, two model versions, chunked UNet', () => {
    expect(() => resolvePipelineFolder(path.join(tmp, 'nope'))).toThrow(ConfigError);
    const empty = path.join(tmp, 'empty');
    fs.mkdirSync(empty);
    expect(() => resolvePipelineFolder(empty)).toThrow(/no pipeline\.json and no UNet model/);
    const two = path.join(tmp, 'two');
    for (const v of ['a', 'b']) touchPackage(two, `Stable_Diffusion_version_${v}_unet.mlpackage`);
    expect(() => resolvePipelineFolder(two)).toThrow(/packages of several models in one folder \(a, b\)/);
    const chunked = path.join(tmp, 'chunked');
    for (const c of ['TextEncoder', 'UnetChunk1', 'UnetChunk2', 'VAEDecoder']) touchPackage(path.join(chunked, 'Resources'), `${c}.mlmodelc`);
    expect(() => resolvePipelineFolder(chunked)).toThrow(/chunked UNets/);
  });
});
