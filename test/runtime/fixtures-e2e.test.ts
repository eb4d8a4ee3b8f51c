/**
 * Real models end to end on the CPU executor: SuperPoint (a complete third-party ML Program) runs,
 * is deterministic, and its palettized versions degrade as expected; a coremltools-compressed model
 * decompressed by the package and compressed again gives the same outputs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../src/model.js';
import { createExecutor } from '../../src/runtime/executor.js';
import { compareModels, outputAsFloat32, randomInputs } from '../../src/runtime/compare.js';
import { OptimizationConfig } from '../../src/optimize/config.js';
import { palettizeWeights } from '../../src/optimize/palettize.js';
import { decompressWeights } from '../../src/optimize/compress.js';

const fixtures = path.resolve(__dirname, '../../../shared/fixtures');
const dir = mkdtempSync(path.join(os.tmpdir(), 'cmo-e2e-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const palettize = (global: Record<string, unknown>) => OptimizationConfig.fromDict({ config_type: 'OpPalettizerConfig', global_config: global });

describe('SuperPoint (third-party ML Program, fp16 weights)', () => {
  const superpoint = path.join(fixtures, 'superpoint/superpoint.mlpackage');

  it('runs with finite, deterministic outputs of the declared shapes', async () => {
    const model = await loadModel(superpoint);
    const exec = createExecutor(model);
    const inputs = randomInputs(exec, 11);
    const a = await exec.predict(inputs);
    const b = await exec.predict(inputs);
    expect(a['semi']!.shape).toEqual([1, 65, 30, 40]);
    expect(a['desc']!.shape).toEqual([1, 256, 30, 40]);
    for (const name of ['semi', 'desc']) {
      const x = outputAsFloat32(a[name]!);
      expect(x.every(Number.isFinite)).toBe(true);
      expect(Buffer.from(outputAsFloat32(b[name]!).buffer).equals(Buffer.from(x.buffer))).toBe(true);
    }
  });

  it('8-bit palettization keeps the outputs close; 4-bit is clearly worse', async () => {
    const model = await loadModel(superpoint);
    const p8 = await (await palettizeWeights(model, palettize({ nbits: 8 }))).save(path.join(dir, 'sp8.mlpackage'));
    const p4 = await (await palettizeWeights(model, palettize({ nbits: 4 }))).save(path.join(dir, 'sp4.mlpackage'));
    const c8 = await compareModels(model, p8, { random: 1, seed: 3 });
    const c4 = await compareModels(model, p4, { random: 1, seed: 3 });
    for (let i = 0; i < 2; i++) {
      expect(c8.outputs[i]!.psnr!).toBeGreaterThan(30);
      expect(c4.outputs[i]!.psnr!).toBeLessThan(c8.outputs[i]!.psnr! - 10);
    }
  });
});

describe('a coremltools-compressed model, decompressed and compressed again by the package', () => {
  it('pal_n4_gs16_ios18: decompression is exact; re-palettizing the LUT values reproduces the outputs', async () => {
    const golden = await loadModel(path.join(fixtures, 'coremltools-golden/pal_n4_gs16_ios18.mlpackage'));
    const dense = await (await decompressWeights(golden)).save(path.join(dir, 'dense.mlpackage'));
    const again = await (await palettizeWeights(dense, palettize({ nbits: 4, granularity: 'per_grouped_channel', group_size: 16 }))).save(path.join(dir, 'again.mlpackage'));
    const d = await compareModels(golden, dense, { random: 1, seed: 5 });
    expect(d.outputs.every((o) => o.identical)).toBe(true);
    // Each group of the dense weights holds at most 16 distinct values, so exact 4-bit k-means
    // recovers them: same weights, same outputs.
    const a = await compareModels(golden, again, { random: 1, seed: 5 });
    expect(a.outputs.every((o) => o.identical)).toBe(true);
  });

  it('q_int8_linsym_perchannel_ios18 decompressed then palettized 8-bit stays within the expected error', async () => {
    const golden = await loadModel(path.join(fixtures, 'coremltools-golden/q_int8_linsym_perchannel_ios18.mlpackage'));
    const dense = await (await decompressWeights(golden)).save(path.join(dir, 'qdense.mlpackage'));
    const p8 = await (await palettizeWeights(dense, palettize({ nbits: 8 }))).save(path.join(dir, 'q8pal.mlpackage'));
    const c = await compareModels(golden, p8, { random: 1, seed: 5 });
    for (const o of c.outputs) expect(o.identical || o.psnr! > 30).toBe(true);
  });
});
