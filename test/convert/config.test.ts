import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ConfigReader, parsePythonJson, readClipTextConfig, readModelIndex, readUnetConfig, readVaeConfig,
} from '../../src/convert/diffusers-config.js';
import { readPipelineJson, stringifyPythonJson, writePipelineJson, type PipelineJson } from '../../src/convert/pipeline-json.js';
import { convertDiffusers } from '../../src/convert/convert.js';
import { SafetensorsFile } from '../../src/convert/safetensors.js';
import { AbortError, ConfigError } from '../../src/errors.js';
import { loadModel } from '../../src/model.js';
import { createExecutor } from '../../src/runtime/executor.js';
import { readNpy } from '../../src/runtime/npy.js';

const MODELS = '../shared/fixtures/pipeline-reference/models';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cmo-config-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('Python-style JSON', () => {
  it('parses Infinity / -Infinity / NaN outside strings only, and writes them back', () => {
    const v = parsePythonJson('{"a": Infinity, "b": [-Infinity, NaN, 1.5e-3], "s": "NaN Infinity", "Infinity": null, "c": {"x": NaN}}') as Record<string, unknown>;
    expect(v['a']).toBe(Infinity);
    expect(v['b']).toEqual([-Infinity, NaN, 0.0015]);
    expect(v['s']).toBe('NaN Infinity');
    expect(v['Infinity']).toBeNull();
    expect(Number.isNaN((v['c'] as { x: number }).x)).toBe(true);
    const text = stringifyPythonJson(v, 0);
    expect(text).toBe('{"a":Infinity,"b":[-Infinity,NaN,0.0015],"s":"NaN Infinity","Infinity":null,"c":{"x":NaN}}');
    expect(parsePythonJson(text)).toEqual(v);
    expect(() => parsePythonJson('{"a": Infinityx}', 'cfg.json')).toThrow(/cfg\.json: invalid JSON/);
  });
});

describe('diffusers / transformers configs', () => {
  it('read the fixture configs with diffusers 0.25 defaults for missing keys', () => {
    const idx = readModelIndex(path.join(MODELS, 'tiny-sdxl'));
    expect(idx.className).toBe('StableDiffusionXLPipeline');
    expect(Object.keys(idx.components).sort()).toEqual(['scheduler', 'text_encoder', 'text_encoder_2', 'tokenizer', 'tokenizer_2', 'unet', 'vae']);
    expect(idx.forceZerosForEmptyPrompt).toBe(true);
    expect(readModelIndex(path.join(MODELS, 'tiny-sd15')).forceZerosForEmptyPrompt).toBe(false);

    const te2 = readClipTextConfig(path.join(MODELS, 'tiny-sdxl', 'text_encoder_2'));
    expect(te2).toMatchObject({ architecture: 'CLIPTextModelWithProjection', hiddenSize: 32, hiddenAct: 'gelu', padTokenId: 0, eosTokenId: 49407, numHiddenLayers: 5 });
    const vae = readVaeConfig(path.join(MODELS, 'tiny-sdxl', 'vae'));
    expect(vae).toMatchObject({ blockOutChannels: [32, 64, 64, 64], scalingFactor: 0.13025, layersPerBlock: 1, usePostQuantConv: true, shiftFactor: null });
    const unet = readUnetConfig(path.join(MODELS, 'tiny-sdxl', 'unet'));
    expect(unet).toMatchObject({ transformerLayersPerBlock: [1, 2], attentionHeadDim: [2, 4], numAttentionHeads: [2, 4], crossAttentionDim: [64, 64], additionEmbedType: 'text_time' });

    // A config with only the class name gets every default.
    const dir = fs.mkdtempSync(path.join(tmp, 'unet-'));
    fs.writeFileSync(path.join(dir, 'config.json'), '{"_class_name": "UNet2DConditionModel"}');
    expect(readUnetConfig(dir)).toMatchObject({
      blockOutChannels: [320, 640, 1280, 1280], layersPerBlock: [2, 2, 2, 2], crossAttentionDim: [1280, 1280, 1280, 1280],
      attentionHeadDim: [8, 8, 8, 8], numAttentionHeads: [8, 8, 8, 8], normNumGroups: 32, sampleSize: null, midBlockType: 'UNetMidBlock2DCrossAttn',
    });
  });

  it('a wrong or unsupported value is a ConfigError naming the file and the key', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'bad-'));
    const write = (v: object) => fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(v));
    write({ _class_name: 'UNet2DConditionModel', block_out_channels: [32, 64], down_block_types: ['DownBlock2D'] });
    expect(() => readUnetConfig(dir)).toThrow(ConfigError);
    expect(() => readUnetConfig(dir)).toThrow(/config\.json: block_out_channels: has 2 entries, down_block_types has 1/);
    write({ _class_name: 'UNet2DConditionModel', layers_per_block: 'two' });
    expect(() => readUnetConfig(dir)).toThrow(/layers_per_block: expected an integer or a list of integers/);
    write({ _class_name: 'AutoencoderTiny' });
    expect(() => readVaeConfig(dir)).toThrow(/_class_name: "AutoencoderTiny" is not AutoencoderKL/);
    write({ _class_name: 'AutoencoderKL', act_fn: 'gelu' });
    expect(() => readVaeConfig(dir)).toThrow(/act_fn: "gelu" is not supported \(supported: silu\)/);
    write({ architectures: ['CLIPVisionModel'] });
    expect(() => readClipTextConfig(dir)).toThrow(/architectures: \["CLIPVisionModel"\] is not CLIPTextModel/);
    write({ hidden_size: 30, num_attention_heads: 4 });
    expect(() => readClipTextConfig(dir)).toThrow(/num_attention_heads: 4 does not divide hidden_size 30/);
    const r = new ConfigReader('/x/config.json', { a: [1, 2] });
    expect(r.intPerBlock('a', 1, 2)).toEqual([1, 2]);
    expect(() => r.intPerBlock('a', 1, 3)).toThrow('/x/config.json: a: has 2 entries, the model has 3 blocks');
  });
});

describe('pipeline.json', () => {
  const value: PipelineJson = {
    format: 'coreml-optimize-pipeline', version: 1, modelKind: 'sd', source: 'x', models: { unet: 'Unet.mlpackage' },
    tokenizers: [{ dir: '.', padToken: '<|endoftext|>' }], scheduler: { className: 'EulerDiscreteScheduler', config: { sigma_max: Infinity, beta_end: 0.012 } },
    vaeScalingFactor: 0.18215, forceZerosForEmptyPrompt: false, latentHeight: 64, latentWidth: 48, vaeScaleFactor: 8, unetBatchSize: 1,
    precision: 'fp16', attention: 'split_einsum', textEncoderOutputs: { hidden: 'last_hidden_state', pooled: 'pooled_outputs' },
  };
  it('round-trips, Infinity included', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'pj-'));
    await writePipelineJson(dir, value);
    expect(fs.readFileSync(path.join(dir, 'pipeline.json'), 'utf8')).toContain('"sigma_max": Infinity');
    expect(readPipelineJson(dir)).toEqual(value);
  });
  it('rejects bad files naming the key', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'pj-bad-'));
    for (const [patch, re] of [
      [{ version: 2 }, /version: 2 is not supported/],
      [{ unetBatchSize: 3 }, /unetBatchSize: 3 is not 1 or 2/],
      [{ models: { unet: '../x.mlpackage' } }, /models\.unet: expected a path inside the folder/],
      [{ latentHeight: 0 }, /latentHeight: expected a positive integer/],
      [{ format: 'other' }, /not a coreml-optimize-pipeline file/],
    ] as const) {
      fs.writeFileSync(path.join(dir, 'pipeline.json'), JSON.stringify({ ...value, ...patch }));
      expect(() => readPipelineJson(dir)).toThrow(re);
    }
  });
});

describe('convertDiffusers: bf16 / fp16 checkpoints and cancellation', () => {
  /** A copy of tiny-sd15 whose text encoder weights are stored as `dtype` (rounded by the native reader). */
  function copyWith(dtype: 'BF16' | 'F16'): string {
    const dest = path.join(tmp, `sd15-${dtype}`);
    fs.cpSync(path.join(MODELS, 'tiny-sd15'), dest, { recursive: true });
    const file = path.join(dest, 'text_encoder', 'model.safetensors');
    const src = SafetensorsFile.open(file);
    const header: Record<string, unknown> = {};
    const parts: Buffer[] = [];
    let at = 0;
    for (const t of src.tensors()) {
      const f = src.read(t.name, 'fp32');
      let bytes: Buffer;
      if (dtype === 'F16') bytes = Buffer.from(src.read(t.name, 'fp16').buffer);
      else { // round to nearest even bf16
        const u = new Uint32Array(f.buffer);
        bytes = Buffer.from(Uint16Array.from(u, x => (x + 0x7fff + ((x >>> 16) & 1)) >>> 16).buffer);
      }
      header[t.name] = { dtype, shape: t.shape, data_offsets: [at, at + bytes.length] };
      parts.push(bytes);
      at += bytes.length;
    }
    src.close();
    const h = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(h.length));
    fs.writeFileSync(file, Buffer.concat([len, h, ...parts]));
    return dest;
  }

  it('a BF16 or F16 text encoder converts and stays within its storage precision of transformers', async () => {
    const ref = path.join('../shared/fixtures/pipeline-reference/components/tiny-sd15/text_encoder/cat231');
    const ids = readNpy(path.join(ref, 'ids.npy'));
    const want = readNpy(path.join(ref, 'last_hidden_state.npy')).data as Float32Array;
    // bf16 keeps 8 significant bits (2^-9 = 2e-3 relative rounding), fp16 11 (2^-12 = 2.4e-4): through
    // 5 layers the output error measures 7.2e-3 (bf16) and 5.9e-4 (fp16) of the peak; the bounds are
    // ~2–3× that and far below what a wrong conversion gives.
    for (const [dtype, tol] of [['BF16', 1.6e-2], ['F16', 2e-3]] as const) {
      const outDir = path.join(tmp, `out-${dtype}`);
      await convertDiffusers(copyWith(dtype), { outDir, precision: 'fp32', components: ['text_encoder'] });
      const exec = createExecutor(await loadModel(path.join(outDir, 'TextEncoder.mlpackage')));
      const res = await exec.predict({ input_ids: { data: Float32Array.from(ids.data as BigInt64Array, Number), shape: [1, 77] } });
      const got = res['last_hidden_state']!.data as Float32Array;
      let peak = 0, err = 0;
      for (let i = 0; i < want.length; i++) { peak = Math.max(peak, Math.abs(want[i]!)); err = Math.max(err, Math.abs(got[i]! - want[i]!)); }
      expect(err / peak, dtype).toBeLessThan(tol);
      expect(err / peak, dtype).toBeGreaterThan(1e-6); // the weights really were rounded
    }
  });

  it('an aborted conversion rejects with AbortError and leaves no package or temp file', async () => {
    const outDir = path.join(tmp, 'aborted');
    const controller = new AbortController();
    let calls = 0;
    await expect(convertDiffusers(path.join(MODELS, 'tiny-sd15'), {
      outDir, components: ['vae_decoder'], signal: controller.signal,
      onProgress: () => { if (++calls === 3) controller.abort(); },
    })).rejects.toThrow(AbortError);
    expect(fs.readdirSync(outDir)).toEqual([]);
  });
});
