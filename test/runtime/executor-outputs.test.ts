// Large fp32 outputs reach JS without a copy (the typed array views the executor's own buffer, see
// adopt_f32 in native/addon/executor.cc) only when that buffer belongs to the result alone. Writing
// into an output array must therefore never change a constant, an input or a later predict's result.
import { describe, expect, it } from 'vitest';
import { createExecutor } from '../../src/runtime/executor.js';
import { constOp, floats, op, program, randoms } from './mil-builder.js';

const N = 4096; // above the 1024-element threshold for adopting a buffer

function net() {
  const c = Array.from(randoms(N, 7));
  return program(
    [{ name: 'x', dtype: 'fp32', shape: [N] }],
    [
      constOp('c', floats([N], c)),
      op('relu', 'r', { x: 'x' }, [{ name: 'r', dtype: 'fp32', shape: [N] }]),
      op('identity', 'k', { x: 'c' }, [{ name: 'k', dtype: 'fp32', shape: [N] }]),
      op('identity', 'same', { x: 'x' }, [{ name: 'same', dtype: 'fp32', shape: [N] }]),
    ],
    ['r', 'k', 'same'],
  );
}

describe('executor outputs', () => {
  it('writing into outputs changes neither constants, inputs nor the next run', async () => {
    const exec = createExecutor({ program: net(), modelDir: '.' });
    const x = randoms(N, 3);
    const xCopy = Float32Array.from(x);
    const c = randoms(N, 7);
    const want = Float32Array.from(x, (v) => Math.max(v, 0));
    const first = await exec.predict({ x: { data: x, shape: [N] } });
    expect(Array.from(first.r!.data as Float32Array)).toEqual(Array.from(want));
    expect(Array.from(first.k!.data as Float32Array)).toEqual(Array.from(c));
    // Scribble over every output of the first run, and over nothing else.
    for (const name of ['r', 'k', 'same']) (first[name]!.data as Float32Array).fill(999);
    expect(Array.from(x)).toEqual(Array.from(xCopy));
    for (let run = 0; run < 3; run++) {
      const again = await exec.predict({ x: { data: x, shape: [N] } });
      expect(Array.from(again.r!.data as Float32Array)).toEqual(Array.from(want));
      expect(Array.from(again.k!.data as Float32Array)).toEqual(Array.from(c));
      expect(Array.from(again.same!.data as Float32Array)).toEqual(Array.from(xCopy));
      (again.r!.data as Float32Array).fill(-1);
    }
    // The first run's arrays still hold what was written into them (each run has its own buffers).
    expect((first.r!.data as Float32Array)[17]).toBe(999);
  });
});
