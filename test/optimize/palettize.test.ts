/**
 * palettizeWeights on models made by the builder: every option family, round trips (each weight
 * becomes its LUT value), custom LUT functions, progress, cancellation, and untouched inputs.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProgramBuilder } from '../../src/mil/builder.js';
import { loadModel, type Model } from '../../src/model.js';
import { OpPalettizerConfig, OptimizationConfig } from '../../src/optimize/config.js';
import { palettizeWeights } from '../../src/optimize/palettize.js';
import { materializeWeights } from '../../src/optimize/materialize.js';
import { openProgram } from '../../src/mil/from-model.js';
import { syntheticFp16, syntheticFp32 } from '../../src/util/synthetic.js';
import { AbortError } from '../../src/errors.js';
import { runCli } from '../cli/run-cli.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'cmo-pal-test-'));
let fp16Model: Model;
let fp32Model: Model;

async function build(name: string, dtype: 'fp16' | 'fp32', specVersion: 7 | 9): Promise<Model> {
  const b = new ProgramBuilder({ specVersion, weightsPath: path.join(dir, `${name}.bin`) });
  const data = (count: number, fanIn: number, seed: number) => (dtype === 'fp16' ? syntheticFp16({ count, fanIn, seed }) : syntheticFp32({ count, fanIn, seed }));
  const x = b.input('x', dtype, [1, 64]);
  const h = b.op('linear', { x, weight: b.const('w1', data(128 * 64, 64, 1), [128, 64], dtype), bias: b.const('b1', data(128, 1, 2), [128], dtype) }, { name: 'fc1' });
  const y = b.op('linear', { x: h, weight: b.const('w2', data(96 * 128, 128, 3), [96, 128], dtype) }, { name: 'fc2' });
  const z = b.op('matmul', { x: y, y: b.const('w3', data(96 * 64, 96, 4), [96, 64], dtype), transpose_x: false, transpose_y: false }, { name: 'mm' });
  b.output(z, 'out');
  return b.save(path.join(dir, `${name}.mlpackage`));
}

function config(global: Record<string, unknown>, extra: Record<string, unknown> = {}): OptimizationConfig {
  return OptimizationConfig.fromDict({ config_type: 'OpPalettizerConfig', global_config: { weight_threshold: 1000, ...global }, ...extra });
}

function sha(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

beforeAll(async () => {
  fp16Model = await build('fp16', 'fp16', 9);
  fp32Model = await build('fp32', 'fp32', 9);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The constexpr op that produces `weight`, with its LUT and indices decoded. */
function lutOp(model: Model, opName: string) {
  const { program, close } = openProgram(model);
  const op = [...program.main.walk()].find((o) => o.name === opName)!;
  expect(op, opName).toBeDefined();
  const lut = op.param('lut')!;
  const indices = op.param('indices')!;
  const out = {
    type: op.type,
    lut: lut.kind === 'value' ? lut.value.toFloat32() : undefined,
    lutShape: lut.kind === 'value' ? lut.value.shape : undefined,
    indices: indices.kind === 'value' ? Array.from(indices.value.data() as Uint8Array) : [],
    indicesDtype: indices.kind === 'value' ? indices.value.dtype : undefined,
  };
  close();
  return out;
}

describe('palettizeWeights', () => {
  for (const [label, cfg, lutShape] of [
    ['8-bit per_tensor', { nbits: 8 }, [1, 1, 256, 1]],
    ['3-bit per_tensor', { nbits: 3 }, [1, 1, 8, 1]],
    ['4-bit gs16', { nbits: 4, granularity: 'per_grouped_channel', group_size: 16 }, [8, 1, 16, 1]],
    ['2-bit uniform', { nbits: 2, mode: 'uniform' }, [1, 1, 4, 1]],
  ] as const) {
    it(`${label}: each weight becomes its LUT value (fp16 and fp32)`, async () => {
      for (const model of [fp16Model, fp32Model]) {
        const out = await palettizeWeights(model, config(cfg));
        const saved = await out.save(path.join(dir, `out-${label.replace(/\W+/g, '_')}-${model === fp16Model ? 16 : 32}.mlpackage`));
        const reloaded = await loadModel(saved.path!);
        const op = lutOp(reloaded, 'w1_palettized');
        expect(op.type).toBe('constexpr_lut_to_dense');
        expect(op.lutShape).toEqual(lutShape);
        const dense = (await materializeWeights(reloaded)).get('w1_palettized')!;
        // Row r uses LUT group floor(r / group size); every element equals lut[group][index].
        const entries = lutShape[2];
        const groupRows = 128 / lutShape[0];
        for (let i = 0; i < dense.values.length; i += 97) {
          const g = Math.floor(Math.floor(i / 64) / groupRows);
          expect(dense.values[i]).toBe(op.lut![g * entries + op.indices[i]!]);
        }
        // The bias (rank 1) is never palettized.
        expect((await materializeWeights(reloaded)).get('b1')).toBeDefined();
      }
    });
  }

  it('uses the matmul y output axis (-1) for groups', async () => {
    const out = await palettizeWeights(fp16Model, config({ nbits: 4, granularity: 'per_grouped_channel', group_size: 16 }));
    expect(lutOp(out, 'w3_palettized').lutShape).toEqual([1, 4, 16, 1]);
  });

  it('vector palettization (cluster_dim 2) writes vector_axis and halves the indices', async () => {
    const out = await palettizeWeights(fp16Model, config({ nbits: 4, cluster_dim: 2 }));
    const { program, close } = openProgram(out);
    const op = [...program.main.walk()].find((o) => o.name === 'w1_palettized')!;
    const va = op.param('vector_axis');
    expect(va?.kind === 'value' ? Number(va.value.scalar()) : undefined).toBe(0);
    const idx = op.param('indices')!;
    expect(idx.kind === 'value' ? idx.value.shape : []).toEqual([64, 64]);
    close();
  });

  it('a custom lut_function is applied per group and written like the others', async () => {
    const calls: number[][] = [];
    const cfg = new OptimizationConfig({
      global_config: new OpPalettizerConfig({
        mode: 'custom', granularity: 'per_grouped_channel', group_size: 64, weight_threshold: 1000,
        lut_function: ({ data, shape }) => {
          calls.push([...shape]);
          // sign quantizer: two entries, ±mean |w|
          let m = 0;
          for (const v of data) m += Math.abs(v);
          m /= data.length;
          return { lut: [-m, m], indices: Array.from(data, (v) => (v < 0 ? 0 : 1)) };
        },
      }),
    });
    const out = await palettizeWeights(fp32Model, cfg);
    expect(calls.filter((s) => s[0] === 64 && s[1] === 64).length).toBe(2); // w1: 128 rows in groups of 64
    const op = lutOp(out, 'w1_palettized');
    expect(op.indicesDtype).toBe('uint1');
    expect(op.lutShape).toEqual([2, 1, 2, 1]);
    const dense = (await materializeWeights(out)).get('w1_palettized')!;
    const src = (await materializeWeights(fp32Model)).get('w1')!;
    for (let i = 0; i < src.values.length; i += 31) expect(Math.sign(dense.values[i]!)).toBe(src.values[i]! < 0 ? -1 : 1);
  });

  it('op_name_configs null skips a weight; the report says why others stayed dense', async () => {
    const out = await palettizeWeights(fp16Model, config({ nbits: 4 }, { op_name_configs: { w2: null } }));
    const names = out.compression.weights.filter((w) => w.status === 'compressed').map((w) => w.name).sort();
    expect(names).toEqual(['w1', 'w3']);
    expect(out.compression.weights.find((w) => w.name === 'b1')?.detail).toMatch(/rank 1/);
    expect(out.compression.weightFileBytesAfter).toBeLessThan(out.compression.weightFileBytesBefore);
  });

  it('leaves the input model and its files untouched', async () => {
    const weights = fp16Model.weightFilePath('@model_path/weights/weight.bin');
    const before = sha(weights);
    const specBefore = JSON.stringify(fp16Model.spec);
    await palettizeWeights(fp16Model, config({ nbits: 2 }));
    expect(sha(weights)).toBe(before);
    expect(JSON.stringify(fp16Model.spec)).toBe(specBefore);
  });

  it('reports progress and can be cancelled', async () => {
    const seen: number[] = [];
    await palettizeWeights(fp16Model, config({ nbits: 4 }), { onProgress: (d, t) => seen.push(d / t) });
    expect(seen.at(-1)).toBe(1);
    const controller = new AbortController();
    controller.abort();
    await expect(palettizeWeights(fp16Model, config({ nbits: 4 }), { signal: controller.signal })).rejects.toBeInstanceOf(AbortError);
  });

  it('iOS16 models get the packed uint8 form and reject iOS18-only options with coremltools messages', async () => {
    const ios16 = await build('ios16', 'fp16', 7);
    const out = await palettizeWeights(ios16, config({ nbits: 4 }));
    const { program, close } = openProgram(out);
    const op = [...program.main.walk()].find((o) => o.name === 'w1_palettized')!;
    expect(op.attributes['shape']).toBeDefined();
    const idx = op.param('indices')!;
    expect(idx.kind === 'value' ? [idx.value.dtype, idx.value.shape] : []).toEqual(['uint8', [128 * 64 / 2]]);
    close();
    await expect(palettizeWeights(ios16, config({ nbits: 4, granularity: 'per_grouped_channel', group_size: 16 }))).rejects.toThrow(/per_grouped_channel palettization is supported since iOS18/);
    await expect(palettizeWeights(ios16, config({ nbits: 3 }))).rejects.toThrow(/Parameter lut should be a vector of size/);
  });

  it('info reports what palettization did to a saved model', async () => {
    const out = await palettizeWeights(fp16Model, config({ nbits: 4, granularity: 'per_grouped_channel', group_size: 16 }));
    const saved = await out.save(path.join(dir, 'info-check.mlpackage'));
    const r = await runCli(['info', saved.path!, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { program: { weights: { name: string; compression: { kind: string; nbits?: number; groupSize?: number }[] }[] } };
    const w1 = report.program.weights.find((w) => w.name === 'w1_palettized')!;
    expect(w1.compression).toEqual([expect.objectContaining({ kind: 'palettization', nbits: 4, granularity: 'per_grouped_channel', groupSize: 16 })]);
  });
});
