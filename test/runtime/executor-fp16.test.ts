// computePrecision 'fp16': inputs, fp32 weights and every op's output rounded to fp16 (ties to even).
// Checked against a slow reference doing exactly that in float64 (each op computed in float64, rounded
// to float32 as our kernels return it, then to fp16), and against the fp32 run within an error bound
// derived from the roundings (below).
import { describe, expect, it } from 'vitest';
import { createExecutor } from '../../src/runtime/executor.js';
import { ConfigError } from '../../src/errors.js';
import { floats, op, program, randoms } from './mil-builder.js';

const U = 2 ** -11; // fp16 unit roundoff

/** Nearest fp16 value of x (ties to even), exact in double arithmetic. */
function roundHalf(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  if (a >= 65520) return Math.sign(x) * Infinity;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const ulp = 2 ** (Math.max(e, -14) - 10);
  const q = a / ulp;
  const fl = Math.floor(q);
  const d = q - fl;
  const r = d > 0.5 ? fl + 1 : d < 0.5 ? fl : fl % 2 === 0 ? fl : fl + 1;
  return Math.sign(x) * r * ulp;
}
const r16 = (v: number) => roundHalf(Math.fround(v));

const D_IN = 16, D_H = 8, D_OUT = 4, B = 4;
const w1 = Array.from(randoms(D_H * D_IN, 11)), b1 = Array.from(randoms(D_H, 12));
const w2 = Array.from(randoms(D_OUT * D_H, 13)), b2 = Array.from(randoms(D_OUT, 14));
// Inputs with a spread of magnitudes so many values are not fp16-exact.
const x = Float32Array.from(randoms(B * D_IN, 15), (v, i) => v * (1 + (i % 7) * 3.3));

function net() {
  return program(
    [{ name: 'x', dtype: 'fp32', shape: [B, D_IN] }],
    [
      op('linear', 'h', { x: 'x', weight: floats([D_H, D_IN], w1), bias: floats([D_H], b1) }, [{ name: 'h', dtype: 'fp32', shape: [B, D_H] }]),
      op('relu', 'a', { x: 'h' }, [{ name: 'a', dtype: 'fp32', shape: [B, D_H] }]),
      op('linear', 'z', { x: 'a', weight: floats([D_OUT, D_H], w2), bias: floats([D_OUT], b2) }, [{ name: 'z', dtype: 'fp32', shape: [B, D_OUT] }]),
    ],
    ['z'],
  );
}

/** float64 forward pass; `round` is applied to inputs, weights and each op output. */
function reference(round: (v: number) => number) {
  const f = (a: ArrayLike<number>) => Array.from(a, (v) => round(Math.fround(v)));
  const X = f(x), W1 = f(w1), B1 = f(b1), W2 = f(w2), B2 = f(b2);
  const h = new Array<number>(B * D_H), z = new Array<number>(B * D_OUT);
  for (let r = 0; r < B; r++)
    for (let o = 0; o < D_H; o++) {
      let s = B1[o]!;
      for (let j = 0; j < D_IN; j++) s += W1[o * D_IN + j]! * X[r * D_IN + j]!;
      h[r * D_H + o] = round(Math.max(round(s), 0));
    }
  for (let r = 0; r < B; r++)
    for (let o = 0; o < D_OUT; o++) {
      let s = B2[o]!;
      for (let j = 0; j < D_H; j++) s += W2[o * D_H + j]! * h[r * D_H + j]!;
      z[r * D_OUT + o] = round(s);
    }
  return { h, z };
}

describe('fp16 compute precision', () => {
  it('matches the fp16 slow reference and stays within the rounding bound of the fp32 run', async () => {
    const exec = createExecutor({ program: net(), modelDir: '.' });
    const z32 = Array.from((await exec.predict({ x: { data: x, shape: [B, D_IN] } })).z!.data);
    const z16 = Array.from((await exec.predict({ x: { data: x, shape: [B, D_IN] } }, { computePrecision: 'fp16' })).z!.data);
    // The executor's default can be set once; same result.
    const exec16 = createExecutor({ program: net(), modelDir: '.' }, { computePrecision: 'fp16' });
    expect(Array.from((await exec16.predict({ x: { data: x, shape: [B, D_IN] } })).z!.data)).toEqual(z16);

    // Every output is an fp16 value, and equals the reference within one fp16 step (the fp32 sums of
    // the kernels may sit on the other side of a rounding boundary than the float64 sums; rare).
    const ref = reference(r16);
    let exact = 0;
    for (let i = 0; i < z16.length; i++) {
      expect(roundHalf(z16[i]!)).toBe(z16[i]);
      const step = 2 ** (Math.max(Math.floor(Math.log2(Math.abs(ref.z[i]!) || 2 ** -14)), -14) - 10);
      expect(Math.abs(z16[i]! - ref.z[i]!)).toBeLessThanOrEqual(step);
      if (z16[i] === ref.z[i]) exact++;
    }
    expect(exact).toBeGreaterThanOrEqual(z16.length - 1);

    // Bound vs fp32: inputs/weights/bias each carry a relative error ≤ u, a product of two ≤ 2u + u²,
    // and each op output one more rounding ≤ u·|value|. Layer 1: |Δh| ≤ 4u·(Σ|W1·x| + |b1|) + u·|h|;
    // relu is 1-Lipschitz; layer 2: |Δz| ≤ Σ|W2|·|Δh|·(1+u) + 4u·(Σ|W2·h| + |b2|) + u·|z|. 1e-6 covers
    // the float32 arithmetic of the fp32 run itself.
    const exactRef = reference((v) => v);
    const dh = new Array<number>(B * D_H);
    for (let r = 0; r < B; r++)
      for (let o = 0; o < D_H; o++) {
        let s = Math.abs(b1[o]!);
        for (let j = 0; j < D_IN; j++) s += Math.abs(w1[o * D_IN + j]! * x[r * D_IN + j]!);
        dh[r * D_H + o] = 4 * U * s + U * Math.abs(exactRef.h[r * D_H + o]!);
      }
    let worst = 0, changed = 0;
    for (let r = 0; r < B; r++)
      for (let o = 0; o < D_OUT; o++) {
        let prop = 0, mag = Math.abs(b2[o]!);
        for (let j = 0; j < D_H; j++) {
          prop += Math.abs(w2[o * D_H + j]!) * dh[r * D_H + j]! * (1 + U);
          mag += Math.abs(w2[o * D_H + j]! * exactRef.h[r * D_H + j]!);
        }
        const i = r * D_OUT + o;
        const bound = prop + 4 * U * mag + U * Math.abs(exactRef.z[i]!) + 1e-6;
        const diff = Math.abs(z16[i]! - z32[i]!);
        expect(diff).toBeLessThanOrEqual(bound);
        worst = Math.max(worst, diff / bound);
        if (diff > 1e-5) changed++;
      }
    // fp16 really changed the outputs (by far more than fp32 noise).
    expect(changed).toBeGreaterThan(z16.length / 2);
    expect(worst).toBeGreaterThan(0);
  });

  it('rejects an unknown precision with a ConfigError', async () => {
    expect(() => createExecutor({ program: net(), modelDir: '.' }, { computePrecision: 'bf16' as never })).toThrow(ConfigError);
    const exec = createExecutor({ program: net(), modelDir: '.' });
    await expect(exec.predict({ x: { data: x, shape: [B, D_IN] } }, { computePrecision: 'int8' as never })).rejects.toThrow(ConfigError);
  });
});
