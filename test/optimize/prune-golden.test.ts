/**
 * Pruning matches coremltools 9.0 on every prune_* golden file: the same op per weight (iOS16 packed
 * uint8 mask + shape, iOS18 uint1 mask), the same constexpr input dtypes and shapes, and the same
 * values bit for bit (sha256 of the materialized float32 values). Ties at the percentile are pruned
 * together by both (numpy's `<=` rule), so the sparsity can exceed the target identically.
 */
import { describe, expect, it } from 'vitest';
import { OptimizationConfig } from '../../src/optimize/config.js';
import { pruneWeights } from '../../src/optimize/prune.js';
import { goldenNames, loadSidecar } from './golden.js';
import { expectSameAsGolden, goldenSource } from './golden-compare.js';

const names = goldenNames('prune_');

describe('pruning matches coremltools 9.0', () => {
  it('has the golden files', () => expect(names.length).toBeGreaterThanOrEqual(12));
  for (const name of names) {
    const sidecar = loadSidecar(name);
    if (sidecar.status === 'rejected') {
      it(`${name}: rejected like coremltools`, async () => {
        const config = OptimizationConfig.fromDict(sidecar.steps[0]!.config);
        await expect(pruneWeights(await goldenSource(sidecar.source), config)).rejects.toThrow(sidecar.error_message!);
      });
      continue;
    }
    it(`${name}: same ops, shapes and values`, async () => {
      const config = OptimizationConfig.fromDict(sidecar.steps[0]!.config);
      const ours = await pruneWeights(await goldenSource(sidecar.source), config);
      expect(await expectSameAsGolden(ours, sidecar)).toBeGreaterThan(0);
      const compressed = ours.compression.weights.filter((w) => w.status === 'compressed').length;
      expect(compressed).toBe(sidecar.weights.filter((w) => w.chain[0] !== 'const').length);
    });
  }
});
