import { describe, expect, it } from 'vitest';
import { ProgramBuilder, tensor } from '../../src/mil/builder.js';
import { listWeights } from '../../src/mil/weights.js';
import { Program } from '../../src/mil/program.js';

/** Program bytes of L layers: constexpr LUT weight + const bias + linear + relu (4 ops, 2 weights each). */
function layers(L: number): Uint8Array {
  const b = new ProgramBuilder({ specVersion: 9 });
  let x = b.input('x', 'fp16', [1, 8]);
  for (let i = 0; i < L; i++) {
    const w = b.op('constexpr_lut_to_dense', { indices: tensor('uint1', [0, 1, 1, 0, 1, 0, 0, 1], [1, 8]), lut: tensor('fp16', [0.5, -0.5], [1, 1, 2, 1]) }, { name: `w${i}` });
    const bias = b.const(`b${i}`, [0.125], [1], 'fp16');
    x = b.op('linear', { x, weight: w, bias }, { name: `l${i}` });
    x = b.op('relu', { x }, { name: `r${i}` });
  }
  b.output(x);
  return b.buildProgram().program.encode();
}

function timeLoadAndList(bytes: Uint8Array): { ms: number; weights: number } {
  const t0 = performance.now();
  const weights = listWeights(Program.decode(bytes)).length;
  return { ms: performance.now() - t0, weights };
}

describe('scales to large programs', () => {
  it('decode + index + listWeights grow linearly with the op count (no per-weight walks)', () => {
    const small = layers(400);
    const big = layers(1600);
    timeLoadAndList(small); // warm up
    const a = timeLoadAndList(small);
    const b = timeLoadAndList(big);
    expect(a.weights).toBe(800);
    expect(b.weights).toBe(3200);
    // 4× the ops: linear ≈ 4×, quadratic ≈ 16×.
    expect(b.ms / a.ms).toBeLessThan(10);
  });
});
