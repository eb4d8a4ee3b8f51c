import { describe, expect, it } from 'vitest';
import { describeFeatureType, describeModel, formatReport } from '../../src/cli/commands/info-report.js';
import { ProgramBuilder } from '../../src/mil/builder.js';

describe('info report from specs', () => {
  it('feature types: enumerated / ranged multi-arrays and images, state, sequence, optional', () => {
    expect(describeFeatureType({ multiArrayType: { shape: [1, 3], dataType: 65552, enumeratedShapes: { shapes: [{ shape: [1, 3] }, { shape: [1, 5] }] } } }).text)
      .toBe('MultiArray FLOAT16 [1, 3] enumerated {[1, 3], [1, 5]}');
    expect(describeFeatureType({ multiArrayType: { shape: [1, 2], dataType: 131104, shapeRange: { sizeRanges: [{ lowerBound: 1, upperBound: 1 }, { lowerBound: 1, upperBound: -1 }] } } }).detail)
      .toEqual({ kind: 'multiArray', dataType: 'INT32', shape: [1, 2], shapeRanges: [{ lower: 1, upper: 1 }, { lower: 1, upper: -1 }] });
    expect(describeFeatureType({ imageType: { width: 64, height: 32, colorSpace: 20, enumeratedSizes: { sizes: [{ width: 64, height: 32 }, { width: 128, height: 64 }] } } }).text)
      .toBe('Image RGB 64x32 enumerated {64x32, 128x64}');
    expect(describeFeatureType({ stateType: { arrayType: { shape: [2], dataType: 65552 } } }).text).toBe('State<MultiArray FLOAT16 [2]>');
    expect(describeFeatureType({ sequenceType: { stringType: {} } }).text).toBe('Sequence<String>');
  });

  it('multi-function descriptions, unknown spec versions and a builder-made program', () => {
    const b = new ProgramBuilder({ specVersion: 9 });
    const x = b.input('x', 'fp16', [1, 4]);
    b.output(b.op('relu', { x }, { name: 'y' }));
    const { spec } = b.build();
    const withFunctions = {
      ...spec,
      description: {
        ...spec.description,
        functions: [{ name: 'main', input: spec.description.input, output: spec.description.output }, { name: 'other', input: [], output: [] }],
        defaultFunctionName: 'main',
      },
    };
    const r = describeModel(withFunctions as never);
    expect(r.functionDescriptions!.map(f => f.name)).toEqual(['main', 'other']);
    expect(r.defaultFunctionName).toBe('main');
    expect(r.program!.functions).toEqual([{ name: 'main', opset: 'CoreML8', inputs: [{ name: 'x', type: 'fp16[1, 4]' }], outputs: [{ name: 'y', type: 'fp16[1, 4]' }], opCount: 1, opCounts: { relu: 1 } }]);
    expect(r.program!.weightsAvailable).toBe(false);
    expect(formatReport(r)).toMatch(/Function main \(default\) inputs/);
    const odd = describeModel({ specificationVersion: 42 } as never);
    expect(odd.notes).toContain('specification version 42 is not known to this tool');
    expect(odd.modelType).toBe('unknown');
  });
});
