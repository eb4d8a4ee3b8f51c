import { describe, expect, it } from 'vitest';
import { milType } from '../../src/mil/proto.js';
import { decodeImmediateTensor, encodeImmediateTensor, floatToHalfBits, halfBitsToFloat, packBits, unpackBits, stringScalar } from '../../src/mil/values.js';
import protobuf from 'protobufjs';

const hex = (u: Uint8Array) => Buffer.from(u).toString('hex').replace(/(..)/g, '$1 ').trim();
const encodeValue = (v: object) => hex(milType('Value').encode(v as protobuf.Message).finish());
const decodeValue = (h: string) => milType('Value').decode(Buffer.from(h.replace(/ /g, ''), 'hex')) as never;

describe('immediate values: known answers (spec §8.4)', () => {
  it('fp16 [1.0, -2.0]', () => {
    const want = '12 0c 0a 0a 08 0a 10 01 1a 04 0a 02 08 02 1a 0a 0a 08 3a 06 0a 04 00 3c 00 c0';
    expect(encodeValue(encodeImmediateTensor('fp16', [1.0, -2.0], [2]))).toBe(want);
    const bits = decodeImmediateTensor(decodeValue(want));
    expect(bits).toBeInstanceOf(Uint16Array);
    expect(Array.from(bits as Uint16Array)).toEqual([0x3c00, 0xc000]);
  });
  it('uint4 [1,2,3,4] packs LSB-first to 21 43', () => {
    const want = '12 0c 0a 0a 08 23 10 01 1a 04 0a 02 08 04 1a 08 0a 06 3a 04 0a 02 21 43';
    expect(encodeValue(encodeImmediateTensor('uint4', [1, 2, 3, 4], [4]))).toBe(want);
    expect(Array.from(decodeImmediateTensor(decodeValue(want)) as Uint8Array)).toEqual([1, 2, 3, 4]);
  });
  it('int32 scalar -1 is a 10-byte varint', () => {
    const want = '12 04 0a 02 08 17 1a 10 0a 0e 12 0c 0a 0a ff ff ff ff ff ff ff ff ff 01';
    expect(encodeValue(encodeImmediateTensor('int32', [-1], []))).toBe(want);
    expect(Array.from(decodeImmediateTensor(decodeValue(want)) as Int32Array)).toEqual([-1]);
  });
  it('string scalar, as in a const op name attribute', () => {
    expect(encodeValue(stringScalar('w'))).toBe('12 04 0a 02 08 02 1a 07 0a 05 22 03 0a 01 77');
  });
  it('uint2 [[1,2],[3,0]] → 39; fp16 scalar -2 → 00 c0 (coremltools 9.0 exporter)', () => {
    const v = encodeImmediateTensor('uint2', [1, 2, 3, 0], [2, 2]);
    expect(hex(v.immediateValue!.tensor!.bytes!.values!)).toBe('39');
    const s = encodeImmediateTensor('fp16', [-2], []);
    expect(hex(s.immediateValue!.tensor!.bytes!.values!)).toBe('00 c0');
  });
  it('uint32 goes in bytes, uint16 and int16 in ints, fp32 in floats, int8 in bytes', () => {
    expect(hex(encodeImmediateTensor('uint32', [64, 32, 3, 3], [4]).immediateValue!.tensor!.bytes!.values!)).toBe('40 00 00 00 20 00 00 00 03 00 00 00 03 00 00 00');
    expect(encodeImmediateTensor('uint16', [7], [1]).immediateValue!.tensor!.ints!.values).toEqual([7]);
    expect(encodeImmediateTensor('int16', [-7], [1]).immediateValue!.tensor!.ints!.values).toEqual([-7]);
    expect(encodeImmediateTensor('fp32', [0.5], []).immediateValue!.tensor!.floats!.values).toEqual([0.5]);
    expect(hex(encodeImmediateTensor('int8', [-1, 2], [2]).immediateValue!.tensor!.bytes!.values!)).toBe('ff 02');
  });
  it('round-trips every dtype', () => {
    const cases: [Parameters<typeof encodeImmediateTensor>[0], number[]][] = [
      ['int4', [-8, 7, 0, -1, 3]], ['uint1', [1, 0, 1, 1, 0, 0, 0, 1, 1]], ['uint3', [0, 7, 5, 2, 1]], ['uint6', [63, 0, 17, 42]],
      ['uint8', [0, 255, 9]], ['int8', [-128, 127]], ['int32', [-5, 2 ** 31 - 1]], ['uint32', [2 ** 32 - 1, 0]], ['fp32', [1.5, -0.25]],
    ];
    for (const [d, vals] of cases) {
      const back = decodeImmediateTensor(decodeValue(encodeValue(encodeImmediateTensor(d, vals, [vals.length]))));
      expect(Array.from(back as ArrayLike<number>), d).toEqual(vals);
    }
    expect(decodeImmediateTensor(decodeValue(encodeValue(encodeImmediateTensor('bool', [true, false], [2]))))).toEqual([true, false]);
    expect(decodeImmediateTensor(decodeValue(encodeValue(encodeImmediateTensor('string', ['a', 'bc'], [2]))))).toEqual(['a', 'bc']);
  });
  it('rejects out-of-range sub-byte values and wrong element counts', () => {
    expect(() => encodeImmediateTensor('uint4', [16], [1])).toThrow(/out of range/);
    expect(() => encodeImmediateTensor('int4', [8], [1])).toThrow(/out of range/);
    expect(() => encodeImmediateTensor('fp32', [1, 2], [3])).toThrow();
    const bad = encodeImmediateTensor('fp16', [1, 2], [2]);
    bad.type!.tensorType!.dimensions![0]!.constant!.size = 3;
    expect(() => decodeImmediateTensor(bad)).toThrow(/type needs 6/);
  });
});

describe('bit packing and fp16', () => {
  it('uint3 straddles bytes LSB-first', () => {
    // 5 = 101b at bits 0..2, 6 = 110b at bits 3..5, 7 = 111b at bits 6..8
    expect(Array.from(packBits([5, 6, 7], 3))).toEqual([0b11110101, 0b1]);
    expect(Array.from(unpackBits(new Uint8Array([0b11110101, 1]), 3, 3))).toEqual([5, 6, 7]);
  });
  it('fp16 conversion rounds to nearest even', () => {
    expect(floatToHalfBits(1)).toBe(0x3c00);
    expect(floatToHalfBits(65504)).toBe(0x7bff);
    expect(floatToHalfBits(1e6)).toBe(0x7c00);
    expect(floatToHalfBits(2 ** -24)).toBe(1);
    expect(floatToHalfBits(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(floatToHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(halfBitsToFloat(0xc000)).toBe(-2);
    expect(halfBitsToFloat(0x0001)).toBe(2 ** -24);
  });
});
