/**
 * coremltools 9.0's channel-axis rules per consumer op (select_input_output_channel_axis,
 * infer_block_sizes, is_cluster_dim_valid in coremltools/optimize/coreml/_utils.py) on a model
 * with one weight per consumer kind. Scales and LUT shapes are checked against the axis the op's
 * own formula makes the output channel (float64 plain loops), not against the rule table.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProgramBuilder } from '../../src/mil/builder.js';
import type { Model } from '../../src/model.js';
import { linearQuantizeWeights } from '../../src/optimize/quantize.js';
import { palettizeWeights } from '../../src/optimize/palettize.js';
import { pruneWeights } from '../../src/optimize/prune.js';
import { openProgram } from '../../src/mil/from-model.js';
import { halfBitsToFloat, floatToHalfBits } from '../../src/mil/values.js';
import { syntheticFp16 } from '../../src/util/synthetic.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'cmo-axis-test-'));
let model: Model;
/** fp16 weight values as floats, by const name. */
const weights = new Map<string, { shape: number[]; values: Float64Array }>();

/**
 * The output channel of element `idx` of each weight, read off the op's formula:
 *  linear  y[o] = Σ_i W[o,i] x[i]                      → o = idx[0]
 *  conv    y[o,..] = Σ W[o, i, kh, kw] x[g(o)·Cin/g + i] → o = idx[0]
 *  conv_transpose y[g·Cout/g + o, ..] = Σ W[i, o, ..] x[i] → o = idx[1] (per group)
 *  matmul  out[m,n] = Σ_k X[m,k] Y[k,n]; Y^T given as [n,k]; X^T given as [k,m]
 *  gather  out[j,:] = T[ind[j], :]                      → the row idx[0]
 *  einsum  nchw,nwhu->nchu (not special-cased by coremltools: axis 0)
 */
const CASES = {
  conv_w: { consumer: 'conv', outAxis: 0, inAxis: 1 },
  dw_w: { consumer: 'depthwise conv', outAxis: 0, inAxis: 1 },
  gconv_w: { consumer: 'grouped conv', outAxis: 0, inAxis: 1 },
  godd_w: { consumer: 'grouped conv (groups 6)', outAxis: 0, inAxis: 1 },
  convt_w: { consumer: 'conv_transpose', outAxis: 1, inAxis: 0 },
  fc_w: { consumer: 'linear', outAxis: 0, inAxis: 1 },
  mmy_w: { consumer: 'matmul y', outAxis: 1, inAxis: 0 },
  mmyt_w: { consumer: 'matmul y, transpose_y', outAxis: 0, inAxis: 1 },
  mmx_w: { consumer: 'matmul x', outAxis: 0, inAxis: 1 },
  mmxt_w: { consumer: 'matmul x, transpose_x', outAxis: 1, inAxis: 0 },
  table_w: { consumer: 'gather', outAxis: 0, inAxis: 1 },
  ein_w: { consumer: 'einsum', outAxis: 0, inAxis: 1 },
} as const;
type CaseName = keyof typeof CASES;

beforeAll(async () => {
  const b = new ProgramBuilder({ specVersion: 9, weightsPath: path.join(dir, 'src.bin') });
  let seed = 1;
  const w = (name: string, shape: number[]) => {
    const count = shape.reduce((a, c) => a * c, 1);
    const bits = syntheticFp16({ count, fanIn: shape[1] ?? 1, seed: seed++ });
    weights.set(name, { shape, values: Float64Array.from(bits, (h) => halfBitsToFloat(h)) });
    return b.const(name, bits, shape, 'fp16');
  };
  const img32 = b.input('img32', 'fp16', [1, 32, 8, 8]);
  const img96 = b.input('img96', 'fp16', [1, 96, 8, 8]);
  const img64 = b.input('img64', 'fp16', [1, 64, 8, 8]);
  const img36 = b.input('img36', 'fp16', [1, 36, 4, 4]);
  const v64 = b.input('v64', 'fp16', [1, 64]);
  const v96 = b.input('v96', 'fp16', [1, 96]);
  const m64 = b.input('m64', 'fp16', [64, 8]);
  const ids = b.input('ids', 'int32', [4]);
  const e = b.input('e', 'fp16', [2, 3, 16, 8]);
  const outs = [
    b.op('conv', { x: img32, weight: w('conv_w', [48, 32, 3, 3]), pad_type: 'valid', groups: 1 }, { name: 'conv' }),
    b.op('conv', { x: img96, weight: w('dw_w', [96, 1, 5, 5]), pad_type: 'valid', groups: 96 }, { name: 'dwconv' }),
    b.op('conv', { x: img64, weight: w('gconv_w', [64, 16, 3, 3]), pad_type: 'valid', groups: 4 }, { name: 'gconv' }),
    b.op('conv', { x: img36, weight: w('godd_w', [36, 6, 1, 1]), pad_type: 'valid', groups: 6 }, { name: 'godd' }),
    b.op('conv_transpose', { x: b.op('conv', { x: img32, weight: w('pre_w', [32, 32, 1, 1]) }, { name: 'pre' }), weight: w('convt_w', [32, 24, 3, 3]), pad_type: 'valid' }, { name: 'convt' }),
    b.op('linear', { x: v64, weight: w('fc_w', [40, 64]) }, { name: 'fc' }),
    b.op('matmul', { x: v64, y: w('mmy_w', [64, 48]), transpose_x: false, transpose_y: false }, { name: 'mmy' }),
    b.op('matmul', { x: v96, y: w('mmyt_w', [160, 96]), transpose_x: false, transpose_y: true }, { name: 'mmyt' }),
    b.op('matmul', { x: w('mmx_w', [24, 64]), y: m64, transpose_x: false, transpose_y: false }, { name: 'mmx' }),
    b.op('matmul', { x: w('mmxt_w', [64, 24]), y: m64, transpose_x: true, transpose_y: false }, { name: 'mmxt' }),
    b.op('gather', { x: w('table_w', [100, 32]), indices: ids, axis: 0 }, { name: 'embed' }),
    b.op('einsum', { values: [e, w('ein_w', [2, 8, 16, 12])], equation: 'nchw,nwhu->nchu' }, { name: 'ein', outputs: [{ dtype: 'fp16', shape: [2, 3, 16, 12] }] }),
  ];
  // One weight read by a linear (axes 0/1) and a matmul's y (axes 1/0): the consumers disagree.
  const shared = w('shared_w', [48, 48]);
  outs.push(b.op('linear', { x: b.input('v48', 'fp16', [1, 48]), weight: shared }, { name: 'fc_shared' }));
  outs.push(b.op('matmul', { x: b.input('v48b', 'fp16', [1, 48]), y: shared }, { name: 'mm_shared' }));
  outs.forEach((o, i) => b.output(o, `out${i}`));
  model = await b.save(path.join(dir, 'axes.mlpackage'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1]! * shape[i + 1]!;
  return s;
}

/** Reference linear_symmetric scale per (output channel, input block): max|w| / qmax in fp16. */
function referenceScales(name: CaseName | 'shared_w', outAxis: number, inAxis: number | null, block: number, qmax = 127): { shape: number[]; values: number[] } {
  const { shape, values } = weights.get(name)!;
  const st = strides(shape);
  const nOut = shape[outAxis]!;
  const nIn = inAxis === null ? 1 : shape[inAxis]! / block;
  const maxAbs = new Float64Array(nOut * nIn);
  for (let j = 0; j < values.length; j++) {
    const o = Math.floor(j / st[outAxis]!) % nOut;
    const i = inAxis === null ? 0 : Math.floor(Math.floor(j / st[inAxis]!) % shape[inAxis]! / block);
    maxAbs[o * nIn + i] = Math.max(maxAbs[o * nIn + i]!, Math.abs(values[j]!));
  }
  const scaleShape = shape.map((_, a) => (a === outAxis ? nOut : a === inAxis ? nIn : 1));
  // The stored order is row-major over scaleShape: transpose (o, i) when the input axis comes first.
  const out: number[] = [];
  const sst = strides(scaleShape);
  const flat = new Array<number>(nOut * nIn);
  for (let o = 0; o < nOut; o++) {
    for (let i = 0; i < nIn; i++) {
      const at = o * sst[outAxis]! + (inAxis === null ? 0 : i * sst[inAxis]!);
      flat[at] = halfBitsToFloat(floatToHalfBits(maxAbs[o * nIn + i]! / qmax));
    }
  }
  out.push(...flat);
  return { shape: scaleShape, values: out };
}

function constexprParam(m: Model, opName: string, key: string): { shape: number[]; values: number[] } | undefined {
  const { program, close } = openProgram(m);
  try {
    const op = [...program.main.walk()].find((o) => o.name === opName);
    const p = op?.param(key);
    if (!p || p.kind !== 'value') return undefined;
    return { shape: p.value.shape.map(Number), values: Array.from(p.value.toFloat32()) };
  } finally {
    close();
  }
}

function report(m: { compression: { weights: readonly { name: string; status: string; detail: string }[] } }, name: string) {
  return m.compression.weights.find((w) => w.name === name);
}

describe('channel axes per consumer op (coremltools select_input_output_channel_axis)', () => {
  it('int8 per_channel: the scale varies along the op\'s output-channel axis, values max|w|/127', async () => {
    const out = await linearQuantizeWeights(model, { global_config: { dtype: 'int8', mode: 'linear_symmetric', granularity: 'per_channel', weight_threshold: 100 } });
    for (const [name, c] of Object.entries(CASES) as [CaseName, (typeof CASES)[CaseName]][]) {
      const got = constexprParam(out, `${name}_quantized`, 'scale');
      expect(got, `${name} (${c.consumer})`).toBeDefined();
      const ref = referenceScales(name, c.outAxis, null, 1);
      expect(got!.shape, `${name} (${c.consumer})`).toEqual(ref.shape);
      expect(got!.values, `${name} (${c.consumer})`).toEqual(ref.values);
    }
    // The case: a matmul y [160, 96] with transpose_y (bound to a const op) → scale [160, 1].
    expect(constexprParam(out, 'mmyt_w_quantized', 'scale')!.shape).toEqual([160, 1]);
    // Consumers disagreeing on the axes: coremltools' infer_block_sizes returns None → dense.
    expect(report(out, 'shared_w')?.status).toBe('skipped');
    out.dispose();
  });

  it('int4 per_block 8: blocks run along the input axis, one scale per output channel and block', async () => {
    const out = await linearQuantizeWeights(model, { global_config: { dtype: 'int4', mode: 'linear_symmetric', granularity: 'per_block', block_size: 8, weight_threshold: 100 } });
    for (const name of ['conv_w', 'convt_w', 'fc_w', 'mmy_w', 'mmyt_w', 'mmx_w', 'mmxt_w', 'table_w', 'ein_w'] as const) {
      const c = CASES[name];
      const got = constexprParam(out, `${name}_quantized`, 'scale')!;
      // int4 linear_symmetric: q in [-7, 7], scale = max|w| / 7 per block.
      const ref = referenceScales(name, c.outAxis, c.inAxis, 8, 7);
      expect(got.shape, name).toEqual(ref.shape);
      expect(got.values, name).toEqual(ref.values);
    }
    expect(constexprParam(out, 'mmyt_w_quantized', 'scale')!.shape).toEqual([160, 12]);
    expect(constexprParam(out, 'convt_w_quantized', 'scale')!.shape).toEqual([4, 24, 1, 1]);
    out.dispose();
  });

  it('per_grouped_channel palettization groups the output-channel axis of each consumer', async () => {
    const out = await palettizeWeights(model, { global_config: { nbits: 4, granularity: 'per_grouped_channel', group_size: 8, weight_threshold: 100 } });
    for (const [name, c] of Object.entries(CASES) as [CaseName, (typeof CASES)[CaseName]][]) {
      const { shape } = weights.get(name)!;
      const lut = constexprParam(out, `${name}_palettized`, 'lut');
      if (shape[c.outAxis]! % 8 !== 0) {
        // coremltools: "The number of channels ... is not divisible by channel_group_size" → dense.
        expect(report(out, name)?.status, name).toBe('skipped');
        expect(report(out, name)?.detail, name).toMatch(/not divisible by group_size/);
        continue;
      }
      expect(lut?.shape, `${name} (${c.consumer})`).toEqual([...shape.map((d, a) => (a === c.outAxis ? d / 8 : 1)), 16, 1]);
    }
    expect(constexprParam(out, 'mmyt_w_palettized', 'lut')!.shape).toEqual([20, 1, 16, 1]);
    // coremltools skips a weight whose consumers disagree even per tensor (block_sizes is None).
    expect(report(out, 'shared_w')?.status).toBe('skipped');
    const perTensor = await palettizeWeights(model, { global_config: { nbits: 4, weight_threshold: 100 } });
    expect(report(perTensor, 'shared_w')?.status).toBe('skipped');
    expect(report(perTensor, 'shared_w')?.detail).toMatch(/disagree/);
    expect(report(perTensor, 'fc_w')?.status).toBe('compressed');
    out.dispose();
    perTensor.dispose();
  });

  it('prune → int8 per_channel (joint): the non-zeros get the same per-consumer axis', async () => {
    const pruned = await pruneWeights(model, { global_config: { target_sparsity: 0.5, weight_threshold: 100 } });
    const out = await linearQuantizeWeights(pruned, { global_config: { dtype: 'int8', mode: 'linear_symmetric', granularity: 'per_channel', weight_threshold: 100 } }, { jointCompression: true });
    for (const name of ['mmyt_w', 'mmxt_w', 'convt_w', 'fc_w'] as const) {
      const c = CASES[name];
      const { shape } = weights.get(name)!;
      const scale = [...out.compression.weights].find((w) => w.name.startsWith(name))!;
      expect(scale.status, name).toBe('compressed');
      // coremltools names the inlined non-zeros const `<op>_<input>_0`.
      const op = `${name}_sparsified_nonzero_data_0_quantized`;
      const got = constexprParam(out, op, 'scale');
      expect(got?.shape, `${op} (${c.consumer})`).toEqual(shape.map((d, a) => (a === c.outAxis ? d : 1)));
    }
    pruned.dispose();
    out.dispose();
  });
});

describe('vector palettization eligibility (coremltools is_cluster_dim_valid, grouped_channelwise_compress)', () => {
  /** vector_axis and indices shape of a palettized weight. */
  function vectorOf(m: Model, name: string): { axis: number; indices: number[] } | undefined {
    const { program, close } = openProgram(m);
    try {
      const op = [...program.main.walk()].find((o) => o.name === `${name}_palettized`);
      const va = op?.param('vector_axis');
      const idx = op?.param('indices');
      if (!va || va.kind !== 'value' || !idx || idx.kind !== 'value') return undefined;
      return { axis: Number(va.value.scalar()), indices: idx.value.shape.map(Number) };
    } finally {
      close();
    }
  }

  for (const clusterDim of [2, 4]) {
    it(`cluster_dim ${clusterDim} per_tensor: conv groups shrink the checked dim; the reason is reported`, async () => {
      const out = await palettizeWeights(model, { global_config: { nbits: 4, cluster_dim: clusterDim, weight_threshold: 100 } });
      // Depthwise [96, 1, 5, 5], groups 96: effective_shape[0] = 96 // 96 = 1, not divisible → dense.
      expect(report(out, 'dw_w')?.status).toBe('skipped');
      expect(report(out, 'dw_w')?.detail).toMatch(new RegExp(`cluster_dim ${clusterDim} does not divide .* size 1 on axis 0`));
      // Grouped [36, 6, 1, 1], groups 6: effective 6 → valid for 2, not for 4 (although 36 % 4 == 0).
      expect(report(out, 'godd_w')?.status).toBe(clusterDim === 2 ? 'compressed' : 'skipped');
      // Grouped [64, 16, 3, 3], groups 4: effective 16.
      expect(vectorOf(out, 'gconv_w')).toEqual({ axis: 0, indices: [64 / clusterDim, 16, 3, 3] });
      // The vector runs along each consumer's output-channel axis.
      expect(vectorOf(out, 'convt_w')).toEqual({ axis: 1, indices: [32, 24 / clusterDim, 3, 3] });
      expect(vectorOf(out, 'mmyt_w')).toEqual({ axis: 0, indices: [160 / clusterDim, 96] });
      expect(vectorOf(out, 'mmy_w')).toEqual({ axis: 1, indices: [64, 48 / clusterDim] });
      expect(vectorOf(out, 'mmxt_w')).toEqual({ axis: 1, indices: [64, 24 / clusterDim] });
      expect(vectorOf(out, 'table_w')).toEqual({ axis: 0, indices: [100 / clusterDim, 32] });
      // einsum [2, 8, 16, 12]: 2 channels on axis 0 ("channel_group_size ... not divisible by cluster_dim").
      expect(report(out, 'ein_w')?.status).toBe(clusterDim === 2 ? 'compressed' : 'skipped');
      if (clusterDim === 4) expect(report(out, 'ein_w')?.detail).toMatch(/not divisible by cluster_dim \(4\)/);
      out.dispose();
    });
  }

  it('per_grouped_channel with cluster_dim: the conv rule, then the group size rules', async () => {
    const out = await palettizeWeights(model, { global_config: { nbits: 2, cluster_dim: 4, granularity: 'per_grouped_channel', group_size: 8, weight_threshold: 100 } });
    // coremltools checks is_cluster_dim_valid in transform_op before grouped_channelwise_compress
    // checks the group size: godd_w (36 % 8 != 0, effective 6 % 4 != 0) reports the conv rule.
    expect(report(out, 'godd_w')?.detail).toMatch(/cluster_dim 4 does not divide .* size 6/);
    expect(report(out, 'ein_w')?.detail).toMatch(/not divisible by group_size/); // 2 % 8
    expect(report(out, 'dw_w')?.detail).toMatch(/cluster_dim 4 does not divide/);
    expect(vectorOf(out, 'conv_w')).toEqual({ axis: 0, indices: [12, 32, 3, 3] });
    expect(constexprParam(out, 'conv_w_palettized', 'lut')!.shape).toEqual([6, 1, 1, 1, 4, 4]);
    out.dispose();
  });
});
