// Hand-worked answers for the less common ops: topk/argsort, scatter family, one_hot, slice_update,
// depth/space rearrangements, clamped_relu, non_zero.
import { describe, expect, it } from 'vitest';
import { createExecutor, type TensorInput } from '../../src/runtime/executor.js';
import { f32, floats, i32, ints, op, program, randoms, str, value } from './mil-builder.js';
import type { MilOperation } from '../../src/runtime/executor.js';

type Out = { name: string; dtype: string; shape: number[] };
async function one(type: string, inputs: Record<string, Parameters<typeof op>[2][string]>, outs: Out[], feeds: Record<string, TensorInput & { mil?: string }>) {
  const prog = program(
    Object.entries(feeds).map(([name, f]) => ({ name, dtype: f.mil ?? 'fp32', shape: f.shape })),
    [op(type, outs[0]!.name, inputs, outs) as MilOperation],
    outs.map((o) => o.name),
  );
  const plain: Record<string, TensorInput> = {};
  for (const [k, f] of Object.entries(feeds)) plain[k] = { data: f.data, shape: f.shape };
  return createExecutor({ program: prog, modelDir: '.' }).predict(plain);
}
const list = (a: ArrayLike<number>) => Array.from(a);

describe('more ops', () => {
  const x = { data: Float32Array.from([3, 1, 4, 1, 5, 9, 2, 6]), shape: [2, 4] };

  it('topk returns values and indices, ties in index order', async () => {
    const out = await one('topk', { x: 'x', k: i32(2), axis: i32(-1) }, [{ name: 'v', dtype: 'fp32', shape: [2, 2] }, { name: 'i', dtype: 'int32', shape: [2, 2] }], { x });
    expect(list(out.v!.data)).toEqual([4, 3, 9, 6]);
    expect(list(out.i!.data)).toEqual([2, 0, 1, 3]);
    const asc = await one('topk', { x: 'x', k: i32(2), ascending: value('bool', [], [true]) }, [{ name: 'v', dtype: 'fp32', shape: [2, 2] }, { name: 'i', dtype: 'int32', shape: [2, 2] }], { x });
    expect(list(asc.v!.data)).toEqual([1, 1, 2, 5]);
    expect(list(asc.i!.data)).toEqual([1, 3, 2, 0]);
  });

  it('argsort sorts descending by default, along the given axis', async () => {
    const out = await one('argsort', { x: 'x', axis: i32(0) }, [{ name: 'y', dtype: 'int32', shape: [2, 4] }], { x });
    // columns (3,5) (1,9) (4,2) (1,6): the larger row first
    expect(list(out.y!.data)).toEqual([1, 1, 0, 1, 0, 0, 1, 0]);
  });

  it('scatter adds (default) or updates rows picked by indices', async () => {
    const data = { data: new Float32Array(6).fill(1), shape: [3, 2] };
    const upd = floats([2, 2], [10, 20, 30, 40]);
    const add = await one('scatter', { data: 'd', indices: ints([2, 0]), updates: upd, axis: i32(0) }, [{ name: 'y', dtype: 'fp32', shape: [3, 2] }], { d: data });
    expect(list(add.y!.data)).toEqual([31, 41, 1, 1, 11, 21]);
    const upd2 = await one('scatter', { data: 'd', indices: ints([2, 0]), updates: upd, axis: i32(0), mode: str('update') }, [{ name: 'y', dtype: 'fp32', shape: [3, 2] }], { d: data });
    expect(list(upd2.y!.data)).toEqual([30, 40, 1, 1, 10, 20]);
  });

  it('scatter_along_axis and scatter_nd', async () => {
    const data = { data: new Float32Array(6), shape: [2, 3] };
    const ax = await one('scatter_along_axis', { data: 'd', indices: value('int32', [2, 1], [2, 0]), updates: floats([2, 1], [5, 7]), axis: i32(1), mode: str('update') }, [{ name: 'y', dtype: 'fp32', shape: [2, 3] }], { d: data });
    expect(list(ax.y!.data)).toEqual([0, 0, 5, 7, 0, 0]);
    const nd = await one('scatter_nd', { data: 'd', indices: value('int32', [2, 2], [0, 1, 1, 2]), updates: floats([2], [3, 4]) }, [{ name: 'y', dtype: 'fp32', shape: [2, 3] }], { d: data });
    expect(list(nd.y!.data)).toEqual([0, 3, 0, 0, 0, 4]);
  });

  it('one_hot inserts the depth axis', async () => {
    const out = await one('one_hot', { indices: 'i', one_hot_vector_size: i32(3), axis: i32(0), on_value: f32(2), off_value: f32(-1) }, [{ name: 'y', dtype: 'fp32', shape: [3, 2] }], { i: { data: Int32Array.from([2, 0]), shape: [2], mil: 'int32' } });
    expect(list(out.y!.data)).toEqual([-1, 2, -1, -1, 2, -1]);
  });

  it('slice_update writes a strided slice', async () => {
    const out = await one('slice_update', { x: 'x', update: floats([2, 2], [-1, -2, -3, -4]), begin: ints([0, 0]), end: ints([2, 4]), stride: ints([1, 2]) }, [{ name: 'y', dtype: 'fp32', shape: [2, 4] }], { x });
    expect(list(out.y!.data)).toEqual([-1, 1, -2, 1, -3, 9, -4, 6]);
  });

  it('depth_to_space / space_to_depth (DCR) and pixel_shuffle / pixel_unshuffle (CRD) invert each other', async () => {
    const data = Float32Array.from({ length: 8 }, (_, i) => i);
    const d2s = await one('depth_to_space', { x: 'x', block_size: i32(2) }, [{ name: 'y', dtype: 'fp32', shape: [1, 2, 2, 2] }], { x: { data, shape: [1, 8, 1, 1] } });
    // out[c, i, j] = x[(i*2 + j)*2 + c]
    expect(list(d2s.y!.data)).toEqual([0, 2, 4, 6, 1, 3, 5, 7]);
    const ps = await one('pixel_shuffle', { x: 'x', upscale_factor: i32(2) }, [{ name: 'y', dtype: 'fp32', shape: [1, 2, 2, 2] }], { x: { data, shape: [1, 8, 1, 1] } });
    expect(list(ps.y!.data)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    const s2d = await one('space_to_depth', { x: 'x', block_size: i32(2) }, [{ name: 'y', dtype: 'fp32', shape: [1, 8, 1, 1] }], { x: { data: Float32Array.from(d2s.y!.data as Float32Array), shape: [1, 2, 2, 2] } });
    expect(list(s2d.y!.data)).toEqual(list(data));
    const pu = await one('pixel_unshuffle', { x: 'x', downscale_factor: i32(2) }, [{ name: 'y', dtype: 'fp32', shape: [1, 8, 1, 1] }], { x: { data: Float32Array.from(ps.y!.data as Float32Array), shape: [1, 2, 2, 2] } });
    expect(list(pu.y!.data)).toEqual(list(data));
  });

  it('clamped_relu and non_zero', async () => {
    const v = { data: Float32Array.from([-2, 0, 3, 8]), shape: [4] };
    const cr = await one('clamped_relu', { x: 'x', alpha: f32(0.5), beta: f32(6) }, [{ name: 'y', dtype: 'fp32', shape: [4] }], { x: v });
    expect(list(cr.y!.data)).toEqual([-1, 0, 3, 6]);
    const nz = await one('non_zero', { x: 'x' }, [{ name: 'y', dtype: 'int32', shape: [-1, 2] }], { x: { data: Float32Array.from([0, 1, 2, 0]), shape: [2, 2] } });
    expect(nz.y!.shape).toEqual([2, 2]);
    expect(list(nz.y!.data)).toEqual([0, 1, 1, 0]);
  });
});

// Straightforward LSTM (ifoz gate order, sigmoid/tanh/tanh), one direction.
function lstmRef(x: Float32Array, S: number, B: number, I: number, H: number, wih: Float32Array, whh: Float32Array, bias: Float32Array, reverse: boolean, h0: number[][], c0: number[][]) {
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  const h = h0.map((r) => [...r]), cst = c0.map((r) => [...r]);
  const ys: number[][][] = Array.from({ length: S }, () => []);
  for (let step = 0; step < S; step++) {
    const t = reverse ? S - 1 - step : step;
    for (let b = 0; b < B; b++) {
      const g = new Array<number>(4 * H).fill(0).map((_, r) => {
        let acc = bias[r]!;
        for (let i = 0; i < I; i++) acc += wih[r * I + i]! * x[(t * B + b) * I + i]!;
        for (let k = 0; k < H; k++) acc += whh[r * H + k]! * h[b]![k]!;
        return acc;
      });
      for (let k = 0; k < H; k++) {
        const c = sig(g[H + k]!) * cst[b]![k]! + sig(g[k]!) * Math.tanh(g[3 * H + k]!);
        cst[b]![k] = c;
        h[b]![k] = sig(g[2 * H + k]!) * Math.tanh(c);
      }
      ys[t]![b] = [...h[b]!];
    }
  }
  return { ys, h, c: cst };
}

describe('lstm', () => {
  const S = 4, B = 2, I = 3, H = 2;
  const x = randoms(S * B * I, 61);
  const w = (seed: number, n: number) => randoms(n, seed);
  const wih = w(62, 4 * H * I), whh = w(63, 4 * H * H), bias = w(64, 4 * H);
  const wihB = w(65, 4 * H * I), whhB = w(66, 4 * H * H), biasB = w(67, 4 * H);
  const zeros = (n: number) => Array.from({ length: B }, () => new Array<number>(n).fill(0));

  for (const dir of ['forward', 'reverse', 'bidirectional'] as const) {
    it(`${dir}, output_sequence`, async () => {
      const D = dir === 'bidirectional' ? 2 : 1;
      const inputs: Record<string, Parameters<typeof op>[2][string]> = {
        x: 'x', initial_h: floats([B, D * H], new Array(B * D * H).fill(0)), initial_c: floats([B, D * H], new Array(B * D * H).fill(0)),
        weight_ih: floats([4 * H, I], Array.from(wih)), weight_hh: floats([4 * H, H], Array.from(whh)), bias: floats([4 * H], Array.from(bias)),
        direction: str(dir), output_sequence: value('bool', [], [true]),
      };
      if (D === 2) {
        inputs.weight_ih_back = floats([4 * H, I], Array.from(wihB));
        inputs.weight_hh_back = floats([4 * H, H], Array.from(whhB));
        inputs.bias_back = floats([4 * H], Array.from(biasB));
      }
      const out = await one('lstm', inputs, [
        { name: 'y', dtype: 'fp32', shape: [S, B, D * H] }, { name: 'h', dtype: 'fp32', shape: [B, D * H] }, { name: 'c', dtype: 'fp32', shape: [B, D * H] },
      ], { x: { data: x, shape: [S, B, I] } });
      const f = lstmRef(x, S, B, I, H, wih, whh, bias, dir === 'reverse', zeros(H), zeros(H));
      const r = D === 2 ? lstmRef(x, S, B, I, H, wihB, whhB, biasB, true, zeros(H), zeros(H)) : undefined;
      const wantY: number[] = [];
      // "reverse" emits steps in processing order; the backward half of "bidirectional" in time order
      // (coremltools' test_recurrent.py compares against torch on the flipped input, not flipped back).
      const fy = (t: number) => f.ys[dir === 'reverse' ? S - 1 - t : t]!;
      for (let t = 0; t < S; t++) for (let b = 0; b < B; b++) wantY.push(...fy(t)[b]!, ...(r ? r.ys[t]![b]! : []));
      const wantH: number[] = [], wantC: number[] = [];
      for (let b = 0; b < B; b++) {
        wantH.push(...f.h[b]!, ...(r ? r.h[b]! : []));
        wantC.push(...f.c[b]!, ...(r ? r.c[b]! : []));
      }
      const close = (got: ArrayLike<number>, want: number[]) => want.forEach((v, i) => expect(Math.abs(got[i]! - v)).toBeLessThan(1e-5));
      close(out.y!.data, wantY);
      close(out.h!.data, wantH);
      close(out.c!.data, wantC);
    });
  }
});

describe('scaled_dot_product_attention', () => {
  const [B, L, S, E, EV] = [2, 3, 4, 5, 2];
  const q = randoms(B * L * E, 71), k = randoms(B * S * E, 72), v = randoms(B * S * EV, 73);
  function ref(mask?: (b: number, i: number, j: number) => number | boolean) {
    const out: number[] = [];
    for (let b = 0; b < B; b++)
      for (let i = 0; i < L; i++) {
        const s = Array.from({ length: S }, (_, j) => {
          let acc = 0;
          for (let e = 0; e < E; e++) acc += q[(b * L + i) * E + e]! * k[(b * S + j) * E + e]!;
          acc /= Math.sqrt(E);
          const m = mask?.(b, i, j);
          return m === false ? -Infinity : typeof m === 'number' ? acc + m : acc;
        });
        const mx = Math.max(...s), ex = s.map((x) => Math.exp(x - mx)), sum = ex.reduce((a, c) => a + c, 0);
        for (let d = 0; d < EV; d++) out.push(ex.reduce((a, w, j) => a + (w / sum) * v[(b * S + j) * EV + d]!, 0));
      }
    return out;
  }
  const feeds = { q: { data: q, shape: [B, L, E] }, k: { data: k, shape: [B, S, E] }, v: { data: v, shape: [B, S, EV] } };
  const close = (got: ArrayLike<number>, want: number[]) => want.forEach((w, i) => expect(Math.abs(got[i]! - w)).toBeLessThan(1e-5));
  it('without a mask, with a causal bool mask and with an additive float mask', async () => {
    const outs = [{ name: 'y', dtype: 'fp32', shape: [B, L, EV] }];
    close((await one('scaled_dot_product_attention', { query: 'q', key: 'k', value: 'v' }, outs, feeds)).y!.data, ref());
    const causal = Array.from({ length: L * S }, (_, t) => Math.floor(t / S) >= t % S);
    close((await one('scaled_dot_product_attention', { query: 'q', key: 'k', value: 'v', attn_mask: value('bool', [L, S], causal) }, outs, feeds)).y!.data,
      ref((_b, i, j) => i >= j));
    const add = Array.from({ length: L * S }, (_, t) => (t % 3) - 1);
    close((await one('scaled_dot_product_attention', { query: 'q', key: 'k', value: 'v', attn_mask: floats([L, S], add) }, outs, feeds)).y!.data,
      ref((_b, i, j) => add[i * S + j]!));
  });
});
