import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareModels, compareTensors } from '../../src/runtime/compare.js';
import { buildExampleModel } from '../../src/demo/example-model.js';
import { OptimizationConfig } from '../../src/optimize/config.js';
import { palettizeWeights } from '../../src/optimize/palettize.js';
import { loadModel, type Model } from '../../src/model.js';
import { writeNpy } from '../../src/runtime/npy.js';
import { runCli } from '../cli/run-cli.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'cmo-compare-'));
let source: Model;
let eightBit: string;
let twoBit: string;

beforeAll(async () => {
  source = await buildExampleModel(path.join(dir, 'src.mlpackage'), path.join(dir, 'src.bin'));
  const pal = (nbits: number) => OptimizationConfig.fromDict({ config_type: 'OpPalettizerConfig', global_config: { nbits } });
  eightBit = (await (await palettizeWeights(source, pal(8))).save(path.join(dir, 'p8.mlpackage'))).path!;
  twoBit = (await (await palettizeWeights(source, pal(2))).save(path.join(dir, 'p2.mlpackage'))).path!;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('compareTensors (known answers)', () => {
  it('identical outputs have no PSNR', () => {
    expect(compareTensors('y', [1, -2, 3], [1, -2, 3])).toEqual({ name: 'y', psnr: null, snr: null, cosine: 1, maxAbsError: 0, identical: true });
  });
  it('computes PSNR against the peak, SNR, cosine and max error', () => {
    // reference [3, 4], other [3, 5]: error [0, 1], MSE 0.5, peak 4, Σref² 25, Σerr² 1
    const c = compareTensors('y', [3, 4], [3, 5]);
    expect(c.psnr).toBeCloseTo(20 * Math.log10(4 / Math.sqrt(0.5)), 10);
    expect(c.snr).toBeCloseTo(10 * Math.log10(25), 10);
    expect(c.cosine).toBeCloseTo((9 + 20) / (5 * Math.sqrt(34)), 12);
    expect(c.maxAbsError).toBe(1);
    expect(c.identical).toBe(false);
  });
});

describe('compareModels', () => {
  it('a model against itself is identical; 8-bit is close; 2-bit clearly worse', async () => {
    const self = await compareModels(source, source, { random: 1, seed: 7 });
    expect(self.outputs.map((o) => o.identical)).toEqual([true, true]);
    const p8 = await compareModels(source, await loadModel(eightBit), { random: 1, seed: 7 });
    const p2 = await compareModels(source, await loadModel(twoBit), { random: 1, seed: 7 });
    for (let i = 0; i < 2; i++) {
      expect(p8.outputs[i]!.psnr).toBeGreaterThan(30);
      expect(p8.outputs[i]!.cosine).toBeGreaterThan(0.999);
      expect(p2.outputs[i]!.psnr).toBeLessThan(p8.outputs[i]!.psnr! - 15);
    }
  });
});

describe('coreml-optimize compare / predict', () => {
  it('compare --json reports identical outputs with psnr null', async () => {
    const r = await runCli(['compare', source.path!, source.path!, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as { outputs: { name: string; psnr: number | null; identical: boolean }[] };
    expect(json.outputs.map((o) => [o.name, o.psnr, o.identical])).toEqual([['latent_features', null, true], ['text_features', null, true]]);
  });

  it('--min-psnr fails the check with exit code 3 for the 2-bit model', async () => {
    const ok = await runCli(['compare', source.path!, eightBit, '--min-psnr', '25']);
    expect(ok.code, ok.stderr).toBe(0);
    const bad = await runCli(['compare', source.path!, twoBit, '--min-psnr', '25']);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/PSNR below 25 dB/);
  });

  it('predict reads one .npy per input and writes one per output', async () => {
    const inputs = path.join(dir, 'inputs');
    const out = path.join(dir, 'outputs');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(inputs, { recursive: true });
    writeNpy(path.join(inputs, 'sample.npy'), { dtype: 'float32', shape: [1, 4, 32, 32], data: new Float32Array(4096).fill(0.5) });
    writeNpy(path.join(inputs, 'hidden_states.npy'), { dtype: 'float32', shape: [1, 77, 768], data: new Float32Array(77 * 768).fill(-0.25) });
    const r = await runCli(['predict', source.path!, '--inputs', inputs, '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as { outputs: { name: string; shape: number[] }[] };
    expect(json.outputs.map((o) => [o.name, o.shape])).toEqual([['latent_features', [1, 320, 32, 32]], ['text_features', [1, 77, 1024]]]);
    expect(readdirSync(out).sort()).toEqual(['latent_features.npy', 'text_features.npy']);
    // The same inputs through compare give identical outputs.
    const same = await runCli(['compare', source.path!, source.path!, '--inputs', inputs, '--json']);
    expect(same.code, same.stderr).toBe(0);
  });

  it('a missing input file is a one-line error naming it', async () => {
    const empty = path.join(dir, 'empty');
    (await import('node:fs')).mkdirSync(empty, { recursive: true });
    const r = await runCli(['predict', source.path!, '--inputs', empty, '--out', path.join(dir, 'x')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/sample\.npy/);
  });
});
