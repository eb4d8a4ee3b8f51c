// predict({ profile }) counts calls, FLOPs and bytes per op type; the values are worked out by hand
// from the shapes (a multiply-add = 2 FLOPs), and `formatProfile` prints them as the CLI table.
import { describe, expect, it } from 'vitest';
import { createExecutor, type ExecutorProfile } from '../../src/runtime/executor.js';
import { formatProfile } from '../../src/runtime/profile-table.js';
import { bool, floats, ints, op, program, randoms, str } from './mil-builder.js';

function net() {
  // x [2,3,8,8] -conv 3x3 (4 out, pad same)-> [2,4,8,8] -relu-> -reshape [2,4,64]-> linear(64->16) [2,4,16]
  // -matmul with itself transposed-> [2,4,4]; einsum 'nchw,nwhu->nchu' on two rank-4 inputs.
  const w = floats([4, 3, 3, 3], Array.from(randoms(108, 1)));
  const lw = floats([16, 64], Array.from(randoms(1024, 2)));
  return program(
    [
      { name: 'x', dtype: 'fp32', shape: [2, 3, 8, 8] },
      { name: 'a', dtype: 'fp32', shape: [1, 5, 2, 6] },
      { name: 'b', dtype: 'fp32', shape: [1, 6, 2, 7] },
    ],
    [
      op('conv', 'c', { x: 'x', weight: w, pad_type: str('same') }, [{ name: 'c', dtype: 'fp32', shape: [2, 4, 8, 8] }]),
      op('relu', 'r', { x: 'c' }, [{ name: 'r', dtype: 'fp32', shape: [2, 4, 8, 8] }]),
      op('reshape', 'rs', { x: 'r', shape: ints([2, 4, 64]) }, [{ name: 'rs', dtype: 'fp32', shape: [2, 4, 64] }]),
      op('linear', 'l', { x: 'rs', weight: lw }, [{ name: 'l', dtype: 'fp32', shape: [2, 4, 16] }]),
      op('matmul', 'm', { x: 'l', y: 'l', transpose_y: bool(true) },
        [{ name: 'm', dtype: 'fp32', shape: [2, 4, 4] }]),
      op('einsum', 'e', { values: ['a', 'b'], equation: str('nchw,nwhu->nchu') }, [{ name: 'e', dtype: 'fp32', shape: [1, 5, 2, 7] }]),
    ],
    ['m', 'e'],
  );
}

describe('executor profile', () => {
  it('reports calls, FLOPs and bytes per op type', async () => {
    const exec = createExecutor({ program: net(), modelDir: '.' });
    const inputs = {
      x: { data: randoms(2 * 3 * 64, 3), shape: [2, 3, 8, 8] },
      a: { data: randoms(60, 4), shape: [1, 5, 2, 6] },
      b: { data: randoms(84, 5), shape: [1, 6, 2, 7] },
    };
    let seen: ExecutorProfile | undefined;
    const out = await exec.predict(inputs, { profile: (p) => (seen = p) });
    expect(out.m!.shape).toEqual([2, 4, 4]);
    expect(seen).toBe(exec.lastProfile);
    const byType = Object.fromEntries(seen!.ops.map((r) => [r.type, r]));
    expect(Object.keys(byType).sort()).toEqual(['conv', 'einsum', 'linear', 'matmul', 'relu', 'reshape']);
    for (const r of seen!.ops) {
      expect(r.calls).toBe(1);
      expect(r.ms).toBeGreaterThanOrEqual(0);
    }
    // conv: every output element (2·4·8·8) does C_in·3·3 = 27 multiply-adds.
    expect(byType.conv!.flops).toBe(2 * 2 * 4 * 64 * 27);
    expect(byType.linear!.flops).toBe(2 * (2 * 4 * 16) * 64);
    expect(byType.matmul!.flops).toBe(2 * (2 * 4 * 4) * 16);
    // einsum n c h w u = 1·5·2·6·7 multiply-adds.
    expect(byType.einsum!.flops).toBe(2 * 5 * 2 * 6 * 7);
    expect(byType.relu!.flops).toBe(0);
    // bytes: inputs + outputs, 4 bytes per element (the conv's weight is an fp32 constant).
    expect(byType.relu!.bytes).toBe(2 * 4 * 512);
    // (the pad_type string counts 0 bytes)
    expect(byType.conv!.bytes).toBe(4 * (384 + 108 + 512));
    expect(byType.linear!.bytes).toBe(4 * (512 + 1024 + 128));
    expect(seen!.totalMs).toBeGreaterThan(0);

    const table = formatProfile(seen!).split('\n');
    expect(table[0]).toMatch(/^op type\s+calls\s+ms\s+%\s+GFLOP\/s\s+bytes$/);
    expect(table.at(-1)).toMatch(/^total\s+6\s/);
    expect(table.some((l) => l.startsWith('relu'))).toBe(true);
  });

  it('returns the plain outputs and leaves lastProfile alone without the option', async () => {
    const exec = createExecutor({ program: net(), modelDir: '.' });
    const inputs = {
      x: { data: randoms(384, 3), shape: [2, 3, 8, 8] },
      a: { data: randoms(60, 4), shape: [1, 5, 2, 6] },
      b: { data: randoms(84, 5), shape: [1, 6, 2, 7] },
    };
    const out = await exec.predict(inputs);
    expect(Object.keys(out).sort()).toEqual(['e', 'm']);
    expect(exec.lastProfile).toBeUndefined();
  });
});
