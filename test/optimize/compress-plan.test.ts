/**
 * compressModel (multi-step plans) and decompressWeights on the golden sources: plan forms agree,
 * one-step plans equal the single APIs, decompress(compress(w)) is bit for bit the materialized
 * chain for every op form we write, lut_dtype equals the joint palettize → quantize-LUT plan, and
 * known answers hold (n:m pattern per group, quantization ranges, uint4 symmetric offset 7).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Model } from '../../src/model.js';
import { loadModel } from '../../src/model.js';
import { openProgram } from '../../src/mil/from-model.js';
import { AbortError, ModelFormatError, UnsupportedError } from '../../src/errors.js';
import { decodeModel, encodeModel } from '../../src/format/proto.js';
import { Program } from '../../src/mil/program.js';
import { OptimizationConfig } from '../../src/optimize/config.js';
import { compressModel, decompressWeights } from '../../src/optimize/compress.js';
import { loadCompressPlan } from '../../src/optimize/steps.js';
import { palettizeWeights } from '../../src/optimize/palettize.js';
import { pruneWeights } from '../../src/optimize/prune.js';
import { linearQuantizeWeights } from '../../src/optimize/quantize.js';
import { materializeWeights } from '../../src/optimize/materialize.js';
import { goldenDir, loadSidecar } from './golden.js';
import { describeModel, expectSameAsGolden, goldenSource, sha256F32 } from './golden-compare.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'compress-plan-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function hashes(model: Model): Promise<Map<string, string>> {
  const m = await materializeWeights(model);
  return new Map([...m].map(([k, w]) => [k, sha256F32(w.values)]));
}

/** Values of a constexpr op's inline input as numbers. */
function inputNumbers(model: Model, opName: string, key: string): number[] {
  const { program, close } = openProgram(model);
  try {
    const op = [...program.main.walk()].find((o) => o.name === opName)!;
    const p = op.param(key)!;
    if (p.kind !== 'value') throw new Error(`${opName}.${key} is not a value`);
    return Array.from(p.value.data() as ArrayLike<number>, Number);
  } finally {
    close();
  }
}

const minOf = (a: number[]) => a.reduce((x, y) => Math.min(x, y), Infinity);
const maxOf = (a: number[]) => a.reduce((x, y) => Math.max(x, y), -Infinity);

const prune50 = { config_type: 'OpMagnitudePrunerConfig', global_config: { target_sparsity: 0.5 } };

describe('compressModel', () => {
  it('takes a plan object, plain data or a file, and a one-step plan equals the API', async () => {
    const src = await goldenSource('src_a_ios18.mlpackage');
    const data = { steps: [{ api: 'prune', config: prune50 }] };
    const file = path.join(tmp, 'plan.json');
    fs.writeFileSync(file, JSON.stringify(data));
    const a = await hashes(await compressModel(src, data));
    const b = await hashes(await compressModel(src, file));
    const c = await hashes(await compressModel(src, loadCompressPlan(data)));
    const d = await hashes(await pruneWeights(src, OptimizationConfig.fromDict(prune50)));
    expect(a.size).toBeGreaterThan(7);
    for (const [k, h] of d) {
      expect(a.get(k), k).toBe(h);
      expect(b.get(k), k).toBe(h);
      expect(c.get(k), k).toBe(h);
    }
  });

  it('reports each step and calls onStep in order', async () => {
    const sidecar = loadSidecar('joint_prune50_q8_ios18');
    const seen: string[] = [];
    const r = await compressModel(await goldenSource(sidecar.source), sidecar, { onStep: (i, n, api) => seen.push(`${i}/${n}:${api}`) });
    expect(seen).toEqual(['0/2:prune', '1/2:quantize']);
    expect(r.steps.map((s) => s.api)).toEqual(['prune', 'quantize']);
    expect(r.steps[1]!.weights.filter((w) => w.status === 'compressed').length).toBe(7);
  });

  it('is cancelled by an aborted signal', async () => {
    await expect(compressModel(await goldenSource('src_a_ios18.mlpackage'), { steps: [{ api: 'prune', config: prune50 }] }, { signal: AbortSignal.abort() }))
      .rejects.toBeInstanceOf(AbortError);
  });

  it('a program-only package (weights missing, already int8-compressed) is refused with a clear message', async () => {
    const p = path.join(goldenDir, '../int8-transformer-program-only/ios/CoreMLAudioApp/CoreMLAudioApp/MLModels/Transformer_Decoder_int8.mlpackage');
    const model = await loadModel(p);
    const plan = { steps: [{ api: 'quantize', config: { config_type: 'OpLinearQuantizerConfig', global_config: {} } }] };
    await expect(compressModel(model, plan)).rejects.toBeInstanceOf(UnsupportedError);
    await expect(compressModel(model, plan)).rejects.toThrow(/weight file .*weight\.bin is missing, so the weights cannot be compressed/);
  });

  it('lut_dtype int8 (our extension) equals the joint palettize → per-tensor int8 LUT plan, and needs iOS18', async () => {
    const sidecar = loadSidecar('joint_pal4_q8lut_ios18');
    const src = await goldenSource(sidecar.source);
    const viaPlan = await compressModel(src, sidecar);
    const viaLutDtype = await palettizeWeights(src, { global_config: { nbits: 4, lut_dtype: 'int8' } });
    expect(await expectSameAsGolden(viaLutDtype, sidecar)).toBe(7); // bit for bit, see joint-golden.test.ts
    const a = await hashes(viaPlan);
    const b = await hashes(viaLutDtype);
    for (const [k, h] of a) expect(b.get(k), k).toBe(h);
    expect(viaLutDtype.compression.weights.find((w) => w.name === 'fc1_weight_to_fp16')!.detail).toMatch(/LUT quantized to int8/);
    await expect(palettizeWeights(await goldenSource('src_a_ios16.mlpackage'), { global_config: { nbits: 4, lut_dtype: 'int8' } }))
      .rejects.toThrow('Joint compression is only supported since iOS18');
  });
});

describe('joint pruning of compressed weights (spec §4.5)', () => {
  const cases: [string, Record<string, unknown>, string[]][] = [
    ['quantize int8 → prune', { config_type: 'OpLinearQuantizerConfig', global_config: {} }, ['constexpr_sparse_blockwise_shift_scale', 'constexpr_sparse_to_dense']],
    ['quantize uint8 linear (offset) → prune', { config_type: 'OpLinearQuantizerConfig', global_config: { dtype: 'uint8', mode: 'linear', granularity: 'per_tensor' } }, ['constexpr_sparse_blockwise_shift_scale', 'constexpr_sparse_to_dense']],
    ['palettize 4-bit gs16 → prune', { config_type: 'OpPalettizerConfig', global_config: { nbits: 4, granularity: 'per_grouped_channel', group_size: 16 } }, ['constexpr_lut_to_sparse', 'constexpr_sparse_to_dense']],
  ];
  for (const [label, first, chain] of cases) {
    it(`${label}: prunes the materialized weight, equal to pruning the decompressed model`, async () => {
      const src = await goldenSource('src_a_ios18.mlpackage');
      const api = first['config_type'] === 'OpPalettizerConfig' ? 'palettize' : 'quantize';
      const joint = await compressModel(src, { steps: [{ api, config: first }, { api: 'prune', joint_compression: true, config: prune50 }] });
      const shape = describeModel(joint);
      const suffix = api === 'palettize' ? '_palettized' : '_quantized';
      expect(shape.chains.get(`fc1_weight_to_fp16${suffix}`)).toEqual(chain);
      expect(joint.steps[1]!.weights.filter((w) => w.status === 'compressed').length).toBe(7);
      const step1 = api === 'palettize' ? await palettizeWeights(src, first) : await linearQuantizeWeights(src, first);
      const separately = await pruneWeights(await decompressWeights(step1), prune50);
      const a = await hashes(joint);
      const b = await hashes(separately);
      let n = 0;
      for (const [k, h] of a) {
        if (!k.endsWith(suffix)) continue;
        expect(h, k).toBe(b.get(`${k}_sparsified`));
        n++;
      }
      expect(n).toBe(7);
      // And it decompresses to the same values.
      const plain = await hashes(await decompressWeights(joint));
      for (const [k, h] of a) if (k.endsWith(suffix)) expect(plain.get(k), k).toBe(h);
    });
  }
});

describe('iOS26 (opset CoreML9): quantized LUTs in the P2 form', () => {
  /** The iOS18 golden source relabelled as spec 10 / CoreML9 (same program, same weights). */
  async function ios26Source(): Promise<Model> {
    const src = await goldenSource('src_a_ios18.mlpackage');
    const spec = decodeModel(encodeModel(src.spec));
    spec.specificationVersion = 10;
    for (const fn of Object.values(spec.mlProgram!.functions!)) {
      fn.blockSpecializations = { CoreML9: fn.blockSpecializations![fn.opset!]! };
      fn.opset = 'CoreML9';
    }
    return src.derive(spec);
  }
  const plans: [string, string, string[]][] = [
    ['joint_q8_pal4_ios18', 'fc1_weight_to_fp16_quantized', ['constexpr_lut_to_dense', 'constexpr_blockwise_shift_scale']],
    ['joint_pal4_q8lut_ios18', 'fc1_weight_to_fp16_palettized', ['constexpr_lut_to_dense', 'constexpr_blockwise_shift_scale']],
  ];
  for (const [golden, weight, chain] of plans) {
    it(`${golden} on iOS26: lut_to_dense(int LUT) → blockwise_shift_scale, same values as the iOS18 (P1) file`, async () => {
      const sidecar = loadSidecar(golden);
      const p2 = await compressModel(await ios26Source(), sidecar);
      expect(describeModel(p2).chains.get(weight)).toEqual(chain);
      const p1 = await hashes(await compressModel(await goldenSource('src_a_ios18.mlpackage'), sidecar));
      const got = await hashes(p2);
      let n = 0;
      for (const w of sidecar.weights) {
        if (w.chain[0] === 'const') continue;
        expect(got.get(w.name), w.name).toBeDefined();
        expect(got.get(w.name), w.name).toBe(p1.get(w.name));
        n++;
      }
      expect(n).toBe(7);
    });
  }
});

describe('decompressWeights', () => {
  const cases: [string, string, (m: Model) => Promise<Model>][] = [
    ['prune iOS16 (packed mask + shape)', 'src_a_ios16.mlpackage', (m) => pruneWeights(m, prune50)],
    ['prune fp32 iOS18 (uint1 mask)', 'src_a_fp32_ios18.mlpackage', (m) => pruneWeights(m, { global_config: { n_m_ratio: [2, 4] } })],
    ['affine iOS16', 'src_a_ios16.mlpackage', (m) => linearQuantizeWeights(m, { global_config: {} })],
    ['int4 per block', 'src_a_ios18.mlpackage', (m) => linearQuantizeWeights(m, { global_config: { dtype: 'int4', granularity: 'per_block', block_size: 32 } })],
    ['uint8 linear (offset)', 'src_a_ios18.mlpackage', (m) => linearQuantizeWeights(m, { global_config: { dtype: 'uint8', mode: 'linear' } })],
    ['palettize iOS16', 'src_a_ios16.mlpackage', (m) => palettizeWeights(m, { global_config: { nbits: 2 } })],
    ['palettize per-channel scale (chain)', 'src_a_ios18.mlpackage', (m) => palettizeWeights(m, { global_config: { nbits: 4, enable_per_channel_scale: true } })],
    ['joint quantize → palettize', 'src_a_ios18.mlpackage', (m) => compressModel(m, loadSidecar('joint_q8_pal4_ios18'))],
    ['joint prune → palettize', 'src_a_ios18.mlpackage', (m) => compressModel(m, loadSidecar('joint_prune50_pal4gs16_ios18'))],
  ];
  for (const [label, source, compress] of cases) {
    it(`${label}: decompress(compress(w)) equals the materialized chain`, async () => {
      const compressed = await compress(await goldenSource(source));
      const expected = await hashes(compressed);
      const plain = await decompressWeights(compressed);
      expect(plain.decompression.weights.length).toBeGreaterThan(0);
      const { program, close } = openProgram(plain);
      const constexpr = [...program.main.walk()].filter((o) => o.isConstexpr).length;
      close();
      expect(constexpr).toBe(0);
      const got = await hashes(plain);
      for (const w of plain.decompression.weights) expect(got.get(w.name), w.name).toBe(expected.get(w.name));
      expect(plain.decompression.weightFileBytesAfter).toBeGreaterThan(plain.decompression.weightFileBytesBefore);
    });
  }
});

describe('bad input', () => {
  it('a sparse weight whose mask does not match its non-zeros: a ModelFormatError naming the file and the weight', async () => {
    const model = await goldenSource('prune_mag50_ios18.mlpackage');
    const spec = decodeModel(encodeModel(model.spec));
    const { program } = { program: new Program(spec.mlProgram!) };
    const maskOf = (name: string) => {
      const op = [...program.main.walk()].find((o) => o.name === name)!;
      return op.msg.inputs!['mask']!.arguments![0]!.value!.blobFileValue!;
    };
    // fc1 and fc2 have 131072-element masks with different numbers of ones.
    const a = maskOf('fc1_weight_to_fp16_sparsified'), b = maskOf('fc2_weight_to_fp16_sparsified');
    [a.offset, b.offset] = [b.offset, a.offset];
    const broken = model.derive(spec);
    const plan = { steps: [{ api: 'palettize', joint_compression: true, config: { config_type: 'OpPalettizerConfig', global_config: { nbits: 4 } } }] };
    const err = await compressModel(broken, plan).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as ModelFormatError).file).toMatch(/prune_mag50_ios18\.mlpackage.*weight\.bin$/);
    expect((err as Error).message).toMatch(/palettize: weight fc[12]_weight_to_fp16_sparsified_nonzero_data_0: .*mask/);
    const q = { steps: [{ api: 'quantize', joint_compression: true, config: { config_type: 'OpLinearQuantizerConfig', global_config: {} } }] };
    await expect(compressModel(broken, q)).rejects.toThrow(/weight fc\d_weight_to_fp16_sparsified_nonzero_data_0: .*mask/);
    await expect(decompressWeights(broken)).rejects.toBeInstanceOf(ModelFormatError);
  });
});

describe('known answers', () => {
  it('2:4 pruning: every group of 4 along the input axis has at least 2 zeros', async () => {
    const pruned = await pruneWeights(await goldenSource('src_a_ios18.mlpackage'), { global_config: { n_m_ratio: [2, 4] } });
    const fc1 = (await materializeWeights(pruned)).get('fc1_weight_to_fp16_sparsified')!;
    expect(fc1.shape).toEqual([256, 512]);
    let groups = 0;
    for (let g = 0; g < fc1.values.length; g += 4) {
      let zeros = 0;
      for (let j = 0; j < 4; j++) if (fc1.values[g + j] === 0) zeros++;
      expect(zeros).toBeGreaterThanOrEqual(2);
      groups++;
    }
    expect(groups).toBe(256 * 128);
  });

  it('quantization ranges: int8 symmetric in [-127, 127]; uint4 symmetric offset 7, data in [0, 14]', async () => {
    const src = await goldenSource('src_a_ios18.mlpackage');
    const q8 = await linearQuantizeWeights(src, { global_config: {} });
    const d8 = inputNumbers(q8, 'fc1_weight_to_fp16_quantized', 'data');
    expect(minOf(d8)).toBe(-127);
    expect(maxOf(d8)).toBeLessThanOrEqual(127);
    const q4 = await linearQuantizeWeights(src, { global_config: { dtype: 'uint4' } });
    const d4 = inputNumbers(q4, 'fc1_weight_to_fp16_quantized', 'data');
    expect(minOf(d4)).toBeGreaterThanOrEqual(0);
    expect(maxOf(d4)).toBe(14);
    expect(new Set(inputNumbers(q4, 'fc1_weight_to_fp16_quantized', 'offset'))).toEqual(new Set([7]));
    expect(describeModel(q4).inputs.get('fc1_weight_to_fp16_quantized.offset')).toEqual({ dtype: 'uint4', shape: [256, 1] });
  });

  it('threshold pruning leaves weights below minimum_sparsity_percentile dense and says why', async () => {
    const r = await pruneWeights(await goldenSource('src_a_ios18.mlpackage'), { config_type: 'OpThresholdPrunerConfig', global_config: { threshold: 0.01 } });
    const skipped = r.compression.weights.filter((w) => w.status === 'skipped' && /minimum_sparsity_percentile/.test(w.detail));
    expect(skipped.length).toBe(6);
  });
});
