/**
 * The big one: for EVERY compressed golden package (pal_*, prune_*, q_*, joint_*), decode every
 * constexpr op in program order with decompressOp (chains fed op by op) and check that each weight
 * the sidecar lists hashes to its `sha256_f32le` (float32 little-endian materialization).
 */
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { asKernelTensor, decompressOp, type DecompressedTensor, type KernelTensor } from '../../src/kernels/decompress.js';
import { goldenDir, loadGoldenPackage, loadSidecar } from './golden-package.js';

const packages = readdirSync(goldenDir)
  .filter((f) => f.endsWith('.mlpackage') && !f.startsWith('src_'))
  .map((f) => f.replace(/\.mlpackage$/, ''))
  .sort();

function sha256F32(values: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)).digest('hex');
}

async function materialize(pkgName: string): Promise<Map<string, DecompressedTensor>> {
  const pkg = loadGoldenPackage(pkgName);
  const outputs = new Map<string, DecompressedTensor>();
  for (const op of pkg.ops) {
    const params: Record<string, KernelTensor> = {};
    for (const [k, v] of Object.entries(op.params)) {
      if ('ref' in v) {
        const prev = outputs.get(v.ref) ?? (pkg.consts.has(v.ref) ? undefined : undefined);
        if (prev) params[k] = asKernelTensor(prev);
        else if (pkg.consts.has(v.ref)) params[k] = pkg.consts.get(v.ref)!;
        else throw new Error(`${pkgName} ${op.name}: ${k} refers to unknown ${v.ref}`);
      } else {
        params[k] = v;
      }
    }
    const r = await decompressOp({ type: op.type as never, opset: pkg.opset, params, name: `${pkgName}:${op.name}` });
    op.outputs.forEach((name, i) => outputs.set(name, r.outputs[i]!));
  }
  for (const [name, t] of pkg.consts) {
    if (!outputs.has(name) && (t.dtype === 'fp16' || t.dtype === 'fp32')) {
      outputs.set(name, { dtype: t.dtype, shape: t.shape, values: new Float32Array(0), data: new Float32Array(0) });
    }
  }
  return outputs;
}

describe('decompressOp reproduces every golden weight (sha256 of float32 values)', () => {
  let totalChecked = 0;

  it('finds the golden packages', () => {
    expect(packages.length).toBe(55);
  });

  for (const pkgName of packages) {
    it(pkgName, async () => {
      const sidecar = loadSidecar(pkgName);
      const outputs = await materialize(pkgName);
      let checked = 0;
      for (const w of sidecar.weights) {
        if (w.chain.length === 1 && w.chain[0] === 'const') continue; // stored dense: nothing to decode
        const t = outputs.get(w.name);
        expect(t, `${pkgName}: ${w.name} not produced`).toBeDefined();
        expect(t!.shape).toEqual(w.shape);
        expect(sha256F32(t!.values), `${pkgName}: ${w.name}`).toBe(w.sha256_f32le);
        checked++;
      }
      expect(checked).toBeGreaterThan(0);
      totalChecked += checked;
    });
  }

  it('checked all 342 compressed weights of the 55 packages', () => {
    expect(totalChecked).toBe(342);
  });
});
