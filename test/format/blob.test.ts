import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AbortError, WeightFileError } from '../../src/index.js';
import {
  BLOB_DTYPES, BlobFile, BlobWriter, copyRecords, blobDTypeBits, blobDTypeFromMilDataType, blobPackedSize,
  milDataTypeFromBlobDType, packSubByte, unpackSubByte, type BlobDType,
} from '../../src/format/index.js';
import { type BlobAddon } from '../../src/format/blob.js';
import { blobDTypeOf, dtypeCode, type MilDType } from '../../src/mil/types.js';
import type { BlobSource } from '../../src/mil/program.js';
import { nativeAddon } from '../../src/native.js';
import { FIXTURES } from './fixtures.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cmo-blob-ts-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const tmpFile = (name: string) => path.join(tmp, name);
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const f32le = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function weightFiles(root: string): string[] {
  const out: string[] = [];
  if (!fs.existsSync(root)) return out;
  for (const e of fs.readdirSync(root, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name === 'weight.bin') out.push(path.join(e.parentPath, e.name));
  }
  return out.sort();
}

/** Expects a WeightFileError that names `file` and contains `needle`. */
function expectWeightError(fn: () => unknown, file: string, needle: string | RegExp): WeightFileError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(WeightFileError);
  const e = caught as WeightFileError;
  expect(e.code).toBe('EWEIGHTS');
  expect(e.file).toBe(file);
  expect(e.message.startsWith(`${file}: `)).toBe(true);
  expect(e.message).toMatch(needle);
  return e;
}

// spec §8.1
const SPEC_81 = Buffer.from(
  '01000000020000000000000000000000' + '00'.repeat(48) +
    'efbeadde010000000800000000000000' + '8000000000000000' + '00'.repeat(40) +
    '003c0040004200 44'.replace(/ /g, ''),
  'hex',
);

describe('BlobWriter / BlobFile known answers', () => {
  it('writes the spec §8.1 file byte for byte and reads it back', () => {
    const file = tmpFile('spec81.bin');
    const w = BlobWriter.create(file);
    expect(w.append('float16', new Uint16Array([0x3c00, 0x4000, 0x4200, 0x4400]))).toBe(64);
    expect(w.count).toBe(1);
    expect(w.size).toBe(136);
    w.close();
    expect(w.closed).toBe(true);
    expect(fs.readFileSync(file).equals(SPEC_81)).toBe(true);

    const f = BlobFile.open(file);
    const asSource: BlobSource = f;  // what the MIL layer reads constants through (type-checked)
    expect(Array.from(asSource.read(64) as Uint16Array)).toEqual([0x3c00, 0x4000, 0x4200, 0x4400]);
    expect(f.count).toBe(1);
    expect(f.size).toBe(136);
    expect(f.record(64)).toEqual({ metadataOffset: 64, dataOffset: 128, dtype: 'float16', sizeInBytes: 8, elementCount: 4 });
    const raw = f.read(64);
    expect(raw).toBeInstanceOf(Uint16Array);
    expect(Array.from(raw)).toEqual([0x3c00, 0x4000, 0x4200, 0x4400]);
    expect(Array.from(f.readFloat32(64))).toEqual([1, 2, 3, 4]);
    expect(f.readRaw(64).toString('hex')).toBe('003c004000420044');
    f.close();
  });

  it('writes the spec §8.2 two-record file', () => {
    const file = tmpFile('spec82.bin');
    const w = BlobWriter.create(file);
    expect(w.append('uint4', new Uint8Array([1, 2, 3, 4, 5]))).toBe(64);
    const halves = new Uint16Array(16);
    for (let i = 1; i < 16; i++) halves[i] = fp16(i);
    expect(w.append('float16', halves)).toBe(192);
    w.close();
    const bytes = fs.readFileSync(file);
    expect(bytes.length).toBe(288);
    expect(bytes.readUInt32LE(0)).toBe(2);
    expect(bytes.readUInt32LE(68)).toBe(11);
    expect(Number(bytes.readBigUInt64LE(72))).toBe(3);
    expect(Number(bytes.readBigUInt64LE(80))).toBe(128);
    expect(Number(bytes.readBigUInt64LE(88))).toBe(4);
    expect(bytes.subarray(128, 131).toString('hex')).toBe('214305');
    expect(bytes.readUInt32LE(196)).toBe(1);
    expect(Number(bytes.readBigUInt64LE(208))).toBe(256);

    const f = BlobFile.open(file);
    expect(f.records().map((r) => [r.metadataOffset, r.dtype, r.sizeInBytes, r.elementCount])).toEqual([
      [64, 'uint4', 3, 5],
      [192, 'float16', 32, 16],
    ]);
    const nibbles = f.read(64);
    expect(nibbles).toBeInstanceOf(Uint8Array);
    expect(Array.from(nibbles)).toEqual([1, 2, 3, 4, 5]);
    expect(Array.from(f.readFloat32(192))).toEqual(Array.from({ length: 16 }, (_, i) => i));
    expect(f.readRaw(64).toString('hex')).toBe('214305');
    f.close();
  });

  it('round-trips every dtype through append/read with the right array type', () => {
    const file = tmpFile('all.bin');
    const cases: [BlobDType, ArrayLike<number> & { constructor: unknown }][] = [
      ['float32', new Float32Array([1.5, -2.25, 3e-8])],
      ['float16', new Uint16Array([0x3c00, 0xc000, 0x7c00])],
      ['bfloat16', new Uint16Array([0x3f80, 0xc040])],
      ['uint8', new Uint8Array([0, 255, 7])],
      ['int8', new Int8Array([-128, 127, -1])],
      ['int16', new Int16Array([-32768, 32767])],
      ['uint16', new Uint16Array([65535, 1])],
      ['int32', new Int32Array([-2147483648, 2147483647])],
      ['uint32', new Uint32Array([4294967295, 3])],
      ['int4', new Int8Array([-8, 7, 3, 4, -2])],
      ['uint1', new Uint8Array([1, 0, 1, 1, 0, 0, 0, 1, 1])],
      ['uint2', new Uint8Array([0, 3, 2, 1, 3])],
      ['uint3', new Uint8Array([2, 7, 7, 5, 5, 4, 3, 0, 6])],
      ['uint4', new Uint8Array([15, 0, 9])],
      ['uint6', new Uint8Array([1, 2, 3, 4, 63])],
      ['float8e4m3fn', new Uint8Array([0x38, 0xb8])],
      ['float8e5m2', new Uint8Array([0x3c])],
    ];
    expect(cases.map(([d]) => d).sort()).toEqual([...BLOB_DTYPES].sort());
    const w = BlobWriter.create(file);
    const offsets = cases.map(([dtype, values]) => w.append(dtype, values as Uint8Array));
    w.close();
    const f = BlobFile.open(file);
    expect(f.count).toBe(cases.length);
    cases.forEach(([dtype, values], i) => {
      const got = f.read(offsets[i]!);
      expect(got.constructor).toBe(values.constructor);
      expect(Array.from(got)).toEqual(Array.from(values));
      const rec = f.record(offsets[i]!);
      expect(rec.dtype).toBe(dtype);
      expect(rec.sizeInBytes).toBe(blobPackedSize(dtype, values.length));
    });
    expect(Array.from(f.readFloat32(offsets[2]!))).toEqual([1, -3]);  // bfloat16 widened
    expect(f.readFloat32(offsets[1]!)[2]).toBe(Infinity);
    expect(f.readRaw(offsets[12]!).toString('hex')).toBe(
      Buffer.from(packSubByte('uint3', [2, 7, 7, 5, 5, 4, 3, 0, 6])).toString('hex'),
    );
    f.close();
  });

  it('appends packed data with appendRaw and a partial element count with append', () => {
    const file = tmpFile('raw.bin');
    const w = BlobWriter.create(file);
    const a = w.appendRaw('uint3', new Uint8Array([0xfa, 0x5b, 0x0e]), 8);
    const b = w.append('uint4', new Uint8Array([1, 2, 3, 99]), 3);  // only the first 3 values
    w.close();
    const f = BlobFile.open(file);
    expect(Array.from(f.read(a))).toEqual([2, 7, 7, 5, 5, 4, 3, 0]);
    expect(Array.from(f.read(b))).toEqual([1, 2, 3]);
    expect(f.record(b).sizeInBytes).toBe(2);
    f.close();
  });
});

function fp16(v: number): number {
  // exact for small integers: sign 0, exponent e+15, 10-bit mantissa
  const e = Math.floor(Math.log2(v));
  return ((e + 15) << 10) | Math.round((v / 2 ** e - 1) * 1024);
}

describe('BlobFile on real files', () => {
  const files = weightFiles(FIXTURES);

  it.skipIf(files.length === 0)('copyFrom of every record reproduces every coremltools weight.bin byte for byte', () => {
    let compared = 0;
    for (const file of files) {
      if (file.includes(`${path.sep}superpoint${path.sep}`)) continue;  // garbage in ignored words (spec §9)
      const src = BlobFile.open(file);
      const out = tmpFile('copy.bin');
      const w = BlobWriter.create(out);
      for (const r of src.records()) expect(w.copyFrom(src, r.metadataOffset)).toBe(r.metadataOffset);
      w.close();
      src.close();
      expect(sha256(fs.readFileSync(out)), file).toBe(sha256(fs.readFileSync(file)));
      compared++;
    }
    expect(compared).toBeGreaterThan(50);
  });

  it.skipIf(files.length === 0)('float weights match the coremltools sidecar hashes (sha256 of float32 LE)', () => {
    const golden = path.join(FIXTURES, 'coremltools-golden');
    let matched = 0;
    for (const json of fs.readdirSync(golden).filter((n) => n.endsWith('.json'))) {
      const pkg = path.join(golden, json.replace(/\.json$/, '.mlpackage'));
      const bin = path.join(pkg, 'Data', 'com.apple.CoreML', 'weights', 'weight.bin');
      if (!fs.existsSync(bin)) continue;
      const side = JSON.parse(fs.readFileSync(path.join(golden, json), 'utf8')) as {
        weight_bin_sha256?: string;
        weights?: { name: string; chain: string[]; dtype: string; n_elements: number; sha256_f32le: string }[];
      };
      if (side.weight_bin_sha256) expect(sha256(fs.readFileSync(bin))).toBe(side.weight_bin_sha256);
      const f = BlobFile.open(bin);
      const hashes = new Set<string>();
      for (const r of f.records()) {
        if (r.dtype === 'float16' || r.dtype === 'float32') hashes.add(sha256(f32le(f.readFloat32(r.metadataOffset))));
      }
      f.close();
      for (const w of side.weights ?? []) {
        if (w.chain.length === 1 && w.chain[0] === 'const' && w.n_elements >= 10) {
          expect(hashes.has(w.sha256_f32le), `${json} ${w.name}`).toBe(true);
          matched++;
        }
      }
    }
    expect(matched).toBeGreaterThan(20);
  });

  it.skipIf(files.length === 0)('reads the const of spec §9.1 at offset 259392 of pal_n4_pertensor_ios16', () => {
    const pkg = path.join(FIXTURES, 'coremltools-golden', 'pal_n4_pertensor_ios16.mlpackage');
    const f = BlobFile.open(path.join(pkg, 'Data', 'com.apple.CoreML', 'weights', 'weight.bin'));
    expect(f.record(259392)).toMatchObject({ dtype: 'float16', elementCount: 64, sizeInBytes: 128, dataOffset: 259456 });
    const side = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'coremltools-golden', 'pal_n4_pertensor_ios16.json'), 'utf8'));
    const bias = side.weights.find((w: { name: string }) => w.name === 'conv1_bias_to_fp16');
    expect(sha256(f32le(f.readFloat32(259392)))).toBe(bias.sha256_f32le);
    f.close();
  });

  it.skipIf(files.length === 0)('ignores garbage padding of fp16 records in superpoint (coremltools 7.2)', () => {
    const bin = path.join(FIXTURES, 'superpoint', 'superpoint.mlpackage', 'Data', 'com.apple.CoreML', 'weights', 'weight.bin');
    const f = BlobFile.open(bin);
    const recs = f.records();
    expect(recs.length).toBe(24);
    expect(recs[0]).toEqual({ metadataOffset: 64, dataOffset: 128, dtype: 'float16', sizeInBytes: 0x480, elementCount: 0x240 });
    const last = recs[recs.length - 1]!;
    expect(last.dataOffset + last.sizeInBytes).toBe(f.size);
    f.close();
  });
});

describe('bad input', () => {
  const write = (name: string, bytes: Uint8Array) => {
    const file = tmpFile(name);
    fs.writeFileSync(file, bytes);
    return file;
  };
  const patched = (at: number, value: number | bigint, width: 4 | 8, base: Buffer = SPEC_81) => {
    const b = Buffer.from(base);
    if (width === 4) b.writeUInt32LE(Number(value), at);
    else b.writeBigUInt64LE(BigInt(value), at);
    return b;
  };

  it('rejects files that are not version-2 blob files', () => {
    const missing = tmpFile('missing.bin');
    expectWeightError(() => BlobFile.open(missing), missing, /cannot open/);
    const empty = write('empty.bin', new Uint8Array(0));
    expectWeightError(() => BlobFile.open(empty), empty, /0 bytes is shorter than the 64-byte header/);
    const short = write('short.bin', SPEC_81.subarray(0, 40));
    expectWeightError(() => BlobFile.open(short), short, /shorter than the 64-byte header/);
    const v1 = write('v1.bin', patched(4, 1, 4));
    expectWeightError(() => BlobFile.open(v1), v1, /unsupported blob storage version 1 \(expected 2\)/);
    const many = write('many.bin', patched(0, 1000, 4));
    expectWeightError(() => BlobFile.open(many), many, /header claims 1000 blobs/);
  });

  it('rejects bad records with the offset in the message', () => {
    const padded = Buffer.concat([SPEC_81, Buffer.alloc(120)]);
    const file = write('padded.bin', padded);
    const f = BlobFile.open(file);
    expectWeightError(() => f.record(128), file, /blob at offset 128: no blob metadata here \(sentinel 0x40003c00/);
    expectWeightError(() => f.record(0), file, /offset 0: offset points into the 64-byte file header/);
    expectWeightError(() => f.record(2 ** 33), file, /offset 8589934592: metadata record extends past the end/);
    expectWeightError(() => f.read(250), file, /past the end/);
    expectWeightError(() => f.readFloat32(128), file, /offset 128/);
    f.close();
    const cases: [string, Buffer, RegExp][] = [
      ['sentinel', patched(64, 0xdeadbeee, 4), /sentinel 0xdeadbeee/],
      ['dtype', patched(68, 18, 4), /unknown dtype code 18/],
      ['size', patched(72, 1000, 8), /past the end of the 136-byte file/],
      ['offset', patched(80, 2n ** 63n, 8), /past the end/],
      ['overlap', patched(80, 100, 8), /before the end of its metadata/],
      ['fp16 size', patched(72, 7, 8), /not a multiple of the float16 element size/],
      ['padding', patched(88, 8, 8, patched(68, 11, 4)), /padding_size_in_bits 8 is not below 8/],
      ['padding multiple', patched(88, 2, 8, patched(68, 11, 4)), /not a multiple of 4 for uint4/],
      ['uint3 count', patched(68, 12, 4), /not a whole number of uint3 elements/],
    ];
    for (const [name, bytes, needle] of cases) {
      const bad = write(`bad-${name.replace(/ /g, '-')}.bin`, bytes);
      const g = BlobFile.open(bad);
      expectWeightError(() => g.records(), bad, needle);
      expectWeightError(() => g.read(64), bad, new RegExp(`offset 64: .*${needle.source}`));
      g.close();
    }
  });

  it('accepts garbage in padding and reserved words of fp16 records', () => {
    let b = patched(88, 0x31d5149f0n, 8);
    for (let at = 96; at < 128; at += 8) b = patched(at, 0x7f0012345678n, 8, b);
    const file = write('garbage.bin', b);
    const f = BlobFile.open(file);
    expect(Array.from(f.readFloat32(64))).toEqual([1, 2, 3, 4]);
    f.close();
  });

  it('fails cleanly on wrong arguments, closed handles and out-of-range values', () => {
    const file = write('ok.bin', SPEC_81);
    const f = BlobFile.open(file);
    expect(() => f.record(1.5)).toThrow(RangeError);
    expect(() => f.record(-64)).toThrow(RangeError);
    expect(() => f.record('64' as unknown as number)).toThrow(TypeError);
    const notFloat = tmpFile('u4.bin');
    const w = BlobWriter.create(notFloat);
    const off = w.append('uint4', new Uint8Array([1]));
    expectWeightError(() => w.append('uint4', new Uint8Array([1, 16])), notFloat, /uint4 value 16 at index 1 is out of range \[0, 15\]/);
    expectWeightError(() => w.append('int4', new Int8Array([-9])), notFloat, /int4 value -9 at index 0/);
    expectWeightError(() => w.appendRaw('float16', new Uint8Array(3), 2), notFloat, /expected 4/);
    expect(() => w.append('float16', new Float32Array(2))).toThrow(TypeError);
    expect(() => w.append('uint4', new Uint8Array(2), 3)).toThrow(RangeError);
    expect(() => w.append('float64' as BlobDType, new Float32Array(2))).toThrow(TypeError);
    expect(() => w.copyFrom({ nativeHandle: {} } as unknown as BlobFile, 64)).toThrow(TypeError);
    w.close();
    w.close();
    expectWeightError(() => w.append('uint8', new Uint8Array(1)), notFloat, /closed/);
    expect(w.count).toBe(1);
    const u4 = BlobFile.open(notFloat);
    expectWeightError(() => u4.readFloat32(off), notFloat, /is uint4, not float16, bfloat16 or float32/);
    u4.close();
    f.close();
    expect(f.closed).toBe(true);
    expectWeightError(() => f.read(64), file, /closed/);
    const w2 = BlobWriter.create(tmpFile('w2.bin'));
    expectWeightError(() => w2.copyFrom(f, 64), file, /closed/);  // names the closed source file
    const src = BlobFile.open(write('padded2.bin', Buffer.concat([SPEC_81, Buffer.alloc(120)])));
    expectWeightError(() => w2.copyFrom(src, 128), src.path, /sentinel/);  // names the source file
    w2.close();
    src.close();
    const dir = tmpFile('no-such-dir/weight.bin');
    expectWeightError(() => BlobWriter.create(dir), dir, /cannot create/);
  });

  it('reads records past 4 GiB in a sparse file', () => {
    const file = tmpFile('sparse.bin');
    const big = 5 * 2 ** 30 + 5;
    const second = Math.ceil((128 + big) / 64) * 64;
    const fd = fs.openSync(file, 'w+');
    try {
      fs.ftruncateSync(fd, second + 72);
      const header = Buffer.alloc(64);
      header.writeUInt32LE(2, 0);
      header.writeUInt32LE(2, 4);
      const meta = (dtype: number, size: number, dataOffset: number) => {
        const m = Buffer.alloc(64);
        m.writeUInt32LE(0xdeadbeef, 0);
        m.writeUInt32LE(dtype, 4);
        m.writeBigUInt64LE(BigInt(size), 8);
        m.writeBigUInt64LE(BigInt(dataOffset), 16);
        return m;
      };
      fs.writeSync(fd, header, 0, 64, 0);
      fs.writeSync(fd, meta(3, big, 128), 0, 64, 64);
      fs.writeSync(fd, meta(1, 8, second + 64), 0, 64, second);
      fs.writeSync(fd, Buffer.from('003c004000420044', 'hex'), 0, 8, second + 64);
    } finally {
      fs.closeSync(fd);
    }
    const f = BlobFile.open(file);
    const recs = f.records();
    expect(recs[0]!.elementCount).toBe(big);
    expect(recs[1]!.metadataOffset).toBe(second);
    expect(second).toBeGreaterThan(2 ** 32);
    expect(Array.from(f.readFloat32(second))).toEqual([1, 2, 3, 4]);
    expectWeightError(() => f.record(second + 8), file, new RegExp(`offset ${second + 8}`));
    f.close();
    fs.rmSync(file);
  });
});

describe('sub-byte packing for immediates', () => {
  const native = () => nativeAddon<BlobAddon>();

  it('matches the spec §8.3 known answers', () => {
    const hex = (d: BlobDType, v: number[]) => Buffer.from(packSubByte(d, v)).toString('hex');
    expect(hex('uint4', [1, 2, 3, 4])).toBe('2143');
    expect(hex('uint4', [1, 2, 3, 4, 5])).toBe('214305');
    expect(hex('int4', [-8, 7, 3, 4, -2])).toBe('78430e');
    expect(hex('uint2', [0, 3, 2, 1, 3])).toBe('6c03');
    expect(hex('uint3', [2, 7, 7, 5, 5, 4, 3, 0])).toBe('fa5b0e');
    expect(hex('uint6', [1, 2, 3, 4])).toBe('813010');
    expect(hex('uint1', [1, 0, 1, 1, 0, 0, 0, 1, 1])).toBe('8d01');
    expect(hex('uint1', [0, 0, 1, 1, 0])).toBe('0c');
    expect(packSubByte('uint3', new Array(9).fill(0)).length).toBe(4);
    expect(Array.from(unpackSubByte('int4', Uint8Array.from([0x78, 0x43, 0x0e]), 5))).toEqual([-8, 7, 3, 4, -2]);
    expect(Array.from(unpackSubByte('uint3', Uint8Array.from([0xfa, 0x5b, 0x0e]), 8))).toEqual([2, 7, 7, 5, 5, 4, 3, 0]);
    expect(Array.from(unpackSubByte('uint6', Uint8Array.from([0x81, 0x30, 0x10]), 4))).toEqual([1, 2, 3, 4]);
  });

  it('agrees with the native packer on random data', () => {
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8);
    for (const dtype of ['int4', 'uint1', 'uint2', 'uint3', 'uint4', 'uint6', 'uint8', 'int8'] as const) {
      const bits = blobDTypeBits(dtype);
      for (const n of [0, 1, 7, 8, 9, 31, 100, 1001]) {
        const values = Array.from({ length: n }, () => {
          const r = rand() % (1 << bits);
          return dtype === 'int4' || dtype === 'int8' ? r - (1 << (bits - 1)) : r;
        });
        const typed = dtype === 'int4' || dtype === 'int8' ? Int8Array.from(values) : Uint8Array.from(values);
        const ts = packSubByte(dtype, values);
        const nat = native().blobPackSubByte(dtype, typed);
        expect(Buffer.from(ts).equals(nat), `${dtype} n=${n}`).toBe(true);
        expect(Array.from(unpackSubByte(dtype, ts, n))).toEqual(values);
        // Arbitrary bytes (high bits of the last byte set): both unpackers agree.
        const junk = Uint8Array.from({ length: blobPackedSize(dtype, n) }, () => rand() & 0xff);
        expect(Array.from(unpackSubByte(dtype, junk, n))).toEqual(Array.from(native().blobUnpackSubByte(dtype, junk, n)));
      }
    }
  });

  it('range-checks values and sizes', () => {
    expect(() => packSubByte('uint4', [16])).toThrow(/uint4 value 16 at index 0 is out of range \[0, 15\]/);
    expect(() => packSubByte('int4', [0, 8])).toThrow(RangeError);
    expect(() => packSubByte('int4', [-9])).toThrow(RangeError);
    expect(() => packSubByte('uint1', [0.5])).toThrow(RangeError);
    expect(() => packSubByte('float16', [1])).toThrow(TypeError);
    expect(() => unpackSubByte('uint3', new Uint8Array(3), 9)).toThrow(/9 uint3 values need 4 bytes, got 3/);
    expect(() => native().blobPackSubByte('uint2', Uint8Array.from([4]))).toThrow(/uint2 value 4 at index 0/);
  });
});

describe('dtype mapping', () => {
  it('maps MIL DataType values to blob dtypes (spec §2.5.1)', () => {
    expect(blobDTypeFromMilDataType(10)).toBe('float16');
    expect(blobDTypeFromMilDataType(11)).toBe('float32');
    expect(blobDTypeFromMilDataType(25)).toBe('int4');
    expect(blobDTypeFromMilDataType(35)).toBe('uint4');
    expect(blobDTypeFromMilDataType(39)).toBe('uint3');
    expect(blobDTypeFromMilDataType(41)).toBe('float8e5m2');
    for (const noBlob of [0, 1, 2, 12, 24, 34, 99]) expect(blobDTypeFromMilDataType(noBlob)).toBeUndefined();
    for (const d of BLOB_DTYPES) expect(blobDTypeFromMilDataType(milDataTypeFromBlobDType(d))).toBe(d);
    expect(milDataTypeFromBlobDType('uint6')).toBe(38);
  });

  it('agrees with the MIL type table', () => {
    const mil: MilDType[] = ['fp16', 'fp32', 'bf16', 'int4', 'int8', 'int16', 'int32', 'uint1', 'uint2', 'uint3', 'uint4',
      'uint6', 'uint8', 'uint16', 'uint32', 'fp8e4m3fn', 'fp8e5m2', 'int64', 'bool'];
    for (const d of mil) expect(blobDTypeFromMilDataType(dtypeCode(d))).toBe(blobDTypeOf(d));
  });
});

describe('copyRecords (native job)', () => {
  const golden = path.join(FIXTURES, 'coremltools-golden', 'joint_prune50_pal4gs16_ios18.mlpackage', 'Data', 'com.apple.CoreML', 'weights', 'weight.bin');

  it.skipIf(!fs.existsSync(golden))('copies a whole file off the JS thread, even when the source handle is closed meanwhile', async () => {
    const src = BlobFile.open(golden);
    const expected = src.records().map((r) => r.metadataOffset);
    const out = tmpFile('job-copy.bin');
    const w = BlobWriter.create(out);
    const progress: [number, number][] = [];
    const pending = copyRecords(src, w, { onProgress: (d, t) => progress.push([d, t]) });
    src.close();  // the job holds its own reference to the mapping
    expect(await pending).toEqual(expected);
    w.close();
    expect(sha256(fs.readFileSync(out))).toBe(sha256(fs.readFileSync(golden)));
    const last = progress[progress.length - 1]!;
    expect(last[0]).toBe(last[1]);
    expect(last[1]).toBeGreaterThan(0);
  });

  it.skipIf(!fs.existsSync(golden))('copies selected records in the given order, and reports bad offsets and aborts', async () => {
    const src = BlobFile.open(golden);
    const recs = src.records().slice(0, 3).reverse();
    const out = tmpFile('job-some.bin');
    const w = BlobWriter.create(out);
    const offsets = await copyRecords(src, w, { offsets: recs.map((r) => r.metadataOffset) });
    w.close();
    const copy = BlobFile.open(out);
    expect(offsets[0]).toBe(64);
    recs.forEach((r, i) => {
      expect(copy.record(offsets[i]!).dtype).toBe(r.dtype);
      expect(copy.readRaw(offsets[i]!).equals(src.readRaw(r.metadataOffset))).toBe(true);
    });
    copy.close();

    // Native modules accept the TS wrappers too (reader_from/writer_from look at nativeHandle).
    const w3 = BlobWriter.create(tmpFile('job-wrapped.bin'));
    const addon = nativeAddon<BlobAddon>();
    const viaWrappers = await addon.blobCopyRecords(
      src as never, w3 as never, [recs[0]!.metadataOffset], undefined, addon.createCancelToken(),
    );
    expect(viaWrappers).toEqual([64]);
    w3.close();

    const w2 = BlobWriter.create(tmpFile('job-bad.bin'));
    const err = await copyRecords(src, w2, { offsets: [65] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WeightFileError);
    expect((err as WeightFileError).file).toBe(golden);
    expect((err as Error).message).toMatch(/offset 65: no blob metadata/);
    const ac = new AbortController();
    ac.abort();
    await expect(copyRecords(src, w2, { signal: ac.signal })).rejects.toBeInstanceOf(AbortError);
    w2.close();
    src.close();
  });
});
