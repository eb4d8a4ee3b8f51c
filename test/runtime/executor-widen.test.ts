// fp16 weights are widened to fp32 once per executor up to COREML_OPTIMIZE_WIDEN_MB (default 2 GiB)
// and per op beyond it: both paths give the same bits.
import path from 'node:path';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { createExecutor } from '../../src/runtime/executor.js';
import { readNpy } from '../../src/runtime/npy.js';
import { loadModelSync } from '../../src/model.js';

const dir = path.resolve(__dirname, '../../../shared/fixtures/executor-reference/net_mlp_fp16');

describe.skipIf(!existsSync(dir))('fp16 weight widening', () => {
  afterEach(() => {
    delete process.env.COREML_OPTIMIZE_WIDEN_MB;
  });
  it('gives the same outputs widened once (default) and widened per op (budget 0)', async () => {
    const x = readNpy(path.join(dir, 'inputs', 'x.npy'));
    const input = { x: { data: x.data as Float32Array, shape: x.shape } };
    const once = await createExecutor(loadModelSync(path.join(dir, 'model.mlpackage'))).predict(input);
    process.env.COREML_OPTIMIZE_WIDEN_MB = '0';
    const exec = createExecutor(loadModelSync(path.join(dir, 'model.mlpackage')));
    const perOp = await exec.predict(input);
    const again = await exec.predict(input);
    for (const name of Object.keys(once)) {
      expect(Array.from(perOp[name]!.data)).toEqual(Array.from(once[name]!.data));
      expect(Array.from(again[name]!.data)).toEqual(Array.from(once[name]!.data));
    }
  });
});
