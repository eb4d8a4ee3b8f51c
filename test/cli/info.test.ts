import { describe, expect, it, vi } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { main } from '../../src/cli/main.js';
import { FIXTURES, GOLDEN, hasFixtures } from '../mil/helpers.js';
import type { ModelInfoReport } from '../../src/cli/commands/info-report.js';
import { scratchDirs } from '../scratch.js';

async function runInfo(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { out.push(a.join(' ')); });
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { err.push(a.join(' ')); });
  try {
    const code = await main(['node', 'coreml-optimize', 'info', ...args]);
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}
const infoJson = async (p: string) => {
  const r = await runInfo([p, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as ModelInfoReport;
};

describe.skipIf(!hasFixtures)('coreml-optimize info', () => {
  it('golden files: the compression the sidecar records', async () => {
    const cases: [string, (r: ModelInfoReport) => void][] = [
      ['pal_n4_gs16_ios18', r => {
        const fc1 = r.program!.weights.find(w => w.name === 'fc1_weight_to_fp16_palettized')!;
        expect(fc1.compression).toEqual([expect.objectContaining({ kind: 'palettization', nbits: 4, granularity: 'per_grouped_channel', groupSize: 16, clusterDim: 1 })]);
      }],
      ['pal_n4_pcs_pertensor_ios18', r => {
        const fc1 = r.program!.weights.find(w => w.name === 'fc1_weight_to_fp16_palettized_pcs')!;
        expect(fc1.compression.map(c => c.kind)).toEqual(['per_channel_scale', 'palettization']);
        expect(fc1.compression[1]).toMatchObject({ granularity: 'per_tensor', lutCopies: 512 });
      }],
      ['q_uint4_linsym_perchannel_ios18', r => {
        const w = r.program!.weights.find(x => x.name === 'fc1_weight_to_fp16_quantized')!;
        expect(w.compression[0]).toMatchObject({ kind: 'quantization', dtype: 'uint4', granularity: 'per_channel', axis: 0, offset: 'constant', offsetValue: 7, symmetric: true });
      }],
      ['prune_mag50_ios16', r => {
        const w = r.program!.weights.find(x => x.name === 'fc1_weight_to_fp16_sparsified')!;
        expect(w.compression[0]).toMatchObject({ kind: 'sparsity', encoding: 'ios16' });
        const s = w.compression[0] as { sparsity: number; maskPopcount: number; nonzeroCount: number };
        expect(s.maskPopcount).toBe(s.nonzeroCount);
        expect(s.sparsity).toBeGreaterThanOrEqual(0.5);
        expect(s.sparsity).toBeLessThan(0.51);
      }],
    ];
    for (const [name, check] of cases) {
      const r = await infoJson(path.join(GOLDEN, `${name}.mlpackage`));
      const sidecar = JSON.parse(fs.readFileSync(path.join(GOLDEN, `${name}.json`), 'utf8')) as { spec_version: number; opset: string; weights: { name: string; chain: string[] }[]; weight_forms: Record<string, number> };
      expect(r.specificationVersion).toBe(sidecar.spec_version);
      expect(r.program!.functions[0]!.opset).toBe(sidecar.opset);
      expect(r.program!.weightsAvailable).toBe(true);
      expect(r.program!.weights.map(w => [w.name, w.chain.join('+')]).sort()).toEqual(sidecar.weights.map(w => [w.name, w.chain.join('+')]).sort());
      const forms: Record<string, number> = {};
      for (const w of r.program!.weights) forms[w.chain.join('+')] = (forms[w.chain.join('+')] ?? 0) + 1;
      expect(forms).toEqual(sidecar.weight_forms);
      check(r);
    }
  });

  it('spec version, OS table, I/O types and metadata', async () => {
    const r = await infoJson(path.join(GOLDEN, 'src_a_ios18.mlpackage'));
    expect(r.specificationVersion).toBe(9);
    expect(r.coreMLVersion).toBe('8');
    expect(r.minimumDeploymentTarget).toEqual({ iOS: '18', macOS: '15', tvOS: '18', watchOS: '11' });
    expect(r.modelType).toBe('mlProgram');
    expect(r.inputs.map(i => [i.name, i.type])).toEqual([['x', 'MultiArray FLOAT32 [1, 512]'], ['img', 'MultiArray FLOAT32 [1, 32, 16, 16]'], ['ids', 'MultiArray INT32 [1, 8]']]);
    expect(r.metadata.userDefined['com.github.apple.coremltools.version']).toBe('9.0');
    expect(r.program!.functions[0]!.opCount).toBe(64);
    expect(r.program!.totals.blobBytes + 13 * 64 + 64).toBeLessThanOrEqual(1230848);
  });

  it('superpoint: image input and op counts', async () => {
    const r = await infoJson(path.join(FIXTURES, 'superpoint/superpoint.mlpackage'));
    expect(r.inputs[0]!.detail).toMatchObject({ kind: 'image' });
    expect(r.program!.functions[0]!.opCount).toBe(141);
    expect(r.program!.functions[0]!.opCounts['conv']).toBe(12);
    expect(r.program!.totals.blobCount).toBe(24);
  });

  it('program-only package: says the weights are missing, still lists them', async () => {
    const p = path.join(FIXTURES, 'int8-transformer-program-only/ios/CoreMLAudioApp/CoreMLAudioApp/MLModels/Transformer_Encoder_int8.mlpackage');
    const r = await infoJson(p);
    expect(r.specificationVersion).toBe(10);
    expect(r.minimumDeploymentTarget).toMatchObject({ iOS: '26', visionOS: '26' });
    expect(r.program!.weightsAvailable).toBe(false);
    expect(r.notes.join(' ')).toMatch(/weight/);
    expect(r.program!.weights.filter(w => w.chain.includes('constexpr_blockwise_shift_scale')).length).toBe(22);
    const text = await runInfo([p]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/weight file not available/);
    expect(text.stdout).toMatch(/quantize int8/);
  });

  it('NeuralNetwork classifier and pipeline models', async () => {
    const nn = await infoJson(path.join(FIXTURES, 'apple-mnist-classifier/MNISTClassifier.mlmodel'));
    expect(nn.modelType).toBe('neuralNetworkClassifier');
    expect(nn.neuralNetwork!.layerCount).toBe(8);
    expect(nn.neuralNetwork!.layerTypes).toMatchObject({ innerProduct: 2, convolution: expect.any(Number), pooling: expect.any(Number) });
    expect(nn.inputs[0]!.type).toBe('Image GRAYSCALE 28x28');
    expect(nn.metadata.author).toBe('Apple');
    const custom = await infoJson(path.join(FIXTURES, 'neural-mc-neural-net-custom-layer/NeuralMcNeuralNet.mlmodel'));
    expect(custom.neuralNetwork!.layerTypes['custom']).toBe(1);
    const pipe = await infoJson(path.join(FIXTURES, 'createml-image-classifier/ImageClassifier.mlmodel'));
    expect(pipe.modelType).toBe('pipelineClassifier');
    expect(pipe.pipeline!.map(p => p.model.modelType)).toEqual(['visionFeaturePrint', 'glmClassifier']);
    const text = await runInfo([path.join(FIXTURES, 'createml-image-classifier/ImageClassifier.mlmodel')]);
    expect(text.stdout).toMatch(/Pipeline model/);
  });

  it('human output is an aligned table', async () => {
    const r = await runInfo([path.join(GOLDEN, 'joint_prune50_pal4gs16_ios18.mlpackage')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Spec version +9 \(Core ML 8; iOS 18/m);
    const row = r.stdout.split('\n').find(l => l.startsWith('conv1_weight_to_fp16_sparsified '))!;
    expect(row).toMatch(/palettize 4-bit per_grouped_channel axis 0 group_size 16 .* of non-zeros; sparse 50\.0%/);
  });

  it('a missing file is an error naming the file', async () => {
    const r = await runInfo(['/nonexistent/model.mlpackage']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/nonexistent/);
  });
});

describe.skipIf(!hasFixtures)('info on damaged packages', () => {
  const scratch = scratchDirs('cmo-info-');

  it('a truncated weight.bin still gives the program facts, with a note', async () => {
    const dir = scratch();
    const pkg = path.join(dir, 'm.mlpackage');
    fs.cpSync(path.join(GOLDEN, 'prune_mag50_ios18.mlpackage'), pkg, { recursive: true });
    const wb = path.join(pkg, 'Data/com.apple.CoreML/weights/weight.bin');
    fs.truncateSync(wb, 1000);
    const r = await infoJson(pkg);
    expect(r.program!.weights.length).toBe(13);
    expect(r.notes.join(' ')).toMatch(/weight data could not be read .*weight\.bin/);
    const s = r.program!.weights.find(w => w.name === 'fc1_weight_to_fp16_sparsified')!.compression[0] as { maskPopcount?: number; nonzeroCount: number };
    expect(s.maskPopcount).toBeUndefined();
    expect(s.nonzeroCount).toBeGreaterThan(0);
  });
  it('a corrupt program is an error naming the model file', async () => {
    const dir = scratch();
    const pkg = path.join(dir, 'm.mlpackage');
    fs.cpSync(path.join(GOLDEN, 'pal_n4_pertensor_ios16.mlpackage'), pkg, { recursive: true });
    const mf = path.join(pkg, 'Data/com.apple.CoreML/model.mlmodel');
    const b = fs.readFileSync(mf);
    fs.writeFileSync(mf, b.subarray(0, Math.floor(b.length / 2)));
    const r = await runInfo([pkg]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/model\.mlmodel/);
  });
});

describe.skipIf(!hasFixtures)('info --no-weights', () => {
  it('keeps totals, drops the list', async () => {
    const r = await runInfo([path.join(GOLDEN, 'pal_n4_gs16_ios18.mlpackage'), '--json', '--no-weights']);
    const j = JSON.parse(r.stdout) as ModelInfoReport;
    expect(j.program!.weights).toEqual([]);
    expect(j.program!.totals.weights).toBe(13);
    expect(j.program!.totals.compressedWeights).toBe(7);
  });
});
