import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { ProgramBuilder, tensor, inferOutputs } from '../../src/mil/builder.js';
import { Program } from '../../src/mil/program.js';
import { listWeights } from '../../src/mil/weights.js';
import { floatToHalfBits } from '../../src/mil/values.js';
import { TestBlobReader, TestBlobWriter } from './helpers.js';
import { scratchDirs } from '../scratch.js';

const tmp = scratchDirs('cmo-mil-');
const sink = (p: string) => new TestBlobWriter(p);

describe('ProgramBuilder', () => {
  it('blob rule: 9 elements immediate, 10 elements blob (inclusive boundary)', () => {
    const dir = tmp();
    const b = new ProgramBuilder({ specVersion: 7, weightsPath: path.join(dir, 'weight.bin'), openWeightSink: sink });
    const x = b.input('x', 'fp32', [1, 9]);
    const nine = b.const('nine', new Float32Array(9).fill(0.5), [9]);
    const ten = b.const('ten', new Float32Array(10).fill(0.25), [10]);
    const i10 = b.const('ints10', new Int32Array(10).fill(3), [10]); // int32 is blob-able only from spec 9
    const y = b.op('add', { x, y: nine });
    b.output(y, 'y');
    b.output(ten);
    b.output(i10);
    const { program, weightsFile } = b.buildProgram();
    expect(weightsFile).toBe(path.join(dir, 'weight.bin'));
    const kinds = Object.fromEntries([...program.main.walk()].filter(o => o.isConst).map(o => [o.name, o.constValue().kind]));
    expect(kinds).toEqual({ nine: 'immediate', ten: 'blob', ints10: 'immediate' });
    expect(program.main.producerOf('ten')!.constValue().blob!.offset).toBe(64);
    expect(fs.statSync(weightsFile!).size).toBe(128 + 40);
  });

  it('int32 with ≥ 10 elements goes to the blob file from spec 9', () => {
    const dir = tmp();
    const b = new ProgramBuilder({ specVersion: 9, weightsPath: path.join(dir, 'weight.bin'), openWeightSink: sink });
    b.output(b.const('ints10', new Int32Array(10).fill(3), [10]));
    expect(b.buildProgram().program.main.producerOf('ints10')!.constValue().kind).toBe('blob');
  });

  it('a built model reloads with identical structure and blob values', () => {
    const dir = tmp();
    const wfile = path.join(dir, 'weight.bin');
    const b = new ProgramBuilder({ specVersion: 9, weightsPath: wfile, openWeightSink: sink });
    const img = b.input('img', 'fp32', [1, 3, 16, 16]);
    const wdata = Float32Array.from({ length: 8 * 3 * 3 * 3 }, (_, i) => Math.sin(i) / 4);
    const cw = b.const('conv_w', wdata, [8, 3, 3, 3], 'fp16');
    const cast = b.op('cast', { x: img, dtype: 'fp16' });
    const conv = b.op('conv', { x: cast, weight: cw, strides: [2, 2], pad_type: 'custom', pad: [1, 1, 1, 1], dilations: [1, 1], groups: 1 }, { name: 'conv1' });
    expect(conv.shape).toEqual([1, 8, 8, 8]);
    const r = b.op('relu', { x: conv });
    const flat = b.op('reshape', { x: r, shape: [1, -1] });
    expect(flat.shape).toEqual([1, 512]);
    const idx = tensor('uint4', Array.from({ length: 16 * 512 }, (_, i) => i % 16), [16, 512]);
    const lut = tensor('fp16', Array.from({ length: 16 }, (_, i) => i / 16 - 0.5), [1, 1, 16, 1]);
    const fcw = b.op('constexpr_lut_to_dense', { indices: idx, lut }, { name: 'fc_w_palettized' });
    expect([fcw.dtype, fcw.shape]).toEqual(['fp16', [16, 512]]);
    const fc = b.op('linear', { x: flat, weight: fcw }, { name: 'fc' });
    expect(fc.shape).toEqual([1, 16]);
    const out = b.op('cast', { x: b.op('softmax', { x: fc, axis: -1 }), dtype: 'fp32' });
    b.output(out, 'probs');
    const { spec, program } = b.build();

    expect(spec.specificationVersion).toBe(9);
    expect(spec.description.input).toEqual([{ name: 'img', type: { multiArrayType: { shape: [1, 3, 16, 16], dataType: 65568 } } }]);
    expect(spec.description.output).toEqual([{ name: 'probs', type: { multiArrayType: { shape: [1, 16], dataType: 65568 } } }]);
    expect(spec.description.metadata.userDefined['com.github.apple.coremltools.source']).toBe('coreml-optimize');
    expect(spec.mlProgram.version).toBe(1);
    expect(Object.keys(spec.mlProgram.functions!)).toEqual(['main']);
    expect(spec.mlProgram.functions!['main']!.opset).toBe('CoreML8');

    // reload from bytes
    const reader = new TestBlobReader(wfile);
    const back = Program.decode(program.encode(), { blobs: () => reader });
    expect(back.encode()).toEqual(program.encode());
    const ops = [...back.main.walk()];
    expect(ops.map(o => o.type)).toEqual([
      'const', 'const', 'cast', 'const', 'const', 'const', 'const', 'const', 'conv', 'relu', 'const', 'reshape',
      'constexpr_lut_to_dense', 'linear', 'const', 'softmax', 'const', 'cast', 'identity',
    ]);
    expect(ops.filter(o => o.type === 'const').map(o => o.name)).toContain('conv1_strides_0');
    const convW = back.main.producerOf('conv_w')!.constValue();
    expect(convW.kind).toBe('blob');
    expect(Array.from(convW.data() as Uint16Array)).toEqual(Array.from(wdata, floatToHalfBits));
    const pal = back.main.producerOf('fc_w_palettized')!;
    expect(pal.param('indices')!.kind).toBe('value');
    const idxVal = pal.param('indices')!;
    if (idxVal.kind !== 'value') throw new Error();
    expect(idxVal.value.kind).toBe('blob');
    expect(Array.from(idxVal.value.data() as Uint8Array).slice(0, 20)).toEqual(Array.from({ length: 20 }, (_, i) => i % 16));
    const weights = listWeights(back);
    expect(weights.map(w => [w.name, w.chain.join('+'), w.consumers.join(',')])).toEqual([
      ['conv_w', 'const', 'conv1.weight'],
      ['fc_w_palettized', 'constexpr_lut_to_dense', 'fc.weight'],
    ]);
    expect(weights[1]!.compression[0]).toMatchObject({ nbits: 4, granularity: 'per_tensor', lutDtype: 'fp16' });
    expect(weights[1]!.bytes).toBe(16 * 512 / 2 + 32);
    reader.close();
  });

  it('iOS16 constexpr layout uses attributes', () => {
    const b = new ProgramBuilder({ specVersion: 7 });
    const w = b.op('constexpr_lut_to_dense', {
      indices: tensor('uint8', [0x10, 0x32], [2]), lut: tensor('fp16', [0, 1, 2, 3], [4]), shape: tensor('uint32', [2, 2], [2]),
    }, { name: 'w' });
    expect([w.dtype, w.shape]).toEqual(['fp16', [2, 2]]);
    b.output(w);
    const op = b.buildProgram().program.main.producerOf('w')!;
    expect(Object.keys(op.attributes).sort()).toEqual(['indices', 'lut', 'name', 'shape']);
    expect(op.inputNames).toEqual([]);
  });

  it('infers shapes of common ops', () => {
    const v = (dtype: 'fp32' | 'fp16', shape: (number | null)[]) => ({ name: 'v', type: {}, dtype, shape });
    const lit = (d: number[]) => tensor('int32', d, [d.length]);
    expect(inferOutputs('matmul', { x: v('fp32', [2, 1, 5, 7]), y: v('fp32', [3, 8, 7]), transpose_y: tensor('bool', [true], []) })).toEqual([{ dtype: 'fp32', shape: [2, 3, 5, 8] }]);
    expect(inferOutputs('add', { x: v('fp32', [4, 1, 3]), y: v('fp32', [5, 1]) })).toEqual([{ dtype: 'fp32', shape: [4, 5, 3] }]);
    expect(inferOutputs('transpose', { x: v('fp32', [2, 3, 4]), perm: lit([2, 0, 1]) })).toEqual([{ dtype: 'fp32', shape: [4, 2, 3] }]);
    expect(inferOutputs('concat', { values: [v('fp32', [2, 3]), v('fp32', [2, 5])], axis: lit([1]) })).toEqual([{ dtype: 'fp32', shape: [2, 8] }]);
    expect(inferOutputs('conv', { x: v('fp32', [1, 4, 10, 10]), weight: v('fp32', [6, 2, 3, 3]), pad_type: tensor('string', ['same'], []), strides: lit([2, 2]), groups: lit([2]) })).toEqual([{ dtype: 'fp32', shape: [1, 6, 5, 5] }]);
    expect(inferOutputs('conv', { x: v('fp32', [1, 4, 10, 10]), weight: v('fp32', [6, 4, 3, 3]), dilations: lit([2, 2]) })).toEqual([{ dtype: 'fp32', shape: [1, 6, 6, 6] }]);
    expect(inferOutputs('reduce_mean', { x: v('fp32', [2, 3, 4]), axes: lit([-1]), keep_dims: tensor('bool', [true], []) })).toEqual([{ dtype: 'fp32', shape: [2, 3, 1] }]);
    expect(inferOutputs('constexpr_lut_to_dense', { indices: v('fp32', [128, 512]), lut: v('fp16', [16, 1, 16, 2]), vector_axis: lit([0]) })).toEqual([{ dtype: 'fp16', shape: [256, 512] }]);
    expect(inferOutputs('frobnicate', { x: v('fp32', [1]) })).toBeUndefined();
    expect(() => inferOutputs('add', { x: v('fp32', [3]), y: v('fp32', [4]) })).toThrow(/broadcast/);
  });

  it('errors: missing weightsPath, bad identifiers, unknown op types, unsupported I/O dtypes', () => {
    const b = new ProgramBuilder({ specVersion: 6 });
    expect(() => b.const('big', new Float32Array(10), [10])).toThrow(/weightsPath/);
    expect(() => b.input('1x', 'fp32', [1])).toThrow(/identifier/);
    const x = b.input('x', 'fp16', [1]);
    expect(() => b.op('frobnicate', { x })).toThrow(/outputs explicitly/);
    const y = b.op('frobnicate', { x }, { outputs: [{ dtype: 'fp16', shape: [1] }] });
    b.output(y);
    expect(() => b.build()).toThrow(/version 7/);
    expect(() => new ProgramBuilder({ specVersion: 5 as 6 })).toThrow(/6 to 10/);
  });
});

describe('ProgramBuilder.save', () => {
  it('writes a package that loadModel reads back with the same program and weights', async () => {
    const { loadModel } = await import('../../src/model.js');
    const { BlobFile } = await import('../../src/format/blob.js');
    const dir = tmp();
    const b = new ProgramBuilder({ specVersion: 8, weightsPath: path.join(dir, 'tmp-weight.bin') });
    const x = b.input('x', 'fp16', [2, 32]);
    const wvals = Float32Array.from({ length: 16 * 32 }, (_, i) => ((i * 7919) % 101) / 101 - 0.5);
    const w = b.const('w', wvals, [16, 32], 'fp16');
    const bias = b.const('bias', new Float32Array(16).fill(0.125), [16], 'fp16');
    const y = b.op('linear', { x, weight: w, bias }, { name: 'y' });
    b.output(y);
    const saved = await b.save(path.join(dir, 'm.mlpackage'));
    expect(fs.existsSync(path.join(dir, 'tmp-weight.bin'))).toBe(false);
    const m = await loadModel(path.join(dir, 'm.mlpackage'));
    expect(m.specificationVersion).toBe(8);
    expect(m.modelType).toBe('mlProgram');
    expect(m.weightsMissing).toBe(false);
    const desc = m.spec.description!;
    expect(desc.input!.map(i => i.name)).toEqual(['x']);
    expect(desc.output!.map(i => i.name)).toEqual(['y']);
    expect(desc.metadata!.userDefined!['com.github.apple.coremltools.source']).toBe('coreml-optimize');
    const reader = BlobFile.open(m.weightFilePath('@model_path/weights/weight.bin'));
    const program = new Program(m.program as never, { blobs: () => reader });
    expect(program.main.opset).toBe('CoreML7');
    expect(Array.from(program.main.producerOf('w')!.constValue().data() as Uint16Array)).toEqual(Array.from(wvals, floatToHalfBits));
    expect(program.main.producerOf('bias')!.constValue().kind).toBe('blob');
    expect(listWeights(program).map(w => [w.name, w.consumers[0]])).toEqual([['w', 'y.weight'], ['bias', 'y.bias']]);
    reader.close();
    expect(saved.path).toBe(path.join(dir, 'm.mlpackage'));
  });
});

describe('ProgramBuilder: consts feeding constexpr ops', () => {
  it('are inlined (iOS18 value bindings, iOS16 attributes) and not emitted when used only there', () => {
    for (const [spec, where] of [[9, 'inputs'], [7, 'attributes']] as const) {
      const b = new ProgramBuilder({ specVersion: spec });
      const x = b.input('x', 'fp16', [1, 4]);
      const nz = b.const('nz', [1, 2], [2], 'fp16');
      const mask = b.const('mask', spec === 9 ? [1, 0, 0, 1] : [0b1001], spec === 9 ? [1, 4] : [1], spec === 9 ? 'uint1' : 'uint8');
      const shape = spec === 7 ? b.const('shape', [1, 4], [2], 'uint32') : undefined;
      const w = b.op('constexpr_sparse_to_dense', { nonzero_data: nz, mask, shape }, { name: 'w_sparsified' });
      const y = b.op('mul', { x, y: w }, { name: 'y' });
      b.output(y);
      b.output(nz); // nz is also used by name, so its const op stays
      const { program } = b.buildProgram();
      const ops = [...program.main.walk()];
      expect(ops.map(o => o.name)).toEqual(['nz', 'w_sparsified', 'y']);
      const sp = ops[1]!;
      if (where === 'inputs') expect(sp.inputNames.sort()).toEqual(['mask', 'nonzero_data']);
      else expect(Object.keys(sp.attributes).sort()).toEqual(['mask', 'name', 'nonzero_data', 'shape']);
      const m = sp.param('mask');
      expect(m?.kind).toBe('value');
      expect(listWeights(program).find(v => v.name === 'w_sparsified')!.compression[0]).toMatchObject({ kind: 'sparsity', nonzeroCount: 2, elementCount: 4 });
    }
  });
});
