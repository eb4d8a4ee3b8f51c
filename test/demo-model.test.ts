import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildExampleModel } from '../src/demo/example-model.js';
import { loadModel } from '../src/model.js';
import { openProgram } from '../src/mil/from-model.js';
import { materializeWeights } from '../src/optimize/materialize.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'cmo-demo-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the demo example model', () => {
  it('builds, reloads and holds the weights it was built with', async () => {
    const built = await buildExampleModel(path.join(dir, 'example.mlpackage'), path.join(dir, 'weight.bin'));
    const model = await loadModel(built.path!);
    expect(model.specificationVersion).toBe(9);
    const { program, close } = openProgram(model);
    const counts = Object.fromEntries(program.opCounts());
    close();
    expect(counts).toMatchObject({ conv: 2, linear: 2, matmul: 1, gelu: 1, silu: 1 });
    const weights = await materializeWeights(model);
    const ff = weights.get('ff_in_weight')!;
    expect(ff.shape).toEqual([3072, 768]);
    // Synthetic weights: std ≈ 1/sqrt(fan_in) (0.2 % outliers at 8x the std).
    let sq = 0;
    for (const v of ff.values) sq += v * v;
    const std = Math.sqrt(sq / ff.values.length);
    expect(std * Math.sqrt(768)).toBeGreaterThan(1.0);
    expect(std * Math.sqrt(768)).toBeLessThan(1.2);
  });
});

describe('runDemo', () => {
  it('compresses the example and reports size, SQNR and output PSNR', async () => {
    const { runDemo, DEMO_VARIANTS } = await import('../src/demo/run-demo.js');
    const result = await runDemo({ dir: path.join(dir, 'demo'), variants: [DEMO_VARIANTS[0]!] });
    const row = result.rows[0]!;
    expect(row.variant).toBe('palettize 8-bit per_tensor');
    // 8-bit indices for fp16 weights: about half the size (biases stay fp16).
    expect(row.ratio).toBeGreaterThan(1.95);
    expect(row.ratio).toBeLessThan(2.05);
    expect(row.compressedWeights).toBe(5);
    expect(row.worstSqnrDb).toBeGreaterThan(35);
    expect(row.outputPsnrDb).toBeGreaterThan(40);
  });
});
