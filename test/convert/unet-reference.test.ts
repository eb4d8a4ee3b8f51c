// The float64 reference UNet (unet-reference.ts) against diffusers' own outputs on the fixture UNets:
// it is the oracle for the configs the fixtures lack, so it must itself reproduce diffusers.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { WeightStore } from '../../src/convert/safetensors.js';
import { readPythonJsonFile } from '../../src/convert/diffusers-config.js';
import { referenceUnet, storeParams } from './unet-reference.js';
import { FIXTURES, loadUnetCall, relMaxErr } from './unet-fixture-io.js';

describe('float64 reference UNet', () => {
  for (const model of ['tiny-sd15', 'tiny-sdxl'] as const) {
    it(`reproduces diffusers' noise_pred for ${model} and reads every weight`, () => {
      const dir = path.join(FIXTURES, 'models', model, 'unet');
      const cfg = readPythonJsonFile(path.join(dir, 'config.json'));
      const store = WeightStore.openDir(dir);
      try {
        const call = loadUnetCall(model);
        const out = referenceUnet(cfg, storeParams(store), call.reference);
        expect(out.s).toEqual([call.batch, 4, 16, 16]);
        const err = relMaxErr(out.d, call.noisePred);
        // diffusers ran in float32: its own rounding (≈1e-7 per op over ~100 layers) bounds the gap
        expect(err).toBeLessThan(5e-6); // measured 7.4e-7 (sd15), 7.0e-7 (sdxl)
        expect(store.unusedNames()).toEqual([]);
      } finally {
        store.close();
      }
    });
  }
});
