/** The diffusers reference fixtures of the pipeline tests and how they compare tensors against them. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const REF = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/fixtures/pipeline-reference');

/** max |a − b| / max |b|: the error relative to the tensor's scale (the absolute error where b is all zero). */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return den === 0 ? num : num / den;
}
