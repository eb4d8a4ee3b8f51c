/**
 * End to end on the tiny random-weight SD 1.5 and SDXL pipelines: `convert` at fp32, then
 * `coreml-optimize generate` for "cat in a tuxedo, oil on canvas", seed 231, 8 steps, guidance 7.5,
 * 128×128 with each pipeline's own scheduler, against diffusers' generation (final latents ≤ 1e-4
 * relative, 8-bit image PSNR ≥ 50 dB: on these models the prompt alone moves the image by only
 * 37–46 dB, so a broken text encoder cannot pass), plus determinism, recorded UNet inputs that
 * `predict` reads, PNG text chunks, an ml-stable-diffusion folder layout, and cancellation.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertDiffusers } from '../../src/convert/convert.js';
import { AbortError } from '../../src/errors.js';
import { floatImageTo8bit, psnr8bit } from '../../src/pipeline/image.js';
import { decodePng, readPngText } from '../../src/pipeline/png.js';
import { StableDiffusionPipeline } from '../../src/pipeline/stable-diffusion.js';
import { readNpy } from '../../src/runtime/npy.js';
import { runCli } from '../cli/run-cli.js';
import { REF, relError } from './reference.js';

const hasFixtures = fs.existsSync(path.join(REF, 'models'));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sd-e2e-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const PROMPT = 'cat in a tuxedo, oil on canvas';
const PNG_NAME = 'cat_in_a_tuxedo,_oil_on_canvas.231.final.png';
const f32 = (p: string) => readNpy(path.join(REF, p)).data as Float32Array;

interface GenerateJson { images: string[]; latents: string[]; seed: number; scheduler: string; width: number; height: number; modelKind: string; unetSamples: { dir: string; count: number } | null; timings: Record<string, unknown> }

const CASES = [
  { model: 'sd15', caseName: 'sd15-pndm-cat231', scheduler: 'PNDMScheduler', unetCalls: 9, kind: 'sd' },
  { model: 'sdxl', caseName: 'sdxl-euler-cat231', scheduler: 'EulerDiscreteScheduler', unetCalls: 8, kind: 'sdxl' },
] as const;

describe.skipIf(!hasFixtures)('generate end to end vs diffusers (tiny models, fp32)', () => {
  const converted: Record<string, string> = {};
  beforeAll(async () => {
    for (const c of CASES) {
      converted[c.model] = path.join(tmp, `tiny-${c.model}`);
      await convertDiffusers(path.join(REF, 'models', `tiny-${c.model}`), { outDir: converted[c.model]!, precision: 'fp32' });
    }
  });

  for (const c of CASES) {
    describe(c.caseName, () => {
      let json: GenerateJson;
      const out = path.join(tmp, `out-${c.model}`);
      const rec = path.join(tmp, `unet-inputs-${c.model}`);

      it('CLI generate --json: latents within 1e-4 of diffusers, image PSNR ≥ 50 dB, text chunks, UNet samples', async () => {
        const r = await runCli(['generate', '--prompt', PROMPT, '-i', converted[c.model]!, '-o', out, '--seed', '231',
          '--num-inference-steps', '8', '--guidance-scale', '7.5', '--save-latents', '--record-unet-inputs', rec, '--threads', '2', '--json']);
        expect(r.code, r.stderr).toBe(0);
        json = JSON.parse(r.stdout) as GenerateJson;
        expect(json.images).toEqual([path.join(out, PNG_NAME)]);
        expect([json.seed, json.scheduler, json.width, json.height, json.modelKind]).toEqual([231, c.scheduler, 128, 128, c.kind]);
        const latents = readNpy(json.latents[0]!);
        expect(latents.shape).toEqual([1, 4, 16, 16]);
        const latentErr = relError(latents.data as Float32Array, f32(`cases/${c.caseName}/final_latents.npy`));
        expect(latentErr).toBeLessThanOrEqual(1e-4);
        const png = fs.readFileSync(json.images[0]!);
        const ours = decodePng(png);
        const theirs = decodePng(fs.readFileSync(path.join(REF, 'cases', c.caseName, 'image.png')));
        expect(psnr8bit(ours.pixels, theirs.pixels)).toBeGreaterThanOrEqual(50);
        expect(psnr8bit(ours.pixels, floatImageTo8bit(f32(`cases/${c.caseName}/image.npy`)))).toBeGreaterThanOrEqual(50);
        expect(readPngText(png)).toMatchObject({ prompt: PROMPT, seed: '231', steps: '8', guidance_scale: '7.5', scheduler: c.scheduler, model: `tiny-${c.model}` });
        expect(json.unetSamples).toEqual({ dir: rec, count: c.unetCalls });
      });

      it('recorded UNet inputs: `predict` on a sample folder reproduces diffusers\' noise prediction for that step', async () => {
        const step = 3;
        const sampleDir = path.join(rec, String(step).padStart(4, '0'));
        const names = fs.readdirSync(sampleDir).sort();
        expect(names).toEqual(c.kind === 'sdxl'
          ? ['encoder_hidden_states.npy', 'sample.npy', 'text_embeds.npy', 'time_ids.npy', 'timestep.npy']
          : ['encoder_hidden_states.npy', 'sample.npy', 'timestep.npy']);
        const predOut = path.join(tmp, `pred-${c.model}`);
        const r = await runCli(['predict', path.join(converted[c.model]!, 'Unet.mlpackage'), '--inputs', sampleDir, '--out', predOut, '--threads', '2']);
        expect(r.code, r.stderr).toBe(0);
        const n = 2 * 4 * 16 * 16;
        const want = f32(`cases/${c.caseName}/unet_noise_pred.npy`).subarray(step * n, (step + 1) * n);
        expect(relError(readNpy(path.join(predOut, 'noise_pred.npy')).data as Float32Array, want)).toBeLessThanOrEqual(1e-4);
      });

      it('API: prompt embeddings equal diffusers\'; same seed and threads give a byte-identical PNG', async () => {
        const pipeline = await StableDiffusionPipeline.load(converted[c.model]!, { backend: 'executor', threads: 2 });
        const result = await pipeline.generate({ prompt: PROMPT, seed: 231, numInferenceSteps: 8, guidanceScale: 7.5 });
        expect(relError(result.promptEmbeds, f32(`cases/${c.caseName}/prompt_embeds.npy`))).toBeLessThanOrEqual(1e-5);
        if (c.kind === 'sd') expect(relError(result.negativePromptEmbeds, f32(`cases/${c.caseName}/negative_prompt_embeds.npy`))).toBeLessThanOrEqual(1e-5);
        else expect(result.negativePromptEmbeds.every((v) => v === 0)).toBe(true);
        expect(result.images[0]!.png.equals(fs.readFileSync(json.images[0]!))).toBe(true);
      });

      it('an apple/ml-stable-diffusion folder (Stable_Diffusion_version_<model>_<component>.mlpackage, no pipeline.json) gives the same image', async () => {
        const mlsd = path.join(tmp, `mlsd-${c.model}`);
        const version = c.model === 'sd15' ? 'runwayml_stable-diffusion-v1-5' : 'stabilityai_stable-diffusion-xl-base-1.0';
        const components = { TextEncoder: 'text_encoder', TextEncoder2: 'text_encoder_2', Unet: 'unet', VAEDecoder: 'vae_decoder' } as const;
        for (const [ours, theirs] of Object.entries(components)) {
          const src = path.join(converted[c.model]!, `${ours}.mlpackage`);
          if (fs.existsSync(src)) fs.cpSync(src, path.join(mlsd, `Stable_Diffusion_version_${version}_${theirs}.mlpackage`), { recursive: true });
        }
        for (const f of ['vocab.json', 'merges.txt']) fs.copyFileSync(path.join(converted[c.model]!, f), path.join(mlsd, f));
        const pipeline = await StableDiffusionPipeline.load(mlsd, { backend: 'executor', threads: 2 });
        // Inferred: kind from TextEncoder2, size from the UNet, published scheduler and VAE factor (0.13025 for SDXL).
        expect(pipeline.config).toMatchObject({
          modelKind: c.kind, modelName: version, latentHeight: 16, latentWidth: 16, unetBatchSize: 2,
          vaeScalingFactor: c.kind === 'sdxl' ? 0.13025 : 0.18215, scheduler: { className: c.scheduler },
        });
        const result = await pipeline.generate({ prompt: PROMPT, seed: 231, numInferenceSteps: 8 });
        const fromPipelineJson = decodePng(fs.readFileSync(json.images[0]!));
        expect(Buffer.from(result.images[0]!.pixels).equals(Buffer.from(fromPipelineJson.pixels))).toBe(true);
        expect(readPngText(result.images[0]!.png)['model']).toBe(version);
      });
    });
  }

  it('a batch-1 UNet (two calls per step) gives the same latents as diffusers', async () => {
    const dir = path.join(tmp, 'tiny-sd15-batch1');
    await convertDiffusers(path.join(REF, 'models', 'tiny-sd15'), { outDir: dir, precision: 'fp32', batchSize: 1 });
    const pipeline = await StableDiffusionPipeline.load(dir, { backend: 'executor', threads: 2 });
    expect(pipeline.config.unetBatchSize).toBe(1);
    const rec = path.join(tmp, 'unet-inputs-batch1');
    const result = await pipeline.generate({ prompt: PROMPT, seed: 231, numInferenceSteps: 8, recordUnetInputs: rec });
    expect(result.unetSampleDirs).toHaveLength(18);
    expect(readNpy(path.join(rec, '0001', 'sample.npy')).shape).toEqual([1, 4, 16, 16]);
    expect(relError(result.latents, f32('cases/sd15-pndm-cat231/final_latents.npy'))).toBeLessThanOrEqual(1e-4);
  });

  it('another scheduler (euler_ancestral: noise from numpy\'s stream after the latents) is deterministic run to run', async () => {
    const pipeline = await StableDiffusionPipeline.load(converted['sd15']!, { backend: 'executor', threads: 2 });
    const run = () => pipeline.generate({ prompt: PROMPT, seed: 7, numInferenceSteps: 4, scheduler: 'euler_ancestral' });
    const [a, b] = [await run(), await run()];
    expect(a.scheduler).toBe('EulerAncestralDiscreteScheduler');
    expect(readPngText(a.images[0]!.png)['scheduler']).toBe('EulerAncestralDiscreteScheduler');
    expect(a.images[0]!.png.equals(b.images[0]!.png)).toBe(true);
    // A different seed draws different noise and latents.
    const c = await pipeline.generate({ prompt: PROMPT, seed: 8, numInferenceSteps: 4, scheduler: 'euler_ancestral' });
    expect(relError(c.latents, a.latents)).toBeGreaterThan(0.1);
  });

  it('SDXL converted at fp16 (the default): image PSNR ≥ 50 dB vs diffusers\' fp32 generation', async () => {
    // fp16 weights and activations move the final latents by ~6e-4 of their peak over 8 steps (64.6 dB
    // measured); another prompt lands at 42-44 dB, so 50 dB still tells a right generation from a wrong one.
    const dir = path.join(tmp, 'tiny-sdxl-fp16');
    await convertDiffusers(path.join(REF, 'models', 'tiny-sdxl'), { outDir: dir, precision: 'fp16' });
    const pipeline = await StableDiffusionPipeline.load(dir, { backend: 'executor', threads: 2 });
    const result = await pipeline.generate({ prompt: PROMPT, seed: 231, numInferenceSteps: 8 });
    expect(relError(result.latents, f32('cases/sdxl-euler-cat231/final_latents.npy'))).toBeLessThanOrEqual(3e-3);
    const theirs = decodePng(fs.readFileSync(path.join(REF, 'cases', 'sdxl-euler-cat231', 'image.png')));
    expect(psnr8bit(result.images[0]!.pixels, theirs.pixels)).toBeGreaterThanOrEqual(50);
  });

  it('cancellation with real models: abort after 2 steps → AbortError, no PNG left behind', async () => {
    const pipeline = await StableDiffusionPipeline.load(converted['sd15']!, { backend: 'executor' });
    const out = path.join(tmp, 'cancelled');
    const controller = new AbortController();
    let steps = 0;
    await expect(pipeline.generate({
      prompt: PROMPT, seed: 231, numInferenceSteps: 8, outputDir: out, signal: controller.signal,
      onProgress: (done) => { steps = done; if (done === 2) controller.abort(); },
    })).rejects.toThrow(AbortError);
    expect(steps).toBe(2);
    expect(fs.existsSync(out) ? fs.readdirSync(out) : []).toEqual([]);
  });

  it('CLI errors are one line with a non-zero exit code', async () => {
    const r = await runCli(['generate', '--prompt', PROMPT, '-i', converted['sd15']!, '-o', path.join(tmp, 'x'), '--height', '256', '--width', '256']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^coreml-optimize: .*256x256 is not this UNet's size/);
    const bad = await runCli(['generate', '--prompt', PROMPT, '-i', converted['sd15']!, '-o', path.join(tmp, 'x'), '--scheduler', 'heun']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--scheduler must be one of pndm, ddim, euler, euler_ancestral, dpmpp, lms/);
    const unit = await runCli(['generate', '--prompt', PROMPT, '-i', converted['sd15']!, '-o', path.join(tmp, 'x'), '--compute-unit', 'GPU']);
    expect(unit.stderr).toMatch(/--compute-unit must be one of ALL, CPU_ONLY, CPU_AND_GPU, CPU_AND_NE/);
  });
});
