// Known answers and slow TS references for the semantics that are easy to get wrong: conv padding
// modes, gelu modes, einsum equations, layer_norm axes, band_part, reshape zeros, control flow,
// plus load-time and input errors.
import { describe, expect, it } from 'vitest';
import { AbortError, UnsupportedError } from '../../src/errors.js';
import { createExecutor, nativeSupportedOps, SUPPORTED_OPS, type TensorInput } from '../../src/runtime/executor.js';
import type { MilOperation, MilProgram } from '../../src/runtime/executor.js';
import { bool, constOp, f32, floats, i32, ints, op, program, randoms, str, value } from './mil-builder.js';

async function run(prog: MilProgram, inputs: Record<string, TensorInput>) {
  return createExecutor({ program: prog, modelDir: '.' }).predict(inputs);
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, abs = 1e-5, rel = 1e-4) {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    if (!(d <= abs + rel * Math.abs(want[i]!))) throw new Error(`element ${i}: got ${got[i]}, want ${want[i]}`);
  }
}

// ---------- conv ----------

function samePads(type: string, inp: number, keff: number, s: number): [number, number] {
  const out = Math.ceil(inp / s);
  const total = Math.max(0, (out - 1) * s + keff - inp);
  const small = Math.floor(total / 2);
  return type === 'same' ? [small, total - small] : [total - small, small];
}

function conv2dRef(
  x: Float32Array, [N, C, H, W]: number[], w: Float32Array, [O, Cg, KH, KW]: number[],
  s: [number, number], d: [number, number], ph: [number, number], pw: [number, number], groups: number,
) {
  const OH = Math.floor((H + ph[0] + ph[1] - ((KH - 1) * d[0] + 1)) / s[0]) + 1;
  const OW = Math.floor((W + pw[0] + pw[1] - ((KW - 1) * d[1] + 1)) / s[1]) + 1;
  const out = new Float64Array(N * O * OH * OW);
  const og = O / groups;
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++) {
      const g = Math.floor(o / og);
      for (let i = 0; i < OH; i++)
        for (let j = 0; j < OW; j++) {
          let acc = 0;
          for (let c = 0; c < Cg; c++)
            for (let ki = 0; ki < KH; ki++)
              for (let kj = 0; kj < KW; kj++) {
                const yi = i * s[0] - ph[0] + ki * d[0], xj = j * s[1] - pw[0] + kj * d[1];
                if (yi < 0 || yi >= H || xj < 0 || xj >= W) continue;
                acc += x[((n * C + g * Cg + c) * H + yi) * W + xj]! * w[((o * Cg + c) * KH + ki) * KW + kj]!;
              }
          out[((n * O + o) * OH + i) * OW + j] = acc;
        }
    }
  return { out, shape: [N, O, OH, OW] };
}

function convProgram(xs: number[], wshape: number[], w: Float32Array, params: Record<string, unknown>, outShape: number[]) {
  const ops: MilOperation[] = [
    constOp('w', floats(wshape, Array.from(w))),
    op('conv', 'y', {
      x: 'x', weight: 'w',
      strides: ints(params.strides as number[]), dilations: ints(params.dilations as number[]),
      pad_type: str(params.pad_type as string), pad: ints((params.pad as number[]) ?? [0, 0, 0, 0]),
      groups: i32(params.groups as number),
    }, [{ name: 'y', dtype: 'fp32', shape: outShape }]),
  ];
  return program([{ name: 'x', dtype: 'fp32', shape: xs }], ops, ['y']);
}

describe('conv padding modes', () => {
  it('same puts the odd extra pad after, same_lower before (hand-worked 4x4, 2x2 ones kernel)', async () => {
    const x = Float32Array.from({ length: 16 }, (_, i) => i + 1);
    const w = new Float32Array(4).fill(1);
    const p = { strides: [1, 1], dilations: [1, 1], groups: 1 };
    const same = await run(convProgram([1, 1, 4, 4], [1, 1, 2, 2], w, { ...p, pad_type: 'same' }, [1, 1, 4, 4]), { x: { data: x, shape: [1, 1, 4, 4] } });
    const lower = await run(convProgram([1, 1, 4, 4], [1, 1, 2, 2], w, { ...p, pad_type: 'same_lower' }, [1, 1, 4, 4]), { x: { data: x, shape: [1, 1, 4, 4] } });
    // same: window at (0,0) covers x[0..1][0..1] = 1+2+5+6; bottom-right covers only x[3][3] = 16.
    expect(same.y!.data[0]).toBe(14);
    expect(same.y!.data[15]).toBe(16);
    // same_lower: window at (0,0) covers only x[0][0]; bottom-right covers x[2..3][2..3] = 11+12+15+16.
    expect(lower.y!.data[0]).toBe(1);
    expect(lower.y!.data[15]).toBe(54);
  });

  const configs = [
    { name: 'valid, stride 2, dilation 2', pad_type: 'valid', strides: [2, 1], dilations: [2, 2], groups: 1, k: [3, 3] },
    { name: 'custom asymmetric pad, groups 2', pad_type: 'custom', pad: [2, 0, 1, 3], strides: [1, 2], dilations: [1, 1], groups: 2, k: [3, 2] },
    { name: 'same, even kernel, stride 2', pad_type: 'same', strides: [2, 2], dilations: [1, 1], groups: 1, k: [4, 2] },
    { name: 'same_lower, dilation 2, depthwise', pad_type: 'same_lower', strides: [1, 1], dilations: [2, 2], groups: 4, k: [2, 3] },
  ];
  for (const cfg of configs) {
    it(`matches a direct convolution: ${cfg.name}`, async () => {
      const [N, C, H, W] = [2, 4, 9, 8];
      const O = cfg.groups === 4 ? 8 : 6;
      const wshape = [O, C / cfg.groups, cfg.k[0]!, cfg.k[1]!];
      const x = randoms(N * C * H * W, 7), w = randoms(wshape.reduce((a, b) => a * b), 11);
      const keff = [(cfg.k[0]! - 1) * cfg.dilations[0]! + 1, (cfg.k[1]! - 1) * cfg.dilations[1]! + 1];
      let ph: [number, number] = [0, 0], pw: [number, number] = [0, 0];
      if (cfg.pad_type === 'custom') { ph = [cfg.pad![0]!, cfg.pad![1]!]; pw = [cfg.pad![2]!, cfg.pad![3]!]; }
      if (cfg.pad_type.startsWith('same')) {
        ph = samePads(cfg.pad_type, H, keff[0]!, cfg.strides[0]!);
        pw = samePads(cfg.pad_type, W, keff[1]!, cfg.strides[1]!);
      }
      const ref = conv2dRef(x, [N, C, H, W], w, wshape, cfg.strides as [number, number], cfg.dilations as [number, number], ph, pw, cfg.groups);
      const out = await run(convProgram([N, C, H, W], wshape, w, cfg, ref.shape), { x: { data: x, shape: [N, C, H, W] } });
      expect(out.y!.shape).toEqual(ref.shape);
      expectClose(out.y!.data, ref.out);
    });
  }
});

// ---------- gelu ----------

describe('gelu modes', () => {
  it('EXACT, TANH_APPROXIMATION and SIGMOID_APPROXIMATION follow their formulas', async () => {
    const xs = [-3, -1, -0.5, 0, 0.25, 1, 2.5];
    const erf = (z: number) => {
      // Abramowitz-Stegun 7.1.26 is too coarse; integrate with Simpson instead (slow but exact enough).
      const n = 2000, h = z / n;
      let s = 0;
      for (let i = 0; i <= n; i++) s += (i === 0 || i === n ? 1 : i % 2 ? 4 : 2) * Math.exp(-((i * h) ** 2));
      return (2 / Math.sqrt(Math.PI)) * (h / 3) * s;
    };
    const refs: Record<string, (x: number) => number> = {
      EXACT: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
      TANH_APPROXIMATION: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
      SIGMOID_APPROXIMATION: (x) => x / (1 + Math.exp(-1.702 * x)),
    };
    expect(refs.EXACT!(1)).toBeCloseTo(0.8413447460685429, 9);
    const ops = Object.keys(refs).map((mode) => op('gelu', mode, { x: 'x', mode: str(mode) }, [{ name: mode, dtype: 'fp32', shape: [xs.length] }]));
    const out = await run(program([{ name: 'x', dtype: 'fp32', shape: [xs.length] }], ops, Object.keys(refs)), {
      x: { data: Float32Array.from(xs), shape: [xs.length] },
    });
    for (const [mode, f] of Object.entries(refs)) expectClose(out[mode]!.data, xs.map(f), 1e-6, 1e-6);
  });
});

// ---------- einsum ----------

function einsumRef(eq: string, a: Float32Array, as: number[], b: Float32Array, bs: number[]) {
  const [lhs, lo] = eq.split('->') as [string, string];
  const [la, lb] = lhs.split(',') as [string, string];
  const size: Record<string, number> = {};
  [...la].forEach((c, i) => (size[c] = Math.max(size[c] ?? 1, as[i]!)));
  [...lb].forEach((c, i) => (size[c] = Math.max(size[c] ?? 1, bs[i]!)));
  const letters = Object.keys(size);
  const oshape = [...lo].map((c) => size[c]!);
  const out = new Float64Array(oshape.reduce((x, y) => x * y, 1));
  const idx: Record<string, number> = Object.fromEntries(letters.map((c) => [c, 0]));
  const offset = (l: string, shape: number[]) => [...l].reduce((o, c, i) => o * shape[i]! + (shape[i] === 1 ? 0 : idx[c]!), 0);
  for (;;) {
    out[[...lo].reduce((o, c, i) => o * oshape[i]! + idx[c]!, 0)] += a[offset(la, as)]! * b[offset(lb, bs)]!;
    let k = letters.length - 1;
    for (; k >= 0; k--) {
      const c = letters[k]!;
      if (++idx[c]! < size[c]!) break;
      idx[c] = 0;
    }
    if (k < 0) break;
  }
  return { out, oshape };
}

describe('einsum', () => {
  const cases: [string, number[], number[]][] = [
    ['nchw,nwhu->nchu', [2, 3, 4, 5], [2, 5, 4, 6]],
    ['nchw,nwhu->nchu', [1, 3, 4, 5], [2, 5, 1, 6]], // batch and H broadcast
    ['chw,whr->chr', [3, 4, 5], [5, 4, 2]],
    ['bchq,bkhc->bkhq', [1, 8, 2, 7], [1, 5, 2, 8]], // the SD cross-attention form
    ['ij,jk->ki', [3, 4], [4, 5]],
    ['bhqd,bhkd->bhqk', [2, 2, 3, 4], [2, 2, 5, 4]],
  ];
  for (const [eq, as, bs] of cases) {
    it(`${eq} with ${JSON.stringify(as)} × ${JSON.stringify(bs)}`, async () => {
      const a = randoms(as.reduce((x, y) => x * y), 3), b = randoms(bs.reduce((x, y) => x * y), 5);
      const ref = einsumRef(eq, a, as, b, bs);
      const prog = program(
        [{ name: 'a', dtype: 'fp32', shape: as }, { name: 'b', dtype: 'fp32', shape: bs }],
        [op('einsum', 'y', { values: ['a', 'b'], equation: str(eq) }, [{ name: 'y', dtype: 'fp32', shape: ref.oshape }])],
        ['y'],
      );
      const out = await run(prog, { a: { data: a, shape: as }, b: { data: b, shape: bs } });
      expect(out.y!.shape).toEqual(ref.oshape);
      expectClose(out.y!.data, ref.out);
    });
  }
});

// ---------- layer_norm ----------

function layerNormRef(x: Float32Array, shape: number[], axes: number[], gamma?: Float32Array, beta?: Float32Array, eps = 1e-5) {
  const r = shape.length;
  const ax = axes.map((a) => (a < 0 ? a + r : a));
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((p, q) => p * q, 1));
  const out = new Float64Array(x.length);
  const groups = new Map<string, number[]>();
  for (let k = 0; k < x.length; k++) {
    const idx = shape.map((s, i) => Math.floor(k / strides[i]!) % s);
    const key = idx.filter((_, i) => !ax.includes(i)).join(',');
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(k);
  }
  for (const members of groups.values()) {
    const mean = members.reduce((s, k) => s + x[k]!, 0) / members.length;
    const v = members.reduce((s, k) => s + (x[k]! - mean) ** 2, 0) / members.length;
    members.forEach((k, j) => (out[k] = ((x[k]! - mean) / Math.sqrt(v + eps)) * (gamma ? gamma[j]! : 1) + (beta ? beta[j]! : 0)));
  }
  return out;
}

describe('layer_norm axes', () => {
  const cases: [number[], number[], boolean][] = [
    [[2, 3, 8], [-1], true],
    [[1, 6, 1, 5], [1], true], // channels-first (ANE) layer norm
    [[2, 3, 4, 5], [2, 3], true],
    [[3, 4, 5], [0, 2], true], // non-contiguous axes
    [[2, 7], [1], false],
  ];
  for (const [shape, axes, affine] of cases) {
    it(`shape ${JSON.stringify(shape)} axes ${JSON.stringify(axes)}${affine ? ' with gamma/beta' : ''}`, async () => {
      const n = shape.reduce((a, b) => a * b);
      const x = randoms(n, 17).map((v) => v * 3 + 1);
      const normN = axes.map((a) => shape[a < 0 ? a + shape.length : a]!).reduce((a, b) => a * b);
      const normShape = axes.map((a) => shape[a < 0 ? a + shape.length : a]!);
      const gamma = randoms(normN, 19), beta = randoms(normN, 23);
      const ops: MilOperation[] = [];
      const inputs: Record<string, string | ReturnType<typeof ints>> = { x: 'x', axes: ints(axes), epsilon: f32(1e-5) };
      if (affine) {
        ops.push(constOp('g', floats(normShape, Array.from(gamma))), constOp('b', floats(normShape, Array.from(beta))));
        inputs.gamma = 'g';
        inputs.beta = 'b';
      }
      ops.push(op('layer_norm', 'y', inputs, [{ name: 'y', dtype: 'fp32', shape }]));
      const out = await run(program([{ name: 'x', dtype: 'fp32', shape }], ops, ['y']), { x: { data: x, shape } });
      expectClose(out.y!.data, layerNormRef(x, shape, axes, affine ? gamma : undefined, affine ? beta : undefined));
    });
  }
});

// ---------- band_part ----------

describe('band_part', () => {
  for (const [lower, upper] of [[-1, 0], [0, -1], [1, 2], [0, 0], [-1, -1], [2, 0]] as const) {
    it(`lower ${lower}, upper ${upper}`, async () => {
      const shape = [2, 5, 6];
      const x = randoms(60, 29);
      const ref = Array.from(x, (v, k) => {
        const i = Math.floor(k / 6) % 5, j = k % 6;
        return (lower < 0 || i - j <= lower) && (upper < 0 || j - i <= upper) ? v : 0;
      });
      const prog = program([{ name: 'x', dtype: 'fp32', shape }], [op('band_part', 'y', { x: 'x', lower: i32(lower), upper: i32(upper) }, [{ name: 'y', dtype: 'fp32', shape }])], ['y']);
      const out = await run(prog, { x: { data: x, shape } });
      expect(Array.from(out.y!.data)).toEqual(ref);
    });
  }
});

// ---------- reshape zeros ----------

describe('reshape zero semantics depend on the opset', () => {
  const reshape = (opset: string, shape: number[], outShape: number[]) =>
    program([{ name: 'x', dtype: 'fp32', shape: [2, 3, 4] }], [op('reshape', 'y', { x: 'x', shape: ints(shape) }, [{ name: 'y', dtype: 'fp32', shape: outShape }])], ['y'], opset);
  const x = { x: { data: randoms(24, 1), shape: [2, 3, 4] } };
  it('iOS16: 0 copies the dimension at the same index', async () => {
    expect((await run(reshape('CoreML6', [0, -1, 2], [2, 6, 2]), x)).y!.shape).toEqual([2, 6, 2]);
  });
  it('iOS17+: zeros match x.shape from the right, unmatched zeros become 1', async () => {
    expect((await run(reshape('CoreML7', [0, 0, -1, 0], [1, 2, 3, 4]), x)).y!.shape).toEqual([1, 2, 3, 4]);
    await expect(run(reshape('CoreML6', [0, 0, -1, 0], [1, 2, 3, 4]), x)).rejects.toThrow(/a 0 in shape needs len\(shape\) == rank\(x\)/);
  });
});

// ---------- control flow ----------

describe('control flow', () => {
  it('while_loop runs its body until the condition block is false', async () => {
    // i = 0, acc = x; while i < 5: i += 1, acc *= 2
    const cond = {
      inputs: [{ name: 'ci', type: { tensorType: { dataType: 23, rank: 0, dimensions: [] } } }, { name: 'ca', type: { tensorType: { dataType: 11, rank: 1, dimensions: [{ constant: { size: 3 } }] } } }],
      outputs: ['c'],
      operations: [op('less', 'c', { x: 'ci', y: i32(5) }, [{ name: 'c', dtype: 'bool', shape: [] }])],
    };
    const body = {
      inputs: [{ name: 'bi', type: { tensorType: { dataType: 23, rank: 0, dimensions: [] } } }, { name: 'ba', type: { tensorType: { dataType: 11, rank: 1, dimensions: [{ constant: { size: 3 } }] } } }],
      outputs: ['bi2', 'ba2'],
      operations: [
        op('add', 'bi2', { x: 'bi', y: i32(1) }, [{ name: 'bi2', dtype: 'int32', shape: [] }]),
        op('mul', 'ba2', { x: 'ba', y: f32(2) }, [{ name: 'ba2', dtype: 'fp32', shape: [3] }]),
      ],
    };
    const prog = program(
      [{ name: 'x', dtype: 'fp32', shape: [3] }],
      [
        constOp('i0', i32(0)),
        op('while_loop', 'loop', { loop_vars: ['i0', 'x'] }, [{ name: 'iters', dtype: 'int32', shape: [] }, { name: 'y', dtype: 'fp32', shape: [3] }], [cond, body]),
      ],
      ['iters', 'y'],
    );
    const out = await run(prog, { x: { data: Float32Array.from([1, -2, 0.5]), shape: [3] } });
    expect(Array.from(out.iters!.data)).toEqual([5]);
    expect(Array.from(out.y!.data)).toEqual([32, -64, 16]);
  });

  it('cond picks the block named by pred', async () => {
    const branch = (name: string, factor: number) => ({
      inputs: [], outputs: [name],
      operations: [op('mul', name, { x: 'x', y: f32(factor) }, [{ name, dtype: 'fp32', shape: [2] }])],
    });
    const prog = program(
      [{ name: 'x', dtype: 'fp32', shape: [2] }, { name: 'p', dtype: 'bool', shape: [] }],
      [op('cond', 'c', { pred: 'p' }, [{ name: 'y', dtype: 'fp32', shape: [2] }], [branch('t', 10), branch('f', -1)])],
      ['y'],
    );
    const x = { data: Float32Array.from([1, 2]), shape: [2] };
    expect(Array.from((await run(prog, { x, p: { data: Uint8Array.from([1]), shape: [], dtype: 'bool' } })).y!.data)).toEqual([10, 20]);
    expect(Array.from((await run(prog, { x, p: { data: Uint8Array.from([0]), shape: [], dtype: 'bool' } })).y!.data)).toEqual([-1, -2]);
  });
});

// ---------- errors and API ----------

describe('load-time and input errors', () => {
  const identity = program([{ name: 'x', dtype: 'fp32', shape: [2, 3] }], [op('relu', 'y', { x: 'x' }, [{ name: 'y', dtype: 'fp32', shape: [2, 3] }])], ['y']);

  it('an unsupported op fails at load naming the op type, op name and function', () => {
    const prog = program([{ name: 'x', dtype: 'fp32', shape: [4] }], [op('frobnicate', 'my_op', { x: 'x' }, [{ name: 'y', dtype: 'fp32', shape: [4] }])], ['y']);
    let err: unknown;
    try {
      createExecutor({ program: prog, modelDir: '.', path: 'model.mlmodel' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnsupportedError);
    expect((err as Error).message).toMatch(/frobnicate/);
    expect((err as Error).message).toMatch(/my_op/);
    expect((err as Error).message).toMatch(/function 'main'/);
    expect((err as Error).message).toMatch(/^model\.mlmodel: /);
  });

  it('rejects a missing, unknown, mistyped or misshapen input', async () => {
    const exec = createExecutor({ program: identity, modelDir: '.' });
    const good = { data: new Float32Array(6), shape: [2, 3] };
    await expect(exec.predict({})).rejects.toThrow(/missing input 'x'/);
    await expect(exec.predict({ x: good, z: good })).rejects.toThrow(/unknown input 'z'/);
    // Integers are widened for a float input (np.save writes int64 for integer arrays); a string dtype is refused.
    expect(Array.from((await exec.predict({ x: { data: Int32Array.from([1, -2, 3, 4, 5, 6]), shape: [2, 3] } })).y!.data)).toEqual([1, 0, 3, 4, 5, 6]);
    await expect(exec.predict({ x: { data: new Float32Array(6), shape: [2, 3], dtype: 'complex64' as 'fp32' } })).rejects.toThrow(/unknown dtype 'complex64'/);
    await expect(exec.predict({ x: { data: new Float32Array(6), shape: [3, 2] } })).rejects.toThrow(/differs from the model's \[2, 3\]/);
    await expect(exec.predict({ x: { data: new Float32Array(5), shape: [2, 3] } })).rejects.toThrow(/needs 6/);
  });

  it('checks enumerated and ranged shapes from the model description', async () => {
    const flex = program([{ name: 'x', dtype: 'fp32', shape: [null, 3] }], [op('relu', 'y', { x: 'x' }, [{ name: 'y', dtype: 'fp32', shape: [null, 3] }])], ['y']);
    const ranged = createExecutor({
      program: flex, modelDir: '.',
      description: { input: [{ name: 'x', type: { multiArrayType: { dataType: 65568, shapeRange: { sizeRanges: [{ lowerBound: 1, upperBound: 4 }, { lowerBound: 3, upperBound: 3 }] } } } }] },
    });
    expect((await ranged.predict({ x: { data: new Float32Array(12), shape: [4, 3] } })).y!.shape).toEqual([4, 3]);
    await expect(ranged.predict({ x: { data: new Float32Array(15), shape: [5, 3] } })).rejects.toThrow(/outside the range \[1, 4\]/);
    const enumerated = createExecutor({
      program: flex, modelDir: '.',
      description: { input: [{ name: 'x', type: { multiArrayType: { dataType: 65568, enumeratedShapes: { shapes: [{ shape: [1, 3] }, { shape: [3, 3] }] } } } }] },
    });
    expect((await enumerated.predict({ x: { data: new Float32Array(9), shape: [3, 3] } })).y!.shape).toEqual([3, 3]);
    await expect(enumerated.predict({ x: { data: new Float32Array(6), shape: [2, 3] } })).rejects.toThrow(/not one of the enumerated shapes/);
  });

  it('rejects a description whose features do not match the program', () => {
    const feature = (name: string) => ({ name, type: { multiArrayType: { dataType: 65568, shape: [2, 3] } } });
    expect(() => createExecutor({ program: identity, modelDir: '.', path: 'm.mlmodel', description: { input: [feature('x')], output: [feature('z')] } }))
      .toThrow(/m\.mlmodel: the model description's outputs \(z\) differ from function 'main' outputs \(y\)/);
    expect(() => createExecutor({ program: identity, modelDir: '.', description: { input: [feature('q')], output: [feature('y')] } }))
      .toThrow(/input 'q' is not an input of function 'main'/);
  });

  it('an aborted signal rejects with AbortError', async () => {
    const exec = createExecutor({ program: identity, modelDir: '.' });
    const ac = new AbortController();
    ac.abort();
    await expect(exec.predict({ x: { data: new Float32Array(6), shape: [2, 3] } }, { signal: ac.signal })).rejects.toBeInstanceOf(AbortError);
  });

  it('an abort during a long while_loop stops the native run with AbortError', async () => {
    const intType = { tensorType: { dataType: 23, rank: 0, dimensions: [] } };
    const cond = { inputs: [{ name: 'ci', type: intType }], outputs: ['c'], operations: [op('less', 'c', { x: 'ci', y: i32(2_000_000_000) }, [{ name: 'c', dtype: 'bool', shape: [] }])] };
    const body = { inputs: [{ name: 'bi', type: intType }], outputs: ['bi2'], operations: [op('add', 'bi2', { x: 'bi', y: i32(1) }, [{ name: 'bi2', dtype: 'int32', shape: [] }])] };
    const prog = program(
      [{ name: 'x', dtype: 'int32', shape: [] }],
      [op('while_loop', 'loop', { loop_vars: ['x'] }, [{ name: 'y', dtype: 'int32', shape: [] }], [cond, body])],
      ['y'],
    );
    const ac = new AbortController();
    // The loop never ends on its own: the rejection is the proof that the abort was observed.
    const run = createExecutor({ program: prog, modelDir: '.' }).predict({ x: { data: Int32Array.from([0]), shape: [] } }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expect(run).rejects.toBeInstanceOf(AbortError);
  });

  it('reports progress per op and honours the threads option', async () => {
    const exec = createExecutor({ program: identity, modelDir: '.' });
    const seen: [number, number][] = [];
    const out = await exec.predict({ x: { data: Float32Array.from([-1, 2, -3, 4, -5, 6]), shape: [2, 3] } }, { threads: 1, onProgress: (d, t) => seen.push([d, t]) });
    expect(Array.from(out.y!.data)).toEqual([0, 2, 0, 4, 0, 6]);
    expect(seen.at(-1)).toEqual([1, 1]);
  });

  it('rounds fp16 outputs to nearest even and accepts fp16 inputs', async () => {
    const prog = program([{ name: 'x', dtype: 'fp16', shape: [3] }], [op('mul', 'y', { x: 'x', y: f32(1 / 3) }, [{ name: 'y', dtype: 'fp16', shape: [3] }])], ['y']);
    // 1.0, 2.0, -4.0 in fp16; 1/3 -> 0x3555, 2/3 -> 0x3955, -4/3 -> 0xBD55
    const out = await run(prog, { x: { data: Uint16Array.from([0x3c00, 0x4000, 0xc400]), shape: [3] } });
    expect(out.y!.dtype).toBe('fp16');
    expect(Array.from(out.y!.data)).toEqual([0x3555, 0x3955, 0xbd55]);
  });

  it('SUPPORTED_OPS lists exactly what the native build runs', () => {
    expect([...SUPPORTED_OPS].sort()).toEqual(nativeSupportedOps());
  });

  it('bool-producing comparisons feed select', async () => {
    const prog = program(
      [{ name: 'x', dtype: 'fp32', shape: [4] }],
      [
        op('greater', 'm', { x: 'x', y: f32(0) }, [{ name: 'm', dtype: 'bool', shape: [4] }]),
        op('logical_and', 'm2', { x: 'm', y: bool(true) }, [{ name: 'm2', dtype: 'bool', shape: [4] }]),
        op('select', 'y', { cond: 'm2', a: 'x', b: value('fp32', [1], [-9]) }, [{ name: 'y', dtype: 'fp32', shape: [4] }]),
      ],
      ['y', 'm'],
    );
    const out = await run(prog, { x: { data: Float32Array.from([1, -1, 0, 3]), shape: [4] } });
    expect(Array.from(out.y!.data)).toEqual([1, -9, -9, 3]);
    expect(out.m!.dtype).toBe('bool');
    expect(Array.from(out.m!.data)).toEqual([1, 0, 0, 1]);
  });
});
