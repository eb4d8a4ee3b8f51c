// Every op the executor runs, against a slow, obviously-correct TS reference written from the MIL
// op definitions (coremltools mil/ops/defs/iOS15..18): one-op programs on seeded random inputs,
// including numpy broadcasting, negative axes, size-1 dims and other edge cases. Float math is
// compared to float64 Math.* with a tight tolerance; shape/index ops must match exactly. The last
// test keeps the requirement true: every op in SUPPORTED_OPS has a reference test here or in the
// file named in COVERED_ELSEWHERE.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createExecutor, SUPPORTED_OPS, type TensorInput, type TensorOutput } from '../../src/runtime/executor.js';
import { bool, f32, floats, i32, ints, op, program, randoms, str, value } from './mil-builder.js';

// ---------------------------------------------------------------------------------------------
// Harness

type DType = 'fp32' | 'int32' | 'bool';
interface Arr { dtype: DType; shape: number[]; data: number[] }
type Arg = Parameters<typeof op>[2][string];

const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);
const rnd = (shape: number[], seed: number, scale = 1, shift = 0): Arr => ({
  dtype: 'fp32', shape, data: Array.from(randoms(numel(shape), seed), (v) => Math.fround(v * scale + shift)),
});
const rndInt = (shape: number[], seed: number, lo: number, hi: number): Arr => ({
  dtype: 'int32', shape, data: Array.from(randoms(numel(shape), seed), (v) => lo + Math.floor(((v + 1) / 2) * (hi - lo + 1))),
});
const rndBool = (shape: number[], seed: number): Arr => ({ dtype: 'bool', shape, data: Array.from(randoms(numel(shape), seed), (v) => (v > 0 ? 1 : 0)) });
const constOf = (a: Arr) => (a.dtype === 'bool' ? value('bool', a.shape, a.data.map((v) => v !== 0)) : value(a.dtype, a.shape, a.data));

function feedOf(a: Arr): TensorInput {
  const data = a.dtype === 'fp32' ? Float32Array.from(a.data) : a.dtype === 'int32' ? Int32Array.from(a.data) : Uint8Array.from(a.data);
  return { data, shape: a.shape, dtype: a.dtype };
}

/** Runs one op; `feeds` become function inputs (named as the op input), `consts` inline values. */
async function runOp(
  type: string, feeds: Record<string, Arr>, consts: Record<string, Arg>,
  outs: { dtype: DType | 'fp16'; shape: (number | null)[] }[], opset = 'CoreML7',
): Promise<TensorOutput[]> {
  const names = outs.map((_, k) => `out${k}`);
  const inputs: Record<string, Arg> = { ...consts };
  for (const k of Object.keys(feeds)) inputs[k] = k;
  const prog = program(
    Object.entries(feeds).map(([name, a]) => ({ name, dtype: a.dtype, shape: a.shape })),
    [op(type, names[0]!, inputs, outs.map((o, k) => ({ name: names[k]!, dtype: o.dtype, shape: o.shape })))],
    names, opset,
  );
  const plain: Record<string, TensorInput> = {};
  for (const [k, a] of Object.entries(feeds)) plain[k] = feedOf(a);
  const res = await createExecutor({ program: prog, modelDir: '.' }).predict(plain);
  return names.map((n) => res[n]!);
}

function expectArr(got: TensorOutput, want: Arr, tol: 'exact' | { abs: number; rel: number } = 'exact') {
  expect(got.shape).toEqual(want.shape);
  expect(got.data.length).toBe(want.data.length);
  for (let i = 0; i < want.data.length; i++) {
    const g = got.data[i]!, w = want.data[i]!;
    const ok = tol === 'exact'
      ? Object.is(g, w) || g === w || (Number.isNaN(g) && Number.isNaN(w))
      : (Number.isNaN(w) && Number.isNaN(g)) || g === w || Math.abs(g - w) <= tol.abs + tol.rel * Math.abs(w);
    if (!ok) throw new Error(`element ${i} of [${want.shape}]: got ${g}, want ${w}`);
  }
}
const TIGHT = { abs: 1e-6, rel: 2e-6 };
const MATH = { abs: 2e-6, rel: 1e-5 };

// N-d index helpers for the references.
function unravel(k: number, shape: number[]) {
  const idx = new Array<number>(shape.length);
  for (let i = shape.length - 1; i >= 0; i--) { idx[i] = k % shape[i]!; k = Math.floor(k / shape[i]!); }
  return idx;
}
const at = (a: Arr, idx: number[]) => a.data[idx.reduce((o, v, i) => o * a.shape[i]! + v, 0)]!;
/** Builds an array by evaluating f at every output index. */
function build(shape: number[], dtype: DType, f: (idx: number[]) => number): Arr {
  return { dtype, shape, data: Array.from({ length: numel(shape) }, (_, k) => f(unravel(k, shape))) };
}
function broadcastShape(...shapes: number[][]) {
  const r = Math.max(...shapes.map((s) => s.length));
  return Array.from({ length: r }, (_, i) => Math.max(...shapes.map((s) => s[s.length - r + i] ?? 1)));
}
/** Element of `a` seen through numpy broadcasting at output index idx. */
const bat = (a: Arr, idx: number[]) => at(a, a.shape.map((d, i) => (d === 1 ? 0 : idx[idx.length - a.shape.length + i]!)));
const normAxis = (a: number, r: number) => (a < 0 ? a + r : a);
const f32r = Math.fround;

// ---------------------------------------------------------------------------------------------
// Elementwise unary

interface UnaryCase { op: string; f: (x: number) => number; lo?: number; hi?: number; attrs?: Record<string, Arg>; extra?: number[]; tol?: typeof MATH | 'exact' }
const sig = (x: number) => 1 / (1 + Math.exp(-x));
const UNARY: UnaryCase[] = [
  { op: 'abs', f: Math.abs, tol: 'exact', extra: [0, -0] },
  { op: 'neg', f: (x) => -x, tol: 'exact' },
  { op: 'sign', f: (x) => (x > 0 ? 1 : x < 0 ? -1 : 0), tol: 'exact', extra: [0] },
  { op: 'ceil', f: Math.ceil, lo: -4, hi: 4, tol: 'exact', extra: [2, -2, 0.5] },
  { op: 'floor', f: Math.floor, lo: -4, hi: 4, tol: 'exact', extra: [2, -2, -0.5] },
  // MIL round is numpy.round: halves go to the even neighbour.
  { op: 'round', f: (x) => { const r = Math.round(x); return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r; }, lo: -4, hi: 4, tol: 'exact', extra: [0.5, 1.5, 2.5, -0.5, -1.5, -2.5] },
  { op: 'square', f: (x) => x * x, lo: -3, hi: 3 },
  { op: 'sqrt', f: Math.sqrt, lo: 0, hi: 9, extra: [0, 4] },
  { op: 'exp', f: Math.exp, lo: -5, hi: 5 },
  { op: 'exp2', f: (x) => 2 ** x, lo: -6, hi: 6, extra: [3, -2] },
  { op: 'log', f: Math.log, lo: 0.01, hi: 10, attrs: { epsilon: f32(0) } },
  { op: 'log', f: (x) => Math.log(x + 0.5), lo: 0.01, hi: 10, attrs: { epsilon: f32(0.5) } },
  { op: 'rsqrt', f: (x) => 1 / Math.sqrt(x + 0.25), lo: 0.01, hi: 10, attrs: { epsilon: f32(0.25) } },
  // inverse(x, epsilon) = 1 / (x + epsilon), default epsilon 1e-4.
  { op: 'inverse', f: (x) => 1 / (x + f32r(1e-4)), lo: 0.1, hi: 5 },
  { op: 'inverse', f: (x) => 1 / (x + 2), lo: -1, hi: 5, attrs: { epsilon: f32(2) } },
  { op: 'sin', f: Math.sin, lo: -6, hi: 6 },
  { op: 'cos', f: Math.cos, lo: -6, hi: 6 },
  { op: 'tan', f: Math.tan, lo: -1.4, hi: 1.4 },
  { op: 'asin', f: Math.asin, lo: -1, hi: 1, extra: [1, -1, 0] },
  { op: 'acos', f: Math.acos, lo: -1, hi: 1, extra: [1, -1, 0] },
  { op: 'atan', f: Math.atan, lo: -10, hi: 10 },
  { op: 'atanh', f: Math.atanh, lo: -0.99, hi: 0.99, extra: [0] },
  { op: 'sinh', f: Math.sinh, lo: -4, hi: 4 },
  { op: 'cosh', f: Math.cosh, lo: -4, hi: 4 },
  { op: 'tanh', f: Math.tanh, lo: -5, hi: 5 },
  { op: 'sigmoid', f: sig, lo: -8, hi: 8 },
  { op: 'silu', f: (x) => x * sig(x), lo: -8, hi: 8 },
  { op: 'relu', f: (x) => Math.max(x, 0), tol: 'exact' },
  { op: 'relu6', f: (x) => Math.min(Math.max(x, 0), 6), lo: -3, hi: 9, tol: 'exact', extra: [6, 0] },
  { op: 'softplus', f: (x) => Math.log1p(Math.exp(x)), lo: -20, hi: 20, extra: [0, 30, -30] },
  { op: 'softsign', f: (x) => x / (1 + Math.abs(x)), lo: -5, hi: 5 },
  { op: 'leaky_relu', f: (x) => (x >= 0 ? x : f32r(0.3) * x), attrs: { alpha: f32(0.3) } },
  { op: 'leaky_relu', f: (x) => (x >= 0 ? x : f32r(0.01) * x) },
  { op: 'elu', f: (x) => (x > 0 ? x : f32r(0.7) * (Math.exp(x) - 1)), lo: -4, hi: 4, attrs: { alpha: f32(0.7) } },
  { op: 'elu', f: (x) => (x > 0 ? x : Math.exp(x) - 1), lo: -4, hi: 4 },
  { op: 'clip', f: (x) => Math.min(Math.max(x, -0.25), 0.5), attrs: { alpha: f32(-0.25), beta: f32(0.5) }, tol: 'exact' },
  { op: 'clamped_relu', f: (x) => Math.min(x >= 0 ? x : f32r(0.1) * x, 0.75), attrs: { alpha: f32(0.1), beta: f32(0.75) } },
  // threshold(x, alpha) = max(x, alpha)
  { op: 'threshold', f: (x) => Math.max(x, f32r(0.2)), attrs: { alpha: f32(0.2) }, tol: 'exact' },
  { op: 'sigmoid_hard', f: (x) => Math.min(Math.max(f32r(0.3) * x + f32r(0.4), 0), 1), lo: -5, hi: 5, attrs: { alpha: f32(0.3), beta: f32(0.4) } },
  { op: 'sigmoid_hard', f: (x) => Math.min(Math.max(0.2 * x + 0.5, 0), 1), lo: -5, hi: 5 },
  { op: 'scaled_tanh', f: (x) => f32r(1.5) * Math.tanh(f32r(0.75) * x), lo: -4, hi: 4, attrs: { alpha: f32(1.5), beta: f32(0.75) } },
  { op: 'linear_activation', f: (x) => f32r(-2.5) * x + f32r(0.125), attrs: { alpha: f32(-2.5), beta: f32(0.125) } },
  { op: 'linear_activation', f: (x) => 3 * x, attrs: { alpha: f32(3) } },
  { op: 'erf', f: erfRef, lo: -3, hi: 3, extra: [0] },
  { op: 'identity', f: (x) => x, tol: 'exact' },
];

// erf by Simpson integration: slow but independent of any libm.
function erfRef(z: number) {
  const n = 400, h = z / n;
  let s = 0;
  for (let i = 0; i <= n; i++) s += (i === 0 || i === n ? 1 : i % 2 ? 4 : 2) * Math.exp(-((i * h) ** 2));
  return (2 / Math.sqrt(Math.PI)) * (h / 3) * s;
}

describe('elementwise unary ops vs float64 Math', () => {
  const shapes = [[2, 3, 5], [1, 7], []];
  for (const [n, c] of UNARY.entries()) {
    it(`${c.op}${c.attrs ? ' ' + Object.keys(c.attrs).join('/') : ''} #${n}`, async () => {
      for (const [s, shape0] of shapes.entries()) {
        const lo = c.lo ?? -2, hi = c.hi ?? 2;
        let x = rnd(shape0, 100 + n * 7 + s, (hi - lo) / 2, (hi + lo) / 2);
        if (s === 0 && c.extra) x = { ...x, shape: [x.data.length + c.extra.length], data: [...x.data, ...c.extra] };
        const want = { ...x, data: x.data.map(c.f) };
        const [y] = await runOp(c.op, { x }, c.attrs ?? {}, [{ dtype: 'fp32', shape: x.shape }]);
        expectArr(y!, want, c.tol ?? MATH);
      }
    });
  }

  it('prelu and softplus_parametric use per-channel (axis 1) parameters', async () => {
    const x = rnd([2, 3, 4], 5, 3);
    const alpha = [0.5, -1, 2], beta = [1, 0.5, -2];
    const [p] = await runOp('prelu', { x }, { alpha: floats([3], alpha) }, [{ dtype: 'fp32', shape: [2, 3, 4] }]);
    expectArr(p!, build(x.shape, 'fp32', (idx) => { const v = at(x, idx); return v >= 0 ? v : alpha[idx[1]!]! * v; }), TIGHT);
    const x4 = rnd([1, 3, 2, 2], 6, 3);
    const [sp] = await runOp('softplus_parametric', { x: x4 }, { alpha: floats([3], alpha), beta: floats([3], beta) }, [{ dtype: 'fp32', shape: x4.shape }]);
    expectArr(sp!, build(x4.shape, 'fp32', (idx) => alpha[idx[1]!]! * Math.log1p(Math.exp(beta[idx[1]!]! * at(x4, idx)))), MATH);
  });
});

// ---------------------------------------------------------------------------------------------
// Elementwise binary with numpy broadcasting

const SHAPE_PAIRS: [number[], number[]][] = [
  [[2, 1, 3], [4, 3]], // rank difference + size-1 broadcast
  [[3, 4], [3, 4]],
  [[5], []], // scalar
  [[], [2, 3]],
  [[4, 1], [1, 5]], // both broadcast
  [[1], [2, 1, 1]],
];
const pyMod = (a: number, b: number) => { const r = a % b; return r !== 0 && (r < 0) !== (b < 0) ? r + b : r; };
interface BinCase { op: string; f: (a: number, b: number) => number; dtype: DType; out: DType; a?: (s: number[], seed: number) => Arr; b?: (s: number[], seed: number) => Arr; tol?: typeof MATH | 'exact' }
const nonZero = (s: number[], seed: number): Arr => { const r = rnd(s, seed, 2); return { ...r, data: r.data.map((v) => f32r(v < 0 ? v - 0.5 : v + 0.5)) }; };
const positive = (s: number[], seed: number) => rnd(s, seed, 1.9, 2);
const smallInts = (s: number[], seed: number) => rndInt(s, seed, -3, 3);
const nonZeroInts = (s: number[], seed: number): Arr => { const r = rndInt(s, seed, -4, 3); return { ...r, data: r.data.map((v) => (v >= 0 ? v + 1 : v)) }; };
const coarse = (s: number[], seed: number): Arr => { const r = rnd(s, seed, 2); return { ...r, data: r.data.map((v) => Math.round(v * 2) / 2) }; };
const BINARY: BinCase[] = [
  { op: 'add', f: (a, b) => a + b, dtype: 'fp32', out: 'fp32' },
  { op: 'sub', f: (a, b) => a - b, dtype: 'fp32', out: 'fp32' },
  { op: 'mul', f: (a, b) => a * b, dtype: 'fp32', out: 'fp32' },
  { op: 'real_div', f: (a, b) => a / b, dtype: 'fp32', out: 'fp32', b: nonZero },
  { op: 'floor_div', f: (a, b) => Math.floor(a / b), dtype: 'fp32', out: 'fp32', b: nonZero, tol: 'exact' },
  { op: 'mod', f: pyMod, dtype: 'fp32', out: 'fp32', b: nonZero },
  { op: 'pow', f: (a, b) => a ** b, dtype: 'fp32', out: 'fp32', a: positive },
  { op: 'maximum', f: Math.max, dtype: 'fp32', out: 'fp32', tol: 'exact' },
  { op: 'minimum', f: Math.min, dtype: 'fp32', out: 'fp32', tol: 'exact' },
  { op: 'add', f: (a, b) => a + b, dtype: 'int32', out: 'int32', a: smallInts, b: smallInts, tol: 'exact' },
  { op: 'sub', f: (a, b) => a - b, dtype: 'int32', out: 'int32', a: smallInts, b: smallInts, tol: 'exact' },
  { op: 'mul', f: (a, b) => a * b, dtype: 'int32', out: 'int32', a: smallInts, b: smallInts, tol: 'exact' },
  { op: 'floor_div', f: (a, b) => Math.floor(a / b), dtype: 'int32', out: 'int32', a: (s, k) => rndInt(s, k, -20, 20), b: nonZeroInts, tol: 'exact' },
  { op: 'mod', f: pyMod, dtype: 'int32', out: 'int32', a: (s, k) => rndInt(s, k, -20, 20), b: nonZeroInts, tol: 'exact' },
  { op: 'maximum', f: Math.max, dtype: 'int32', out: 'int32', a: smallInts, b: smallInts, tol: 'exact' },
  { op: 'minimum', f: Math.min, dtype: 'int32', out: 'int32', a: smallInts, b: smallInts, tol: 'exact' },
  // comparisons on values with many ties
  { op: 'equal', f: (a, b) => +(a === b), dtype: 'fp32', out: 'bool', a: coarse, b: coarse, tol: 'exact' },
  { op: 'not_equal', f: (a, b) => +(a !== b), dtype: 'fp32', out: 'bool', a: coarse, b: coarse, tol: 'exact' },
  { op: 'less', f: (a, b) => +(a < b), dtype: 'fp32', out: 'bool', a: coarse, b: coarse, tol: 'exact' },
  { op: 'less_equal', f: (a, b) => +(a <= b), dtype: 'fp32', out: 'bool', a: coarse, b: coarse, tol: 'exact' },
  { op: 'greater', f: (a, b) => +(a > b), dtype: 'fp32', out: 'bool', a: coarse, b: coarse, tol: 'exact' },
  { op: 'greater_equal', f: (a, b) => +(a >= b), dtype: 'fp32', out: 'bool', a: coarse, b: coarse, tol: 'exact' },
  { op: 'equal', f: (a, b) => +(a === b), dtype: 'int32', out: 'bool', a: smallInts, b: smallInts, tol: 'exact' },
  { op: 'less', f: (a, b) => +(a < b), dtype: 'int32', out: 'bool', a: smallInts, b: smallInts, tol: 'exact' },
  { op: 'greater_equal', f: (a, b) => +(a >= b), dtype: 'int32', out: 'bool', a: smallInts, b: smallInts, tol: 'exact' },
  { op: 'logical_and', f: (a, b) => +(a !== 0 && b !== 0), dtype: 'bool', out: 'bool', tol: 'exact' },
  { op: 'logical_or', f: (a, b) => +(a !== 0 || b !== 0), dtype: 'bool', out: 'bool', tol: 'exact' },
  { op: 'logical_xor', f: (a, b) => +((a !== 0) !== (b !== 0)), dtype: 'bool', out: 'bool', tol: 'exact' },
];

describe('elementwise binary ops with numpy broadcasting', () => {
  for (const [n, c] of BINARY.entries()) {
    it(`${c.op} (${c.dtype})`, async () => {
      for (const [s, [as, bs]] of SHAPE_PAIRS.entries()) {
        const gen = (g: BinCase['a'], shape: number[], seed: number) =>
          g ? g(shape, seed) : c.dtype === 'bool' ? rndBool(shape, seed) : c.dtype === 'int32' ? smallInts(shape, seed) : rnd(shape, seed, 2);
        const a = gen(c.a, as, 300 + n * 13 + s), b = gen(c.b, bs, 400 + n * 17 + s);
        const os = broadcastShape(as, bs);
        const want = build(os, c.out, (idx) => c.f(bat(a, idx), bat(b, idx)));
        // Alternate runtime inputs and an inline constant y, which the executor handles alike.
        const [y] = s % 2
          ? await runOp(c.op, { x: a }, { y: constOf(b) }, [{ dtype: c.out, shape: os }])
          : await runOp(c.op, { x: a, y: b }, {}, [{ dtype: c.out, shape: os }]);
        expectArr(y!, want, c.tol ?? TIGHT);
      }
    });
  }

  it('logical_not', async () => {
    const x = rndBool([3, 4], 9);
    const [y] = await runOp('logical_not', { x }, {}, [{ dtype: 'bool', shape: [3, 4] }]);
    expectArr(y!, { ...x, data: x.data.map((v) => +(v === 0)) });
  });

  it('select broadcasts cond, a and b against each other', async () => {
    for (const [k, [cs, as, bs]] of ([[[2, 1, 3], [4, 3], [1]], [[3], [2, 3], []], [[1, 1], [1, 4], [3, 1]]] as number[][][]).entries()) {
      const cond = rndBool(cs, 20 + k), a = rnd(as, 30 + k), b = rnd(bs, 40 + k);
      const os = broadcastShape(cs, as, bs);
      const [y] = await runOp('select', { cond, a, b }, {}, [{ dtype: 'fp32', shape: os }]);
      expectArr(y!, build(os, 'fp32', (idx) => (bat(cond, idx) ? bat(a, idx) : bat(b, idx))));
    }
  });

  it('cast between fp32, fp16, int32 and bool', async () => {
    const x = rnd([4, 6], 50, 40);
    x.data[0] = 0; x.data[1] = -2.75; x.data[2] = 2.75;
    const [toInt] = await runOp('cast', { x }, { dtype: str('int32') }, [{ dtype: 'int32', shape: x.shape }]);
    expectArr(toInt!, { ...x, dtype: 'int32', data: x.data.map(Math.trunc) });
    const [toBool] = await runOp('cast', { x }, { dtype: str('bool') }, [{ dtype: 'bool', shape: x.shape }]);
    expectArr(toBool!, { ...x, dtype: 'bool', data: x.data.map((v) => +(v !== 0)) });
    const xi = rndInt([5], 51, -100, 100);
    const [toF] = await runOp('cast', { x: xi }, { dtype: str('fp32') }, [{ dtype: 'fp32', shape: [5] }]);
    expectArr(toF!, { ...xi, dtype: 'fp32' });
    const xb = rndBool([2, 3], 52);
    const [b2f] = await runOp('cast', { x: xb }, { dtype: str('fp32') }, [{ dtype: 'fp32', shape: [2, 3] }]);
    expectArr(b2f!, { ...xb, dtype: 'fp32' });
    // fp16 keeps 11 significant bits, rounding to nearest even.
    const xh = { dtype: 'fp32' as const, shape: [4], data: [1 + 2 ** -11, 1 + 3 * 2 ** -11, 1000.25, f32r(1 / 3)] };
    const [toH] = await runOp('cast', { x: xh }, { dtype: str('fp16') }, [{ dtype: 'fp32', shape: [4] }]);
    expectArr(toH!, { ...xh, data: [1, 1 + 2 * 2 ** -10, 1000, 0.333251953125] });
  });
});

// ---------------------------------------------------------------------------------------------
// Reductions

const REDUCE: Record<string, { f: (v: number[]) => number; positive?: boolean; tol?: typeof MATH | 'exact' }> = {
  reduce_sum: { f: (v) => v.reduce((a, b) => a + b, 0) },
  reduce_mean: { f: (v) => v.reduce((a, b) => a + b, 0) / v.length },
  reduce_prod: { f: (v) => v.reduce((a, b) => a * b, 1) },
  reduce_max: { f: (v) => Math.max(...v), tol: 'exact' },
  reduce_min: { f: (v) => Math.min(...v), tol: 'exact' },
  reduce_l1_norm: { f: (v) => v.reduce((a, b) => a + Math.abs(b), 0) },
  reduce_l2_norm: { f: (v) => Math.sqrt(v.reduce((a, b) => a + b * b, 0)) },
  reduce_sum_square: { f: (v) => v.reduce((a, b) => a + b * b, 0) },
  reduce_log_sum: { f: (v) => Math.log(v.reduce((a, b) => a + b, 0)), positive: true },
  reduce_log_sum_exp: { f: (v) => Math.log(v.reduce((a, b) => a + Math.exp(b), 0)) },
};

function reduceRef(x: Arr, axes: number[] | undefined, keep: boolean, f: (v: number[]) => number, dtype: DType = 'fp32'): Arr {
  const r = x.shape.length;
  const ax = axes === undefined ? x.shape.map((_, i) => i) : axes.map((a) => normAxis(a, r));
  const kept = x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const groups = new Map<number, number[]>();
  for (let k = 0; k < x.data.length; k++) {
    const idx = unravel(k, x.shape).map((v, i) => (ax.includes(i) ? 0 : v));
    const key = idx.reduce((o, v, i) => o * kept[i]! + v, 0);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(x.data[k]!);
  }
  const data = Array.from({ length: numel(kept) }, (_, key) => f(groups.get(key)!));
  return { dtype, shape: keep ? kept : x.shape.filter((_, i) => !ax.includes(i)), data };
}

describe('reductions over single, multiple, negative and all axes', () => {
  const AXES: [number[], number[] | undefined, boolean][] = [
    [[3, 4, 5], [1], false],
    [[3, 4, 5], [-1], true],
    [[3, 4, 5], [0, 2], false],
    [[2, 1, 3], [-3, 1], true], // size-1 axis
    [[2, 3], undefined, false], // no axes: all of them
    [[2, 3], undefined, true],
  ];
  for (const [name, c] of Object.entries(REDUCE)) {
    it(name, async () => {
      for (const [k, [shape, axes, keep]] of AXES.entries()) {
        const x = c.positive ? rnd(shape, 60 + k, 0.9, 1) : rnd(shape, 60 + k, name === 'reduce_prod' ? 1.5 : 2);
        const want = reduceRef(x, axes, keep, c.f);
        const attrs: Record<string, Arg> = { keep_dims: bool(keep) };
        if (axes) attrs.axes = ints(axes);
        const [y] = await runOp(name, { x }, attrs, [{ dtype: 'fp32', shape: want.shape }]);
        expectArr(y!, want, c.tol ?? { abs: 2e-6, rel: 2e-5 });
      }
    });
  }

  for (const name of ['reduce_argmax', 'reduce_argmin']) {
    it(`${name} (first index among ties)`, async () => {
      const sign = name === 'reduce_argmax' ? 1 : -1;
      for (const [k, [shape, axis, keep]] of ([[[3, 4, 5], 1, false], [[3, 4, 5], -1, true], [[4, 1], 0, false], [[2, 6], -1, false]] as [number[], number, boolean][]).entries()) {
        const x = k === 3 ? { dtype: 'fp32' as const, shape, data: [1, 3, 3, 0, 3, 1, -2, -2, 5, 5, -7, -7] } : rnd(shape, 70 + k);
        const ax = normAxis(axis, shape.length);
        const want = reduceRef({ ...x, data: x.data.map((_, i) => i) }, [ax], keep, (idxs) => {
          let best = idxs[0]!;
          for (const i of idxs) if (sign * x.data[i]! > sign * x.data[best]!) best = i;
          return unravel(best, shape)[ax]!;
        }, 'int32');
        const [y] = await runOp(name, { x }, { axis: i32(axis), keep_dims: bool(keep) }, [{ dtype: 'int32', shape: want.shape }]);
        expectArr(y!, want);
      }
    });
  }

  it('cumsum inclusive/exclusive/reverse along positive and negative axes', async () => {
    const x = rnd([3, 4, 2], 80);
    for (const [axis, exclusive, reverse] of [[0, false, false], [-2, true, false], [1, false, true], [-1, true, true]] as [number, boolean, boolean][]) {
      const ax = normAxis(axis, 3);
      const want = build(x.shape, 'fp32', (idx) => {
        let s = 0;
        for (let j = 0; j < x.shape[ax]!; j++) {
          const inc = reverse ? (exclusive ? j > idx[ax]! : j >= idx[ax]!) : (exclusive ? j < idx[ax]! : j <= idx[ax]!);
          if (inc) s += at(x, idx.map((v, i) => (i === ax ? j : v)));
        }
        return s;
      });
      const [y] = await runOp('cumsum', { x }, { axis: i32(axis), exclusive: bool(exclusive), reverse: bool(reverse) }, [{ dtype: 'fp32', shape: x.shape }]);
      expectArr(y!, want, TIGHT);
    }
  });

  it('softmax along each axis', async () => {
    const x = rnd([2, 3, 4], 81, 5);
    for (const axis of [0, 1, -1]) {
      const ax = normAxis(axis, 3);
      const want = build(x.shape, 'fp32', (idx) => {
        let s = 0;
        for (let j = 0; j < x.shape[ax]!; j++) s += Math.exp(at(x, idx.map((v, i) => (i === ax ? j : v))));
        return Math.exp(at(x, idx)) / s;
      });
      const [y] = await runOp('softmax', { x }, { axis: i32(axis) }, [{ dtype: 'fp32', shape: x.shape }]);
      expectArr(y!, want, MATH);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Shape and index ops (exact)

const iota = (shape: number[], dtype: DType = 'fp32'): Arr => ({ dtype, shape, data: Array.from({ length: numel(shape) }, (_, i) => i) });

describe('shape ops', () => {
  it('reshape with -1 and 0 (iOS16 same-index and iOS17 right-aligned zeros)', async () => {
    const x = iota([2, 3, 4]);
    for (const [shape, want, opset] of [
      [[4, -1], [4, 6], 'CoreML7'], [[-1], [24], 'CoreML7'], [[0, -1, 2], [2, 6, 2], 'CoreML6'], [[1, 0, 0, 0], [1, 2, 3, 4], 'CoreML7'], [[2, 3, 4, 1, 1], [2, 3, 4, 1, 1], 'CoreML7'],
    ] as [number[], number[], string][]) {
      const [y] = await runOp('reshape', { x }, { shape: ints(shape) }, [{ dtype: 'fp32', shape: want }], opset);
      expectArr(y!, { ...x, shape: want });
    }
  });

  it('transpose with every permutation of a rank-3 tensor and a rank-4 one', async () => {
    const x = iota([2, 3, 4]);
    const perms = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    for (const perm of perms) {
      const os = perm.map((p) => x.shape[p]!);
      const [y] = await runOp('transpose', { x }, { perm: ints(perm) }, [{ dtype: 'fp32', shape: os }]);
      expectArr(y!, build(os, 'fp32', (idx) => { const src = new Array<number>(3); perm.forEach((p, i) => (src[p] = idx[i]!)); return at(x, src); }));
    }
    const x4 = iota([2, 1, 3, 2]);
    const [y4] = await runOp('transpose', { x: x4 }, { perm: ints([3, 1, 0, 2]) }, [{ dtype: 'fp32', shape: [2, 1, 2, 3] }]);
    expectArr(y4!, build([2, 1, 2, 3], 'fp32', ([a, b, c, d]) => at(x4, [c!, b!, d!, a!])));
  });

  it('expand_dims / squeeze / flatten2d / shape', async () => {
    const x = iota([3, 1, 2]);
    const cases: [string, Record<string, Arg>, number[]][] = [
      ['expand_dims', { axes: ints([0]) }, [1, 3, 1, 2]],
      ['expand_dims', { axes: ints([-1, 1]) }, [3, 1, 1, 2, 1]],
      ['squeeze', { axes: ints([-2]) }, [3, 2]],
      ['squeeze', {}, [3, 2]],
      ['flatten2d', { axis: i32(0) }, [1, 6]],
      ['flatten2d', { axis: i32(1) }, [3, 2]],
      ['flatten2d', { axis: i32(-1) }, [3, 2]],
      ['flatten2d', { axis: i32(3) }, [6, 1]],
    ];
    for (const [type, attrs, shape] of cases) {
      const [y] = await runOp(type, { x }, attrs, [{ dtype: 'fp32', shape }]);
      expectArr(y!, { ...x, shape });
    }
    const [s] = await runOp('shape', { x }, {}, [{ dtype: 'int32', shape: [3] }]);
    expectArr(s!, { dtype: 'int32', shape: [3], data: [3, 1, 2] });
  });

  it('concat / split / stack along positive and negative axes', async () => {
    const a = rnd([2, 3, 4], 90), b = rnd([2, 1, 4], 91), c = rnd([2, 2, 4], 92);
    const prog = program(
      [{ name: 'a', dtype: 'fp32', shape: a.shape }, { name: 'b', dtype: 'fp32', shape: b.shape }, { name: 'c', dtype: 'fp32', shape: c.shape }],
      [op('concat', 'y', { values: ['a', 'b', 'c'], axis: i32(-2), interleave: bool(false) }, [{ name: 'y', dtype: 'fp32', shape: [2, 6, 4] }])], ['y'],
    );
    const y = (await createExecutor({ program: prog, modelDir: '.' }).predict({ a: feedOf(a), b: feedOf(b), c: feedOf(c) })).y!;
    expectArr(y, build([2, 6, 4], 'fp32', ([i, j, k]) => (j! < 3 ? at(a, [i!, j!, k!]) : j! < 4 ? at(b, [i!, 0, k!]) : at(c, [i!, j! - 4, k!]))));

    const x = rnd([2, 6, 3], 93);
    const parts = await runOp('split', { x }, { axis: i32(-2), split_sizes: ints([1, 3, 2]) }, [1, 3, 2].map((n) => ({ dtype: 'fp32' as const, shape: [2, n, 3] })));
    let off = 0;
    for (const [k, n] of [1, 3, 2].entries()) {
      const o = off;
      expectArr(parts[k]!, build([2, n, 3], 'fp32', ([i, j, l]) => at(x, [i!, j! + o, l!])));
      off += n;
    }
    const halves = await runOp('split', { x }, { axis: i32(2), num_splits: i32(3) }, [0, 1, 2].map(() => ({ dtype: 'fp32' as const, shape: [2, 6, 1] })));
    halves.forEach((h, k) => expectArr(h, build([2, 6, 1], 'fp32', ([i, j]) => at(x, [i!, j!, k]))));

    for (const axis of [0, 1, -1]) {
      const p = rnd([2, 3], 94), q = rnd([2, 3], 95);
      const ax = normAxis(axis, 3);
      const os = [2, 3]; os.splice(ax, 0, 2);
      const sp = program([{ name: 'p', dtype: 'fp32', shape: [2, 3] }, { name: 'q', dtype: 'fp32', shape: [2, 3] }],
        [op('stack', 's', { values: ['p', 'q'], axis: i32(axis) }, [{ name: 's', dtype: 'fp32', shape: os }])], ['s']);
      const s = (await createExecutor({ program: sp, modelDir: '.' }).predict({ p: feedOf(p), q: feedOf(q) })).s!;
      expectArr(s, build(os, 'fp32', (idx) => { const src = idx.filter((_, i) => i !== ax); return at(idx[ax] ? q : p, src); }));
    }
  });

  it('tile and reverse', async () => {
    const x = rnd([2, 1, 3], 96);
    for (const reps of [[1, 1, 1], [2, 3, 1], [1, 4, 2]]) {
      const os = x.shape.map((d, i) => d * reps[i]!);
      const [y] = await runOp('tile', { x }, { reps: ints(reps) }, [{ dtype: 'fp32', shape: os }]);
      expectArr(y!, build(os, 'fp32', (idx) => at(x, idx.map((v, i) => v % x.shape[i]!))));
    }
    const z = rnd([3, 2, 4], 97);
    for (const axes of [[0], [-1], [0, 2], undefined]) {
      const ax = axes ? axes.map((a) => normAxis(a, 3)) : [0, 1, 2];
      const [y] = await runOp('reverse', { x: z }, axes ? { axes: ints(axes) } : {}, [{ dtype: 'fp32', shape: z.shape }]);
      expectArr(y!, build(z.shape, 'fp32', (idx) => at(z, idx.map((v, i) => (ax.includes(i) ? z.shape[i]! - 1 - v : v)))));
    }
  });

  it('slice_by_index with masks, negative indices and strides; slice_by_size', async () => {
    const x = iota([5, 6, 4]);
    // Python slicing: [begin:end:stride] with masks = omitted, squeeze = take begin and drop the axis.
    const py = (n: number, b: number, e: number, s: number, bm: boolean, em: boolean) => {
      const out: number[] = [];
      let start = bm ? (s > 0 ? 0 : n - 1) : b < 0 ? Math.max(b + n, s > 0 ? 0 : -1) : Math.min(b, s > 0 ? n : n - 1);
      const stop = em ? (s > 0 ? n : -1) : e < 0 ? Math.max(e + n, -1) : Math.min(e, n);
      for (; s > 0 ? start < stop : start > stop; start += s) out.push(start);
      return out;
    };
    const cases: { begin: number[]; end: number[]; stride: number[]; bm: boolean[]; em: boolean[]; sq: boolean[] }[] = [
      { begin: [1, 0, 0], end: [4, 6, 4], stride: [1, 2, 1], bm: [false, false, false], em: [false, false, false], sq: [false, false, false] },
      { begin: [-1, -2, 0], end: [0, 0, 0], stride: [-1, -2, 3], bm: [false, false, true], em: [true, false, true], sq: [false, false, false] },
      { begin: [2, 0, -1], end: [3, 5, 0], stride: [1, 1, 1], bm: [false, true, false], em: [false, false, true], sq: [true, false, true] },
      { begin: [0, 4, 1], end: [5, 1, 3], stride: [2, -1, 1], bm: [false, false, false], em: [false, false, false], sq: [false, false, false] },
      { begin: [0, 3, 0], end: [5, 3, 4], stride: [1, 1, 1], bm: [false, false, false], em: [false, false, false], sq: [false, false, false] }, // empty
    ];
    for (const c of cases) {
      const sel = x.shape.map((n, i) => (c.sq[i] ? [normAxis(c.begin[i]!, n)] : py(n, c.begin[i]!, c.end[i]!, c.stride[i]!, c.bm[i]!, c.em[i]!)));
      const full = sel.map((s) => s.length);
      const want = build(full, 'fp32', (idx) => at(x, idx.map((v, i) => sel[i]![v]!)));
      const shape = full.filter((_, i) => !c.sq[i]);
      const [y] = await runOp('slice_by_index', { x }, {
        begin: ints(c.begin), end: ints(c.end), stride: ints(c.stride),
        begin_mask: value('bool', [3], c.bm), end_mask: value('bool', [3], c.em), squeeze_mask: value('bool', [3], c.sq),
      }, [{ dtype: 'fp32', shape }]).catch((e: Error) => { throw new Error(`${JSON.stringify(c)}: ${e.message}`); });
      try { expectArr(y!, { ...want, shape }); } catch (e) { throw new Error(`${JSON.stringify(c)}: ${(e as Error).message}`); }
    }
    for (const [begin, size] of [[[1, 2, 0], [3, -1, 2]], [[0, 0, 3], [5, 6, 1]], [[4, 5, 3], [1, 1, 1]]]) {
      const os = size.map((s, i) => (s < 0 ? x.shape[i]! - begin[i]! : s));
      const [y] = await runOp('slice_by_size', { x }, { begin: ints(begin!), size: ints(size!) }, [{ dtype: 'fp32', shape: os }]);
      expectArr(y!, build(os, 'fp32', (idx) => at(x, idx.map((v, i) => v + begin![i]!))));
    }
  });

  it('slice_update writes a strided, reversed window', async () => {
    const x = rnd([4, 5], 98);
    const upd = rnd([2, 3], 99);
    const rows = [3, 1], cols = [0, 2, 4];
    const [y] = await runOp('slice_update', { x }, { update: constOf(upd), begin: ints([3, 0]), end: ints([0, 5]), stride: ints([-2, 2]) }, [{ dtype: 'fp32', shape: [4, 5] }]);
    expectArr(y!, build([4, 5], 'fp32', ([i, j]) => (rows.includes(i!) && cols.includes(j!) ? at(upd, [rows.indexOf(i!), cols.indexOf(j!)]) : at(x, [i!, j!]))));
  });

  it('pad constant / reflect / replicate on the last one or two axes', async () => {
    const x = rnd([2, 3, 4], 100);
    const src = (mode: string, i: number, n: number) =>
      mode === 'reflect' ? (i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i) : Math.min(Math.max(i, 0), n - 1);
    for (const [mode, pad] of [['constant', [1, 2, 0, 3]], ['reflect', [2, 1, 3, 0]], ['replicate', [0, 2, 3, 1]], ['constant', [2, 1]], ['reflect', [0, 3]]] as [string, number[]][]) {
      const k = pad.length / 2, first = 3 - k;
      const before = [0, 0, 0], after = [0, 0, 0];
      for (let d = first; d < 3; d++) { before[d] = pad[2 * (d - first)]!; after[d] = pad[2 * (d - first) + 1]!; }
      const os = x.shape.map((n, d) => n + before[d]! + after[d]!);
      const want = build(os, 'fp32', (idx) => {
        const s = idx.map((v, d) => v - before[d]!);
        if (mode === 'constant') return s.every((v, d) => v >= 0 && v < x.shape[d]!) ? at(x, s) : f32r(1.5);
        return at(x, s.map((v, d) => src(mode, v, x.shape[d]!)));
      });
      const [y] = await runOp('pad', { x }, { pad: ints(pad), mode: str(mode), constant_val: f32(1.5) }, [{ dtype: 'fp32', shape: os }]);
      expectArr(y!, want);
    }
  });

  it('fill / fill_like / range_1d', async () => {
    const [f] = await runOp('fill', {}, { shape: ints([2, 1, 3]), value: f32(-2.5) }, [{ dtype: 'fp32', shape: [2, 1, 3] }]);
    expectArr(f!, { dtype: 'fp32', shape: [2, 1, 3], data: new Array(6).fill(-2.5) });
    const ref = rnd([3, 2], 101);
    const [fl] = await runOp('fill_like', { ref_tensor: ref }, { value: f32(7) }, [{ dtype: 'fp32', shape: [3, 2] }]);
    expectArr(fl!, { dtype: 'fp32', shape: [3, 2], data: new Array(6).fill(7) });
    for (const [start, end, step] of [[0, 5, 1], [2, -7, -3], [1, 2, 5], [-3, 4, 2]]) {
      const want: number[] = [];
      for (let v = start!; step! > 0 ? v < end! : v > end!; v += step!) want.push(v);
      const [r] = await runOp('range_1d', {}, { start: i32(start!), end: i32(end!), step: i32(step!) }, [{ dtype: 'int32', shape: [want.length] }]);
      expectArr(r!, { dtype: 'int32', shape: [want.length], data: want });
    }
    const [rf] = await runOp('range_1d', {}, { start: f32(0.5), end: f32(2), step: f32(0.25) }, [{ dtype: 'fp32', shape: [6] }]);
    expectArr(rf!, { dtype: 'fp32', shape: [6], data: [0.5, 0.75, 1, 1.25, 1.5, 1.75] });
  });
});

describe('gather family, one_hot, sorting, non_zero', () => {
  it('gather along positive/negative axes with negative indices (iOS16) and batch_dims', async () => {
    const x = rnd([4, 5, 3], 110);
    for (const [axis, idx] of [[0, rndInt([2, 3], 111, -4, 3)], [-2, rndInt([4], 112, -5, 4)], [2, { dtype: 'int32', shape: [], data: [-1] }]] as [number, Arr][]) {
      const ax = normAxis(axis, 3);
      const os = [...x.shape.slice(0, ax), ...idx.shape, ...x.shape.slice(ax + 1)];
      const [y] = await runOp('gather', { x }, { indices: constOf(idx), axis: i32(axis) }, [{ dtype: 'fp32', shape: os }], 'CoreML6');
      expectArr(y!, build(os, 'fp32', (o) => {
        const ii = o.slice(ax, ax + idx.shape.length);
        let v = at(idx, ii);
        if (v < 0) v += x.shape[ax]!;
        return at(x, [...o.slice(0, ax), v, ...o.slice(ax + idx.shape.length)]);
      }));
    }
    const bidx = rndInt([4, 2], 113, 0, 4);
    const [yb] = await runOp('gather', { x }, { indices: constOf(bidx), axis: i32(1), batch_dims: i32(1) }, [{ dtype: 'fp32', shape: [4, 2, 3] }], 'CoreML8');
    expectArr(yb!, build([4, 2, 3], 'fp32', ([b, k, c]) => at(x, [b!, at(bidx, [b!, k!]), c!])));
  });

  it('gather_along_axis and gather_nd', async () => {
    const x = rnd([3, 4, 5], 120);
    for (const axis of [0, -1, 1]) {
      const ax = normAxis(axis, 3);
      const ishape = [...x.shape]; ishape[ax] = 2;
      const idx = rndInt(ishape, 121 + ax, -x.shape[ax]!, x.shape[ax]! - 1);
      const [y] = await runOp('gather_along_axis', { x }, { indices: constOf(idx), axis: i32(axis) }, [{ dtype: 'fp32', shape: ishape }], 'CoreML6');
      expectArr(y!, build(ishape, 'fp32', (o) => { let v = at(idx, o); if (v < 0) v += x.shape[ax]!; return at(x, o.map((u, i) => (i === ax ? v : u))); }));
    }
    const nd = { dtype: 'int32' as const, shape: [2, 2, 2], data: [0, 1, 2, -1, -3, 0, 1, 3] };
    const [g] = await runOp('gather_nd', { x }, { indices: constOf(nd) }, [{ dtype: 'fp32', shape: [2, 2, 5] }], 'CoreML6');
    const wrap = (v: number, n: number) => (v < 0 ? v + n : v);
    expectArr(g!, build([2, 2, 5], 'fp32', ([i, j, k]) => at(x, [wrap(at(nd, [i!, j!, 0]), 3), wrap(at(nd, [i!, j!, 1]), 4), k!])));
    const full = { dtype: 'int32' as const, shape: [4, 3], data: [0, 0, 0, 2, 3, 4, 1, 2, 3, 2, 0, 1] };
    const [gf] = await runOp('gather_nd', { x }, { indices: constOf(full) }, [{ dtype: 'fp32', shape: [4] }]);
    expectArr(gf!, build([4], 'fp32', ([i]) => at(x, [at(full, [i!, 0]), at(full, [i!, 1]), at(full, [i!, 2])])));
  });

  it('one_hot along each axis', async () => {
    const idx = { dtype: 'int32' as const, shape: [2, 3], data: [0, 3, 1, 2, 2, -1] };
    for (const axis of [-1, 0, 1]) {
      const ax = normAxis(axis, 3);
      const os = [2, 3]; os.splice(ax, 0, 4);
      const [y] = await runOp('one_hot', { indices: idx }, { one_hot_vector_size: i32(4), axis: i32(axis), on_value: f32(5), off_value: f32(-1) }, [{ dtype: 'fp32', shape: os }]);
      expectArr(y!, build(os, 'fp32', (o) => (at(idx, o.filter((_, i) => i !== ax)) === o[ax] ? 5 : -1)));
    }
  });

  it('topk / argsort match a stable sort, both directions, any axis', async () => {
    const x = { ...rnd([3, 6], 130), data: Array.from(randoms(18, 130), (v) => Math.round(v * 3)) }; // many ties
    for (const [axis, asc] of [[-1, false], [0, true], [1, true], [0, false]] as [number, boolean][]) {
      const ax = normAxis(axis, 2);
      const n = x.shape[ax]!;
      const order = (o: number[]) => {
        const line = Array.from({ length: n }, (_, j) => at(x, o.map((u, i) => (i === ax ? j : u))));
        return Array.from({ length: n }, (_, j) => j).sort((p, q) => (asc ? line[p]! - line[q]! : line[q]! - line[p]!) || p - q).map((j) => [j, line[j]!] as const);
      };
      const [as] = await runOp('argsort', { x }, { axis: i32(axis), ascending: bool(asc) }, [{ dtype: 'int32', shape: x.shape }]);
      expectArr(as!, build(x.shape, 'int32', (o) => order(o)[o[ax]!]![0]));
      const k = 2;
      const ks = [...x.shape]; ks[ax] = k;
      const [v, i] = await runOp('topk', { x }, { k: i32(k), axis: i32(axis), ascending: bool(asc) }, [{ dtype: 'fp32', shape: ks }, { dtype: 'int32', shape: ks }]);
      expectArr(v!, build(ks, 'fp32', (o) => order(o)[o[ax]!]![1]));
      expectArr(i!, build(ks, 'int32', (o) => order(o)[o[ax]!]![0]));
    }
  });

  it('non_zero lists coordinates in row-major order', async () => {
    const x = { ...rnd([3, 2, 4], 140), data: Array.from(randoms(24, 140), (v) => (v > 0.2 ? v : 0)) };
    const coords: number[] = [];
    x.data.forEach((v, k) => { if (v !== 0) coords.push(...unravel(k, x.shape)); });
    const [y] = await runOp('non_zero', { x }, {}, [{ dtype: 'int32', shape: [null, 3] }]);
    expectArr(y!, { dtype: 'int32', shape: [coords.length / 3, 3], data: coords });
  });
});

// ---------------------------------------------------------------------------------------------
// Pooling, norms, space/depth shuffles

function poolRef(x: Arr, kind: 'max' | 'avg' | 'l2', k: number[], s: number[], before: number[], after: number[], ceil: boolean, exclude: boolean) {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const outDim = (n: number, d: number) => {
    const span = n + before[d]! + after[d]! - k[d]!;
    let o = (ceil ? Math.ceil(span / s[d]!) : Math.floor(span / s[d]!)) + 1;
    if (ceil && (o - 1) * s[d]! >= n + before[d]!) o--;
    return o;
  };
  const os = [N, C, outDim(H, 0), outDim(W, 1)];
  return build(os, 'fp32', ([n, c, i, j]) => {
    const vals: number[] = [];
    let window = 0;
    for (let a = 0; a < k[0]!; a++)
      for (let b = 0; b < k[1]!; b++) {
        const y = i! * s[0]! - before[0]! + a, xx = j! * s[1]! - before[1]! + b;
        if (y < H + after[0]! && xx < W + after[1]! && y >= -before[0]! && xx >= -before[1]!) window++;
        if (y >= 0 && y < H && xx >= 0 && xx < W) vals.push(at(x, [n!, c!, y, xx]));
      }
    if (kind === 'max') return Math.max(...vals);
    if (kind === 'l2') return Math.sqrt(vals.reduce((p, v) => p + v * v, 0));
    return vals.reduce((p, v) => p + v, 0) / (exclude ? vals.length : window);
  });
}

describe('pooling, norms', () => {
  const x = rnd([2, 3, 7, 6], 150, 3);
  const cfgs = [
    { name: 'valid 3x2 stride 2x1', k: [3, 2], s: [2, 1], pad_type: 'valid', pad: [0, 0, 0, 0], ceil: false },
    { name: 'custom pad, ceil_mode', k: [3, 3], s: [2, 2], pad_type: 'custom', pad: [1, 1, 0, 1], ceil: true },
    { name: 'same, stride 2', k: [2, 3], s: [2, 2], pad_type: 'same', pad: [0, 0, 0, 0], ceil: false },
  ];
  for (const kind of ['max', 'avg', 'l2'] as const) {
    for (const cfg of cfgs) {
      for (const exclude of kind === 'avg' ? [true, false] : [false]) {
        it(`${kind}_pool ${cfg.name}${kind === 'avg' ? (exclude ? ' excluding padding' : ' counting padding') : ''}`, async () => {
          let before = [cfg.pad[0]!, cfg.pad[2]!], after = [cfg.pad[1]!, cfg.pad[3]!];
          if (cfg.pad_type === 'same') {
            const tot = [7, 6].map((n, d) => Math.max(0, (Math.ceil(n / cfg.s[d]!) - 1) * cfg.s[d]! + cfg.k[d]! - n));
            before = tot.map((t) => Math.floor(t / 2)); after = tot.map((t, d) => t - before[d]!);
          }
          const want = poolRef(x, kind, cfg.k, cfg.s, before, after, cfg.ceil, exclude);
          const [y] = await runOp(`${kind}_pool`, { x }, {
            kernel_sizes: ints(cfg.k), strides: ints(cfg.s), pad_type: str(cfg.pad_type), pad: ints(cfg.pad), ceil_mode: bool(cfg.ceil),
            ...(kind === 'avg' ? { exclude_padding_from_average: bool(exclude) } : {}),
          }, [{ dtype: 'fp32', shape: want.shape }]);
          expectArr(y!, want, kind === 'max' ? 'exact' : TIGHT);
        });
      }
    }
  }

  it('l2_norm over the given axes (x / sqrt(max(sum x², eps)))', async () => {
    const xx = rnd([2, 3, 4], 160);
    xx.data.fill(0, 0, 12); // a zero group: eps keeps it finite
    for (const axes of [[-1], [1, 2], [0]]) {
      const ax = axes.map((a) => normAxis(a, 3));
      const ss = reduceRef({ ...xx, data: xx.data.map((v) => v * v) }, ax, true, (v) => v.reduce((p, q) => p + q, 0));
      const want = build(xx.shape, 'fp32', (idx) => at(xx, idx) / Math.sqrt(Math.max(at(ss, idx.map((v, i) => (ax.includes(i) ? 0 : v))), 1e-6)));
      const [y] = await runOp('l2_norm', { x: xx }, { axes: ints(axes), epsilon: f32(1e-6) }, [{ dtype: 'fp32', shape: xx.shape }]);
      expectArr(y!, want, MATH);
    }
  });

  it('batch_norm and instance_norm', async () => {
    const xx = rnd([2, 3, 2, 3], 170, 2, 0.5);
    const mean = [0.1, -0.2, 0.3], variance = [0.5, 1.5, 2], gamma = [1, 2, -1], beta = [0, 0.5, -0.25];
    const [bn] = await runOp('batch_norm', { x: xx }, {
      mean: floats([3], mean), variance: floats([3], variance), gamma: floats([3], gamma), beta: floats([3], beta), epsilon: f32(1e-3),
    }, [{ dtype: 'fp32', shape: xx.shape }]);
    expectArr(bn!, build(xx.shape, 'fp32', (idx) => { const c = idx[1]!; return ((at(xx, idx) - f32r(mean[c]!)) / Math.sqrt(f32r(variance[c]!) + f32r(1e-3))) * gamma[c]! + beta[c]!; }), MATH);
    const stats = reduceRef(xx, [2, 3], true, (v) => v.reduce((p, q) => p + q, 0) / v.length);
    const vars = reduceRef(build(xx.shape, 'fp32', (idx) => (at(xx, idx) - at(stats, [idx[0]!, idx[1]!, 0, 0])) ** 2), [2, 3], true, (v) => v.reduce((p, q) => p + q, 0) / v.length);
    const [inn] = await runOp('instance_norm', { x: xx }, { gamma: floats([3], gamma), beta: floats([3], beta), epsilon: f32(1e-5) }, [{ dtype: 'fp32', shape: xx.shape }]);
    expectArr(inn!, build(xx.shape, 'fp32', (idx) => {
      const g = [idx[0]!, idx[1]!, 0, 0];
      return ((at(xx, idx) - at(stats, g)) / Math.sqrt(at(vars, g) + f32r(1e-5))) * gamma[idx[1]!]! + beta[idx[1]!]!;
    }), { abs: 1e-5, rel: 1e-5 });
  });
});

// ---------------------------------------------------------------------------------------------
// matmul / linear / conv_transpose / upsample (also covered by fixtures; here on other shapes)

describe('linear algebra and resampling', () => {
  it('matmul with transposes and batch broadcasting', async () => {
    const cases: [number[], number[], boolean, boolean][] = [
      [[2, 1, 3, 4], [5, 4, 6], false, false],
      [[4, 3], [2, 5, 4], true, true],
      [[1, 3, 2], [3, 3, 5], true, false],
      [[2, 3, 4], [1, 6, 4], false, true],
    ];
    for (const [k, [xs, ys, tx, ty]] of cases.entries()) {
      const x = rnd(xs, 180 + k), y = rnd(ys, 190 + k);
      const M = tx ? xs.at(-1)! : xs.at(-2)!, K = tx ? xs.at(-2)! : xs.at(-1)!, N = ty ? ys.at(-2)! : ys.at(-1)!;
      const os = [...broadcastShape(xs.slice(0, -2), ys.slice(0, -2)), M, N];
      const want = build(os, 'fp32', (idx) => {
        const b = idx.slice(0, -2), i = idx.at(-2)!, j = idx.at(-1)!;
        let acc = 0;
        for (let q = 0; q < K; q++) acc += bat(x, [...b, tx ? q : i, tx ? i : q]) * bat(y, [...b, ty ? j : q, ty ? q : j]);
        return acc;
      });
      const [z] = await runOp('matmul', { x, y }, { transpose_x: bool(tx), transpose_y: bool(ty) }, [{ dtype: 'fp32', shape: os }]);
      expectArr(z!, want, { abs: 1e-5, rel: 1e-5 });
    }
  });

  it('linear with and without bias, rank 1 to 3 inputs', async () => {
    for (const [k, xs] of [[5], [3, 5], [2, 1, 5]].entries()) {
      const x = rnd(xs, 200 + k), w = rnd([4, 5], 210), b = rnd([4], 211);
      for (const withBias of [true, false]) {
        const os = [...xs.slice(0, -1), 4];
        const want = build(os, 'fp32', (idx) => {
          let acc = withBias ? at(b, [idx.at(-1)!]) : 0;
          for (let q = 0; q < 5; q++) acc += at(x, [...idx.slice(0, -1), q]) * at(w, [idx.at(-1)!, q]);
          return acc;
        });
        const [y] = await runOp('linear', { x }, { weight: constOf(w), ...(withBias ? { bias: constOf(b) } : {}) }, [{ dtype: 'fp32', shape: os }]);
        expectArr(y!, want, { abs: 1e-5, rel: 1e-5 });
      }
    }
  });

  it('conv_transpose (scatter form) with stride, dilation, groups and custom pad', async () => {
    for (const [k, cfg] of [
      { C: 4, O: 6, g: 2, k: [3, 2], s: [2, 1], d: [1, 2], pad: [0, 0, 0, 0], type: 'valid' },
      { C: 3, O: 2, g: 1, k: [2, 3], s: [3, 2], d: [1, 1], pad: [1, 0, 2, 1], type: 'custom' },
    ].entries()) {
      const [H, W] = [4, 5];
      const x = rnd([1, cfg.C, H, W], 220 + k), w = rnd([cfg.C, cfg.O / cfg.g, cfg.k[0]!, cfg.k[1]!], 230 + k);
      const full = [H, W].map((n, a) => (n - 1) * cfg.s[a]! + (cfg.k[a]! - 1) * cfg.d[a]! + 1);
      const os = [1, cfg.O, full[0]! - cfg.pad[0]! - cfg.pad[1]!, full[1]! - cfg.pad[2]! - cfg.pad[3]!];
      const acc = new Float64Array(numel(os));
      const cg = cfg.C / cfg.g, og = cfg.O / cfg.g;
      for (let c = 0; c < cfg.C; c++)
        for (let i = 0; i < H; i++)
          for (let j = 0; j < W; j++)
            for (let o = 0; o < og; o++)
              for (let a = 0; a < cfg.k[0]!; a++)
                for (let b = 0; b < cfg.k[1]!; b++) {
                  const oi = i * cfg.s[0]! + a * cfg.d[0]! - cfg.pad[0]!, oj = j * cfg.s[1]! + b * cfg.d[1]! - cfg.pad[2]!;
                  if (oi < 0 || oj < 0 || oi >= os[2]! || oj >= os[3]!) continue;
                  const oc = Math.floor(c / cg) * og + o;
                  acc[(oc * os[2]! + oi) * os[3]! + oj] += at(x, [0, c, i, j]) * at(w, [c, o, a, b]);
                }
      const [y] = await runOp('conv_transpose', { x }, {
        weight: constOf(w), strides: ints(cfg.s), dilations: ints(cfg.d), pad_type: str(cfg.type), pad: ints(cfg.pad), groups: i32(cfg.g),
      }, [{ dtype: 'fp32', shape: os }]);
      expectArr(y!, { dtype: 'fp32', shape: os, data: Array.from(acc) }, { abs: 1e-5, rel: 1e-5 });
    }
  });

  it('upsample_nearest_neighbor with integer and fractional scales', async () => {
    const x = rnd([1, 2, 3, 4], 240);
    for (const [sh, sw] of [[2, 3], [1.5, 0.5], [1, 2.5]]) {
      const os = [1, 2, Math.floor(3 * sh!), Math.floor(4 * sw!)];
      const [y] = await runOp('upsample_nearest_neighbor', { x }, { scale_factor_height: f32(sh!), scale_factor_width: f32(sw!) }, [{ dtype: 'fp32', shape: os }]);
      expectArr(y!, build(os, 'fp32', ([n, c, i, j]) => at(x, [n!, c!, Math.min(2, Math.floor(i! / sh!)), Math.min(3, Math.floor(j! / sw!))])));
    }
  });

  it('upsample_bilinear: align_corners, half-pixel centers and the legacy transform', async () => {
    const x = rnd([2, 1, 3, 4], 250);
    const srcOf = (i: number, n: number, o: number, align: boolean, half: boolean) =>
      align ? (o > 1 ? (i * (n - 1)) / (o - 1) : 0) : half ? Math.min(Math.max((i + 0.5) * (n / o) - 0.5, 0), n - 1) : Math.min(i * (n / o), n - 1);
    for (const [align, half, sh, sw] of [[true, false, 2, 2], [false, true, 2, 1.5], [false, false, 3, 2]] as [boolean, boolean, number, number][]) {
      const OH = Math.floor(3 * sh), OW = Math.floor(4 * sw);
      const os = [2, 1, OH, OW];
      const want = build(os, 'fp32', ([n, c, i, j]) => {
        const fy = srcOf(i!, 3, OH, align, half), fx = srcOf(j!, 4, OW, align, half);
        const y0 = Math.floor(fy), x0 = Math.floor(fx), y1 = Math.min(y0 + 1, 2), x1 = Math.min(x0 + 1, 3), wy = fy - y0, wx = fx - x0;
        const p = (a: number, b: number) => at(x, [n!, c!, a, b]);
        return (1 - wy) * ((1 - wx) * p(y0, x0) + wx * p(y0, x1)) + wy * ((1 - wx) * p(y1, x0) + wx * p(y1, x1));
      });
      const [y] = await runOp('upsample_bilinear', { x }, {
        scale_factor_height: f32(sh), scale_factor_width: f32(sw), align_corners: bool(align), half_pixel_centers: bool(half),
      }, [{ dtype: 'fp32', shape: os }], 'CoreML6');
      expectArr(y!, want, TIGHT);
    }
  });

  it('empty tensors flow through slicing, elementwise ops and concat', async () => {
    const x = rnd([2, 3], 260);
    const prog = program([{ name: 'x', dtype: 'fp32', shape: [2, 3] }], [
      op('slice_by_index', 'e', { x: 'x', begin: ints([0, 2]), end: ints([2, 2]) }, [{ name: 'e', dtype: 'fp32', shape: [2, 0] }]),
      op('relu', 'r', { x: 'e' }, [{ name: 'r', dtype: 'fp32', shape: [2, 0] }]),
      op('add', 'a', { x: 'r', y: f32(1) }, [{ name: 'a', dtype: 'fp32', shape: [2, 0] }]),
      op('concat', 'y', { values: ['a', 'x', 'a'], axis: i32(1) }, [{ name: 'y', dtype: 'fp32', shape: [2, 3] }]),
    ], ['y', 'a']);
    const out = await createExecutor({ program: prog, modelDir: '.' }).predict({ x: feedOf(x) });
    expectArr(out.y!, x);
    expectArr(out.a!, { dtype: 'fp32', shape: [2, 0], data: [] });
  });
});

// ---------------------------------------------------------------------------------------------
// scatter family and space/depth rearrangements

const SCATTER_MODES: Record<string, (d: number, u: number) => number> = {
  update: (_d, u) => u, add: (d, u) => d + u, sub: (d, u) => d - u, mul: (d, u) => d * u,
  div: (d, u) => d / u, max: Math.max, min: Math.min,
};
/** Applies updates in row-major order of `updates` to a copy of data at target(p). */
function scatterRef(data: Arr, upd: Arr, target: (p: number[]) => number[], f: (d: number, u: number) => number): Arr {
  const out = { ...data, data: [...data.data] };
  for (let k = 0; k < upd.data.length; k++) {
    const t = target(unravel(k, upd.shape));
    const o = t.reduce((acc, v, i) => acc * data.shape[i]! + v, 0);
    out.data[o] = f32r(f(out.data[o]!, upd.data[k]!));
  }
  return out;
}
const wrapIdx = (v: number, n: number) => (v < 0 ? v + n : v);

describe('scatter family and space/depth rearrangements', () => {
  for (const [mode, f] of Object.entries(SCATTER_MODES)) {
    it(`scatter / scatter_along_axis / scatter_nd, mode ${mode}`, async () => {
      const data = rnd([4, 3, 2], 300, 2);
      // Duplicate indices only where the result does not depend on the order (not update/sub/div).
      const dup = mode === 'add' || mode === 'mul' || mode === 'max' || mode === 'min';
      for (const axis of [1, -3]) {
        const ax = normAxis(axis, 3);
        const n = data.shape[ax]!;
        const idx: Arr = { dtype: 'int32', shape: [2, 1], data: dup ? [-1, n - 1] : [-1, 0] };
        const us = [...data.shape.slice(0, ax), 2, 1, ...data.shape.slice(ax + 1)];
        const upd = mode === 'div' ? nonZero(us, 301) : rnd(us, 301, 2);
        const want = scatterRef(data, upd, (p) => [...p.slice(0, ax), wrapIdx(at(idx, p.slice(ax, ax + 2)), n), ...p.slice(ax + 2)], f);
        const [y] = await runOp('scatter', { data }, { indices: constOf(idx), updates: constOf(upd), axis: i32(axis), mode: str(mode) }, [{ dtype: 'fp32', shape: data.shape }], 'CoreML6');
        expectArr(y!, want, TIGHT);
      }
      for (const axis of [0, -1]) {
        const ax = normAxis(axis, 3);
        const n = data.shape[ax]!;
        const is = [...data.shape]; is[ax] = dup ? 3 : 1;
        const idx = rndInt(is, 302 + ax, -n, n - 1);
        const upd = mode === 'div' ? nonZero(is, 303) : rnd(is, 303, 2);
        const want = scatterRef(data, upd, (p) => p.map((v, i) => (i === ax ? wrapIdx(at(idx, p), n) : v)), f);
        const [y] = await runOp('scatter_along_axis', { data }, { indices: constOf(idx), updates: constOf(upd), axis: i32(axis), mode: str(mode) }, [{ dtype: 'fp32', shape: data.shape }], 'CoreML6');
        expectArr(y!, want, TIGHT);
      }
      // scatter_nd: indices [..., K] address the first K axes; updates = indices.shape[:-1] + data.shape[K:].
      const nd: Arr = { dtype: 'int32', shape: [3, 2], data: dup ? [0, 1, 3, -1, 0, 1] : [0, 1, 3, -1, 2, 0] };
      const upd = mode === 'div' ? nonZero([3, 2], 304) : rnd([3, 2], 304, 2);
      const want = scatterRef(data, upd, (p) => [wrapIdx(at(nd, [p[0]!, 0]), 4), wrapIdx(at(nd, [p[0]!, 1]), 3), p[1]!], f);
      const [y] = await runOp('scatter_nd', { data }, { indices: constOf(nd), updates: constOf(upd), mode: str(mode) }, [{ dtype: 'fp32', shape: data.shape }], 'CoreML6');
      expectArr(y!, want, TIGHT);
    });
  }

  it('depth_to_space / space_to_depth (DCR) and pixel_shuffle / pixel_unshuffle (CRD)', async () => {
    const bs = 2;
    const deep = rnd([2, 8, 2, 3], 310), wide = rnd([2, 2, 4, 6], 311);
    const upShape = [2, 2, 4, 6], downShape = [2, 8, 2, 3];
    const cases: [string, Arr, number[], Record<string, Arg>, (o: number[]) => number[]][] = [
      ['depth_to_space', deep, upShape, { block_size: i32(bs) }, ([n, c, h, w]) => [n!, ((h! % bs) * bs + (w! % bs)) * 2 + c!, Math.floor(h! / bs), Math.floor(w! / bs)]],
      ['pixel_shuffle', deep, upShape, { upscale_factor: i32(bs) }, ([n, c, h, w]) => [n!, c! * bs * bs + (h! % bs) * bs + (w! % bs), Math.floor(h! / bs), Math.floor(w! / bs)]],
      ['space_to_depth', wide, downShape, { block_size: i32(bs) }, ([n, c, h, w]) => {
        const blk = Math.floor(c! / 2), ch = c! % 2;
        return [n!, ch, h! * bs + Math.floor(blk / bs), w! * bs + (blk % bs)];
      }],
      ['pixel_unshuffle', wide, downShape, { downscale_factor: i32(bs) }, ([n, c, h, w]) => {
        const ch = Math.floor(c! / (bs * bs)), r = c! % (bs * bs);
        return [n!, ch, h! * bs + Math.floor(r / bs), w! * bs + (r % bs)];
      }],
    ];
    for (const [type, x, os, attrs, src] of cases) {
      const [y] = await runOp(type, { x }, attrs, [{ dtype: 'fp32', shape: os }]);
      expectArr(y!, build(os, 'fp32', (o) => at(x, src(o))));
    }
  });
});

describe('int32 data through float-computed and data-movement ops', () => {
  it('unary math, reductions and data movement keep int32 exact', async () => {
    const x = rndInt([3, 4], 400, -50, 50);
    for (const [type, f] of [['abs', Math.abs], ['neg', (v: number) => -v], ['sign', Math.sign], ['square', (v: number) => v * v], ['relu', (v: number) => Math.max(v, 0)]] as [string, (v: number) => number][]) {
      const [y] = await runOp(type, { x }, {}, [{ dtype: 'int32', shape: x.shape }]);
      expectArr(y!, { ...x, data: x.data.map((v) => f(v) + 0) });
    }
    for (const [type, f] of [['reduce_sum', (v: number[]) => v.reduce((a, b) => a + b, 0)], ['reduce_max', (v: number[]) => Math.max(...v)], ['reduce_min', (v: number[]) => Math.min(...v)]] as [string, (v: number[]) => number][]) {
      const want = reduceRef(x, [-1], false, f, 'int32');
      const [y] = await runOp(type, { x }, { axes: ints([-1]), keep_dims: bool(false) }, [{ dtype: 'int32', shape: want.shape }]);
      expectArr(y!, want);
    }
    const [t] = await runOp('transpose', { x }, { perm: ints([1, 0]) }, [{ dtype: 'int32', shape: [4, 3] }]);
    expectArr(t!, build([4, 3], 'int32', ([i, j]) => at(x, [j!, i!])));
    const [g] = await runOp('gather', { x }, { indices: ints([2, 0, 2]), axis: i32(0) }, [{ dtype: 'int32', shape: [3, 4] }]);
    expectArr(g!, build([3, 4], 'int32', ([i, j]) => at(x, [[2, 0, 2][i!]!, j!])));
    const [tl] = await runOp('tile', { x }, { reps: ints([1, 2]) }, [{ dtype: 'int32', shape: [3, 8] }]);
    expectArr(tl!, build([3, 8], 'int32', ([i, j]) => at(x, [i!, j! % 4])));
  });
});

// fp16 I/O: inputs are widened exactly, outputs rounded to nearest even once (independent TS codec).
function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
function floatToHalf(v: number): number {
  const rne = (x: number) => { const f = Math.floor(x), d = x - f; return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 ? f + 1 : f; };
  const sgn = v < 0 || Object.is(v, -0) ? 0x8000 : 0, a = Math.abs(v);
  if (Number.isNaN(v)) return 0x7e00;
  if (a < 2 ** -14) return sgn | rne(a / 2 ** -24);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  let m = rne(a / 2 ** (e - 10));
  if (m === 2048) { m = 1024; e++; }
  if (e > 15) return sgn | 0x7c00;
  return sgn | ((e + 15) << 10) | (m - 1024);
}

describe('fp16 inputs and outputs', () => {
  it('add with broadcasting and softmax, fp16 in and out', async () => {
    const a = Array.from(randoms(24, 410), (v) => floatToHalf(v * 4)), b = Array.from(randoms(4, 411), (v) => floatToHalf(v));
    expect(halfToFloat(floatToHalf(1 / 3))).toBe(0.333251953125);
    const prog = program([{ name: 'a', dtype: 'fp16', shape: [2, 3, 4] }, { name: 'b', dtype: 'fp16', shape: [4] }], [
      op('add', 's', { x: 'a', y: 'b' }, [{ name: 's', dtype: 'fp16', shape: [2, 3, 4] }]),
      op('softmax', 'p', { x: 'a', axis: i32(-2) }, [{ name: 'p', dtype: 'fp16', shape: [2, 3, 4] }]),
    ], ['s', 'p']);
    const out = await createExecutor({ program: prog, modelDir: '.' }).predict({
      a: { data: Uint16Array.from(a), shape: [2, 3, 4] }, b: { data: Uint16Array.from(b), shape: [4] },
    });
    const av = a.map(halfToFloat), bv = b.map(halfToFloat);
    expect(out.s!.dtype).toBe('fp16');
    // The executor computes in fp32 and rounds each output once to fp16: bit-exact.
    expect(Array.from(out.s!.data)).toEqual(av.map((v, k) => floatToHalf(f32r(v + bv[k % 4]!))));
    const sm = build([2, 3, 4], 'fp32', ([n, i, j]) => {
      let z = 0;
      for (let q = 0; q < 3; q++) z += Math.exp(av[(n! * 3 + q) * 4 + j!]!);
      return Math.exp(av[(n! * 3 + i!) * 4 + j!]!) / z;
    });
    expectArr({ ...out.p!, data: Float32Array.from(out.p!.data, halfToFloat) }, sm, { abs: 1e-4, rel: 1e-3 });
  });
});

// ---------------------------------------------------------------------------------------------
// Coverage: every supported op has a reference test somewhere.

/** Ops whose reference test lives in another file (fixture cases count by their case name). */
const COVERED_ELSEWHERE: Record<string, string> = {
  const: 'every test (constants feed ops)',
  cond: 'test/runtime/executor-semantics.test.ts',
  while_loop: 'test/runtime/executor-semantics.test.ts',
  conv: 'test/runtime/executor-semantics.test.ts + fixtures executor-reference/conv*',
  conv_transpose: 'fixtures executor-reference/conv_transpose2d_*',
  einsum: 'test/runtime/executor-semantics.test.ts + fixtures executor-reference/einsum_attention_forms',
  gelu: 'test/runtime/executor-semantics.test.ts + fixtures executor-reference/gelu_modes',
  layer_norm: 'test/runtime/executor-semantics.test.ts + fixtures executor-reference/layer_norm_axes',
  band_part: 'test/runtime/executor-semantics.test.ts + fixtures executor-reference/band_part',
  linear: 'fixtures executor-reference/linear',
  matmul: 'fixtures executor-reference/matmul_*',
  upsample_bilinear: 'fixtures executor-reference/upsample_bilinear_align_corners',
  upsample_nearest_neighbor: 'fixtures executor-reference/upsample_nearest_neighbor',
  lstm: 'test/runtime/executor-more-ops.test.ts',
  scaled_dot_product_attention: 'test/runtime/executor-more-ops.test.ts',
  constexpr_affine_dequantize: 'fixtures executor-reference/constexpr_affine_dequantize + test/kernels/decompress-golden.test.ts (every constexpr op of the golden packages)',
  constexpr_blockwise_shift_scale: 'fixtures executor-reference/constexpr_blockwise_shift_scale + test/kernels/decompress-golden.test.ts (every constexpr op of the golden packages)',
  constexpr_lut_to_dense: 'fixtures executor-reference/constexpr_lut_to_dense_* + test/kernels/decompress-golden.test.ts (every constexpr op of the golden packages)',
  constexpr_sparse_to_dense: 'fixtures executor-reference/constexpr_sparse_to_dense_* + test/kernels/decompress-golden.test.ts (every constexpr op of the golden packages)',
  constexpr_cast: 'test/kernels/kernels-api.test.ts (decompressOp, shared with the executor)',
  constexpr_lut_to_sparse: 'test/kernels/decompress-golden.test.ts (every constexpr op of the golden packages) (joint_prune50_pal4gs16_ios18)',
  constexpr_sparse_blockwise_shift_scale: 'test/kernels/kernels-api.test.ts + test/kernels/decompress-golden.test.ts (every constexpr op of the golden packages)',  make_list: 'test/runtime/executor-ops-extended.test.ts',
  list_length: 'test/runtime/executor-ops-extended.test.ts',
  list_read: 'test/runtime/executor-ops-extended.test.ts',
  list_write: 'test/runtime/executor-ops-extended.test.ts',
  list_gather: 'test/runtime/executor-ops-extended.test.ts',
  list_scatter: 'test/runtime/executor-ops-extended.test.ts',
  crop: 'test/runtime/executor-ops-extended.test.ts',
  crop_resize: 'test/runtime/executor-ops-extended.test.ts',
  resize_bilinear: 'test/runtime/executor-ops-extended.test.ts',
  resize_nearest_neighbor: 'test/runtime/executor-ops-extended.test.ts',
  resize: 'test/runtime/executor-ops-extended.test.ts',
  affine: 'test/runtime/executor-ops-extended.test.ts',
  resample: 'test/runtime/executor-ops-extended.test.ts',
  space_to_batch: 'test/runtime/executor-ops-extended.test.ts',
  batch_to_space: 'test/runtime/executor-ops-extended.test.ts',
  sliding_windows: 'test/runtime/executor-ops-extended.test.ts',
  local_response_norm: 'test/runtime/executor-ops-extended.test.ts',
  gru: 'test/runtime/executor-ops-extended.test.ts',
  rnn: 'test/runtime/executor-ops-extended.test.ts',
  quantize: 'test/runtime/executor-ops-extended.test.ts',
  dequantize: 'test/runtime/executor-ops-extended.test.ts',
  random_uniform: 'test/runtime/executor-ops-extended.test.ts',
  random_normal: 'test/runtime/executor-ops-extended.test.ts',
  random_bernoulli: 'test/runtime/executor-ops-extended.test.ts',
  random_categorical: 'test/runtime/executor-ops-extended.test.ts',
  read_state: 'test/runtime/executor-ops-extended.test.ts',
  write_state: 'test/runtime/executor-ops-extended.test.ts',
  coreml_update_state: 'test/runtime/executor-ops-extended.test.ts',
  thresholded_relu: 'test/runtime/executor-ops-extended.test.ts',
  reverse_sequence: 'test/runtime/executor-ops-extended.test.ts',
  reshape_like: 'test/runtime/executor-ops-extended.test.ts',
  non_maximum_suppression: 'test/runtime/executor-ops-extended.test.ts',
  classify: 'test/runtime/executor-ops-extended.test.ts',
};

describe('coverage', () => {
  it('every op in SUPPORTED_OPS has a reference test here or in COVERED_ELSEWHERE', () => {
    const here = new Set<string>([
      ...UNARY.map((c) => c.op), 'prelu', 'softplus_parametric',
      ...BINARY.map((c) => c.op), 'logical_not', 'select', 'cast',
      ...Object.keys(REDUCE), 'reduce_argmax', 'reduce_argmin', 'cumsum', 'softmax',
      'reshape', 'transpose', 'expand_dims', 'squeeze', 'flatten2d', 'shape', 'concat', 'split', 'stack', 'tile', 'reverse',
      'slice_by_index', 'slice_by_size', 'slice_update', 'pad', 'fill', 'fill_like', 'range_1d',
      'gather', 'gather_along_axis', 'gather_nd', 'one_hot', 'topk', 'argsort', 'non_zero',
      'max_pool', 'avg_pool', 'l2_pool', 'l2_norm', 'batch_norm', 'instance_norm',
      'matmul', 'linear', 'conv_transpose', 'upsample_nearest_neighbor', 'upsample_bilinear',
      'scatter', 'scatter_along_axis', 'scatter_nd', 'depth_to_space', 'space_to_depth', 'pixel_shuffle', 'pixel_unshuffle',
    ]);
    for (const [opName, where] of Object.entries(COVERED_ELSEWHERE)) {
      // The named file must exist and mention the op (fixture cases: the case list names it).
      for (const part of where.split(' + ')) {
        const m = /^(test\/\S+\.ts)/.exec(part);
        if (m) {
          const file = path.resolve(__dirname, '../..', m[1]!);
          expect(existsSync(file), `${opName}: ${m[1]} exists`).toBe(true);
          if (opName !== 'const' && !part.includes('(every')) expect(readFileSync(file, 'utf8'), `${opName} in ${m[1]}`).toMatch(new RegExp(`'${opName}'|${opName}\\b`));
        }
      }
    }
    const fixtures = path.resolve(__dirname, '../../../shared/fixtures/executor-reference');
    if (existsSync(fixtures)) {
      const covered = new Set<string>();
      for (const d of readdirSync(fixtures)) {
        const f = path.join(fixtures, d, 'case.json');
        if (existsSync(f)) for (const o of (JSON.parse(readFileSync(f, 'utf8')) as { ops_covered?: string[] }).ops_covered ?? []) covered.add(o);
      }
      for (const [opName, where] of Object.entries(COVERED_ELSEWHERE)) {
        if (/^fixtures/.test(where)) expect(covered.has(opName), `${opName} is covered by a fixture case`).toBe(true);
      }
    }
    const missing = SUPPORTED_OPS.filter((o) => !here.has(o) && !(o in COVERED_ELSEWHERE));
    expect(missing).toEqual([]);
  });
});
