/** JS API of the kernels: known answers (spec §8.3, §8.5, §8.6, §8.7), errors, progress and cancellation. */
import { describe, expect, it } from 'vitest';
import { AbortError } from '../../src/errors.js';
import { asKernelTensor, decompressOp, pruneTensor, quantizeTensor } from '../../src/kernels/index.js';

describe('quantizeTensor', () => {
  it('int4 LINEAR per tensor (§8.5)', async () => {
    const r = await quantizeTensor({ data: Float32Array.of(-2, -10, 6, -3), shape: [4], mode: 'linear', quantDtype: 'int4', granularity: 'per_tensor' });
    expect(Array.from(r.quantized)).toEqual([-1, -8, 7, -2]);
    expect(r.scale[0]).toBeCloseTo(16 / 15, 6);
    expect(Array.from(r.zeroPoint!)).toEqual([1]);
    expect(r.scaleShape).toEqual([1]);
    expect(r.quantized).toBeInstanceOf(Int8Array);
  });

  it('int8 symmetric per channel (§8.5), scale shape [C_out, 1]', async () => {
    const r = await quantizeTensor({ data: Float32Array.of(0.3, -1.27, 0.6, 0.02, 0.04, -0.1), shape: [2, 3], granularity: 'per_channel' });
    expect(Array.from(r.quantized)).toEqual([30, -127, 60, 25, 51, -127]);
    expect(r.scaleShape).toEqual([2, 1]);
    expect(r.scale[1]).toBeCloseTo(0.000787401, 8);
    expect(r.zeroPoint).toBeUndefined();
  });

  it('fp16 weights give fp16 scales; per_block along the input axis of a matmul y', async () => {
    const bits = new Uint16Array(256 * 384).fill(0x3c00); // 1.0
    const r = await quantizeTensor({ data: bits, shape: [256, 384], quantDtype: 'int4', granularity: 'per_block', blockSize: 32, axis: -1 });
    expect(r.scaleShape).toEqual([8, 384]);
    expect(r.scaleDtype).toBe('fp16');
    expect(r.scale).toBeInstanceOf(Uint16Array);
    expect(Array.from(r.quantized.subarray(0, 3))).toEqual([7, 7, 7]);
  });

  it('accepts the target type in `dtype` (weight type inferred from the array)', async () => {
    const r = await quantizeTensor({ data: Float32Array.of(-2, -10, 6, -3), shape: [4], mode: 'linear', dtype: 'int4', granularity: 'per_tensor' });
    expect(Array.from(r.quantized)).toEqual([-1, -8, 7, -2]);
    expect(r.quantizedDtype).toBe('int4');
  });

  it('rejects bad requests', async () => {
    await expect(quantizeTensor({ data: new Float32Array(3), shape: [2, 2] })).rejects.toThrow(/bytes do not match/);
    await expect(quantizeTensor({ data: new Float32Array(4), shape: [4], quantDtype: 'int2' as never })).rejects.toThrow(/quantDtype/);
    await expect(quantizeTensor({ data: new Float32Array(70 * 81), shape: [70, 81], granularity: 'per_block', blockSize: 32 }))
      .rejects.toMatchObject({ code: 'EBLOCKSIZE' });
  });

  it('honours an aborted signal and reports progress', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(quantizeTensor({ data: new Float32Array(4), shape: [4] }, { signal: ac.signal })).rejects.toBeInstanceOf(AbortError);
    const seen: number[] = [];
    await quantizeTensor({ data: Float32Array.of(1, 2, 3, 4), shape: [2, 2] }, { onProgress: (d, t) => seen.push(d / t) });
    await new Promise((r) => setTimeout(r, 10));
    expect(seen.at(-1)).toBe(1);
  });
});

describe('pruneTensor', () => {
  it('n:m (1,2) along dim 1 (§8.7)', async () => {
    const data = Float32Array.of(1, 3, 4, -3, -6, -7, 2, 4, 0, 3, 4, 1, -9, 2, -1, 8);
    const r = await pruneTensor({ data, shape: [4, 4], kind: 'nm', n: 1, m: 2 });
    expect(Array.from(r.mask)).toEqual([0, 1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1]);
    expect(Array.from(r.nonzero)).toEqual([3, 4, -7, 4, 3, 4, -9, 8]);
    expect(Array.from(r.maskPackedLsb)).toEqual([0xa6, 0x96]);
    expect(r.sparsity).toBe(0.5);
  });

  it('block sparsity 2 along dim 0 (§8.7)', async () => {
    const data = Float32Array.of(1, 3, 4, -6, -7, 2, 0, 3, 4, -9, 2, -1);
    const r = await pruneTensor({ data, shape: [4, 3], kind: 'block', targetSparsity: 0.5, blockSize: 2 });
    expect(Array.from(r.nonzero)).toEqual([1, 3, -6, -7, -9]);
  });

  it('packs the mask LSB first (§8.3: [0,0,1,1,0] → 0c)', async () => {
    const r = await pruneTensor({ data: Float32Array.of(0, 0, 5, 6, 0), shape: [5], kind: 'threshold', minimumSparsity: 0 });
    expect(Array.from(r.maskPackedLsb)).toEqual([0x0c]);
    expect(r.skipped).toBeUndefined();
  });

  it('reports structured configs that do not apply, and low threshold sparsity, as skipped', async () => {
    const nm = await pruneTensor({ data: new Float32Array(16).fill(1), shape: [4, 4], kind: 'nm', n: 2, m: 4 });
    expect(nm.skipped).toMatch(/m 4 > channels\/2/);
    const thr = await pruneTensor({ data: Float32Array.of(1, 2, 3, 0), shape: [4], kind: 'threshold' });
    expect(thr.skipped).toMatch(/minimum_sparsity_percentile/);
    await expect(pruneTensor({ data: new Float32Array(4), shape: [4], kind: 'random' as never })).rejects.toThrow(/kind/);
  });
});

describe('decompressOp', () => {
  it('iOS18 grouped LUT (§8.6) with packed uint2 indices', async () => {
    const idx = [2, 3, 3, 0, 1, 0, 3, 0, 2, 1, 0, 3];
    const packed = new Uint8Array(3);
    idx.forEach((v, i) => (packed[i >> 2]! |= v << ((i & 3) * 2)));
    const lut = Float32Array.of(1, 5, 9, 13, 2, 10, 18, 26);
    const r = await decompressOp({
      type: 'constexpr_lut_to_dense',
      params: { indices: { dtype: 'uint2', shape: [6, 2], data: packed }, lut: { dtype: 'fp32', shape: [2, 1, 4, 1], data: lut } },
    });
    expect(Array.from(r.values)).toEqual([9, 13, 13, 1, 5, 1, 26, 2, 18, 10, 2, 26]);
    expect(r.shape).toEqual([6, 2]);
    expect(r.data).toBeInstanceOf(Float32Array);
    const onlyData = await decompressOp({
      type: 'constexpr_lut_to_dense', values: false,
      params: { indices: { dtype: 'uint2', shape: [6, 2], data: packed }, lut: { dtype: 'fp32', shape: [2, 1, 4, 1], data: lut } },
    });
    expect(onlyData.values).toHaveLength(0);
    expect(Array.from(onlyData.data)).toEqual([9, 13, 13, 1, 5, 1, 26, 2, 18, 10, 2, 26]);
  });

  it('chains: prune → quantize (sparse_blockwise_shift_scale → sparse_to_dense)', async () => {
    const mask = { dtype: 'uint1' as const, shape: [2, 3], data: Uint8Array.of(1, 0, 1, 0, 1, 1) };
    const first = await decompressOp({
      type: 'constexpr_sparse_blockwise_shift_scale',
      params: { data_mask: mask, nonzero_data: { dtype: 'int8', shape: [4], data: Int8Array.of(2, -4, 6, 8) }, scale: { dtype: 'fp32', shape: [2, 1], data: Float32Array.of(0.5, 0.25) } },
    });
    expect(first.outputs).toHaveLength(2);
    expect(Array.from(first.values)).toEqual([1, -2, 1.5, 2]);
    const dense = await decompressOp({ type: 'constexpr_sparse_to_dense', params: { nonzero_data: asKernelTensor(first), mask } });
    expect(Array.from(dense.values)).toEqual([1, 0, -2, 0, 1.5, 2]);
  });

  it('constexpr_cast fp16 → fp32 and iOS16 affine_dequantize along a negative axis', async () => {
    const cast = await decompressOp({ type: 'constexpr_cast', opset: 'ios16', params: { source_val: { dtype: 'fp16', shape: [3], data: Uint16Array.of(0x3c00, 0xc000, 0x3555) } } });
    expect(cast.dtype).toBe('fp32');
    expect(Array.from(cast.values)).toEqual([1, -2, 0.333251953125]);
    const aff = await decompressOp({
      type: 'constexpr_affine_dequantize', opset: 'ios16',
      params: {
        quantized_data: { dtype: 'uint8', shape: [2, 2], data: Uint8Array.of(0, 128, 255, 3) },
        zero_point: { dtype: 'uint8', shape: [2], data: Uint8Array.of(128, 0) },
        scale: { dtype: 'fp32', shape: [2], data: Float32Array.of(0.5, 2) },
        axis: { dtype: 'int32', shape: [], data: Int32Array.of(-1) },
      },
    });
    expect(Array.from(aff.values)).toEqual([-64, 256, 63.5, 6]);
  });

  it('names the op and the problem in errors', async () => {
    await expect(decompressOp({
      type: 'constexpr_blockwise_shift_scale', name: 'model.mlpackage:w_quantized',
      params: { data: { dtype: 'int8', shape: [4], data: new Int8Array(4) }, scale: { dtype: 'fp16', shape: [3], data: new Uint16Array(3) } },
    })).rejects.toThrow(/model\.mlpackage:w_quantized.*scale/);
    await expect(decompressOp({ type: 'constexpr_nope' as never, params: {} })).rejects.toMatchObject({ code: 'EUNSUPPORTED' });
    await expect(decompressOp({ type: 'constexpr_sparse_to_dense', params: { nonzero_data: { dtype: 'fp16', shape: [2], data: new Uint16Array(1) }, mask: { dtype: 'uint1', shape: [2], data: Uint8Array.of(1, 1) } } }))
      .rejects.toThrow(/bytes do not match/);
  });
});
