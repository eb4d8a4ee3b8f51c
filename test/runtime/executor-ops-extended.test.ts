// The ops added for "every op real conversions emit" (issue 12), each against a slow float64
// reference written from the MIL op definitions (coremltools ops/defs/iOS15..iOS18) or against the
// worked examples in those definitions: list ops inside while_loop, crop / crop_resize / resize_* /
// resize / affine / resample, space_to_batch / batch_to_space / sliding_windows /
// local_response_norm, gru / rnn / lstm options, quantize / dequantize, random_*, state ops,
// thresholded_relu / reverse_sequence / reshape_like / non_maximum_suppression.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createExecutor, type MilOperation, type MilValueType, type TensorInput, type TensorOutput } from '../../src/runtime/executor.js';
import { readNpy, writeNpy } from '../../src/runtime/npy.js';
import { readInputDir } from '../../src/cli/commands/predict.js';
import { bool, constOp, f32, floats, i32, ints, listType, op, program, randoms, stateType, str, tensorType, value } from './mil-builder.js';

type Feed = TensorInput & { mil?: string; type?: MilValueType };
type Out = { name: string; dtype: string; shape: (number | null)[]; type?: MilValueType };
type Arg = Parameters<typeof op>[2][string];

const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);
const list = (a: ArrayLike<number>) => Array.from(a);
const rand = (shape: number[], seed: number, scale = 1) => Float32Array.from(randoms(numel(shape), seed), (v) => v * scale);

/** Runs a program whose inputs are the feeds; returns the named outputs. */
async function runProgram(ops: MilOperation[], feeds: Record<string, Feed>, outputs: string[], opset = 'CoreML7') {
  const prog = program(
    Object.entries(feeds).map(([name, f]) => ({ name, dtype: f.mil ?? 'fp32', shape: f.shape, ...(f.type ? { type: f.type } : {}) })),
    ops, outputs, opset,
  );
  const plain: Record<string, TensorInput> = {};
  for (const [k, f] of Object.entries(feeds)) plain[k] = { data: f.data, shape: f.shape, ...(f.dtype ? { dtype: f.dtype } : {}) };
  return createExecutor({ program: prog, modelDir: '.' }).predict(plain);
}
/** One op, its outputs named by `outs`. */
async function one(type: string, inputs: Record<string, Arg>, outs: Out[], feeds: Record<string, Feed>, opset = 'CoreML7') {
  return runProgram([op(type, outs[0]!.name, inputs, outs)], feeds, outs.map((o) => o.name), opset);
}
function close(got: TensorOutput | undefined, want: ArrayLike<number>, shape: number[], tol = { abs: 2e-6, rel: 2e-5 }) {
  expect(got, 'output exists').toBeDefined();
  expect(got!.shape).toEqual(shape);
  expect(got!.data.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const g = got!.data[i]!, w = want[i]!;
    if (!(Math.abs(g - w) <= tol.abs + tol.rel * Math.abs(w))) throw new Error(`element ${i} of [${shape}]: got ${g}, want ${w}`);
  }
}
/** Row-major index helpers. */
const idx = (shape: number[], ...i: number[]) => i.reduce((o, v, d) => o * shape[d]! + v, 0);

// ---------------------------------------------------------------------------------------------
// Lists inside while_loop (a TensorFlow TensorArray recurrence, as coremltools converts Keras RNNs)

describe('list ops', () => {
  const T = 5, D = 3;
  const intT = tensorType('int32', []);
  const vecT = tensorType('fp32', [D]);
  // h_t = tanh(x_t + 0.5 * h_{t-1}); each h_t written to a TensorArray; gathered after the loop.
  function recurrence(elemShape: (number | string)[], initLength: number, dynamic: boolean) {
    const lsT = listType('fp32', [D]);
    const cond = {
      inputs: [{ name: 'ci', type: intT }, { name: 'ch', type: vecT }, { name: 'cl', type: lsT }],
      outputs: ['c'],
      operations: [op('less', 'c', { x: 'ci', y: i32(T) }, [{ name: 'c', dtype: 'bool', shape: [] }])],
    };
    const body = {
      inputs: [{ name: 'bi', type: intT }, { name: 'bh', type: vecT }, { name: 'bl', type: lsT }],
      outputs: ['bi2', 'hn', 'bl2'],
      operations: [
        op('gather', 'xi', { x: 'x', indices: 'bi', axis: i32(0) }, [{ name: 'xi', dtype: 'fp32', shape: [D] }]),
        op('mul', 'hh', { x: 'bh', y: f32(0.5) }, [{ name: 'hh', dtype: 'fp32', shape: [D] }]),
        op('add', 's', { x: 'xi', y: 'hh' }, [{ name: 's', dtype: 'fp32', shape: [D] }]),
        op('tanh', 'hn', { x: 's' }, [{ name: 'hn', dtype: 'fp32', shape: [D] }]),
        op('list_write', 'bl2', { ls: 'bl', index: 'bi', value: 'hn' }, [{ name: 'bl2', dtype: 'fp32', shape: [D], type: lsT }]),
        op('add', 'bi2', { x: 'bi', y: i32(1) }, [{ name: 'bi2', dtype: 'int32', shape: [] }]),
      ],
    };
    const shapeArgs = elemShape.map((d) => (typeof d === 'number' ? i32(d) : str(d)));
    return [
      op('make_list', 'ls0', { init_length: i32(initLength), dynamic_length: bool(dynamic), elem_shape: shapeArgs, dtype: str('fp32') },
        [{ name: 'ls0', dtype: 'fp32', shape: [D], type: lsT }]),
      constOp('i0', i32(0)),
      constOp('h0', floats([D], [0, 0, 0])),
      op('while_loop', 'loop', { loop_vars: ['i0', 'h0', 'ls0'] },
        [{ name: 'n', dtype: 'int32', shape: [] }, { name: 'hT', dtype: 'fp32', shape: [D] }, { name: 'lsT', dtype: 'fp32', shape: [D], type: lsT }],
        [cond, body]),
      op('list_length', 'len', { ls: 'lsT' }, [{ name: 'len', dtype: 'int32', shape: [] }]),
      op('range_1d', 'all', { start: i32(0), end: 'len', step: i32(1) }, [{ name: 'all', dtype: 'int32', shape: [null] }]),
      op('list_gather', 'seq', { ls: 'lsT', indices: 'all' }, [{ name: 'seq', dtype: 'fp32', shape: [null, D] }]),
      op('list_read', 'second', { ls: 'lsT', index: i32(1) }, [{ name: 'second', dtype: 'fp32', shape: [D] }]),
    ];
  }
  const x = rand([T, D], 101, 2);
  function reference() {
    const h = [0, 0, 0];
    const seq: number[] = [];
    for (let t = 0; t < T; t++) {
      for (let d = 0; d < D; d++) h[d] = Math.tanh(x[t * D + d]! + 0.5 * h[d]!);
      seq.push(...h);
    }
    return seq;
  }

  it('a while_loop writes one tensor per step into a dynamic list and gathers the sequence', async () => {
    const out = await runProgram(recurrence([D], 0, true), { x: { data: x, shape: [T, D] } }, ['seq', 'len', 'second', 'hT']);
    const want = reference();
    close(out.seq, want, [T, D]);
    expect(list(out.len!.data)).toEqual([T]);
    close(out.second, want.slice(D, 2 * D), [D]);
    close(out.hT, want.slice((T - 1) * D), [D]);
  });

  it('a symbolic element shape is fixed by the first write; a fixed-length list of the right size works too', async () => {
    const sym = await runProgram(recurrence(['is0'], 0, true), { x: { data: x, shape: [T, D] } }, ['seq']);
    close(sym.seq, reference(), [T, D]);
    const fixed = await runProgram(recurrence([D], T, false), { x: { data: x, shape: [T, D] } }, ['seq', 'len']);
    close(fixed.seq, reference(), [T, D]);
    expect(list(fixed.len!.data)).toEqual([T]);
  });

  it('a list returned as a function output is a one-line error, not a crash', async () => {
    const lsT = listType('fp32', [2]);
    await expect(runProgram([op('make_list', 'l0', { init_length: i32(1), elem_shape: [i32(2)], dtype: str('fp32') }, [{ name: 'l0', dtype: 'fp32', shape: [2], type: lsT }])], {}, ['l0']))
      .rejects.toThrow(/output 'l0' is a list value; function outputs must be tensors/);
  });

  it('a fixed-length list refuses a write past its end', async () => {
    await expect(runProgram(recurrence([D], 2, false), { x: { data: x, shape: [T, D] } }, ['seq'])).rejects.toThrow(/fixed-length list of length 2/);
  });

  it('list_scatter writes rows at indices (growing a dynamic list); unwritten slots read as zeros', async () => {
    const lsT = listType('int32', [2]);
    const ops = [
      op('make_list', 'l0', { init_length: i32(2), elem_shape: [i32(2)], dtype: str('int32') }, [{ name: 'l0', dtype: 'int32', shape: [2], type: lsT }]),
      op('list_scatter', 'l1', { ls: 'l0', indices: ints([3, 1]), value: 'v' }, [{ name: 'l1', dtype: 'int32', shape: [2], type: lsT }]),
      op('list_length', 'n', { ls: 'l1' }, [{ name: 'n', dtype: 'int32', shape: [] }]),
      op('list_gather', 'g', { ls: 'l1', indices: ints([0, 1, 2, 3]) }, [{ name: 'g', dtype: 'int32', shape: [4, 2] }]),
    ];
    const out = await runProgram(ops, { v: { data: Int32Array.from([7, 8, -1, -2]), shape: [2, 2], mil: 'int32' } }, ['n', 'g']);
    expect(list(out.n!.data)).toEqual([4]);
    expect(list(out.g!.data)).toEqual([0, 0, -1, -2, 0, 0, 7, 8]);
  });
});

// ---------------------------------------------------------------------------------------------
// Resampling

type Mode = 'STRICT_ALIGN_CORNERS' | 'ALIGN_CORNERS' | 'DEFAULT' | 'OFFSET_CORNERS' | 'UNALIGN_CORNERS';
const MODES: Mode[] = ['STRICT_ALIGN_CORNERS', 'ALIGN_CORNERS', 'DEFAULT', 'OFFSET_CORNERS', 'UNALIGN_CORNERS'];
/** Grid point i of n over [0, X - 1], as the resize_bilinear documentation writes it. */
function gridRef(mode: Mode, i: number, X: number, n: number): number {
  let g: number;
  if (mode === 'STRICT_ALIGN_CORNERS') g = n === 1 ? 0 : (i * (X - 1)) / (n - 1);
  else if (mode === 'ALIGN_CORNERS') g = n === 1 ? (X - 1) / 2 : (i * (X - 1)) / (n - 1);
  else if (mode === 'DEFAULT') g = n === 1 ? 0 : (i * (X - X / n)) / (n - 1);
  else if (mode === 'OFFSET_CORNERS') { const delta = Math.max(1, X - 1) / n; g = 0.5 * delta + i * delta; }
  else g = (i * X) / n + (0.5 * X) / n - 0.5;
  return Math.min(Math.max(g, 0), X - 1);
}
/** Bilinear value of plane p [H, W] at (y, x) within the image. */
function bilinear(p: ArrayLike<number>, H: number, W: number, y: number, x: number) {
  const y0 = Math.floor(y), x0 = Math.floor(x), y1 = Math.min(y0 + 1, H - 1), x1 = Math.min(x0 + 1, W - 1);
  const wy = y - y0, wx = x - x0;
  const v = (i: number, j: number) => p[i * W + j]!;
  return (1 - wy) * ((1 - wx) * v(y0, x0) + wx * v(y0, x1)) + wy * ((1 - wx) * v(y1, x0) + wx * v(y1, x1));
}

describe('resize_bilinear / resize_nearest_neighbor / resize / crop', () => {
  it('samples the grid points the op documentation lists for Xin = 2', async () => {
    // x = [0, 1] along the width: the interpolated value is the grid point itself.
    const doc: Record<Mode, Record<number, number[]>> = {
      UNALIGN_CORNERS: { 5: [0, 0.1, 0.5, 0.9, 1], 6: [0, 0, 0.33, 0.67, 1, 1] },
      STRICT_ALIGN_CORNERS: { 5: [0, 0.25, 0.5, 0.75, 1], 6: [0, 0.2, 0.4, 0.6, 0.8, 1] },
      ALIGN_CORNERS: { 5: [0, 0.25, 0.5, 0.75, 1], 6: [0, 0.2, 0.4, 0.6, 0.8, 1] },
      DEFAULT: { 5: [0, 0.4, 0.8, 1, 1], 6: [0, 0.33, 0.67, 1, 1, 1] },
      OFFSET_CORNERS: { 5: [0.1, 0.3, 0.5, 0.7, 0.9], 6: [0.08, 0.25, 0.42, 0.58, 0.75, 0.92] },
    };
    for (const mode of MODES) {
      for (const n of [5, 6]) {
        const out = await one('resize_bilinear', { x: 'x', target_size_height: i32(1), target_size_width: i32(n), sampling_mode: str(mode) },
          [{ name: 'y', dtype: 'fp32', shape: [1, 1, n] }], { x: { data: Float32Array.from([0, 1]), shape: [1, 1, 2] } });
        close(out.y, doc[mode][n]!, [1, 1, n], { abs: 0.006, rel: 0 });
      }
    }
  });

  it('matches a float64 bilinear reference in every sampling mode, up and down', async () => {
    const [N, C, H, W] = [2, 2, 4, 5];
    const x = rand([N, C, H, W], 11);
    for (const mode of MODES) {
      for (const [oh, ow] of [[7, 3], [1, 9], [2, 1]] as const) {
        const out = await one('resize_bilinear', { x: 'x', target_size_height: i32(oh), target_size_width: i32(ow), sampling_mode: str(mode) },
          [{ name: 'y', dtype: 'fp32', shape: [N, C, oh, ow] }], { x: { data: x, shape: [N, C, H, W] } });
        const want: number[] = [];
        for (let p = 0; p < N * C; p++)
          for (let i = 0; i < oh; i++)
            for (let j = 0; j < ow; j++) want.push(bilinear(x.subarray(p * H * W, (p + 1) * H * W), H, W, gridRef(mode, i, H, oh), gridRef(mode, j, W, ow)));
        close(out.y, want, [N, C, oh, ow]);
      }
    }
  });

  it('upsample_nearest_neighbor / upsample_bilinear give coremltools\' fractional-scale answers', async () => {
    const x = { data: Float32Array.from([1.5, -2.5, 3.5]), shape: [1, 1, 1, 3] };
    const a = await one('upsample_nearest_neighbor', { x: 'x', scale_factor_height: f32(3.17), scale_factor_width: f32(0.67) }, [{ name: 'y', dtype: 'fp32', shape: [1, 1, 3, 2] }], { x });
    close(a.y, [1.5, -2.5, 1.5, -2.5, 1.5, -2.5], [1, 1, 3, 2], { abs: 0, rel: 0 });
    const b = await one('upsample_nearest_neighbor', { x: 'x', scale_factor_height: f32(2), scale_factor_width: f32(1.12) }, [{ name: 'y', dtype: 'fp32', shape: [1, 1, 2, 3] }], { x });
    close(b.y, [1.5, -2.5, 3.5, 1.5, -2.5, 3.5], [1, 1, 2, 3], { abs: 0, rel: 0 });
    const lin = { data: Float32Array.from([0, 1]), shape: [1, 1, 2] };
    const c = await one('upsample_bilinear', { x: 'x', scale_factor_height: f32(1), scale_factor_width: f32(2.6), align_corners: bool(false) }, [{ name: 'y', dtype: 'fp32', shape: [1, 1, 5] }], { x: lin });
    close(c.y, [0, 0.1, 0.5, 0.9, 1], [1, 1, 5], { abs: 1e-6, rel: 0 });
    const d = await one('upsample_bilinear', { x: 'x', scale_factor_height: i32(1), scale_factor_width: i32(3) }, [{ name: 'y', dtype: 'fp32', shape: [1, 1, 6] }], { x: lin });
    close(d.y, [0, 0.2, 0.4, 0.6, 0.8, 1], [1, 1, 6], { abs: 1e-6, rel: 0 });  // align_corners defaults to true
  });

  it('resize_nearest_neighbor takes floor(i * in / out)', async () => {
    const x = rand([1, 3, 4], 12);
    const out = await one('resize_nearest_neighbor', { x: 'x', target_size_height: i32(7), target_size_width: i32(2) },
      [{ name: 'y', dtype: 'fp32', shape: [1, 7, 2] }], { x: { data: x, shape: [1, 3, 4] } });
    const want: number[] = [];
    for (let i = 0; i < 7; i++) for (let j = 0; j < 2; j++) want.push(x[Math.floor((i * 3) / 7) * 4 + Math.floor((j * 4) / 2)]!);
    close(out.y, want, [1, 7, 2], { abs: 0, rel: 0 });
  });

  it('iOS17 resize: the documented NEAREST_NEIGHBOR example, and LINEAR over three axes with a 0 (keep) entry', async () => {
    const ex = await one('resize', { x: 'x', shape: ints([1, 1, 3, 2]), resized_dims: value('uint32', [], [2]), interpolation_mode: str('NEAREST_NEIGHBOR'), sampling_mode: str('DEFAULT') },
      [{ name: 'y', dtype: 'fp32', shape: [1, 1, 1, 3, 2] }], { x: { data: Float32Array.from([-6.174, 9.371]), shape: [1, 1, 1, 2, 1] } });
    close(ex.y, [-6.174, -6.174, 9.371, 9.371, 9.371, 9.371], [1, 1, 1, 3, 2], { abs: 1e-6, rel: 0 });
    const lin = await one('resize', { x: 'x', shape: 's', resized_dims: value('uint32', [], [2]), interpolation_mode: str('LINEAR'), sampling_mode: str('DEFAULT') },
      [{ name: 'y', dtype: 'fp32', shape: [1, 1, null, null] }], { x: { data: Float32Array.from([0, 1]), shape: [1, 1, 1, 2] }, s: { data: Int32Array.from([3, 1, 5]), shape: [3], mil: 'int32' } });
    close(lin.y, [0, 0.4, 0.8, 1, 1], [1, 1, 1, 5], { abs: 1e-6, rel: 0 });  // the dynamic-shape example
    const [A, B, C] = [3, 4, 2];
    const x = rand([2, A, B, C], 13);
    const out = await one('resize', { x: 'x', shape: ints([5, 0, 3]), resized_dims: value('uint32', [], [3]), sampling_mode: str('UNALIGN_CORNERS') },
      [{ name: 'y', dtype: 'fp32', shape: [2, 5, B, 3] }], { x: { data: x, shape: [2, A, B, C] } });
    const want: number[] = [];
    for (let n = 0; n < 2; n++)
      for (let i = 0; i < 5; i++)
        for (let j = 0; j < B; j++)
          for (let k = 0; k < 3; k++) {
            // trilinear: interpolate along each axis at its grid point
            const gi = gridRef('UNALIGN_CORNERS', i, A, 5), gj = gridRef('UNALIGN_CORNERS', j, B, B), gk = gridRef('UNALIGN_CORNERS', k, C, 3);
            let acc = 0;
            for (const [ii, wi] of [[Math.floor(gi), 1 - (gi - Math.floor(gi))], [Math.min(Math.floor(gi) + 1, A - 1), gi - Math.floor(gi)]] as const)
              for (const [jj, wj] of [[Math.floor(gj), 1 - (gj - Math.floor(gj))], [Math.min(Math.floor(gj) + 1, B - 1), gj - Math.floor(gj)]] as const)
                for (const [kk, wk] of [[Math.floor(gk), 1 - (gk - Math.floor(gk))], [Math.min(Math.floor(gk) + 1, C - 1), gk - Math.floor(gk)]] as const)
                  acc += wi * wj * wk * x[idx([2, A, B, C], n, ii, jj, kk)]!;
            want.push(acc);
          }
    close(out.y, want, [2, 5, B, 3]);
  });

  it('crop removes rows and columns from the last two axes (any dtype)', async () => {
    const x = Int32Array.from({ length: 2 * 4 * 5 }, (_, i) => i);
    const out = await one('crop', { x: 'x', crop_height: ints([1, 2]), crop_width: ints([0, 3]) }, [{ name: 'y', dtype: 'int32', shape: [2, 1, 2] }],
      { x: { data: x, shape: [2, 4, 5], mil: 'int32' } });
    expect(out.y!.shape).toEqual([2, 1, 2]);
    expect(list(out.y!.data)).toEqual([5, 6, 25, 26]);
    await expect(one('crop', { x: 'x', crop_height: ints([3, 2]), crop_width: ints([0, 0]) }, [{ name: 'y', dtype: 'int32', shape: [2, 0, 5] }],
      { x: { data: x, shape: [2, 4, 5], mil: 'int32' } })).rejects.toThrow(/non-negative size/);
  });
});

// crop_resize: each box's grid is the sampling mode's grid over [start, end] (X - 1 = end - start),
// shifted by start; samples outside the image take pad_value (TF crop_and_resize's extrapolation).
function cropRef(x: Float32Array, shape: number[], b: number, box: number[], th: number, tw: number, mode: Mode, pad: number) {
  const [, C, H, W] = shape as [number, number, number, number];
  const [y0, x0, y1, x1] = box as [number, number, number, number];
  const out: number[] = [];
  for (let c = 0; c < C; c++)
    for (let i = 0; i < th; i++)
      for (let j = 0; j < tw; j++) {
        const y = y0 + Math.sign(y1 - y0 || 1) * gridRef(mode, i, Math.abs(y1 - y0) + 1, th);
        const xx = x0 + Math.sign(x1 - x0 || 1) * gridRef(mode, j, Math.abs(x1 - x0) + 1, tw);
        out.push(y < 0 || y > H - 1 || xx < 0 || xx > W - 1 ? pad : bilinear(x.subarray(((b * C) + c) * H * W, ((b * C) + c + 1) * H * W), H, W, y, xx));
      }
  return out;
}

describe('crop_resize', () => {
  const shape = [2, 2, 6, 7];
  const x = rand(shape, 21);
  it('gives the answers of coremltools\' crop_resize test (ALIGN_CORNERS, pixel and normalized boxes, an inverted box)', async () => {
    const img = { x: { data: Float32Array.from({ length: 16 }, (_, i) => i + 1), shape: [1, 1, 4, 4] } };
    const run = (roi: number[], n: number, extra: Record<string, Arg> = {}) => one('crop_resize',
      { x: 'x', roi: floats([1, 1, roi.length, 1, 1], roi), target_height: i32(n), target_width: i32(n), sampling_mode: str('ALIGN_CORNERS'), ...extra },
      [{ name: 'y', dtype: 'fp32', shape: [1, 1, 1, n, n] }], img);
    close((await run([1, 1, 2, 2], 2)).y, [6, 7, 10, 11], [1, 1, 1, 2, 2], { abs: 1e-6, rel: 0 });
    close((await run([1, 1, 2, 2], 4)).y, [6, 6.333333, 6.666666, 7, 7.333333, 7.666666, 8, 8.333333, 8.666666, 9, 9.333333, 9.666666, 10, 10.333333, 10.666666, 11], [1, 1, 1, 4, 4], { abs: 1e-5, rel: 0 });
    close((await run([1, 1, 2, 2], 1)).y, [8.5], [1, 1, 1, 1, 1], { abs: 1e-6, rel: 0 });
    close((await run([0, 0, 0, 1 / 3, 1 / 3], 2, { normalized_coordinates: bool(true) })).y, [1, 2, 5, 6], [1, 1, 1, 2, 2], { abs: 1e-5, rel: 0 });
    close((await run([2, 2, 1, 1], 2)).y, [11, 10, 7, 6], [1, 1, 1, 2, 2], { abs: 1e-6, rel: 0 });
    // iOS17 form (ops/tests/iOS17/test_image_resizing.py): normalized boxes, one inverted, pad_value 10.
    const boxes = [0.1, 0.3, 1.3, 1.0, 0.5, 1.8, 1.0, 0.3, 0.0, 0.4, 0.6, 0.7];
    const out17 = await one('crop_resize', { x: 'x', boxes: floats([3, 4], boxes), box_indices: ints([0, 0, 0]), target_height: i32(2), target_width: i32(2), normalized_coordinates: bool(true), sampling_mode: str('ALIGN_CORNERS'), pad_value: f32(10) },
      [{ name: 'y', dtype: 'fp32', shape: [3, 1, 2, 2] }], img);
    close(out17.y, [3.1, 5.2, 10, 10, 10, 7.899, 10, 13.9, 2.2, 3.1, 9.4, 10.3], [3, 1, 2, 2], { abs: 2e-3, rel: 0 });
  });

  it('a box covering the image at the input size is the identity (STRICT_ALIGN_CORNERS, normalized)', async () => {
    const out = await one('crop_resize', { x: 'x', roi: floats([1, 1, 4, 1, 1], [0, 0, 1, 1]), target_height: i32(6), target_width: i32(7), normalized_coordinates: bool(true), sampling_mode: str('STRICT_ALIGN_CORNERS') },
      [{ name: 'y', dtype: 'fp32', shape: [1, 2, 2, 6, 7] }], { x: { data: x, shape } });
    close(out.y, x, [1, 2, 2, 6, 7]);
  });

  it('iOS15 roi [N,1,4,1,1] crops every image; [N,1,5,1,1] names the image; every box mode', async () => {
    const boxes = [[0.5, 1, 4.5, 5.5], [1, 0.2, 3, 6.3]];  // [h0, w0, h1, w1] in pixels
    const enc: Record<string, (b: number[]) => number[]> = {
      CORNERS_HEIGHT_FIRST: (b) => b,
      CORNERS_WIDTH_FIRST: (b) => [b[1]!, b[0]!, b[3]!, b[2]!],
      CENTER_SIZE_HEIGHT_FIRST: (b) => [(b[0]! + b[2]!) / 2, (b[1]! + b[3]!) / 2, b[2]! - b[0]!, b[3]! - b[1]!],
      CENTER_SIZE_WIDTH_FIRST: (b) => [(b[1]! + b[3]!) / 2, (b[0]! + b[2]!) / 2, b[3]! - b[1]!, b[2]! - b[0]!],
    };
    for (const [bm, f] of Object.entries(enc)) {
      for (const mode of ['ALIGN_CORNERS', 'DEFAULT', 'UNALIGN_CORNERS'] as Mode[]) {
        const roi = boxes.flatMap(f);
        const out = await one('crop_resize', { x: 'x', roi: floats([2, 1, 4, 1, 1], roi), target_height: i32(3), target_width: i32(4), box_coordinate_mode: str(bm), sampling_mode: str(mode) },
          [{ name: 'y', dtype: 'fp32', shape: [2, 2, 2, 3, 4] }], { x: { data: x, shape } });
        const want = boxes.flatMap((bx) => [0, 1].flatMap((b) => cropRef(x, shape, b, bx, 3, 4, mode, 0)));
        close(out.y, want, [2, 2, 2, 3, 4], { abs: 1e-5, rel: 1e-5 });
      }
    }
    const roi5 = [1, 0.5, 1, 4.5, 5.5, 0, 1, 0.2, 3, 6.3];
    const out5 = await one('crop_resize', { x: 'x', roi: floats([2, 1, 5, 1, 1], roi5), target_height: i32(2), target_width: i32(2), sampling_mode: str('OFFSET_CORNERS') },
      [{ name: 'y', dtype: 'fp32', shape: [2, 1, 2, 2, 2] }], { x: { data: x, shape } });
    close(out5.y, [...cropRef(x, shape, 1, boxes[0]!, 2, 2, 'OFFSET_CORNERS', 0), ...cropRef(x, shape, 0, boxes[1]!, 2, 2, 'OFFSET_CORNERS', 0)], [2, 1, 2, 2, 2], { abs: 1e-5, rel: 1e-5 });
  });

  it('iOS16 pad_value fills samples outside the image; spatial_scale scales the box', async () => {
    const box = [-1, -2, 3, 8];  // runs off the top, left and right
    const out = await one('crop_resize', { x: 'x', roi: floats([1, 1, 4, 1, 1], box.map((v) => v * 4)), spatial_scale: f32(0.25), target_height: i32(4), target_width: i32(5), sampling_mode: str('STRICT_ALIGN_CORNERS'), pad_value: f32(-7) },
      [{ name: 'y', dtype: 'fp32', shape: [1, 2, 2, 4, 5] }], { x: { data: x, shape } }, 'CoreML6');
    const want = [0, 1].flatMap((b) => cropRef(x, shape, b, box, 4, 5, 'STRICT_ALIGN_CORNERS', -7));
    expect(want.filter((v) => v === -7).length).toBeGreaterThan(4);
    close(out.y, want, [1, 2, 2, 4, 5], { abs: 1e-5, rel: 1e-5 });
  });

  it('iOS17 boxes [N,4] + box_indices give [N, C, th, tw]; normalized coordinates scale by (H-1, W-1)', async () => {
    const nb = [[0.1, 0.2, 0.9, 0.7], [0, 0, 0.5, 1], [0.3, 0.3, 0.4, 0.4]];
    const out = await one('crop_resize', { x: 'x', boxes: floats([3, 4], nb.flat()), box_indices: ints([1, 0, 1]), target_height: i32(3), target_width: i32(3), normalized_coordinates: bool(true), sampling_mode: str('ALIGN_CORNERS') },
      [{ name: 'y', dtype: 'fp32', shape: [3, 2, 3, 3] }], { x: { data: x, shape } });
    const px = (b: number[]) => [b[0]! * 5, b[1]! * 6, b[2]! * 5, b[3]! * 6];
    const want = [...cropRef(x, shape, 1, px(nb[0]!), 3, 3, 'ALIGN_CORNERS', 0), ...cropRef(x, shape, 0, px(nb[1]!), 3, 3, 'ALIGN_CORNERS', 0), ...cropRef(x, shape, 1, px(nb[2]!), 3, 3, 'ALIGN_CORNERS', 0)];
    close(out.y, want, [3, 2, 3, 3], { abs: 1e-5, rel: 1e-5 });
    await expect(one('crop_resize', { x: 'x', boxes: floats([1, 4], [0, 0, 1, 1]), box_indices: ints([2]) }, [{ name: 'y', dtype: 'fp32', shape: [1, 2, 1, 1] }], { x: { data: x, shape } }))
      .rejects.toThrow(/box index 2 is outside the batch of 2/);
  });
});

// torch.grid_sample semantics for resample / affine.
function reflectRef(v: number, lo: number, hi: number) {
  const span = hi - lo;
  if (span <= 0) return lo;
  let d = Math.abs(v - lo);
  const flips = Math.floor(d / span);
  d -= flips * span;
  return flips % 2 === 0 ? lo + d : hi - d;
}
function sampleRef(p: ArrayLike<number>, H: number, W: number, y: number, x: number, nearest: boolean, pad: string, pv: number) {
  const fix = (v: number, n: number) =>
    pad === 'border' ? Math.min(Math.max(v, 0), n - 1)
      : pad === 'reflection' ? reflectRef(v, 0, n - 1)
        : pad === 'symmetric' ? Math.min(Math.max(reflectRef(v, -0.5, n - 0.5), 0), n - 1) : v;
  y = fix(y, H); x = fix(x, W);
  const at = (i: number, j: number) => (i < 0 || i >= H || j < 0 || j >= W ? pv : p[i * W + j]!);
  if (nearest) { const r = (v: number) => { const f = Math.floor(v); const d = v - f; return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f; }; return at(r(y), r(x)); }
  const y0 = Math.floor(y), x0 = Math.floor(x), wy = y - y0, wx = x - x0;
  return (1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x0 + 1)) + wy * ((1 - wx) * at(y0 + 1, x0) + wx * at(y0 + 1, x0 + 1));
}
const unnorm = (v: number, n: number, mode: string, align: boolean) =>
  mode === 'unnormalized' ? v : mode === 'normalized_minus_one_to_one' ? (align ? ((v + 1) / 2) * (n - 1) : ((v + 1) * n - 1) / 2) : align ? v * (n - 1) : v * n - 0.5;

describe('resample / affine', () => {
  // coremltools' own smoke tests (ops/tests/iOS15/test_image_resizing.py, run against Core ML).
  const img = { data: Float32Array.from([11, 22, 33, 44]), shape: [1, 1, 2, 2] };
  it('gives the answers of coremltools\' affine test', async () => {
    const t = { data: Float32Array.from([-1, -2, -3.7, -1, 3.5, 1.2]), shape: [1, 6] };
    const base = { x: 'x', transform_matrix: 't', sampling_mode: str('bilinear'), padding_mode: str('constant'), padding_value: f32(0), coordinates_mode: str('normalized_minus_one_to_one'), align_corners: bool(true) };
    const a = await one('affine', { ...base, output_height: i32(3), output_width: i32(3) }, [{ name: 'y', dtype: 'fp32', shape: [1, 1, 3, 3] }], { x: img, t });
    close(a.y, [10.752501, 2.5025, 0, 1.9799997, 0, 0, 0, 0, 0], [1, 1, 3, 3], { abs: 1e-5, rel: 1e-5 });
    const b = await one('affine', { ...base, output_height: i32(2), output_width: i32(5) }, [{ name: 'y', dtype: 'fp32', shape: [1, 1, 2, 5] }], { x: img, t });
    close(b.y, [10.752501, 5.94, 2.5025, 0.44000006, 0, 0, 0, 0, 0, 0], [1, 1, 2, 5], { abs: 1e-5, rel: 1e-5 });
  });

  it('gives the answers of coremltools\' resample test (four sampling / padding / coordinate combinations)', async () => {
    const g = { data: Float32Array.from([-1, -2, -3.7, -1, 0, 0, 3.5, 1.2]), shape: [1, 2, 2, 2] };
    const cases: [string, string, number, string, boolean, number[]][] = [
      ['bilinear', 'constant', 6.17, 'normalized_minus_one_to_one', true, [8.585, 6.17, 27.5, 6.17]],
      ['nearest', 'border', -1, 'unnormalized', false, [11, 11, 11, 44]],
      ['bilinear', 'reflection', -1, 'normalized_zero_to_one', true, [22, 36.3, 11, 34.1]],
      ['nearest', 'symmetric', -1, 'normalized_zero_to_one', false, [22, 33, 11, 33]],
    ];
    for (const [sm, pad, pv, cm, align, want] of cases) {
      const out = await one('resample', { x: 'x', coordinates: 'g', sampling_mode: str(sm), padding_mode: str(pad), padding_value: f32(pv), coordinates_mode: str(cm), align_corners: bool(align) },
        [{ name: 'y', dtype: 'fp32', shape: [1, 1, 2, 2] }], { x: img, g });
      close(out.y, want, [1, 1, 2, 2], { abs: 1e-4, rel: 1e-5 });
    }
  });

  it('padding modes follow the documented 1-D examples of |1, 2, 3|', async () => {
    const coords = Float32Array.from([-3, -2, -1, 0, 1, 2, 3, 4, 5].flatMap((v) => [v, 0]));
    const want: Record<string, number[]> = {
      constant: [0, 0, 0, 1, 2, 3, 0, 0, 0], border: [1, 1, 1, 1, 2, 3, 3, 3, 3],
      reflection: [2, 3, 2, 1, 2, 3, 2, 1, 2], symmetric: [3, 2, 1, 1, 2, 3, 3, 2, 1],
    };
    for (const [pad, w] of Object.entries(want)) {
      for (const sm of ['bilinear', 'nearest']) {
        const out = await one('resample', { x: 'x', coordinates: 'g', sampling_mode: str(sm), padding_mode: str(pad), padding_value: f32(0), coordinates_mode: str('unnormalized'), align_corners: bool(false) },
          [{ name: 'y', dtype: 'fp32', shape: [1, 1, 1, 9] }], { x: { data: Float32Array.from([1, 2, 3]), shape: [1, 1, 1, 3] }, g: { data: coords, shape: [1, 1, 9, 2] } });
        close(out.y, w, [1, 1, 1, 9], { abs: 1e-6, rel: 0 });
      }
    }
  });

  it('matches torch.grid_sample-style sampling for every coordinate mode, align_corners and padding', async () => {
    const [B, C, H, W, OH, OW] = [2, 2, 4, 5, 3, 4];
    const x = rand([B, C, H, W], 31);
    for (const cm of ['unnormalized', 'normalized_minus_one_to_one', 'normalized_zero_to_one']) {
      const scale = cm === 'unnormalized' ? 6 : cm === 'normalized_zero_to_one' ? 0.8 : 1.4;
      const g = Float32Array.from(randoms(B * OH * OW * 2, 32), (v) => v * scale + (cm === 'normalized_zero_to_one' ? 0.5 : cm === 'unnormalized' ? 2 : 0));
      for (const pad of ['constant', 'border', 'reflection', 'symmetric'])
        for (const align of [true, false])
          for (const sm of ['bilinear', 'nearest']) {
            const out = await one('resample', { x: 'x', coordinates: 'g', sampling_mode: str(sm), padding_mode: str(pad), padding_value: f32(0.25), coordinates_mode: str(cm), align_corners: bool(align) },
              [{ name: 'y', dtype: 'fp32', shape: [B, C, OH, OW] }], { x: { data: x, shape: [B, C, H, W] }, g: { data: g, shape: [B, OH, OW, 2] } });
            const want: number[] = [];
            for (let b = 0; b < B; b++)
              for (let c = 0; c < C; c++)
                for (let i = 0; i < OH; i++)
                  for (let j = 0; j < OW; j++) {
                    const q = ((b * OH + i) * OW + j) * 2;
                    const plane = x.subarray((b * C + c) * H * W, (b * C + c + 1) * H * W);
                    want.push(sampleRef(plane, H, W, unnorm(g[q + 1]!, H, cm, align), unnorm(g[q]!, W, cm, align), sm === 'nearest', pad, 0.25));
                  }
            close(out.y, want, [B, C, OH, OW], { abs: 1e-5, rel: 1e-5 });
          }
    }
  });

  it('affine: the identity matrix reproduces the input; a rotation-and-shift matches the reference', async () => {
    const [B, C, H, W] = [2, 1, 4, 6];
    const x = rand([B, C, H, W], 41);
    const base = { x: 'x', transform_matrix: 't', output_height: i32(H), output_width: i32(W), sampling_mode: str('bilinear'), padding_mode: str('constant'), padding_value: f32(0), coordinates_mode: str('normalized_minus_one_to_one'), align_corners: bool(true) };
    const idn = await one('affine', base, [{ name: 'y', dtype: 'fp32', shape: [B, C, H, W] }], { x: { data: x, shape: [B, C, H, W] }, t: { data: Float32Array.from([1, 0, 0, 0, 1, 0]), shape: [1, 6] } });
    close(idn.y, x, [B, C, H, W], { abs: 1e-6, rel: 1e-6 });
    const m = [[0.9, -0.3, 0.1, 0.25, 0.8, -0.2], [1.1, 0.2, -0.3, -0.1, 1.2, 0.05]];
    const [OH, OW] = [3, 5];
    const out = await one('affine', { ...base, output_height: i32(OH), output_width: i32(OW) }, [{ name: 'y', dtype: 'fp32', shape: [B, C, OH, OW] }],
      { x: { data: x, shape: [B, C, H, W] }, t: { data: Float32Array.from(m.flat()), shape: [2, 6] } });
    const want: number[] = [];
    for (let b = 0; b < B; b++)
      for (let i = 0; i < OH; i++)
        for (let j = 0; j < OW; j++) {
          const xo = -1 + (2 * j) / (OW - 1), yo = -1 + (2 * i) / (OH - 1);
          const [a0, a1, a2, b0, b1, b2] = m[b]!;
          const xi = a0! * xo + a1! * yo + a2!, yi = b0! * xo + b1! * yo + b2!;
          want.push(sampleRef(x.subarray(b * H * W, (b + 1) * H * W), H, W, unnorm(yi, H, 'normalized_minus_one_to_one', true), unnorm(xi, W, 'normalized_minus_one_to_one', true), false, 'constant', 0));
        }
    close(out.y, want, [B, C, OH, OW], { abs: 1e-5, rel: 1e-5 });
  });
});

// ---------------------------------------------------------------------------------------------
// Spatial rearrangement and windows

/** TensorFlow space_to_batch_nd in NCHW: out[(bo * B + b), c, i, j] = padded[b, c, i*bh + oh, j*bw + ow]. */
function spaceToBatchRef(x: Float32Array, [B, C, H, W]: number[], [bh, bw]: number[], [pt, pb, pl, pr]: number[]) {
  const Hp = H! + pt! + pb!, Wp = W! + pl! + pr!, OH = Hp / bh!, OW = Wp / bw!;
  const out: number[] = [];
  for (let oh = 0; oh < bh!; oh++)
    for (let ow = 0; ow < bw!; ow++)
      for (let b = 0; b < B!; b++)
        for (let c = 0; c < C!; c++)
          for (let i = 0; i < OH; i++)
            for (let j = 0; j < OW; j++) {
              const h = i * bh! + oh - pt!, w = j * bw! + ow - pl!;
              out.push(h < 0 || h >= H! || w < 0 || w >= W! ? 0 : x[idx([B!, C!, H!, W!], b, c, h, w)]!);
            }
  return { out, shape: [B! * bh! * bw!, C!, OH, OW] };
}

describe('space_to_batch / batch_to_space / sliding_windows / local_response_norm', () => {
  it('space_to_batch pads and moves blocks into the batch in TF order; batch_to_space undoes it', async () => {
    const shape = [2, 3, 3, 5];
    const x = rand(shape, 51);
    const ref = spaceToBatchRef(x, shape, [2, 3], [1, 0, 0, 1]);
    const s2b = await one('space_to_batch', { x: 'x', block_shape: ints([2, 3]), paddings: value('int32', [2, 2], [1, 0, 0, 1]) },
      [{ name: 'y', dtype: 'fp32', shape: ref.shape }], { x: { data: x, shape } });
    close(s2b.y, ref.out, ref.shape, { abs: 0, rel: 0 });
    const back = await one('batch_to_space', { x: 'x', block_shape: ints([2, 3]), crops: value('int32', [2, 2], [1, 0, 0, 1]) },
      [{ name: 'y', dtype: 'fp32', shape }], { x: { data: Float32Array.from(s2b.y!.data), shape: ref.shape } });
    close(back.y, x, shape, { abs: 0, rel: 0 });
  });

  it('gives the answers of coremltools\' space_to_batch / batch_to_space tests', async () => {
    const x = Float32Array.from({ length: 16 }, (_, i) => i + 1);  // (2, 1, 2, 4)
    const want = [0, 1, 3, 0, 9, 11, 0, 2, 4, 0, 10, 12, 0, 5, 7, 0, 13, 15, 0, 6, 8, 0, 14, 16];
    const s2b = await one('space_to_batch', { x: 'x', block_shape: ints([2, 2]), paddings: value('int32', [2, 2], [0, 0, 2, 0]) },
      [{ name: 'y', dtype: 'fp32', shape: [8, 1, 1, 3] }], { x: { data: x, shape: [2, 1, 2, 4] } });
    close(s2b.y, want, [8, 1, 1, 3], { abs: 0, rel: 0 });
    const b2s = await one('batch_to_space', { x: 'x', block_shape: ints([2, 2]), crops: value('int32', [2, 2], [0, 0, 2, 0]) },
      [{ name: 'y', dtype: 'fp32', shape: [2, 1, 2, 4] }], { x: { data: Float32Array.from(want), shape: [8, 1, 1, 3] } });
    close(b2s.y, x, [2, 1, 2, 4], { abs: 0, rel: 0 });
  });

  it('iOS17 form with one spatial axis', async () => {
    const shape = [1, 2, 6];
    const x = rand(shape, 52);
    const out = await one('space_to_batch', { x: 'x', block_shape: ints([3]), paddings: value('int32', [1, 2], [0, 0]) }, [{ name: 'y', dtype: 'fp32', shape: [3, 2, 2] }], { x: { data: x, shape } });
    const want: number[] = [];
    for (let o = 0; o < 3; o++) for (let c = 0; c < 2; c++) for (let i = 0; i < 2; i++) want.push(x[c * 6 + i * 3 + o]!);
    close(out.y, want, [3, 2, 2], { abs: 0, rel: 0 });
  });

  it('sliding_windows returns every window of size, stride apart', async () => {
    const shape = [2, 7, 3];
    const x = rand(shape, 53);
    const out = await one('sliding_windows', { x: 'x', axis: i32(-2), size: i32(3), stride: i32(2) }, [{ name: 'y', dtype: 'fp32', shape: [2, 3, 3, 3] }], { x: { data: x, shape } });
    const want: number[] = [];
    for (let a = 0; a < 2; a++) for (let n = 0; n < 3; n++) for (let s = 0; s < 3; s++) for (let d = 0; d < 3; d++) want.push(x[idx(shape, a, n * 2 + s, d)]!);
    close(out.y, want, [2, 3, 3, 3], { abs: 0, rel: 0 });
  });

  it('local_response_norm divides by (k + alpha/size * window sum of squares)^beta', async () => {
    const shape = [2, 6, 2, 3];
    const x = rand(shape, 54, 3);
    for (const size of [1, 3, 4]) {
      const out = await one('local_response_norm', { x: 'x', size: i32(size), alpha: f32(0.5), beta: f32(0.75), k: f32(2) }, [{ name: 'y', dtype: 'fp32', shape }], { x: { data: x, shape } });
      const want: number[] = [];
      for (let n = 0; n < 2; n++)
        for (let c = 0; c < 6; c++)
          for (let s = 0; s < 6; s++) {
            let acc = 0;
            for (let j = Math.max(0, c - Math.floor((size - 1) / 2)); j <= Math.min(5, c + Math.ceil((size - 1) / 2)); j++) acc += x[(n * 6 + j) * 6 + s]! ** 2;
            want.push(x[(n * 6 + c) * 6 + s]! / (2 + (Math.fround(0.5) / size) * acc) ** 0.75);
          }
      close(out.y, want, shape, { abs: 1e-6, rel: 1e-5 });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Recurrent: gru, rnn, lstm options

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
const dot = (w: ArrayLike<number>, row: number, n: number, v: ArrayLike<number>, off = 0) => {
  let acc = 0;
  for (let i = 0; i < n; i++) acc += w[row * n + i]! * v[off + i]!;
  return acc;
};

describe('gru / rnn / lstm', () => {
  const S = 4, B = 2, I = 3, H = 2;
  const x = rand([S, B, I], 61);
  const h0 = rand([B, H], 62, 0.5);
  const wih = rand([3 * H, I], 63), whh = rand([3 * H, H], 64), bias = rand([3 * H], 65), ib = rand([3 * H], 66);
  // coremltools' numpy reference (test_recurrent.py): [r | o | z] rows; reset before the matmul unless
  // reset_after (iOS18, torch's GRU: o = tanh(W_o x + b_io + r * (R_o h + b_ho))). Outputs in processing order.
  function gruRef(reverse: boolean, resetAfter: boolean, inBias: ArrayLike<number> | null, act = Math.tanh, rec = sigmoid) {
    const h = Array.from({ length: B }, (_, b) => Array.from(h0.subarray(b * H, (b + 1) * H)));
    const ys: number[] = [];
    for (let step = 0; step < S; step++) {
      const t = reverse ? S - 1 - step : step;
      for (let b = 0; b < B; b++) {
        const xb = x.subarray((t * B + b) * I, (t * B + b + 1) * I), hp = h[b]!;
        const ibv = (k: number) => (inBias ? inBias[k]! : 0);
        const r = Array.from({ length: H }, (_, k) => rec(dot(wih, k, I, xb) + ibv(k) + dot(whh, k, H, hp) + bias[k]!));
        const z = Array.from({ length: H }, (_, k) => rec(dot(wih, 2 * H + k, I, xb) + ibv(2 * H + k) + dot(whh, 2 * H + k, H, hp) + bias[2 * H + k]!));
        const rh = hp.map((v, k) => v * r[k]!);
        const o = Array.from({ length: H }, (_, k) => act(dot(wih, H + k, I, xb) + ibv(H + k) +
          (resetAfter ? r[k]! * (dot(whh, H + k, H, hp) + bias[H + k]!) : dot(whh, H + k, H, rh) + bias[H + k]!)));
        h[b] = hp.map((v, k) => (1 - z[k]!) * o[k]! + z[k]! * v);
        ys.push(...h[b]!);
      }
    }
    return { ys, h: h.flat() };
  }
  const gruInputs = (extra: Record<string, Arg>) => ({
    x: 'x', initial_h: 'h0', weight_ih: floats([3 * H, I], list(wih)), weight_hh: floats([3 * H, H], list(whh)), bias: floats([3 * H], list(bias)),
    output_sequence: bool(true), ...extra,
  });
  const feeds = { x: { data: x, shape: [S, B, I] }, h0: { data: h0, shape: [B, H] } };
  const outs = [{ name: 'y', dtype: 'fp32', shape: [S, B, H] }, { name: 'hn', dtype: 'fp32', shape: [B, H] }];

  it('gru (iOS15): forward and reverse, sigmoid/tanh and swapped activations', async () => {
    for (const dir of ['forward', 'reverse'])
      for (const [a, r] of [['tanh', 'sigmoid'], ['sigmoid', 'tanh']] as const) {
        const out = await one('gru', gruInputs({ direction: str(dir), activation: str(a), recurrent_activation: str(r) }), outs, feeds);
        const ref = gruRef(dir === 'reverse', false, null, a === 'tanh' ? Math.tanh : sigmoid, r === 'tanh' ? Math.tanh : sigmoid);
        close(out.y, ref.ys, [S, B, H], { abs: 1e-5, rel: 1e-5 });
        close(out.hn, ref.h, [B, H], { abs: 1e-5, rel: 1e-5 });
      }
  });

  it('gru (iOS18): reset_after with input_bias is torch.nn.GRU; last-step output without output_sequence', async () => {
    const out = await one('gru', gruInputs({ reset_after: bool(true), input_bias: floats([3 * H], list(ib)) }), outs, feeds, 'CoreML8');
    const ref = gruRef(false, true, ib);
    close(out.y, ref.ys, [S, B, H], { abs: 1e-5, rel: 1e-5 });
    const last = await one('gru', gruInputs({ reset_after: bool(true), input_bias: floats([3 * H], list(ib)), output_sequence: bool(false) }),
      [{ name: 'y', dtype: 'fp32', shape: [1, B, H] }, { name: 'hn', dtype: 'fp32', shape: [B, H] }], feeds, 'CoreML8');
    close(last.y, ref.h, [1, B, H], { abs: 1e-5, rel: 1e-5 });
  });

  it('rnn: h = act(W_ih x + W_hh h + b), forward / reverse, relu and sigmoid_hard', async () => {
    const wi = rand([H, I], 67), wh = rand([H, H], 68), b = rand([H], 69);
    const acts: Record<string, (v: number) => number> = { tanh: Math.tanh, relu: (v) => Math.max(0, v), sigmoid_hard: (v) => Math.min(1, Math.max(0, 0.2 * v + 0.5)) };
    for (const dir of ['forward', 'reverse'])
      for (const [name, act] of Object.entries(acts)) {
        const out = await one('rnn', { x: 'x', initial_h: 'h0', weight_ih: floats([H, I], list(wi)), weight_hh: floats([H, H], list(wh)), bias: floats([H], list(b)), direction: str(dir), output_sequence: bool(true), activation: str(name) },
          outs, feeds);
        const h = Array.from({ length: B }, (_, bb) => Array.from(h0.subarray(bb * H, (bb + 1) * H)));
        const ys: number[] = [];
        for (let step = 0; step < S; step++) {
          const t = dir === 'reverse' ? S - 1 - step : step;
          for (let bb = 0; bb < B; bb++) {
            const hp = h[bb]!;
            h[bb] = Array.from({ length: H }, (_, k) => act(dot(wi, k, I, x, (t * B + bb) * I) + dot(wh, k, H, hp) + b[k]!));
            ys.push(...h[bb]!);
          }
        }
        close(out.y, ys, [S, B, H], { abs: 1e-5, rel: 1e-5 });
        close(out.hn, h.flat(), [B, H], { abs: 1e-5, rel: 1e-5 });
      }
  });

  it('lstm: peephole, clip of the cell state and hard_sigmoid / scaled_tanh as coremltools numpy reference', async () => {
    const w4 = rand([4 * H, I], 71), u4 = rand([4 * H, H], 72, 2), b4 = rand([4 * H], 73), p3 = rand([3 * H], 74);
    for (const clip of [50, 0.2]) {
      const out = await one('lstm', {
        x: 'x', initial_h: floats([B, H], new Array(B * H).fill(0)), initial_c: floats([B, H], new Array(B * H).fill(0)),
        weight_ih: floats([4 * H, I], list(w4)), weight_hh: floats([4 * H, H], list(u4)), bias: floats([4 * H], list(b4)), peephole: floats([3 * H], list(p3)),
        output_sequence: bool(true), recurrent_activation: str('sigmoid'), cell_activation: str('tanh'), activation: str('hard_sigmoid'), clip: f32(clip),
      }, [{ name: 'y', dtype: 'fp32', shape: [S, B, H] }, { name: 'hn', dtype: 'fp32', shape: [B, H] }, { name: 'cn', dtype: 'fp32', shape: [B, H] }], { x: { data: x, shape: [S, B, I] } });
      const hs = (v: number) => Math.min(Math.max(0.2 * v + 0.5, 0), 1);
      const ys: number[][] = Array.from({ length: S }, () => []);
      for (let b = 0; b < B; b++) {
        let h = new Array<number>(H).fill(0), c = new Array<number>(H).fill(0);
        for (let t = 0; t < S; t++) {
          const g = (k: number) => dot(w4, k, I, x, (t * B + b) * I) + dot(u4, k, H, h) + b4[k]!;
          const i_ = c.map((cv, k) => sigmoid(g(k) + cv * p3[k]!));
          const f_ = c.map((cv, k) => sigmoid(g(H + k) + cv * p3[H + k]!));
          const z_ = c.map((_, k) => Math.tanh(g(3 * H + k)));
          c = c.map((cv, k) => Math.max(Math.min(cv * f_[k]! + i_[k]! * z_[k]!, Math.fround(clip)), -Math.fround(clip)));
          const o_ = c.map((cv, k) => sigmoid(g(2 * H + k) + cv * p3[2 * H + k]!));
          h = c.map((cv, k) => o_[k]! * hs(cv));
          ys[t]!.push(...h);
        }
      }
      close(out.y, ys.flat(), [S, B, H], { abs: 1e-5, rel: 1e-5 });
      if (clip < 1) expect(Math.max(...list(out.cn!.data).map(Math.abs))).toBeLessThanOrEqual(Math.fround(0.2) + 1e-7);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// quantize / dequantize (iOS17)

describe('quantize / dequantize', () => {
  const roundEven = (v: number) => { const f = Math.floor(v), d = v - f; return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f; };
  it('per tensor: clip(round_half_even(x / scale) + zero_point), halves to even', async () => {
    const x = Float32Array.from([-300, -1.25, -0.75, -0.25, 0.25, 0.75, 1.25, 0.1, 7, 300]);
    const out = await one('quantize', { input: 'x', scale: f32(0.5), zero_point: value('int8', [], [3]), output_dtype: str('int8') }, [{ name: 'q', dtype: 'int8', shape: [10] }], { x: { data: x, shape: [10] } });
    const want = list(x).map((v) => Math.min(127, Math.max(-128, roundEven(Math.fround(v / 0.5)) + 3)));
    expect(want.slice(1, 7)).toEqual([1, 1, 3, 3, 5, 5]);  // x / 0.5 = -2.5 -> -2, -1.5 -> -2, -0.5 -> 0, 0.5 -> 0, 1.5 -> 2, 2.5 -> 2 (then +3)
    expect(list(out.q!.data)).toEqual(want);
    const u = await one('quantize', { input: 'x', scale: f32(2), output_dtype: str('uint8') }, [{ name: 'q', dtype: 'uint8', shape: [10] }], { x: { data: x, shape: [10] } });
    expect(list(u.q!.data)).toEqual(list(x).map((v) => Math.min(255, Math.max(0, roundEven(v / 2)))));
  });

  it('per axis scale / zero_point, and dequantize inverts it within half a step', async () => {
    const shape = [2, 3, 4];
    const x = rand(shape, 81, 5);
    const scale = [0.05, 0.1, 0.02], zp = [-3, 0, 10];
    const out = await runProgram([
      op('quantize', 'q', { input: 'x', scale: floats([3], scale), zero_point: value('int8', [3], zp), axis: i32(1), output_dtype: str('int8') }, [{ name: 'q', dtype: 'int8', shape }]),
      op('dequantize', 'd', { input: 'q', scale: floats([3], scale), zero_point: value('int8', [3], zp), axis: i32(-2) }, [{ name: 'd', dtype: 'fp32', shape }]),
    ], { x: { data: x, shape } }, ['q', 'd']);
    const q: number[] = [], d: number[] = [];
    for (let k = 0; k < x.length; k++) {
      const c = Math.floor(k / 4) % 3;
      const qq = Math.min(127, Math.max(-128, roundEven(Math.fround(x[k]! / Math.fround(scale[c]!))) + zp[c]!));
      q.push(qq);
      d.push(Math.fround(scale[c]!) * (qq - zp[c]!));
    }
    expect(list(out.q!.data)).toEqual(q);
    close(out.d, d, shape, { abs: 1e-7, rel: 1e-6 });
    await expect(one('quantize', { input: 'x', scale: floats([3], scale), output_dtype: str('int8') }, [{ name: 'q', dtype: 'int8', shape }], { x: { data: x, shape } }))
      .rejects.toThrow(/axis is required/);
  });
});

// ---------------------------------------------------------------------------------------------
// random_* : deterministic for a seed, distribution moments right

describe('random ops', () => {
  const N = 20000;
  const moments = (a: ArrayLike<number>) => {
    const m = list(a).reduce((s, v) => s + v, 0) / a.length;
    return { mean: m, var: list(a).reduce((s, v) => s + (v - m) ** 2, 0) / a.length };
  };
  const rop = (type: string, inputs: Record<string, Arg>, shape: number[]) => one(type, { shape: ints(shape), ...inputs }, [{ name: 'y', dtype: 'fp32', shape }], {});

  it('random_uniform: [low, high), mean and variance of U(low, high); same seed same values, other seed other values', async () => {
    const a = await rop('random_uniform', { low: f32(-2), high: f32(3), seed: i32(7) }, [100, 200]);
    const b = await rop('random_uniform', { low: f32(-2), high: f32(3), seed: i32(7) }, [100, 200]);
    const c = await rop('random_uniform', { low: f32(-2), high: f32(3), seed: i32(8) }, [100, 200]);
    expect(list(a.y!.data)).toEqual(list(b.y!.data));
    expect(list(a.y!.data)).not.toEqual(list(c.y!.data));
    const v = list(a.y!.data);
    expect(Math.min(...v)).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...v)).toBeLessThan(3);
    const m = moments(v);
    expect(Math.abs(m.mean - 0.5)).toBeLessThan(0.05);        // sd of the mean: 1.44 / sqrt(20000) = 0.010
    expect(Math.abs(m.var - 25 / 12)).toBeLessThan(0.08);
  });

  it('random_normal: mean / stddev / kurtosis of N(mean, sd); seed -1 differs between runs', async () => {
    const a = await rop('random_normal', { mean: f32(1.5), stddev: f32(2), seed: i32(3) }, [N]);
    const v = list(a.y!.data), m = moments(v);
    expect(Math.abs(m.mean - 1.5)).toBeLessThan(0.06);         // sd of the mean: 0.014
    expect(Math.abs(Math.sqrt(m.var) - 2)).toBeLessThan(0.05);
    const kurt = v.reduce((s, x) => s + ((x - m.mean) / Math.sqrt(m.var)) ** 4, 0) / N;
    expect(Math.abs(kurt - 3)).toBeLessThan(0.2);
    const within1 = v.filter((x) => Math.abs(x - 1.5) < 2).length / N;
    expect(Math.abs(within1 - 0.6827)).toBeLessThan(0.015);
    const r1 = await rop('random_normal', {}, [64]), r2 = await rop('random_normal', {}, [64]);
    expect(list(r1.y!.data)).not.toEqual(list(r2.y!.data));
  });

  it('random_bernoulli: 0/1 with P(1) = prob', async () => {
    const a = await rop('random_bernoulli', { prob: f32(0.3), seed: i32(11) }, [N]);
    const v = list(a.y!.data);
    expect(v.every((x) => x === 0 || x === 1)).toBe(true);
    expect(Math.abs(v.filter((x) => x === 1).length / N - 0.3)).toBeLessThan(0.015);
  });

  it('random_categorical: class frequencies follow softmax(logits) or the given probs', async () => {
    const logits = [0, Math.log(2), Math.log(5), -30];
    const p = [1 / 8, 2 / 8, 5 / 8, 0];
    for (const [mode, xs] of [['logits', logits], ['probs', [0.1, 0.2, 0.5, 0]]] as const) {
      const out = await one('random_categorical', { x: 'x', mode: str(mode), size: i32(N / 2), seed: i32(5) }, [{ name: 'y', dtype: 'fp32', shape: [2, N / 2] }],
        { x: { data: Float32Array.from([...xs, ...xs]), shape: [2, 4] } });
      const v = list(out.y!.data);
      for (let k = 0; k < 4; k++) expect(Math.abs(v.filter((c) => c === k).length / N - p[k]!)).toBeLessThan(0.015);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// State (iOS18): kept between predict calls, resetState, set by passing a tensor

describe('state ops', () => {
  // acc = read_state(s) + x; coreml_update_state(s, acc); out = acc * 2 (a KV-cache-like accumulator)
  const ops = [
    op('read_state', 'old', { input: 's' }, [{ name: 'old', dtype: 'fp16', shape: [2, 2] }]),
    op('cast', 'x16', { x: 'x', dtype: str('fp16') }, [{ name: 'x16', dtype: 'fp16', shape: [2, 2] }]),
    op('add', 'acc', { x: 'old', y: 'x16' }, [{ name: 'acc', dtype: 'fp16', shape: [2, 2] }]),
    op('coreml_update_state', 'upd', { state: 's', value: 'acc' }, [{ name: 'upd', dtype: 'fp16', shape: [2, 2] }]),
    op('mul', 'out', { x: 'upd', y: value('fp32', [], [2]) }, [{ name: 'out', dtype: 'fp32', shape: [2, 2] }]),
  ];
  const prog = program([{ name: 's', dtype: 'fp16', shape: [2, 2], type: stateType('fp16', [2, 2]) }, { name: 'x', dtype: 'fp32', shape: [2, 2] }], ops, ['out'], 'CoreML8');
  const x = { data: Float32Array.from([1, 2, 3, 0.5]), shape: [2, 2] };

  it('accumulates across predict calls, resets to zeros, and can be set by passing the state by name', async () => {
    const exec = createExecutor({ program: prog, modelDir: '.' });
    expect(exec.inputs.map((i) => i.name)).toEqual(['x']);
    expect(exec.states).toEqual([{ name: 's', dtype: 'fp16', shape: [2, 2] }]);
    expect(list((await exec.predict({ x })).out!.data)).toEqual([2, 4, 6, 1]);
    expect(list((await exec.predict({ x })).out!.data)).toEqual([4, 8, 12, 2]);
    exec.resetState();
    expect(list((await exec.predict({ x })).out!.data)).toEqual([2, 4, 6, 1]);
    expect(list((await exec.predict({ x, s: { data: Float32Array.from([10, 0, 0, -1]), shape: [2, 2] } })).out!.data)).toEqual([22, 4, 6, -1]);
    // A second executor has its own state.
    expect(list((await createExecutor({ program: prog, modelDir: '.' }).predict({ x })).out!.data)).toEqual([2, 4, 6, 1]);
    await expect(exec.predict({ x, s: { data: new Float32Array(3), shape: [3] } })).rejects.toThrow(/state 's' has shape \[2, 2\], got \[3\]/);
  });

  it('write_state stores without an output; read_state sees it in the same run', async () => {
    const p2 = program([{ name: 's', dtype: 'fp32', shape: [2], type: stateType('fp32', [2]) }, { name: 'x', dtype: 'fp32', shape: [2] }], [
      op('write_state', 'w', { input: 's', data: 'x' }, []),
      op('read_state', 'r', { input: 's' }, [{ name: 'r', dtype: 'fp32', shape: [2] }]),
    ], ['r'], 'CoreML8');
    const exec = createExecutor({ program: p2, modelDir: '.' });
    expect(list((await exec.predict({ x: { data: Float32Array.from([5, -6]), shape: [2] } })).r!.data)).toEqual([5, -6]);
  });
});

// ---------------------------------------------------------------------------------------------
// thresholded_relu, reverse_sequence, reshape_like, non_maximum_suppression

describe('other ops the converters emit', () => {
  it('thresholded_relu keeps x >= alpha', async () => {
    const x = Float32Array.from([-1, 0.5, 1, 1.5, 3]);
    const out = await one('thresholded_relu', { x: 'x', alpha: f32(1) }, [{ name: 'y', dtype: 'fp32', shape: [5] }], { x: { data: x, shape: [5] } });
    expect(list(out.y!.data)).toEqual([0, 0, 1, 1.5, 3]);
  });

  it('reverse_sequence reverses the first lengths[b] steps of each batch entry', async () => {
    const shape = [3, 5, 2];  // batch_axis 0, seq_axis 1
    const x = Float32Array.from({ length: 30 }, (_, i) => i);
    const lengths = [5, 0, 3];
    const out = await one('reverse_sequence', { x: 'x', lengths: ints(lengths), seq_axis: i32(1), batch_axis: i32(0) }, [{ name: 'y', dtype: 'fp32', shape }], { x: { data: x, shape } });
    const want: number[] = [];
    for (let b = 0; b < 3; b++) for (let s = 0; s < 5; s++) for (let d = 0; d < 2; d++) want.push(x[idx(shape, b, s < lengths[b]! ? lengths[b]! - 1 - s : s, d)]!);
    expect(list(out.y!.data)).toEqual(want);
  });

  it('reshape_like takes its shape from slices of reference shapes', async () => {
    const out = await runProgram([
      op('reshape_like', 'y', { x: 'x', ref_tensors: ['a', 'b'], begins: [i32(1), i32(0)], ends: [i32(2), i32(0)], end_masks: [bool(false), bool(true)] }, [{ name: 'y', dtype: 'fp32', shape: [3, 2, 4] }]),
    ], { x: { data: rand([24], 91), shape: [24] }, a: { data: new Float32Array(15), shape: [5, 3, 1] }, b: { data: new Float32Array(8), shape: [2, 4] } }, ['y']);
    expect(out.y!.shape).toEqual([3, 2, 4]);
  });

  it('non_maximum_suppression: best-class scores, threshold, greedy IoU suppression, padding', async () => {
    // [cx, cy, w, h]: boxes 0 and 1 overlap (IoU 0.78), box 2 is apart, box 3 scores below the threshold.
    const boxes = [[0, 0, 2, 2], [0.25, 0, 2, 2], [5, 5, 1, 1], [9, 9, 1, 1]];
    const scores = [[0.9, 0.1], [0.2, 0.95], [0.5, 0.3], [0.05, 0.1]];
    const run = (perClass: boolean) => one('non_maximum_suppression', { boxes: 'b', scores: 's', iou_threshold: f32(0.5), score_threshold: f32(0.2), max_boxes: i32(4), per_class_suppression: bool(perClass) },
      [{ name: 'ob', dtype: 'fp32', shape: [1, 4, 4] }, { name: 'os', dtype: 'fp32', shape: [1, 4, 2] }, { name: 'oi', dtype: 'int32', shape: [1, 4] }, { name: 'on', dtype: 'int32', shape: [1] }],
      { b: { data: Float32Array.from(boxes.flat()), shape: [1, 4, 4] }, s: { data: Float32Array.from(scores.flat()), shape: [1, 4, 2] } });
    const all = await run(false);
    expect(list(all.oi!.data)).toEqual([1, 2, -1, -1]);       // 1 (0.95) suppresses 0 (IoU 0.78 > 0.5)
    expect(list(all.on!.data)).toEqual([2]);
    close(all.ob, Float32Array.from([...boxes[1]!, ...boxes[2]!, 0, 0, 0, 0, 0, 0, 0, 0]), [1, 4, 4], { abs: 0, rel: 0 });
    close(all.os, Float32Array.from([...scores[1]!, ...scores[2]!, 0, 0, 0, 0]), [1, 4, 2], { abs: 0, rel: 0 });
    const per = await run(true);                               // 0 and 1 have different best classes
    expect(list(per.oi!.data)).toEqual([1, 0, 2, -1]);
    expect(list(per.on!.data)).toEqual([3]);
  });
});

describe('classify (ct.convert with a ClassifierConfig)', () => {
  const dictType: MilValueType = { dictionaryType: { keyType: tensorType('string', []), valueType: tensorType('fp32', []) } };
  for (const [kind, labels] of [['string', ['cat', 'dog', 'emu']], ['int64', [10, 20, 30]]] as const) {
    it(`returns the label of the best class and the probabilities with their ${kind} labels`, async () => {
      const classes = { type: listType(kind, []), immediateValue: { list: { values: (labels as readonly (string | number)[]).map((l) => (typeof l === 'string' ? str(l) : value('int64', [], [l]))) } } };
      const out = await runProgram([
        constOp('classes', classes),
        op('classify', 'label', { probabilities: 'p', classes: 'classes' }, [{ name: 'label', dtype: kind, shape: [] }, { name: 'probs', dtype: 'fp32', shape: [3], type: dictType }]),
      ], { p: { data: Float32Array.from([0.2, 0.7, 0.1]), shape: [1, 3] } }, ['label', 'probs']);
      expect(Array.from(out.label!.data as unknown as ArrayLike<string | number>)).toEqual([labels[1]]);
      close(out.probs, Float32Array.from([0.2, 0.7, 0.1]), [3], { abs: 0, rel: 0 });
      expect(out.probs!.labels).toEqual([...labels]);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// One tensor vocabulary: predict(readNpy(file)) with numpy's default dtypes

describe('predict takes readNpy arrays', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'coreml-optimize-npy-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const prog = program([{ name: 'x', dtype: 'fp32', shape: [2, 2] }, { name: 'i', dtype: 'int32', shape: [2] }], [
    op('gather', 'y', { x: 'x', indices: 'i', axis: i32(0) }, [{ name: 'y', dtype: 'fp32', shape: [2, 2] }]),
  ], ['y']);

  it('the predict CLI reads an input folder of float64 / int64 files', async () => {
    writeNpy(path.join(dir, 'x.npy'), { dtype: 'fp64', shape: [2, 2], data: Float64Array.from([1, 2, 3, 4]) });
    writeNpy(path.join(dir, 'i.npy'), { dtype: 'int64', shape: [2], data: BigInt64Array.from([0n, 0n]) });
    const inputs = readInputDir(dir, ['x', 'i']);
    const out = await createExecutor({ program: prog, modelDir: '.' }).predict(inputs);
    expect(list(out.y!.data)).toEqual([1, 2, 1, 2]);
  });

  it('float64 and int64 files (np.save defaults) are converted to the inputs fp32 / int32; float32 spellings work too', async () => {
    writeNpy(path.join(dir, 'x.npy'), { dtype: 'fp64', shape: [2, 2], data: Float64Array.from([0.1, 2, -3, 4.5]) });
    writeNpy(path.join(dir, 'i.npy'), { dtype: 'int64', shape: [2], data: BigInt64Array.from([1n, 0n]) });
    const xa = readNpy(path.join(dir, 'x.npy')), ia = readNpy(path.join(dir, 'i.npy'));
    expect([xa.dtype, ia.dtype]).toEqual(['fp64', 'int64']);
    const exec = createExecutor({ program: prog, modelDir: '.' });
    const out = await exec.predict({ x: xa, i: ia });
    expect(list(out.y!.data)).toEqual([-3, 4.5, Math.fround(0.1), 2]);
    const legacy = await exec.predict({ x: { dtype: 'float32', shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) }, i: { data: Int8Array.from([0, 0]), shape: [2] } });
    expect(list(legacy.y!.data)).toEqual([1, 2, 1, 2]);
    await expect(exec.predict({ x: xa, i: { data: Float64Array.from([1, 0]), shape: [2] } })).rejects.toThrow(/must be int32, got fp64/);
    await expect(exec.predict({ x: xa, i: { data: BigInt64Array.from([1n << 40n, 0n]), shape: [2] } })).rejects.toThrow(/does not fit in int32/);
    await expect(exec.predict({ x: { dtype: 'fp32', shape: [2, 2], data: Float64Array.from([1, 2, 3, 4]) }, i: ia })).rejects.toThrow(/fp32 data must be a typed array of fp32, got Float64Array/);
  });
});
