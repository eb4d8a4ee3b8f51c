/**
 * The generation loop against diffusers, independent of the converter: replay backends stand in for
 * the models (the text encoders answer with the fixture's embeddings for the fixture's token ids, the
 * UNet with the recorded noise predictions) and check every input the pipeline gives them — scaled
 * samples, timesteps, encoder_hidden_states layout, SDXL text_embeds / time_ids — plus the latents
 * after every scheduler step and the VAE input, for both reference cases (≤ 1e-5 relative).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readInputDir } from '../../src/cli/commands/predict.js';
import { AbortError } from '../../src/errors.js';
import type { BackendTensor, FeatureSpec, ModelBackend } from '../../src/pipeline/backends/types.js';
import { readPngText } from '../../src/pipeline/png.js';
import { StableDiffusionPipeline, type PromptTokenizer } from '../../src/pipeline/stable-diffusion.js';
import { CLIPTokenizer } from '../../src/pipeline/tokenizer.js';
import { readNpy } from '../../src/runtime/npy.js';
import { REF, relError } from './reference.js';

const hasFixtures = fs.existsSync(path.join(REF, 'cases'));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sd-loop-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const npy = (p: string) => readNpy(path.join(REF, p));
const f32 = (p: string) => npy(p).data as Float32Array;

function transposeToUnet(hidden: Float32Array, channels: number): Float32Array {
  const out = new Float32Array(hidden.length);
  for (let s = 0; s < 77; s++) for (let c = 0; c < channels; c++) out[c * 77 + s] = hidden[s * channels + c]!;
  return out;
}

/** A text encoder that knows the fixture's prompts by their token ids. */
function replayTextEncoder(file: string, table: { ids: number[]; outputs: Record<string, BackendTensor> }[], outputs: FeatureSpec[]): ModelBackend & { calls: number } {
  const b = {
    kind: 'executor' as const, path: file, calls: 0,
    inputs: [{ name: 'input_ids', dtype: 'fp32', shape: [1, 77] }],
    outputs,
    async predict(inputs: Record<string, BackendTensor>) {
      b.calls++;
      const ids = Array.from(inputs['input_ids']!.data);
      const hit = table.find((t) => t.ids.every((v, i) => v === ids[i]));
      if (!hit) throw new Error(`${file}: unexpected token ids ${ids.slice(0, 12).join(' ')} ...`);
      return hit.outputs;
    },
  };
  return b;
}

interface UnetCheck { worstSample: number; calls: number; timesteps: number[] }

/** The UNet: checks its inputs against the recorded ones and answers with the recorded noise. */
function replayUnet(caseDir: string, opts: { batch: 1 | 2; channels: number; sdxl: boolean }): ModelBackend & { check: UnetCheck } {
  const samples = npy(`${caseDir}/unet_sample.npy`);
  const preds = f32(`${caseDir}/unet_noise_pred.npy`);
  // unet_timesteps.npy is float64 (not an executor dtype); case.json lists the same values.
  const ts = (JSON.parse(fs.readFileSync(path.join(REF, caseDir, 'case.json'), 'utf8')) as { timesteps: number[] }).timesteps;
  const n = 4 * 16 * 16;
  const neg = f32(`${caseDir}/negative_prompt_embeds.npy`);
  const pos = f32(`${caseDir}/prompt_embeds.npy`);
  const ehs = [transposeToUnet(neg, opts.channels), transposeToUnet(pos, opts.channels)];
  const check: UnetCheck = { worstSample: 0, calls: 0, timesteps: [] };
  const B = opts.batch;
  const inputs: FeatureSpec[] = [
    { name: 'sample', dtype: 'fp32', shape: [B, 4, 16, 16] },
    { name: 'timestep', dtype: 'fp32', shape: [B] },
    { name: 'encoder_hidden_states', dtype: 'fp32', shape: [B, opts.channels, 1, 77] },
    ...(opts.sdxl ? [{ name: 'text_embeds', dtype: 'fp32', shape: [B, 32] }, { name: 'time_ids', dtype: 'fp32', shape: [B, 6] }] : []),
  ];
  return {
    kind: 'executor', path: 'replay-unet', inputs, outputs: [{ name: 'noise_pred', dtype: 'fp32', shape: [B, 4, 16, 16] }], check,
    async predict(x: Record<string, BackendTensor>) {
      const call = check.calls++;
      const step = B === 2 ? call : Math.floor(call / 2);
      const rows = B === 2 ? [0, 1] : [call % 2];
      const t = x['timestep']!.data;
      expect(Array.from(t)).toEqual(rows.map(() => ts[step]));
      if (rows[0] === 0) check.timesteps.push(t[0]!);
      expect(x['sample']!.shape).toEqual([B, 4, 16, 16]);
      expect(x['encoder_hidden_states']!.shape).toEqual([B, opts.channels, 1, 77]);
      const out = new Float32Array(B * n);
      rows.forEach((r, k) => {
        const want = (samples.data as Float32Array).subarray((step * 2 + r) * n, (step * 2 + r + 1) * n);
        check.worstSample = Math.max(check.worstSample, relError(x['sample']!.data.subarray(k * n, (k + 1) * n), want));
        const e = x['encoder_hidden_states']!.data.subarray(k * 77 * opts.channels, (k + 1) * 77 * opts.channels);
        expect(relError(e, ehs[r]!)).toBeLessThanOrEqual(1e-6);
        if (opts.sdxl) {
          expect(Array.from(x['text_embeds']!.data.subarray(k * 32, (k + 1) * 32))).toEqual(Array.from(f32(`${caseDir}/add_text_embeds.npy`).subarray(r * 32, (r + 1) * 32)));
          expect(Array.from(x['time_ids']!.data.subarray(k * 6, (k + 1) * 6))).toEqual([128, 128, 0, 0, 128, 128]);
        }
        out.set(preds.subarray((step * 2 + r) * n, (step * 2 + r + 1) * n), k * n);
      });
      return { noise_pred: { data: out, shape: [B, 4, 16, 16] } };
    },
  };
}

/** The VAE: records its input and answers with diffusers' picture mapped back to [-1, 1] (CHW). */
function replayVae(caseDir: string): ModelBackend & { z?: Float32Array } {
  const img = f32(`${caseDir}/image.npy`);
  const b: ModelBackend & { z?: Float32Array } = {
    kind: 'executor', path: 'replay-vae',
    inputs: [{ name: 'z', dtype: 'fp32', shape: [1, 4, 16, 16] }],
    outputs: [{ name: 'image', dtype: 'fp32', shape: [1, 3, 128, 128] }],
    async predict(x: Record<string, BackendTensor>) {
      b.z = x['z']!.data as Float32Array;
      const chw = new Float32Array(3 * 128 * 128);
      for (let p = 0; p < 128 * 128; p++) for (let c = 0; c < 3; c++) chw[c * 128 * 128 + p] = img[p * 3 + c]! * 2 - 1;
      return { image: { data: chw, shape: [1, 3, 128, 128] } };
    },
  };
  return b;
}

const ids = (p: string) => Array.from(npy(p).data as BigInt64Array | Int32Array, Number);

function sd15Pipeline(batch: 1 | 2) {
  const c = 'cases/sd15-pndm-cat231';
  const te = replayTextEncoder('replay-te', [
    { ids: ids('components/tiny-sd15/text_encoder/cat231/ids.npy'), outputs: { last_hidden_state: { data: f32(`${c}/prompt_embeds.npy`), shape: [1, 77, 32] } } },
    { ids: ids('components/tiny-sd15/text_encoder/empty/ids.npy'), outputs: { last_hidden_state: { data: f32(`${c}/negative_prompt_embeds.npy`), shape: [1, 77, 32] } } },
  ], [{ name: 'last_hidden_state', dtype: 'fp32', shape: [1, 77, 32] }, { name: 'pooled_outputs', dtype: 'fp32', shape: [1, 32] }]);
  const unet = replayUnet(c, { batch, channels: 32, sdxl: false });
  const vae = replayVae(c);
  const tokenizers: PromptTokenizer[] = [CLIPTokenizer.fromDir(path.join(REF, 'models/tiny-sd15/tokenizer'))];
  const pipeline = StableDiffusionPipeline.fromComponents({ textEncoder: te, unet, vaeDecoder: vae, tokenizers }, {
    modelName: 'tiny-sd15',
    scheduler: { className: 'PNDMScheduler', config: JSON.parse(fs.readFileSync(path.join(REF, 'models/tiny-sd15/scheduler/scheduler_config.json'), 'utf8')) },
    vaeScalingFactor: 0.18215,
  });
  return { pipeline, unet, vae, te };
}

function sdxlPipeline() {
  const c = 'cases/sdxl-euler-cat231';
  const comp = 'components/tiny-sdxl';
  const te1 = replayTextEncoder('replay-te1', [
    { ids: ids(`${comp}/text_encoder/cat231/ids.npy`), outputs: { hidden_embeds: { data: f32(`${comp}/text_encoder/cat231/hidden_states_m2.npy`), shape: [1, 77, 32] }, pooled_outputs: { data: f32(`${comp}/text_encoder/cat231/pooler_output.npy`), shape: [1, 32] } } },
  ], [{ name: 'hidden_embeds', dtype: 'fp32', shape: [1, 77, 32] }, { name: 'pooled_outputs', dtype: 'fp32', shape: [1, 32] }]);
  const te2 = replayTextEncoder('replay-te2', [
    { ids: ids(`${comp}/text_encoder_2/cat231/ids.npy`), outputs: { hidden_embeds: { data: f32(`${comp}/text_encoder_2/cat231/hidden_states_m2.npy`), shape: [1, 77, 32] }, pooled_outputs: { data: f32(`${comp}/text_encoder_2/cat231/text_embeds.npy`), shape: [1, 32] } } },
  ], [{ name: 'hidden_embeds', dtype: 'fp32', shape: [1, 77, 32] }, { name: 'pooled_outputs', dtype: 'fp32', shape: [1, 32] }]);
  const unet = replayUnet(c, { batch: 2, channels: 64, sdxl: true });
  const vae = replayVae(c);
  const tokenizers = [
    CLIPTokenizer.fromDir(path.join(REF, 'models/tiny-sdxl/tokenizer')),
    CLIPTokenizer.fromDir(path.join(REF, 'models/tiny-sdxl/tokenizer_2'), { padToken: '!' }),
  ];
  const pipeline = StableDiffusionPipeline.fromComponents({ textEncoder: te1, textEncoder2: te2, unet, vaeDecoder: vae, tokenizers }, {
    modelName: 'tiny-sdxl',
    scheduler: { className: 'EulerDiscreteScheduler', config: JSON.parse(fs.readFileSync(path.join(REF, 'models/tiny-sdxl/scheduler/scheduler_config.json'), 'utf8')) },
    vaeScalingFactor: 0.13025,
    forceZerosForEmptyPrompt: true,
  });
  return { pipeline, unet, vae, te1, te2 };
}

const PROMPT = 'cat in a tuxedo, oil on canvas';

describe.skipIf(!hasFixtures)('generation loop vs diffusers (replayed UNet)', () => {
  for (const [name, make, batch] of [
    ['sd15-pndm-cat231', () => sd15Pipeline(2), 2],
    ['sd15-pndm-cat231, batch-1 UNet (two calls per step)', () => sd15Pipeline(1), 1],
    ['sdxl-euler-cat231', () => sdxlPipeline(), 2],
  ] as const) {
    it(`${name}: UNet inputs, timesteps, every step's latents, VAE input`, async () => {
      const caseDir = name.startsWith('sd15') ? 'cases/sd15-pndm-cat231' : 'cases/sdxl-euler-cat231';
      const info = JSON.parse(fs.readFileSync(path.join(REF, caseDir, 'case.json'), 'utf8')) as { timesteps: number[]; vae_scaling_factor: number };
      const { pipeline, unet, vae } = make();
      const steps: Float32Array[] = [];
      const stepLatents = npy(`${caseDir}/step_latents.npy`);
      const n = 4 * 16 * 16;
      const result = await pipeline.generate({
        prompt: PROMPT, seed: 231, numInferenceSteps: 8, guidanceScale: 7.5,
        onProgress: (done, total) => { expect(total).toBe(info.timesteps.length); steps.push(new Float32Array(0)); expect(done).toBe(steps.length); },
      });
      expect(result.timesteps).toEqual(info.timesteps);
      expect(unet.check.calls).toBe(info.timesteps.length * (batch === 2 ? 1 : 2));
      expect(unet.check.timesteps).toEqual(info.timesteps);
      expect(unet.check.worstSample).toBeLessThanOrEqual(1e-5);
      expect(relError(result.latents, f32(`${caseDir}/final_latents.npy`))).toBeLessThanOrEqual(1e-5);
      // The last step's latents are the final ones; earlier steps were checked through the UNet samples.
      expect(relError(result.latents, (stepLatents.data as Float32Array).subarray((info.timesteps.length - 1) * n))).toBeLessThanOrEqual(1e-5);
      const z = f32(`${caseDir}/final_latents.npy`).map((v) => v / Math.fround(info.vae_scaling_factor));
      expect(relError(vae.z!, z)).toBeLessThanOrEqual(1e-5);
      // The replayed VAE answers with diffusers' picture: the PNG must carry it (and the settings).
      const png = result.images[0]!;
      expect([png.width, png.height]).toEqual([128, 128]);
      const text = readPngText(png.png);
      expect(text).toMatchObject({ prompt: PROMPT, seed: '231', steps: '8', guidance_scale: '7.5', scheduler: name.startsWith('sd15') ? 'PNDMScheduler' : 'EulerDiscreteScheduler' });
      expect(text['negative_prompt']).toBeUndefined();
    });
  }

  it('SDXL: no text encoder call for the negative branch (force_zeros_for_empty_prompt); an explicit "" is encoded', async () => {
    const { pipeline, te1, te2 } = sdxlPipeline();
    await pipeline.generate({ prompt: PROMPT, seed: 231, numInferenceSteps: 8 });
    expect([te1.calls, te2.calls]).toEqual([1, 1]);
    const again = sdxlPipeline();
    // "" has different ids than the prompt: the replay encoder refuses them, which proves it was asked.
    await expect(again.pipeline.generate({ prompt: PROMPT, negativePrompt: '', seed: 231, numInferenceSteps: 8 })).rejects.toThrow(/unexpected token ids 49406 49407/);
  });

  it('record-unet-inputs: one sample folder per UNet call that `predict --inputs` reads; save-latents; file names', async () => {
    const { pipeline } = sd15Pipeline(2);
    const rec = path.join(tmp, 'calib');
    const out = path.join(tmp, 'out');
    const result = await pipeline.generate({ prompt: PROMPT, seed: 231, numInferenceSteps: 8, recordUnetInputs: rec, outputDir: out, saveLatents: true });
    expect(result.unetSampleDirs).toHaveLength(9);
    const samples = npy('cases/sd15-pndm-cat231/unet_sample.npy');
    for (const [k, dir] of result.unetSampleDirs.entries()) {
      const inputs = readInputDir(dir, ['sample', 'timestep', 'encoder_hidden_states']);
      expect(inputs['sample']!.shape).toEqual([2, 4, 16, 16]);
      expect(relError(inputs['sample']!.data as Float32Array, (samples.data as Float32Array).subarray(k * 2048, (k + 1) * 2048))).toBeLessThanOrEqual(1e-5);
      expect(inputs['encoder_hidden_states']!.shape).toEqual([2, 32, 1, 77]);
    }
    const index = JSON.parse(fs.readFileSync(path.join(rec, 'index.json'), 'utf8')) as { samples: string[]; seed: number };
    expect(index.samples).toEqual(['0000', '0001', '0002', '0003', '0004', '0005', '0006', '0007', '0008']);
    expect(index.seed).toBe(231);
    expect(path.basename(result.images[0]!.path!)).toBe('cat_in_a_tuxedo,_oil_on_canvas.231.final.png');
    expect(fs.readFileSync(result.images[0]!.path!).equals(result.images[0]!.png)).toBe(true);
    const lat = readNpy(result.images[0]!.latentsPath!);
    expect(lat.shape).toEqual([1, 4, 16, 16]);
    expect(Buffer.from((lat.data as Float32Array).buffer).equals(Buffer.from(result.latents.buffer))).toBe(true);
    expect(fs.readdirSync(out).sort()).toEqual(['cat_in_a_tuxedo,_oil_on_canvas.231.final.latents.npy', 'cat_in_a_tuxedo,_oil_on_canvas.231.final.png']);
  });

  it('cancellation: an abort mid-loop rejects with AbortError and writes no PNG', async () => {
    const { pipeline, unet } = sd15Pipeline(2);
    const out = path.join(tmp, 'cancelled');
    const controller = new AbortController();
    const run = pipeline.generate({
      prompt: PROMPT, seed: 231, numInferenceSteps: 8, outputDir: out, signal: controller.signal,
      onProgress: (done) => { if (done === 3) controller.abort(); },
    });
    await expect(run).rejects.toThrow(AbortError);
    expect(unet.check.calls).toBe(3);
    expect(fs.existsSync(out) ? fs.readdirSync(out) : []).toEqual([]);
  });

  it('bad settings are ConfigErrors naming the problem', async () => {
    const { pipeline } = sd15Pipeline(2);
    await expect(pipeline.generate({ prompt: PROMPT, height: 256, width: 256 })).rejects.toThrow(/256x256 is not this UNet's size: it was converted for 16x16 latents = 128x128 pixels/);
    await expect(pipeline.generate({ prompt: PROMPT, seed: -1 })).rejects.toThrow(/seed must be an integer in \[0, 2\^32\)/);
    await expect(pipeline.generate({ prompt: PROMPT, numInferenceSteps: 0 })).rejects.toThrow(/numInferenceSteps/);
    await expect(pipeline.generate({ prompt: PROMPT, scheduler: 'nonesuch', numInferenceSteps: 2 })).rejects.toThrow(/nonesuch/);
  });
});
