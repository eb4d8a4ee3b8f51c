import { describe, expect, it } from 'vitest';
import { ProgramBuilder, tensor } from '../../src/mil/builder.js';
import { listWeights } from '../../src/mil/weights.js';
import { Program, milWorkCounters, resetMilWorkCounters } from '../../src/mil/program.js';

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

/** Graph-model work (ops walked + ops indexed) of decoding a program and listing its weights. */
function workOfLoadAndList(bytes: Uint8Array): { work: number; indexBuilds: number; weights: number } {
  resetMilWorkCounters();
  const weights = listWeights(Program.decode(bytes)).length;
  return { work: milWorkCounters.walkedOps + milWorkCounters.indexedOps, indexBuilds: milWorkCounters.indexBuilds, weights };
}

describe('scales to large programs', () => {
  it('decode + index + listWeights do work linear in the op count (no per-weight walks)', () => {
    const a = workOfLoadAndList(layers(400));
    const b = workOfLoadAndList(layers(1600));
    expect(a.weights).toBe(800);
    expect(b.weights).toBe(3200);
    // One index build per function, whatever the size; work per op constant: 4x the ops is 4x the
    // work (a walk per weight would make it 16x).
    expect(a.indexBuilds).toBeLessThanOrEqual(1);
    expect(b.indexBuilds).toBe(a.indexBuilds);
    expect(a.work).toBeGreaterThan(0);
    expect(b.work / a.work).toBeCloseTo(4, 1);
    expect(a.work).toBeLessThan(4 * 1600);
  });
});
