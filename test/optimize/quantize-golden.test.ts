/**
 * Linear quantization matches coremltools 9.0 on every q_* golden file: iOS16
 * constexpr_affine_dequantize (non-negative axis, rank-0/1 scale and zero point, int8 zeros for
 * symmetric int8) and iOS18 constexpr_blockwise_shift_scale (scale of the weight's rank, offset only
 * when coremltools writes one), the same constexpr input dtypes and shapes, and the same values bit
 * for bit. Configurations coremltools rejects are rejected with its message.
 */
import { describe, expect, it } from 'vitest';
import { OptimizationConfig } from '../../src/optimize/config.js';
import { linearQuantizeWeights } from '../../src/optimize/quantize.js';
import { goldenNames, loadSidecar } from './golden.js';
import { expectSameAsGolden, goldenSource } from './golden-compare.js';

const names = goldenNames('q_');

describe('linear quantization matches coremltools 9.0', () => {
  it('has the golden files', () => expect(names.length).toBeGreaterThanOrEqual(10));
  for (const name of names) {
    const sidecar = loadSidecar(name);
    if (sidecar.status === 'rejected') {
      it(`${name}: rejected like coremltools (${sidecar.error_type})`, async () => {
        const config = OptimizationConfig.fromDict(sidecar.steps[0]!.config);
        await expect(linearQuantizeWeights(await goldenSource(sidecar.source), config)).rejects.toThrow(sidecar.error_message!);
      });
      continue;
    }
    it(`${name}: same ops, shapes and values`, async () => {
      const config = OptimizationConfig.fromDict(sidecar.steps[0]!.config);
      const ours = await linearQuantizeWeights(await goldenSource(sidecar.source), config);
      expect(await expectSameAsGolden(ours, sidecar)).toBeGreaterThan(0);
      const compressed = ours.compression.weights.filter((w) => w.status === 'compressed');
      expect(compressed.length).toBe(sidecar.weights.filter((w) => w.chain[0] !== 'const').length);
      for (const w of compressed) expect(w.sqnrDb).toBeGreaterThan(5);
    });
  }
});
