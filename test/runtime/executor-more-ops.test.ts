// Hand-worked answers for the less common ops: topk/argsort, scatter family, one_hot, slice_update,
// depth/space rearrangements, clamped_relu, non_zero.
import { describe, expect, it } from 'vitest';
import { createExecutor, type TensorInput } from '../../src/runtime/executor.js';
import { f32, floats, i32, ints, op, program, str, value } from './mil-builder.js';
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
