import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ModelFormatError } from '../../src/errors.js';
import { decodeModel, encodeModel, milType, encodeMessage } from '../../src/format/proto.js';
import { allModelProtobufFiles, rel, rng } from './fixtures.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const ascii = (s: string) => Buffer.from(s, 'ascii').toString('hex');

describe('Model protobuf round trip (every fixture)', () => {
  const files = allModelProtobufFiles();

  it('finds the fixture models', () => {
    // 117 model.mlmodel in packages + 8 bare .mlmodel files (SOURCES.md).
    expect(files.length).toBe(125);
  });

  it.each(files.map((f) => [rel(f), f]))('%s re-encodes byte for byte', (_name, file) => {
    const bytes = fs.readFileSync(file);
    const spec = decodeModel(bytes, file);
    const out = Buffer.from(encodeModel(spec, file));
    expect(out.length).toBe(bytes.length);
    expect(out.equals(bytes)).toBe(true);
  });

  it('keeps no unknown fields: the schema models everything present in the fixtures', () => {
    let unknowns = 0;
    const visit = (o: unknown): void => {
      if (!o || typeof o !== 'object' || ArrayBuffer.isView(o)) return;
      if (Object.prototype.hasOwnProperty.call(o, '$unknowns')) unknowns++;
      for (const v of Object.values(o)) visit(v);
    };
    for (const f of files) visit(decodeModel(fs.readFileSync(f), f));
    expect(unknowns).toBe(0);
  });
});

describe('known-answer encodings (spec §8.4)', () => {
  it('Model{specificationVersion: 7, mlProgram{version: 1}}', () => {
    const bytes = encodeModel({ specificationVersion: 7, mlProgram: { version: 1 } });
    expect(Buffer.from(bytes).toString('hex')).toBe('0807b21f020801');
    const spec = decodeModel(bytes);
    expect(spec.specificationVersion).toBe(7);
    expect(Number(spec.mlProgram!.version)).toBe(1);
  });

  it('fp16[2] [1.0, -2.0] immediate Value', () => {
    const value = {
      type: { tensorType: { dataType: 10, rank: 1, dimensions: [{ constant: { size: 2 } }] } },
      immediateValue: { tensor: { bytes: { values: hex('003c00c0') } } },
    };
    const expected = '120c0a0a080a10011a040a0208021a0a0a083a060a04003c00c0';
    expect(Buffer.from(encodeMessage(milType('Value'), value)).toString('hex')).toBe(expected);
    const back = milType('Value').decode(hex(expected));
    expect(Buffer.from(milType('Value').encode(back).finish()).toString('hex')).toBe(expected);
  });

  it('uint4[4] [1,2,3,4] immediate Value', () => {
    const value = {
      type: { tensorType: { dataType: 35, rank: 1, dimensions: [{ constant: { size: 4 } }] } },
      immediateValue: { tensor: { bytes: { values: hex('2143') } } },
    };
    expect(Buffer.from(encodeMessage(milType('Value'), value)).toString('hex')).toBe('120c0a0a082310011a040a0208041a080a063a040a022143');
  });

  it('int32 scalar -1 is a 10-byte varint in a packed field', () => {
    const value = { type: { tensorType: { dataType: 23 } }, immediateValue: { tensor: { ints: { values: [-1] } } } };
    expect(Buffer.from(encodeMessage(milType('Value'), value)).toString('hex')).toBe('1204' + '0a020817' + '1a100a0e120c0a0affffffffffffffffff01');
  });

  it('const op w = fp16[4] at blob offset 64', () => {
    const tensor = { tensorType: { dataType: 10, rank: 1, dimensions: [{ constant: { size: 4 } }] } };
    const op = {
      type: 'const',
      outputs: [{ name: 'w', type: tensor }],
      attributes: {
        name: { type: { tensorType: { dataType: 2 } }, immediateValue: { tensor: { strings: { values: ['w'] } } } },
        val: { type: tensor, blobFileValue: { fileName: '@model_path/weights/weight.bin', offset: 64 } },
      },
    };
    const expected =
      '0a05' + ascii('const') +
      '1a110a0177120c0a0a080a10011a040a020804' +
      '2a170a04' + ascii('name') + '120f12040a0208021a070a0522030a0177' +
      '2a390a03' + ascii('val') + '1232120c0a0a080a10011a040a020804' + '2a220a1e' + ascii('@model_path/weights/weight.bin') + '1040';
    expect(Buffer.from(encodeMessage(milType('Operation'), op)).toString('hex')).toBe(expected);
  });

  it('64-bit values stay exact (uint64 blob offset above 2^53)', () => {
    const big = '18446744073709551615'; // 2^64 - 1
    const value = { blobFileValue: { fileName: 'w', offset: { low: -1, high: -1, unsigned: true } } };
    const bytes = encodeMessage(milType('Value'), value);
    const back = milType('Value').decode(bytes) as unknown as { blobFileValue: { offset: { toString(): string } } };
    expect(back.blobFileValue.offset.toString()).toBe(big);
  });
});

describe('corrupt protobuf input', () => {
  const file = allModelProtobufFiles().find((f) => f.includes('src_a_ios18'))!;
  const good = fs.readFileSync(file);

  it('truncated input throws ModelFormatError naming the file', () => {
    // Cuts inside a field (a cut at a field boundary is a shorter but valid message).
    for (const cut of [1, 3, 5, 100, good.length >> 1, good.length - 1]) {
      const err = catchErr(() => decodeModel(good.subarray(0, cut), '/x/model.mlmodel'));
      expect(err).toBeInstanceOf(ModelFormatError);
      expect((err as Error).message).toContain('/x/model.mlmodel');
    }
  });

  it('bit flips either decode or throw ModelFormatError, never anything else', () => {
    const random = rng(12345);
    let threw = 0;
    for (let i = 0; i < 3000; i++) {
      const bad = Buffer.from(good);
      const flips = 1 + Math.floor(random() * 4);
      for (let k = 0; k < flips; k++) {
        const pos = Math.floor(random() * bad.length);
        bad[pos]! ^= 1 << Math.floor(random() * 8);
      }
      try {
        decodeModel(bad, 'flipped.mlmodel');
      } catch (err) {
        threw++;
        expect(err).toBeInstanceOf(ModelFormatError);
        expect((err as Error).message).toContain('flipped.mlmodel');
      }
    }
    // Some flips land in a length or tag: the loop really exercises the error path.
    expect(threw).toBeGreaterThan(100);
  });

  it('encoding a malformed spec throws ModelFormatError instead of writing garbage', () => {
    expect(() => encodeModel({ specificationVersion: 'seven' as unknown as number })).toThrow(ModelFormatError);
  });
});

function catchErr(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}
