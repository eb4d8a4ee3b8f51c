import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { convertDiffusers, type ConvertDiffusersResult } from '../../src/convert/convert.js';
import { readPipelineJson } from '../../src/convert/pipeline-json.js';
import { loadModel } from '../../src/model.js';
import { createExecutor } from '../../src/runtime/executor.js';
import { readNpy } from '../../src/runtime/npy.js';

const REF = '../shared/fixtures/pipeline-reference';
const MODELS = path.join(REF, 'models');
const COMPONENTS = path.join(REF, 'components');
const PROMPTS = ['cat231', 'astro93', 'empty'];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cmo-convert-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** max |a − b| / max |b| (error relative to the reference's peak, as Apple's PSNR uses the peak). */
function relToMax(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let peak = 0, err = 0;
  for (let i = 0; i < want.length; i++) { peak = Math.max(peak, Math.abs(want[i]!)); err = Math.max(err, Math.abs(got[i]! - want[i]!)); }
  return err / peak;
}
const floats = (file: string) => {
  const a = readNpy(file);
  return { shape: a.shape, data: a.data instanceof BigInt64Array ? Float32Array.from(a.data, Number) : a.data instanceof Int32Array ? Float32Array.from(a.data) : (a.data as Float32Array) };
};

async function run(pkg: string, inputs: Record<string, { data: Float32Array; shape: number[] }>) {
  const exec = createExecutor(await loadModel(pkg));
  return exec.predict(inputs);
}

/**
 * Tolerances (max error relative to the reference's peak). fp32: the executor computes in fp32 like
 * PyTorch, in another order (BLAS blocking, norms in double), so only rounding differs — measured
 * 2e-7 … 1.4e-6; 1e-5 leaves 7× margin, while a wrong op (missing bias, swapped heads, wrong eps)
 * moves these random models' outputs by ≥ 1e-2. fp16: weights are rounded to fp16 (2^-11 = 4.9e-4
 * relative each; the executor still computes in fp32) — measured 4.5e-4 … 1.1e-3 through 5 CLIP
 * layers / the VAE's 20 convs / the UNet (UNet: 1e-6 at fp32, 9e-4 at fp16); 5e-3 bounds that with
 * ~5× margin and still catches a wrong graph.
 */
const TOL = { fp32: 1e-5, fp16: 5e-3 } as const;

describe.each(['fp32', 'fp16'] as const)('convertDiffusers at %s', (precision) => {
  const out: Record<string, ConvertDiffusersResult> = {};
  beforeAll(async () => {
    for (const model of ['tiny-sd15', 'tiny-sdxl']) {
      const progress: [number, number][] = [];
      out[model] = await convertDiffusers(path.join(MODELS, model), {
        outDir: path.join(tmp, `${model}-${precision}`), precision, attention: 'original',
        components: model === 'tiny-sd15' ? ['text_encoder', 'unet', 'vae_decoder'] : ['text_encoder', 'text_encoder_2', 'unet', 'vae_decoder'],
        onProgress: (d, t) => progress.push([d, t]),
      });
      expect(progress.at(-1)![0]).toBe(progress.at(-1)![1]); // every weight element counted
      expect(progress.every(([d], i) => i === 0 || d >= progress[i - 1]![0])).toBe(true);
    }
  });

  it('SD 1.x text encoder: last_hidden_state and pooled_outputs match transformers', async () => {
    const pkg = out['tiny-sd15']!.packages.text_encoder!;
    for (const p of PROMPTS) {
      const dir = path.join(COMPONENTS, 'tiny-sd15', 'text_encoder', p);
      const ids = floats(path.join(dir, 'ids.npy'));
      const res = await run(pkg, { input_ids: ids });
      expect(Object.keys(res).sort()).toEqual(['last_hidden_state', 'pooled_outputs']);
      expect(res['last_hidden_state']!.shape).toEqual([1, 77, 32]);
      expect(res['pooled_outputs']!.shape).toEqual([1, 32]);
      expect(relToMax(res['last_hidden_state']!.data as Float32Array, floats(path.join(dir, 'last_hidden_state.npy')).data), p).toBeLessThan(TOL[precision]);
      expect(relToMax(res['pooled_outputs']!.data as Float32Array, floats(path.join(dir, 'pooler_output.npy')).data), p).toBeLessThan(TOL[precision]);
    }
  });

  it('SDXL text encoders: hidden_embeds = hidden_states[-2], pooled_outputs = pooler_output / text_embeds', async () => {
    for (const [component, pooledRef] of [['text_encoder', 'pooler_output'], ['text_encoder_2', 'text_embeds']] as const) {
      const pkg = out['tiny-sdxl']!.packages[component]!;
      for (const p of PROMPTS) {
        const dir = path.join(COMPONENTS, 'tiny-sdxl', component, p);
        const res = await run(pkg, { input_ids: floats(path.join(dir, 'ids.npy')) });
        expect(Object.keys(res).sort()).toEqual(['hidden_embeds', 'pooled_outputs']);
        expect(relToMax(res['hidden_embeds']!.data as Float32Array, floats(path.join(dir, 'hidden_states_m2.npy')).data), `${component} ${p}`).toBeLessThan(TOL[precision]);
        expect(relToMax(res['pooled_outputs']!.data as Float32Array, floats(path.join(dir, `${pooledRef}.npy`)).data), `${component} ${p}`).toBeLessThan(TOL[precision]);
      }
    }
  });

  it('VAE decoder: image matches vae.decode(z) for both pipelines', async () => {
    for (const model of ['tiny-sd15', 'tiny-sdxl']) {
      const dir = path.join(COMPONENTS, model, 'vae');
      const res = await run(out[model]!.packages.vae_decoder!, { z: floats(path.join(dir, 'z.npy')) });
      expect(res['image']!.shape).toEqual([1, 3, 128, 128]);
      // the SDXL VAE stays fp32 (force_upcast), so it meets the fp32 bar even in an fp16 conversion
      const tol = model === 'tiny-sdxl' ? TOL.fp32 : TOL[precision];
      expect(relToMax(res['image']!.data as Float32Array, floats(path.join(dir, 'image.npy')).data), model).toBeLessThan(tol);
    }
  });

  it('Unet (converted by convertUnet): noise_pred matches diffusers with [B, C, 1, 77] encoder_hidden_states', async () => {
    for (const model of ['tiny-sd15', 'tiny-sdxl']) {
      const dir = path.join(COMPONENTS, model, 'unet');
      const ehs = floats(path.join(dir, 'encoder_hidden_states.npy')); // [2, 77, C] as diffusers takes it
      const [b, l, c] = ehs.shape as [number, number, number];
      const ehsT = new Float32Array(ehs.data.length); // → ml-stable-diffusion's [B, C, 1, 77]
      for (let i = 0; i < b; i++) for (let j = 0; j < l; j++) for (let k = 0; k < c; k++) ehsT[(i * c + k) * l + j] = ehs.data[(i * l + j) * c + k]!;
      const t = floats(path.join(dir, 'timestep.npy'));
      const inputs: Record<string, { data: Float32Array; shape: number[] }> = {
        sample: floats(path.join(dir, 'sample.npy')),
        timestep: { data: t.data.length === 1 ? Float32Array.from([t.data[0]!, t.data[0]!]) : t.data, shape: [2] },
        encoder_hidden_states: { data: ehsT, shape: [b, c, 1, l] },
      };
      if (model === 'tiny-sdxl') {
        inputs['text_embeds'] = floats(path.join(dir, 'text_embeds.npy'));
        inputs['time_ids'] = floats(path.join(dir, 'time_ids.npy'));
      }
      const res = await run(out[model]!.packages.unet!, inputs);
      expect(res['noise_pred']!.shape).toEqual([2, 4, 16, 16]);
      const e = relToMax(res['noise_pred']!.data as Float32Array, floats(path.join(dir, 'noise_pred.npy')).data);
      expect(e, model).toBeLessThan(TOL[precision]);
    }
  });

  it('every op takes float operands of one dtype (Core ML type-checks what the executor does not)', async () => {
    type Op = { type: string; inputs?: Record<string, { arguments?: { name?: string }[] }>; outputs?: { name: string; type?: { tensorType?: { dataType?: number } } }[] };
    type Fn = { inputs: { name: string; type?: { tensorType?: { dataType?: number } } }[]; opset: string; blockSpecializations: Record<string, { operations: Op[] }> };
    for (const result of Object.values(out)) {
      for (const pkg of Object.values(result.packages)) {
        const fn = ((await loadModel(pkg)).program as unknown as { functions: Record<string, Fn> }).functions['main']!;
        const dtypeOf = new Map<string, number>(fn.inputs.map(i => [i.name, i.type?.tensorType?.dataType ?? 0]));
        const mixed: string[] = [];
        for (const op of fn.blockSpecializations[fn.opset]!.operations) {
          const floats = new Set<number>();
          for (const arg of Object.values(op.inputs ?? {})) for (const a of arg.arguments ?? []) {
            const d = a.name ? dtypeOf.get(a.name) : undefined;
            if (d === 10 || d === 11) floats.add(d); // fp16, fp32
          }
          if (op.type !== 'cast' && floats.size > 1) mixed.push(`${op.type} ${op.outputs?.[0]?.name}`);
          for (const o of op.outputs ?? []) dtypeOf.set(o.name, o.type?.tensorType?.dataType ?? 0);
        }
        expect(mixed, pkg).toEqual([]);
        if (precision === 'fp16' && !(pkg.endsWith('VAEDecoder.mlpackage') && result.modelKind === 'sdxl')) {
          expect([...dtypeOf.values()].includes(10), pkg).toBe(true); // fp16 compute really happens
        }
      }
    }
  });

  it('pipeline.json, tokenizer files and weight names', async () => {
    const sdxl = out['tiny-sdxl']!;
    const pj = readPipelineJson(sdxl.outDir);
    expect(pj).toMatchObject({
      format: 'coreml-optimize-pipeline', version: 1, modelKind: 'sdxl',
      models: { textEncoder: 'TextEncoder.mlpackage', textEncoder2: 'TextEncoder2.mlpackage', unet: 'Unet.mlpackage', vaeDecoder: 'VAEDecoder.mlpackage' },
      tokenizers: [{ dir: '.', padToken: '<|endoftext|>' }, { dir: '.', padToken: '!' }],
      vaeScalingFactor: 0.13025, forceZerosForEmptyPrompt: true, latentHeight: 16, latentWidth: 16, vaeScaleFactor: 8,
      unetBatchSize: 2, precision, attention: 'original', textEncoderOutputs: { hidden: 'hidden_embeds', pooled: 'pooled_outputs' },
    });
    expect(pj.scheduler.className).toBe('EulerDiscreteScheduler');
    expect(pj.scheduler.config).toEqual(JSON.parse(fs.readFileSync(path.join(MODELS, 'tiny-sdxl', 'scheduler', 'scheduler_config.json'), 'utf8')));
    if (precision === 'fp16') expect(pj.componentPrecision).toEqual({ vaeDecoder: 'fp32' });
    for (const f of ['vocab.json', 'merges.txt']) {
      expect(fs.readFileSync(path.join(sdxl.outDir, f)).equals(fs.readFileSync(path.join(MODELS, 'tiny-sdxl', 'tokenizer', f))), f).toBe(true);
    }
    const sd = readPipelineJson(out['tiny-sd15']!.outDir);
    expect(sd).toMatchObject({ modelKind: 'sd', vaeScalingFactor: 0.18215, forceZerosForEmptyPrompt: false, textEncoderOutputs: { hidden: 'last_hidden_state', pooled: 'pooled_outputs' } });
    expect(sd.scheduler.className).toBe('PNDMScheduler');
    // no temp files left behind
    expect(fs.readdirSync(sdxl.outDir).filter(f => f.startsWith('.'))).toEqual([]);

    // weight consts keep the module path; fp16 conversions store fp16 (MIL dtype 10) in weight.bin
    const model = await loadModel(sdxl.packages.text_encoder_2!);
    const fn = (model.program as { functions: Record<string, { opset: string; blockSpecializations: Record<string, { operations: { type: string; attributes?: Record<string, { immediateValue?: { tensor?: { strings?: { values: string[] } } } }>; outputs: { name: string; type: { tensorType: { dataType: number } } }[]; inputs?: Record<string, { arguments: { name?: string }[] }> }[] }> }> }).functions['main']!;
    const ops = fn.blockSpecializations[fn.opset]!.operations;
    const constType = (name: string) => ops.find(o => o.type === 'const' && o.outputs[0]!.name === name)?.outputs[0]!.type.tensorType.dataType;
    const q = ops.find(o => o.outputs[0]?.name === 'text_model_encoder_layers_0_self_attn_q_proj')!;
    expect(q.type).toBe('linear');
    expect(q.inputs!['weight']!.arguments[0]!.name).toBe('text_model_encoder_layers_0_self_attn_q_proj_weight');
    expect(constType('text_projection_weight')).toBe(precision === 'fp16' ? 10 : 11);
    expect(constType('text_model_embeddings_token_embedding_weight')).toBe(precision === 'fp16' ? 10 : 11);
  });
});

describe('convertDiffusers errors', () => {
  it('unknown components, a missing folder and unsupported config values are errors naming the file and key', async () => {
    const outDir = path.join(tmp, 'err');
    await expect(convertDiffusers(path.join(MODELS, 'tiny-sd15'), { outDir, components: ['text_encoder_2'] })).rejects.toThrow(/no text_encoder_2 component/);
    await expect(convertDiffusers(path.join(tmp, 'nope'), { outDir })).rejects.toThrow(/model_index\.json is missing/);

    // a copy of tiny-sd15 whose text encoder config uses an unsupported activation and a VAE with an extra weight
    const copy = path.join(tmp, 'bad-sd15');
    fs.cpSync(path.join(MODELS, 'tiny-sd15'), copy, { recursive: true });
    const cfgFile = path.join(copy, 'text_encoder', 'config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
    fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, hidden_act: 'relu' }));
    await expect(convertDiffusers(copy, { outDir, components: ['text_encoder'] })).rejects.toThrow(/config\.json: hidden_act: "relu" is not supported/);
    fs.writeFileSync(cfgFile, JSON.stringify(cfg));
    fs.writeFileSync(cfgFile.replace('text_encoder', 'vae'), fs.readFileSync(cfgFile.replace('text_encoder', 'vae'), 'utf8').replace('"latent_channels": 4', '"latent_channels": 4, "latents_mean": [0, 0, 0, 0]'));
    await expect(convertDiffusers(copy, { outDir, components: ['text_encoder'] })).rejects.toThrow(/vae[\\/]config\.json: latents_mean: \[0,0,0,0\] is not supported/);
    expect(fs.existsSync(path.join(outDir, 'TextEncoder.mlpackage'))).toBe(false);
  });
});
