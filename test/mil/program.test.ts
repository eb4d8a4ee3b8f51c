import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { allModelFiles, FIXTURES, hasFixtures, loadProgramFixture } from './helpers.js';
import { scanModelBytes } from '../../src/mil/proto.js';
import { tensorShape, tensorDType } from '../../src/mil/types.js';

const programFiles = allModelFiles().filter(f => scanModelBytes(new Uint8Array(fs.readFileSync(f))).mlProgram);

describe.skipIf(!hasFixtures)('Program over real fixtures', () => {
  it('finds the ML Program fixtures', () => {
    expect(programFiles.length).toBeGreaterThan(60);
  });

  it('every ML Program fixture loads and re-encodes byte-identically', () => {
    for (const f of programFiles) {
      const { program, programBytes } = loadProgramFixture(f);
      const fn = program.main;
      expect(fn.block.operations.length, f).toBeGreaterThan(0);
      expect(Buffer.from(program.encode()).equals(Buffer.from(programBytes)), f).toBe(true);
    }
  });
});

const SOURCES_COUNTS: [string, number, Record<string, number>][] = [
  ['superpoint/superpoint.mlpackage', 141, { conv: 12, relu: 10, max_pool: 3 }],
  ['whisper-base-program-only/encoder.mlpackage', 387, { conv: 2, linear: 36, layer_norm: 13, gelu: 8, matmul: 12, softmax: 6 }],
  ['whisper-base-program-only/decoder.mlpackage', 773, { linear: 61, layer_norm: 19, softmax: 12 }],
  ['kokoro-duration-program-only/coreml/kokoro_duration.mlpackage', 863, { linear: 78, layer_norm: 31, matmul: 24, softmax: 12, gelu: 12, lstm: 5 }],
  ['int8-transformer-program-only/ios/CoreMLAudioApp/CoreMLAudioApp/MLModels/Transformer_Encoder_int8.mlpackage', -1, { constexpr_blockwise_shift_scale: 22 }],
  ['int8-transformer-program-only/ios/CoreMLAudioApp/CoreMLAudioApp/MLModels/Transformer_Decoder_int8.mlpackage', -1, { constexpr_blockwise_shift_scale: 40 }],
];

describe.skipIf(!hasFixtures)('op counts match SOURCES.md', () => {
  for (const [rel, total, counts] of SOURCES_COUNTS) {
    it(rel.split('/')[0]!, () => {
      const file = path.join(FIXTURES, rel, 'Data/com.apple.CoreML/model.mlmodel');
      const { program, specVersion } = loadProgramFixture(file);
      const c = program.opCounts();
      if (total >= 0) expect([...c.values()].reduce((a, b) => a + b, 0)).toBe(total);
      for (const [t, n] of Object.entries(counts)) expect(c.get(t) ?? 0, t).toBe(n);
      expect(program.main.opset).toBe({ 6: 'CoreML5', 10: 'CoreML9' }[specVersion]);
    });
  }

  it('superpoint: inputs, outputs, blob consts with fp16 data', () => {
    const { program } = loadProgramFixture(path.join(FIXTURES, 'superpoint/superpoint.mlpackage/Data/com.apple.CoreML/model.mlmodel'));
    const fn = program.main;
    expect(fn.outputs.map(o => [o.name, tensorShape(o.type)])).toEqual([['semi', [1, 65, 30, 40]], ['desc', [1, 256, 30, 40]]]);
    const blobConsts = [...fn.walk()].filter(op => op.isConst && op.constValue().kind === 'blob');
    expect(blobConsts.length).toBe(24);
    const conv1b = blobConsts.find(op => op.name.startsWith('conv1b_weight'))!;
    const v = conv1b.constValue();
    expect(v.dtype).toBe('fp16');
    const f = v.toFloat32();
    expect(f.length).toBe(v.elementCount);
    const mean = f.reduce((a, b) => a + b, 0) / f.length;
    const std = Math.sqrt(f.reduce((a, b) => a + (b - mean) ** 2, 0) / f.length);
    expect(mean).toBeCloseTo(-0.0015, 3);
    expect(std).toBeCloseTo(0.059, 2);
    // producer/consumer lookups
    const consumer = fn.consumersOf(conv1b.outputs[0]!.name);
    expect(consumer.length).toBe(1);
    expect(consumer[0]!.op!.type).toBe('conv');
    expect(consumer[0]!.input).toBe('weight');
    expect(fn.producerOf(conv1b.outputs[0]!.name)).toBe(conv1b);
    expect(tensorDType(fn.block.lookupVar(conv1b.outputs[0]!.name)!.type)).toBe('fp16');
  });

  it('kokoro: int32 tensor of 512 elements is immediate; lstm ops present; nested lookups work', () => {
    const { program } = loadProgramFixture(path.join(FIXTURES, 'kokoro-duration-program-only/coreml/kokoro_duration.mlpackage/Data/com.apple.CoreML/model.mlmodel'));
    const consts = [...program.main.walk()].filter(op => op.isConst).map(op => op.constValue());
    const big = consts.filter(v => v.kind === 'immediate' && v.dtype === 'int32' && v.elementCount === 512);
    expect(big.length).toBeGreaterThan(0);
    expect((big[0]!.data() as Int32Array).length).toBe(512);
    for (const v of consts.filter(c => c.kind === 'blob')) expect(v.elementCount).toBeGreaterThanOrEqual(10);
  });
});
