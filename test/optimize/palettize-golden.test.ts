/**
 * Same as coremltools, for every palettization golden file: the same op chain per weight, the same
 * constexpr input dtypes and shapes, and a squared error per weight no larger than coremltools'
 * (ours is the exact optimum; coremltools' is exact only for large fp16 groups). Configurations
 * coremltools rejected are rejected here with its message.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../../src/model.js';
import { OptimizationConfig } from '../../src/optimize/config.js';
import { palettizeWeights } from '../../src/optimize/palettize.js';
import { materializeWeights } from '../../src/optimize/materialize.js';
import { openProgram } from '../../src/mil/from-model.js';
import { tensorDType, tensorShape } from '../../src/mil/types.js';
import { goldenDir, goldenNames, loadSidecar, sse } from './golden.js';

const names = goldenNames('pal_');
const sources = new Map<string, Promise<Model>>();
function source(file: string): Promise<Model> {
  if (!sources.has(file)) sources.set(file, loadModel(path.join(goldenDir, file)));
  return sources.get(file)!;
}

/** constexpr inputs of our model by weight: [op type, input] → {dtype, shape}. */
function ourInputs(model: Model): Map<string, { dtype: string; shape: number[] }> {
  const { program, close } = openProgram(model);
  const out = new Map<string, { dtype: string; shape: number[] }>();
  for (const op of program.main.walk()) {
    if (!op.isConstexpr) continue;
    for (const key of op.paramNames) {
      const p = op.param(key)!;
      const t = p.kind === 'value' ? p.value.type : op.block.lookupVar(p.name)?.type;
      out.set(`${op.name}.${key}`, { dtype: tensorDType(t) ?? '?', shape: (tensorShape(t) ?? []).map((d) => d ?? -1) });
    }
  }
  close();
  return out;
}

describe('palettization matches coremltools 9.0', () => {
  it('has the golden files', () => expect(names.length).toBeGreaterThanOrEqual(40));
  afterAll(() => sources.clear());

  for (const name of names) {
    const sidecar = loadSidecar(name);
    if (sidecar.steps.length !== 1) continue;
    if (sidecar.status === 'rejected') {
      if (sidecar.error_type === 'TypeError') continue; // lut_dtype: coremltools 9.0 lacks the field, we support it
      it(`${name}: rejected like coremltools (${sidecar.error_type})`, async () => {
        const config = OptimizationConfig.fromDict(sidecar.steps[0]!.config);
        await expect(palettizeWeights(await source(sidecar.source), config)).rejects.toThrow(sidecar.error_message!);
      });
      continue;
    }
    const config = OptimizationConfig.fromDict(sidecar.steps[0]!.config);
    it(`${name}: same ops and shapes, error <= coremltools`, async () => {
      const src = await source(sidecar.source);
      const ours = await palettizeWeights(src, config);
      const inputs = ourInputs(ours);
      const srcWeights = await materializeWeights(src);
      const ourWeights = await materializeWeights(ours);
      let compared = 0;
      for (const w of sidecar.weights) {
        const mine = ourWeights.get(w.name);
        if (w.chain.length === 1 && w.chain[0] === 'const') {
          if (w.n_elements >= 10) expect(mine?.name, `${w.name} stays a const`).toBe(w.name);
          continue;
        }
        expect(mine, `${w.name} is produced`).toBeDefined();
        for (const inp of w.constexpr_inputs ?? []) {
          if (inp.dtype == null) continue; // bound to the previous op of the chain, not a constant
          const got = inputs.get(`${inp.op}.${inp.input}`);
          expect(got, `${inp.op}.${inp.input}`).toEqual({ dtype: inp.dtype, shape: inp.shape });
        }
        const reference = srcWeights.get(w.source_weight ?? '')!;
        const ourSse = sse(mine!.values, reference.values);
        const theirs = w.sse_vs_source ?? 0;
        // fp16 LUT rounding can cost a hair against an fp16-rounded reference optimum.
        expect(ourSse, `${w.name}: ours ${ourSse} vs coremltools ${theirs}`).toBeLessThanOrEqual(theirs * (1 + 1e-3) + 1e-7);
        compared++;
      }
      expect(compared).toBeGreaterThan(0);
    });
  }
});
