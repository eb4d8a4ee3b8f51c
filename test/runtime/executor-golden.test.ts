// Every compressed package of fixtures/coremltools-golden (all constexpr forms: iOS16/iOS18
// palettization, per-grouped-channel and vector LUTs, per-channel scales, quantization, pruning and
// joint chains) loads into the executor and predicts outputs of the declared shapes. The compressed
// weights are decoded by kernels::decompress_op, so this also checks the hand-off of every dtype.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModelSync } from '../../src/model.js';
import { createExecutor, type TensorInput } from '../../src/runtime/executor.js';
import { randoms } from './mil-builder.js';

const root = path.resolve(__dirname, '../../../shared/fixtures/coremltools-golden');
const packages = existsSync(root) ? readdirSync(root).filter((d) => d.endsWith('.mlpackage')).sort() : [];

describe.skipIf(packages.length === 0)('coremltools-golden packages run', () => {
  it.each(packages)('%s', async (name) => {
    const exec = createExecutor(loadModelSync(path.join(root, name)));
    const inputs: Record<string, TensorInput> = {};
    for (const input of exec.inputs) {
      const shape = input.shape!.map((d) => (d < 0 ? 1 : d));
      const n = shape.reduce((a, b) => a * b, 1);
      inputs[input.name] = input.dtype === 'int32'
        ? { data: Int32Array.from({ length: n }, (_, i) => (i * 7) % 50), shape }
        : { data: randoms(n, 5), shape };
    }
    const out = await exec.predict(inputs);
    expect(Object.keys(out).sort()).toEqual(exec.outputs.map((o) => o.name).sort());
    for (const o of exec.outputs) {
      const got = out[o.name]!;
      if (o.shape && o.shape.every((d) => d >= 0)) expect(got.shape).toEqual(o.shape);
      expect(Array.from(got.data as Float32Array).every(Number.isFinite)).toBe(true);
    }
  });
});

async function predictFixed(name: string) {
  const exec = createExecutor(loadModelSync(path.join(root, name)));
  const inputs: Record<string, TensorInput> = {};
  for (const input of exec.inputs) {
    const shape = input.shape!;
    const n = shape.reduce((a, b) => a * b, 1);
    inputs[input.name] = input.dtype === 'int32' ? { data: Int32Array.from({ length: n }, (_, i) => (i * 7) % 50), shape } : { data: randoms(n, 9), shape };
  }
  return exec.predict(inputs);
}

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

describe.skipIf(packages.length === 0)('compressed golden models against their sources', () => {
  // The iOS16 and iOS18 encodings of the same compression decode to the same weights.
  const pairs = packages.filter((p) => p.endsWith('_ios16.mlpackage') && packages.includes(p.replace('_ios16', '_ios18')));
  it.each(pairs)('%s and its iOS18 form agree', async (name) => {
    const a = await predictFixed(name), b = await predictFixed(name.replace('_ios16', '_ios18'));
    for (const k of Object.keys(b)) expect(relErr(a[k]!.data, b[k]!.data)).toBeLessThan(1e-6);
  });
  // 8-bit compression stays within a few percent of the uncompressed source; 1-bit does not.
  it.each([
    ['q_int8_linsym_perchannel_ios18.mlpackage', 0.03],
    ['pal_n8_pertensor_ios18.mlpackage', 0.03],
    ['prune_thr001_ios18.mlpackage', 0.05],
  ] as const)('%s is within %d of src_a_ios18', async (name, bound) => {
    const src = await predictFixed('src_a_ios18.mlpackage'), out = await predictFixed(name);
    for (const k of Object.keys(src)) expect(relErr(out[k]!.data, src[k]!.data)).toBeLessThan(bound);
  });
  it('1-bit palettization is far from the source (the comparison can fail)', async () => {
    const src = await predictFixed('src_a_ios18.mlpackage'), out = await predictFixed('pal_n1_pertensor_ios18.mlpackage');
    expect(relErr(out.mm!.data, src.mm!.data)).toBeGreaterThan(0.3);
  });
});
