// scaled_dot_product_attention in tiles of 128 query rows: several tiles (L = 150), batch axes that
// broadcast between query / key / value, and a float mask broadcast over the batch, against a float64
// loop.
import { describe, expect, it } from 'vitest';
import { createExecutor } from '../../src/runtime/executor.js';
import { floats, op, program, randoms } from './mil-builder.js';

describe('scaled_dot_product_attention tiles', () => {
  it('matches a float64 reference across tiles, broadcast batches and a broadcast mask', async () => {
    const [L, S, E, EV] = [150, 70, 8, 6];
    const q = randoms(2 * 1 * L * E, 81), k = randoms(1 * 3 * S * E, 82), v = randoms(2 * 3 * S * EV, 83);
    const mask = Array.from(randoms(L * S, 84), (x) => (x > 0.8 ? -1e9 : x));
    const prog = program(
      [
        { name: 'q', dtype: 'fp32', shape: [2, 1, L, E] },
        { name: 'k', dtype: 'fp32', shape: [1, 3, S, E] },
        { name: 'v', dtype: 'fp32', shape: [2, 3, S, EV] },
      ],
      [op('scaled_dot_product_attention', 'y', { query: 'q', key: 'k', value: 'v', attn_mask: floats([L, S], mask) }, [{ name: 'y', dtype: 'fp32', shape: [2, 3, L, EV] }])],
      ['y'],
      'CoreML8',
    );
    const out = await createExecutor({ program: prog, modelDir: '.' }).predict({
      q: { data: q, shape: [2, 1, L, E] },
      k: { data: k, shape: [1, 3, S, E] },
      v: { data: v, shape: [2, 3, S, EV] },
    });
    expect(out.y!.shape).toEqual([2, 3, L, EV]);
    let worst = 0;
    for (let b0 = 0; b0 < 2; b0++)
      for (let b1 = 0; b1 < 3; b1++)
        for (let i = 0; i < L; i++) {
          const s = Array.from({ length: S }, (_, j) => {
            let acc = 0;
            for (let e = 0; e < E; e++) acc += q[(b0 * L + i) * E + e]! * k[(b1 * S + j) * E + e]!;
            return acc / Math.sqrt(E) + mask[i * S + j]!;
          });
          const mx = Math.max(...s), ex = s.map((x) => Math.exp(x - mx)), sum = ex.reduce((a, c) => a + c, 0);
          for (let d = 0; d < EV; d++) {
            const want = ex.reduce((a, w, j) => a + (w / sum) * v[((b0 * 3 + b1) * S + j) * EV + d]!, 0);
            worst = Math.max(worst, Math.abs(out.y!.data[((b0 * 3 + b1) * L + i) * EV + d]! - want));
          }
        }
    expect(worst).toBeLessThan(2e-6);
  });
});
