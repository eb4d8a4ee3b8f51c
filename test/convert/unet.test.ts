// UNet2DConditionModel → ML Program: the fixture UNets (made by diffusers 0.25) converted and run on the
// executor against diffusers' noise_pred; a config unlike the fixtures against the float64 reference
// (unet-reference.ts, itself checked against diffusers in unet-reference.test.ts); refused configs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ProgramBuilder } from '../../src/mil/builder.js';
import { WeightStore } from '../../src/convert/safetensors.js';
import { readPythonJsonFile } from '../../src/convert/diffusers-config.js';
import type { AttentionImplementation, Precision } from '../../src/convert/layers.js';
import { convertUnet, type UnetConvertOptions } from '../../src/convert/unet.js';
import { loadModel } from '../../src/model.js';
import { createExecutor, type TensorInput } from '../../src/runtime/executor.js';
import { ConfigError, ModelFormatError } from '../../src/errors.js';
import { FIXTURES, loadUnetCall, relMaxErr } from './unet-fixture-io.js';
import { randomParams, referenceUnet, type ReferenceInputs } from './unet-reference.js';
import { writeSafetensors } from './unet-safetensors-writer.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cmo-unet-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let counter = 0;

interface Built { pkg: string; names: string[]; opTypes: Map<string, number> }

/** Converts the UNet in `weightsDir` with `config` into a package; returns its path and const names. */
async function convert(weightsDir: string, config: Record<string, unknown>, precision: Precision, attention: AttentionImplementation, options: UnetConvertOptions = {}): Promise<Built> {
  const out = path.join(tmp, `m${counter++}`);
  fs.mkdirSync(out);
  const weights = WeightStore.openDir(weightsDir);
  try {
    const builder = new ProgramBuilder({ specVersion: 7, weightsPath: path.join(out, 'weight.bin') });
    convertUnet({ builder, weights, precision, attention }, config, options);
    const pkg = path.join(out, 'Unet.mlpackage');
    const model = await builder.save(pkg);
    type Op = {
      type: string;
      attributes?: Record<string, { immediateValue?: { tensor?: { strings?: { values?: string[] } } } }>;
      inputs?: Record<string, { arguments?: { name?: string }[] }>;
      outputs?: { name: string; type?: { tensorType?: { dataType?: number } } }[];
    };
    type Fn = { inputs: { name: string; type?: { tensorType?: { dataType?: number } } }[]; blockSpecializations: Record<string, { operations: Op[] }> };
    const fn = (model.program as unknown as { functions: Record<string, Fn> }).functions['main']!;
    const block = Object.values(fn.blockSpecializations)[0]!;
    const names: string[] = [];
    const opTypes = new Map<string, number>();
    // Core ML type-checks every op: float operands of one op must share a dtype (the executor would
    // not notice a mix), so at fp16 every fp32 value must pass through a cast.
    const dtypeOf = new Map<string, number>(fn.inputs.map(i => [i.name, i.type?.tensorType?.dataType ?? 0]));
    const mixed: string[] = [];
    for (const op of block.operations) {
      opTypes.set(op.type, (opTypes.get(op.type) ?? 0) + 1);
      if (op.type === 'const') names.push(op.attributes?.['name']?.immediateValue?.tensor?.strings?.values?.[0] ?? '');
      if (op.type !== 'cast') {
        const floats = new Set<number>();
        for (const arg of Object.values(op.inputs ?? {})) for (const a of arg.arguments ?? []) {
          const d = a.name ? dtypeOf.get(a.name) : undefined;
          if (d === 10 || d === 11) floats.add(d);
        }
        if (floats.size > 1) mixed.push(`${op.type} ${op.outputs?.[0]?.name}`);
      }
      for (const o of op.outputs ?? []) dtypeOf.set(o.name, o.type?.tensorType?.dataType ?? 0);
    }
    expect(mixed).toEqual([]);
    expect(weights.unusedNames()).toEqual([]);
    return { pkg, names, opTypes };
  } finally {
    weights.close();
  }
}

async function run(pkg: string, inputs: Record<string, TensorInput>): Promise<Float32Array> {
  const exec = createExecutor(await loadModel(pkg));
  const out = await exec.predict(inputs);
  return Float32Array.from(out['noise_pred']!.data as Float32Array);
}

/** Rows [from, to) of a batch-major tensor. */
function rows<T extends Float32Array>(a: T, batch: number, from: number, to: number): Float32Array {
  const per = a.length / batch;
  return a.slice(from * per, to * per);
}

describe('convertUnet on the fixture UNets', () => {
  for (const model of ['tiny-sd15', 'tiny-sdxl'] as const) {
    const dir = path.join(FIXTURES, 'models', model, 'unet');
    const config = readPythonJsonFile(path.join(dir, 'config.json'));
    const call = loadUnetCall(model);

    for (const attention of ['original', 'split_einsum'] as const) {
      it(`${model} fp32 ${attention}: noise_pred matches diffusers`, async () => {
        const built = await convert(dir, config, 'fp32', attention);
        const got = await run(built.pkg, call.inputs);
        expect(got.length).toBe(call.noisePred.length);
        // diffusers' float32 forward vs ours: both round ~6e-8 per op over ~100 layers in a different
        // order (GEMM blocking, attention form). Measured 0.9–1.3e-6 (the float64 reference is 7e-7
        // from diffusers); 1e-5 leaves room for another BLAS, and a wrong constant (an eps, a
        // frequency shift) or a swapped weight moves noise_pred by 1e-3 or more.
        expect(relMaxErr(got, call.noisePred)).toBeLessThan(1e-5);
      });
    }

    it(`${model} fp16: noise_pred within the fp16 weight-rounding tolerance`, async () => {
      const built = await convert(dir, config, 'fp16', 'original');
      const got = await run(built.pkg, call.inputs);
      // fp16 weights and fp16-rounded sample / encoder_hidden_states / text_embeds (each rounded by
      // ≤ 2^-11 ≈ 4.9e-4 relative; the time projection stays fp32) through ~30 layers whose dot
      // products average the independent roundings: measured 8.3e-4 (sd15) and 9.3e-4 (sdxl). 5e-3
      // is ~10 fp16 ulps of the output's peak; a dropped layer or a wrong weight moves it by > 10 %.
      expect(relMaxErr(got, call.noisePred)).toBeLessThan(5e-3);
    });

    it(`${model}: batch-1 conversion gives the batch-2 rows`, async () => {
      const built = await convert(dir, config, 'fp32', 'original', { batchSize: 1 });
      for (let r = 0; r < call.batch; r++) {
        const one: Record<string, TensorInput> = {};
        for (const [name, t] of Object.entries(call.inputs)) {
          one[name] = { data: rows(t.data, call.batch, r, r + 1), shape: [1, ...t.shape.slice(1)] };
        }
        const got = await run(built.pkg, one);
        expect(relMaxErr(got, rows(call.noisePred, call.batch, r, r + 1))).toBeLessThan(1e-5);
      }
    });
  }

  it('keeps the diffusers module paths as const names and ml-stable-diffusion I/O', async () => {
    const dir = path.join(FIXTURES, 'models', 'tiny-sdxl', 'unet');
    const built = await convert(dir, readPythonJsonFile(path.join(dir, 'config.json')), 'fp32', 'original');
    const store = WeightStore.openDir(dir);
    const expected = store.names().map(n => n.replace(/\./g, '_'));
    store.close();
    for (const n of expected) expect(built.names).toContain(n);
    expect(built.names).toContain('down_blocks_1_attentions_0_transformer_blocks_1_attn2_to_q_weight');
    expect(built.names.filter(n => /^down_blocks_\d+/.test(n)).length).toBeGreaterThan(0);
    expect(built.names.filter(n => /^mid_block/.test(n)).length).toBeGreaterThan(0);
    // [B, C, 1, S] transformers: no transpose anywhere in the graph with original attention
    expect(built.opTypes.get('transpose') ?? 0).toBe(0);
    const model = await loadModel(built.pkg);
    const exec = createExecutor(model);
    expect(exec.inputs.map(i => [i.name, i.shape])).toEqual([
      ['sample', [2, 4, 16, 16]], ['timestep', [2]], ['encoder_hidden_states', [2, 64, 1, 77]], ['text_embeds', [2, 32]], ['time_ids', [2, 6]],
    ]);
    expect(exec.outputs.map(o => o.name)).toEqual(['noise_pred']);
  });
});

/* ---- a config unlike the fixtures, with synthetic weights ---- */

const CUSTOM: Record<string, unknown> = {
  _class_name: 'UNet2DConditionModel',
  sample_size: 8,
  in_channels: 4,
  out_channels: 4,
  block_out_channels: [16, 32, 48],
  down_block_types: ['CrossAttnDownBlock2D', 'DownBlock2D', 'CrossAttnDownBlock2D'],
  up_block_types: ['CrossAttnUpBlock2D', 'UpBlock2D', 'CrossAttnUpBlock2D'],
  layers_per_block: [1, 2, 1],
  transformer_layers_per_block: [2, 1, 3],
  attention_head_dim: [2, 4, 3],
  cross_attention_dim: 24,
  norm_num_groups: 8,
  norm_eps: 1e-6,
  use_linear_projection: false,
  only_cross_attention: [true, false, false],
  resnet_time_scale_shift: 'scale_shift',
  flip_sin_to_cos: false,
  freq_shift: 1,
  time_embedding_dim: 40,
  timestep_post_act: 'silu',
  time_embedding_act_fn: 'gelu',
  conv_in_kernel: 5,
  conv_out_kernel: 1,
  downsample_padding: 0,
  mid_block_scale_factor: 1.5,
  center_input_sample: true,
  upcast_attention: true,
};

function customInputs(batch: number, H: number, W: number, cross: number, seed: number): { exec: Record<string, TensorInput>; ref: ReferenceInputs } {
  const { param } = randomParams(seed);
  const sample = Float32Array.from(param('sample', [batch, 4, H, W]), v => v * 2);
  const ehs = Float32Array.from(param('ehs', [batch, 77, cross]));
  const ehsT = new Float32Array(ehs.length);
  for (let b = 0; b < batch; b++) for (let l = 0; l < 77; l++) for (let c = 0; c < cross; c++) ehsT[(b * cross + c) * 77 + l] = ehs[(b * 77 + l) * cross + c]!;
  const timestep = Float32Array.from({ length: batch }, (_, i) => [981, 37][i % 2]!);
  return {
    exec: { sample: { data: sample, shape: [batch, 4, H, W] }, timestep: { data: timestep, shape: [batch] }, encoder_hidden_states: { data: ehsT, shape: [batch, cross, 1, 77] } },
    ref: { sample: { d: Float64Array.from(sample), s: [batch, 4, H, W] }, timestep: Array.from(timestep), encoderHiddenStates: { d: Float64Array.from(ehs), s: [batch, 77, cross] } },
  };
}

/** Writes synthetic weights for `config` (whatever the reference forward reads) and returns its output on `inputs`. */
function synthesize(config: Record<string, unknown>, inputs: ReferenceInputs, seed: number): { dir: string; reference: Float64Array } {
  const dir = path.join(tmp, `w${counter++}`);
  fs.mkdirSync(dir);
  const { param, tensors } = randomParams(seed);
  const out = referenceUnet(config, param, inputs);
  writeSafetensors(path.join(dir, 'diffusion_pytorch_model.safetensors'), tensors);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  return { dir, reference: out.d };
}

describe('convertUnet on a config unlike the fixtures', () => {
  it('per-level layers / transformer depth / heads, conv projections, scale_shift resnets, odd kernels: matches the float64 reference', async () => {
    const H = 8, W = 8;
    const inputs = customInputs(2, H, W, 24, 11);
    const { dir, reference } = synthesize(CUSTOM, inputs.ref, 5);
    const built = await convert(dir, CUSTOM, 'fp32', 'original');
    expect(built.names).toContain('down_blocks_2_attentions_0_transformer_blocks_2_attn2_to_k_weight');
    expect(built.names).toContain('up_blocks_0_attentions_1_transformer_blocks_2_ff_net_2_weight');
    const got = await run(built.pkg, inputs.exec);
    // fp32 executor vs float64 reference: only the executor's fp32 rounding separates them (measured 1e-6)
    expect(relMaxErr(got, reference)).toBeLessThan(1e-5);
  });

  it('a latent size that is not a multiple of the total downscale (7×5) and SDXL text_time with split_einsum', async () => {
    const cfg: Record<string, unknown> = {
      ...CUSTOM,
      downsample_padding: 1,
      addition_embed_type: 'text_time',
      addition_time_embed_dim: 6,
      projection_class_embeddings_input_dim: 10 + 6 * 6,
      use_linear_projection: true,
      attention_head_dim: [1, 2, 4], // the head count (diffusers' naming quirk)
      only_cross_attention: false,
      resnet_time_scale_shift: 'default',
      act_fn: 'gelu',
    };
    const H = 7, W = 5;
    const inputs = customInputs(1, H, W, 24, 12);
    const te = Float32Array.from({ length: 10 }, (_, i) => Math.sin(i) * 0.7);
    const ids = Float32Array.from([96, 80, 3, 0, 56, 40]);
    inputs.exec['text_embeds'] = { data: te, shape: [1, 10] };
    inputs.exec['time_ids'] = { data: ids, shape: [1, 6] };
    inputs.ref.textEmbeds = { d: Float64Array.from(te), s: [1, 10] };
    inputs.ref.timeIds = { d: Float64Array.from(ids), s: [1, 6] };
    const { dir, reference } = synthesize(cfg, inputs.ref, 6);
    const built = await convert(dir, cfg, 'fp32', 'split_einsum', { batchSize: 1, latentHeight: H, latentWidth: W });
    const got = await run(built.pkg, inputs.exec);
    expect(relMaxErr(got, reference)).toBeLessThan(1e-5); // measured 1.7e-6
  });
  it('per-layer transformer depths with reverse_transformer_layers_per_block, no mid block, mish, odd embedding widths, 5 time ids', async () => {
    const cfg: Record<string, unknown> = {
      _class_name: 'UNet2DConditionModel',
      block_out_channels: [9, 18], // the time projection is 9 wide: odd, zero-padded as diffusers pads it
      down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D'],
      up_block_types: ['CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
      layers_per_block: 2,
      transformer_layers_per_block: [[1, 2], [2, 1]],
      reverse_transformer_layers_per_block: [[1, 3, 1], [2, 1, 1]],
      mid_block_type: null,
      act_fn: 'mish',
      norm_num_groups: 3,
      attention_head_dim: 3,
      cross_attention_dim: 12,
      use_linear_projection: true,
      addition_embed_type: 'text_time',
      addition_time_embed_dim: 5,
      projection_class_embeddings_input_dim: 7 + 5 * 5,
    };
    const inputs = customInputs(2, 6, 6, 12, 13);
    const te = Float32Array.from({ length: 14 }, (_, i) => Math.cos(i * 1.3));
    const ids = Float32Array.from([1024, 1024, 0, 0, 6, 1024, 768, 16, 8, 2.5]); // refiner-style: size, crop, aesthetic score
    inputs.exec['text_embeds'] = { data: te, shape: [2, 7] };
    inputs.exec['time_ids'] = { data: ids, shape: [2, 5] };
    inputs.ref.textEmbeds = { d: Float64Array.from(te), s: [2, 7] };
    inputs.ref.timeIds = { d: Float64Array.from(ids), s: [2, 5] };
    const { dir, reference } = synthesize(cfg, inputs.ref, 7);
    const built = await convert(dir, cfg, 'fp32', 'original', { latentHeight: 6, latentWidth: 6, timeIdsCount: 5 });
    expect(built.names).toContain('up_blocks_0_attentions_1_transformer_blocks_2_attn1_to_q_weight');
    expect(built.names.some(n => n.startsWith('mid_block'))).toBe(false);
    const got = await run(built.pkg, inputs.exec);
    expect(relMaxErr(got, reference)).toBeLessThan(1e-5);
  });
});

describe('convertUnet refuses what it does not build', () => {
  const dir = path.join(FIXTURES, 'models', 'tiny-sd15', 'unet');
  const base = readPythonJsonFile(path.join(dir, 'config.json'));
  const refused = async (patch: Record<string, unknown>, key: string) => {
    const weights = WeightStore.openDir(dir);
    try {
      const builder = new ProgramBuilder({ specVersion: 7, weightsPath: path.join(tmp, `r${counter++}.bin`) });
      let err: unknown;
      try {
        convertUnet({ builder, weights, precision: 'fp32', attention: 'original' }, { ...base, ...patch });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain(key);
      expect((err as Error).message).toContain(path.join(dir, 'config.json'));
      expect((err as Error).message.split('\n')).toHaveLength(1);
    } finally {
      weights.close();
    }
  };
  it('names the unsupported key', async () => {
    await refused({ class_embed_type: 'timestep' }, 'class_embed_type');
    await refused({ encoder_hid_dim_type: 'text_proj', encoder_hid_dim: 32 }, 'encoder_hid');
    await refused({ addition_embed_type: 'text' }, 'addition_embed_type');
    await refused({ time_embedding_type: 'fourier' }, 'time_embedding_type');
    await refused({ down_block_types: ['SimpleCrossAttnDownBlock2D', 'DownBlock2D'] }, 'down_block_types');
    await refused({ mid_block_type: 'UNetMidBlock2DSimpleCrossAttn' }, 'mid_block_type');
    await refused({ resnet_time_scale_shift: 'spatial' }, 'resnet_time_scale_shift');
    await refused({ some_future_option: 3 }, 'some_future_option');
    await refused({ attention_head_dim: [8, 8, 8] }, 'attention_head_dim');
    await refused({ num_attention_heads: 4 }, 'num_attention_heads');
    await refused({ attention_head_dim: 3 }, 'attention_head_dim'); // 3 heads do not divide 32 channels
  });
  it('a checkpoint weight the config does not use is an error naming it', async () => {
    // tiny-sd15 weights with a config that drops the mid block: the mid_block.* weights stay unread
    const weights = WeightStore.openDir(dir);
    try {
      const builder = new ProgramBuilder({ specVersion: 7, weightsPath: path.join(tmp, `r${counter++}.bin`) });
      expect(() => convertUnet({ builder, weights, precision: 'fp32', attention: 'original' }, { ...base, mid_block_type: null }))
        .toThrow(/mid_block\.attentions\.0/);
      expect(() => convertUnet({ builder: new ProgramBuilder({ specVersion: 7, weightsPath: path.join(tmp, `r${counter++}.bin`) }), weights, precision: 'fp32', attention: 'original' }, { ...base, block_out_channels: [32, 96] }))
        .toThrow(ModelFormatError);
    } finally {
      weights.close();
    }
  });
});

/* ---- the published full-size structures, without their weights ---- */

interface WeightList { config: Record<string, unknown>; tensors: { name: string; shape: number[] }[] }

/** A WeightStore stand-in serving zeros of each listed shape (the graph is built, never run). */
function listedWeights(file: string): { store: WeightStore; list: WeightList } {
  const list = JSON.parse(fs.readFileSync(file, 'utf8')) as WeightList;
  const byName = new Map(list.tensors.map(t => [t.name, t.shape]));
  const max = Math.max(...list.tensors.map(t => t.shape.reduce((a, d) => a * d, 1)));
  const zeros16 = new Uint16Array(max), zeros32 = new Float32Array(max);
  const read = new Set<string>();
  const store = {
    dir: file,
    has: (n: string) => byName.has(n),
    shape: (n: string) => {
      const s = byName.get(n);
      if (!s) throw new ModelFormatError(`missing weight '${n}'`, { file });
      return [...s];
    },
    read: (n: string, dtype: 'fp16' | 'fp32') => {
      const count = store.shape(n).reduce((a, d) => a * d, 1);
      read.add(n);
      return dtype === 'fp16' ? zeros16.subarray(0, count) : zeros32.subarray(0, count);
    },
    unusedNames: () => [...byName.keys()].filter(n => !read.has(n)),
  };
  return { store: store as unknown as WeightStore, list };
}

describe('convertUnet on the published SD 1.5 and SDXL structures', () => {
  for (const [name, latent] of [['sd15', 64], ['sdxl', 128]] as const) {
    it(`${name}: every one of its weights is used with its published shape`, () => {
      const { store, list } = listedWeights(path.resolve(`../shared/models/${name}_unet_weights.json`));
      const discard = { append: () => 0, close: () => undefined };
      const builder = new ProgramBuilder({ specVersion: 7, weightsPath: path.join(tmp, `full-${name}.bin`), openWeightSink: () => discard });
      const graph = convertUnet({ builder, weights: store, precision: 'fp16', attention: 'original' }, list.config, { latentHeight: latent, latentWidth: latent });
      expect(store.unusedNames()).toEqual([]);
      expect(graph.outputs[0]!.shape).toEqual([2, 4, latent, latent]);
      const { spec } = builder.build();
      const inputs = spec.description.input.map(f => [f.name, f.type.multiArrayType.shape]);
      expect(inputs).toEqual(name === 'sd15'
        ? [['sample', [2, 4, 64, 64]], ['timestep', [2]], ['encoder_hidden_states', [2, 768, 1, 77]]]
        : [['sample', [2, 4, 128, 128]], ['timestep', [2]], ['encoder_hidden_states', [2, 2048, 1, 77]], ['text_embeds', [2, 1280]], ['time_ids', [2, 6]]]);
      // SDXL's deepest level: 10 transformer blocks of 20 heads × 64 channels
      if (name === 'sdxl') expect(graph.plan.down[2]!.transformers[1]).toEqual({ heads: 20, headDim: 64, layers: 10, crossAttentionDim: 2048, onlyCrossAttention: false });
    });
  }
});
