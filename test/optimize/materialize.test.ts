import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../src/model.js';
import { materializeWeights } from '../../src/optimize/materialize.js';

const golden = path.resolve(__dirname, '../../../shared/fixtures/coremltools-golden');

function sha256F32(v: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)).digest('hex');
}

// The library path (Program + native decoders) must give the sidecar's materialized weights too.
describe('materializeWeights', () => {
  for (const name of ['pal_n4_gs16_ios18', 'pal_n4_pertensor_ios16', 'pal_n4_pcs_pertensor_ios18', 'joint_prune50_pal4gs16_ios18', 'q_int8_linsym_perchannel_ios16', 'src_a_ios18']) {
    it(name, async () => {
      const sidecar = JSON.parse(readFileSync(path.join(golden, `${name}.json`), 'utf8')) as { weights: { name: string; sha256_f32le: string; n_elements: number }[] };
      const model = await loadModel(path.join(golden, `${name}.mlpackage`));
      const weights = await materializeWeights(model);
      let checked = 0;
      for (const w of sidecar.weights) {
        if (w.n_elements < 10) continue;
        const m = weights.get(w.name);
        expect(m, w.name).toBeDefined();
        expect(sha256F32(m!.values), w.name).toBe(w.sha256_f32le);
        checked++;
      }
      expect(checked).toBeGreaterThanOrEqual(10);
    });
  }
});
