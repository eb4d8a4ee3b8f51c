// Every case of fixtures/executor-reference must match its expected outputs within the case's own
// tolerances (|actual - expected| <= abs + rel·|expected|, "exact" = bit-exact).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createExecutor, type TensorInput, type TensorOutput } from '../../src/runtime/executor.js';
import { readNpy, type NpyArray } from '../../src/runtime/npy.js';
import { loadModelSync } from '../../src/model.js';

const root = path.resolve(__dirname, '../../../shared/fixtures/executor-reference');
const cases = existsSync(root)
  ? readdirSync(root).filter((d) => existsSync(path.join(root, d, 'case.json'))).sort()
  : [];

interface CaseJson {
  inputs: Record<string, { shape: number[]; dtype: string }>;
  outputs: Record<string, { shape: number[]; dtype: string; tolerance: { abs: number; rel: number } | 'exact' }>;
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function toInput(a: NpyArray): TensorInput {
  return { data: a.data, shape: a.shape, dtype: a.dtype };
}

function values(data: ArrayLike<number>, fp16: boolean): number[] {
  return Array.from(data, (v) => (fp16 ? halfToFloat(v) : v));
}

export function compareOutput(name: string, got: TensorOutput, want: NpyArray, tol: { abs: number; rel: number } | 'exact'): string[] {
  const problems: string[] = [];
  if (got.shape.join(',') !== want.shape.join(',')) return [`${name}: shape [${got.shape}] != expected [${want.shape}]`];
  const wantFp16 = want.dtype === 'fp16';
  if (wantFp16 !== (got.dtype === 'fp16')) problems.push(`${name}: dtype ${got.dtype} vs expected ${want.dtype}`);
  const g = values(got.data, got.dtype === 'fp16');
  const w = values(want.data as ArrayLike<number>, wantFp16);
  let bad = 0, worst = 0, worstAt = -1;
  for (let i = 0; i < w.length; i++) {
    const diff = Math.abs(g[i]! - w[i]!);
    const limit = tol === 'exact' ? 0 : tol.abs + tol.rel * Math.abs(w[i]!);
    const ok = tol === 'exact' ? Object.is(g[i], w[i]) || g[i] === w[i] : diff <= limit;
    if (!ok) {
      bad++;
      if (!(diff <= worst)) { worst = diff; worstAt = i; }
    }
  }
  if (bad) problems.push(`${name}: ${bad}/${w.length} elements out of tolerance; worst at ${worstAt}: got ${g[worstAt]} want ${w[worstAt]}`);
  return problems;
}

describe.skipIf(cases.length === 0)('executor reference cases', () => {
  for (const name of cases) {
    it(name, async () => {
      const dir = path.join(root, name);
      const spec = JSON.parse(readFileSync(path.join(dir, 'case.json'), 'utf8')) as CaseJson;
      const model = loadModelSync(path.join(dir, 'model.mlpackage'));
      const exec = createExecutor(model);
      const inputs: Record<string, TensorInput> = {};
      for (const input of Object.keys(spec.inputs)) inputs[input] = toInput(readNpy(path.join(dir, 'inputs', `${input}.npy`), { convertFortranOrder: true }));
      const out = await exec.predict(inputs);
      const problems: string[] = [];
      for (const [oname, o] of Object.entries(spec.outputs)) {
        const got = out[oname];
        if (!got) { problems.push(`${oname}: missing`); continue; }
        problems.push(...compareOutput(oname, got, readNpy(path.join(dir, 'expected', `${oname}.npy`), { convertFortranOrder: true }), o.tolerance));
      }
      expect(problems).toEqual([]);
    });
  }
});
