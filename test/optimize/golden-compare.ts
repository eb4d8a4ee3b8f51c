/**
 * Compares a model we compressed with a coremltools golden file's sidecar, weight by weight: the
 * op chain that produces each weight, the constexpr inputs (op name, dtype, shape) and the
 * materialized values (sha256 of the float32 little-endian values, or the squared error for
 * k-means, which coremltools computes with scikit-learn and cannot be reproduced bit for bit).
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { expect } from 'vitest';
import { loadModel, type Model } from '../../src/model.js';
import { openProgram } from '../../src/mil/from-model.js';
import { tensorDType, tensorShape } from '../../src/mil/types.js';
import { materializeWeights, type MaterializedWeight } from '../../src/optimize/materialize.js';
import { goldenDir, sse, type GoldenSidecar } from './golden.js';

const sources = new Map<string, Promise<Model>>();
export function goldenSource(file: string): Promise<Model> {
  if (!sources.has(file)) sources.set(file, loadModel(path.join(goldenDir, file)));
  return sources.get(file)!;
}

export function sha256F32(values: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)).digest('hex');
}

export interface ModelShape {
  /** Chain of op types producing each var, earliest first. */
  chains: Map<string, string[]>;
  /** `${op}.${input}` → dtype/shape of inline values. */
  inputs: Map<string, { dtype: string; shape: number[] }>;
  opNames: Set<string>;
}

export function describeModel(model: Model): ModelShape {
  const { program, close } = openProgram(model);
  try {
    const fn = program.main;
    const chains = new Map<string, string[]>();
    const inputs = new Map<string, { dtype: string; shape: number[] }>();
    const opNames = new Set<string>();
    for (const op of fn.walk()) {
      opNames.add(op.name);
      if (op.isConst) {
        chains.set(op.outputs[0]!.name, ['const']);
        continue;
      }
      if (!op.isConstexpr) continue;
      const before = new Set<string>();
      let chain: string[] = [];
      for (const key of op.paramNames) {
        const p = op.param(key)!;
        if (p.kind === 'value') {
          const t = p.value.msg.type;
          inputs.set(`${op.name}.${key}`, { dtype: tensorDType(t) ?? '?', shape: (tensorShape(t) ?? []).map((d) => d ?? -1) });
        } else {
          const prev = chains.get(p.name);
          if (prev && !before.has(p.name)) {
            before.add(p.name);
            if (prev.length > chain.length) chain = prev;
          }
        }
      }
      for (const o of op.outputs) chains.set(o.name, [...chain, op.type]);
    }
    return { chains, inputs, opNames };
  } finally {
    close();
  }
}

export interface CompareOptions {
  /** Values are compared by squared error against the source (<= coremltools' × (1 + tol)) instead of sha256. */
  bySse?: boolean;
}

/** Asserts our compressed model matches the sidecar; returns how many compressed weights were compared. */
export async function expectSameAsGolden(ours: Model, sidecar: GoldenSidecar, options: CompareOptions = {}): Promise<number> {
  const shape = describeModel(ours);
  const mine = await materializeWeights(ours);
  let srcWeights: Map<string, MaterializedWeight> | undefined;
  let compared = 0;
  for (const w of sidecar.weights) {
    const chain = shape.chains.get(w.name);
    expect(chain, `${w.name}: chain`).toEqual(w.chain);
    if (w.chain.length === 1 && w.chain[0] === 'const') continue;
    for (const inp of w.constexpr_inputs ?? []) {
      if (inp.dtype == null) continue; // bound to the previous op of the chain
      expect(shape.inputs.get(`${inp.op}.${inp.input}`), `${inp.op}.${inp.input}`).toEqual({ dtype: inp.dtype, shape: inp.shape });
    }
    const values = mine.get(w.name);
    expect(values, `${w.name} is materialized`).toBeDefined();
    expect(values!.shape).toEqual(w.shape);
    if (options.bySse) {
      srcWeights ??= await materializeWeights(await goldenSource(sidecar.source));
      const reference = srcWeights.get(w.source_weight ?? '')!;
      const ourSse = sse(values!.values, reference.values);
      const theirs = w.sse_vs_source ?? 0;
      expect(ourSse, `${w.name}: ours ${ourSse} vs coremltools ${theirs}`).toBeLessThanOrEqual(theirs * (1 + 2e-2) + 1e-6);
    } else {
      expect(sha256F32(values!.values), `${w.name}: values`).toBe(w.sha256_f32le);
    }
    compared++;
  }
  return compared;
}
