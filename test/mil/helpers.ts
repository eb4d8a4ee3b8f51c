/**
 * Test helpers: fixture discovery, and a tiny independent weight.bin reader/writer used as
 * the test oracle (and as a stand-in until src/format/blob.ts lands).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scanModelBytes } from '../../src/mil/proto.js';
import { Program, type BlobSource } from '../../src/mil/program.js';
import { unpackBits } from '../../src/mil/values.js';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/fixtures');
export const GOLDEN = path.join(FIXTURES, 'coremltools-golden');
export const hasFixtures = fs.existsSync(FIXTURES);

/** Every model.mlmodel / .mlmodel under fixtures. */
export function allModelFiles(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.mlmodel')) out.push(p);
    }
  };
  if (hasFixtures) walk(FIXTURES);
  return out.sort();
}

export function packageModelFile(pkg: string): string {
  const manifest = JSON.parse(fs.readFileSync(path.join(pkg, 'Manifest.json'), 'utf8')) as { rootModelIdentifier: string; itemInfoEntries: Record<string, { path: string }> };
  return path.join(pkg, 'Data', manifest.itemInfoEntries[manifest.rootModelIdentifier]!.path);
}

const BLOB_DTYPES: Record<number, [string, number]> = {
  1: ['float16', 16], 2: ['float32', 32], 3: ['uint8', 8], 4: ['int8', 8], 5: ['bfloat16', 16], 6: ['int16', 16], 7: ['uint16', 16],
  8: ['int4', 4], 9: ['uint1', 1], 10: ['uint2', 2], 11: ['uint4', 4], 12: ['uint3', 3], 13: ['uint6', 6], 14: ['int32', 32], 15: ['uint32', 32],
};

/** Reads records with positioned reads (never the whole file). */
export class TestBlobReader implements BlobSource {
  private fd: number;
  constructor(readonly file: string) { this.fd = fs.openSync(file, 'r'); }
  close(): void { fs.closeSync(this.fd); }
  record(offset: number) {
    const m = Buffer.alloc(64);
    fs.readSync(this.fd, m, 0, 64, offset);
    if (m.readUInt32LE(0) !== 0xdeadbeef) throw new Error(`no blob at ${offset}`);
    const code = m.readUInt32LE(4);
    const [dtype, bits] = BLOB_DTYPES[code]!;
    const sizeInBytes = Number(m.readBigUInt64LE(8));
    const dataOffset = Number(m.readBigUInt64LE(16));
    const pad = bits < 8 ? Number(m.readBigUInt64LE(24)) : 0;
    return { dtype, bits, sizeInBytes, dataOffset, elementCount: (sizeInBytes * 8 - pad) / bits };
  }
  read(offset: number) {
    const r = this.record(offset);
    const buf = Buffer.alloc(r.sizeInBytes);
    fs.readSync(this.fd, buf, 0, r.sizeInBytes, r.dataOffset);
    const ab = new Uint8Array(buf).buffer;
    switch (r.dtype) {
      case 'float16': case 'uint16': case 'bfloat16': return new Uint16Array(ab);
      case 'float32': return new Float32Array(ab);
      case 'int8': return new Int8Array(ab);
      case 'uint8': return new Uint8Array(ab);
      case 'int16': return new Int16Array(ab);
      case 'int32': return new Int32Array(ab);
      case 'uint32': return new Uint32Array(ab);
      default: return unpackBits(new Uint8Array(ab), r.bits, r.elementCount, r.dtype === 'int4');
    }
  }
}

/** Load the Program of a model file (package dir or .mlmodel), blobs resolved under the package's weights/. */
export function loadProgramFixture(modelFile: string): { program: Program; specVersion: number; programBytes: Uint8Array; weightsDir: string; readers: TestBlobReader[] } {
  const bytes = new Uint8Array(fs.readFileSync(modelFile));
  const { specificationVersion, mlProgram } = scanModelBytes(bytes, modelFile);
  if (!mlProgram) throw new Error(`${modelFile} is not an ML Program`);
  const weightsDir = path.join(path.dirname(modelFile), 'weights');
  const readers: TestBlobReader[] = [];
  const cache = new Map<string, TestBlobReader>();
  const program = Program.decode(mlProgram, {
    file: modelFile,
    blobs: fileName => {
      let r = cache.get(fileName);
      if (!r) {
        r = new TestBlobReader(path.join(weightsDir, fileName.replace('@model_path/weights/', '')));
        cache.set(fileName, r);
        readers.push(r);
      }
      return r;
    },
  });
  return { program, specVersion: specificationVersion, programBytes: mlProgram, weightsDir, readers };
}

const BLOB_CODES: Record<string, [number, number]> = {
  float16: [1, 16], float32: [2, 32], uint8: [3, 8], int8: [4, 8], bfloat16: [5, 16], int16: [6, 16], uint16: [7, 16],
  int4: [8, 4], uint1: [9, 1], uint2: [10, 2], uint4: [11, 4], uint3: [12, 3], uint6: [13, 6], int32: [14, 32], uint32: [15, 32],
};

/** Minimal spec §3.3 writer (test oracle / stand-in for format/blob.ts BlobWriter). */
export class TestBlobWriter {
  private fd: number;
  private size = 64;
  private count = 0;
  constructor(readonly file: string) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.fd = fs.openSync(file, 'w');
    this.header();
  }
  private header() {
    const h = Buffer.alloc(64);
    h.writeUInt32LE(this.count, 0);
    h.writeUInt32LE(2, 4);
    fs.writeSync(this.fd, h, 0, 64, 0);
  }
  append(dtype: string, data: ArrayBufferView, elementCount?: number): number {
    const [code, bits] = BLOB_CODES[dtype]!;
    let bytes: Uint8Array;
    if (bits < 8) bytes = packBitsLsb(data as Uint8Array, bits);
    else bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const n = elementCount ?? (bits < 8 ? (data as Uint8Array).length : data.byteLength / (bits / 8));
    const meta = Math.ceil(this.size / 64) * 64;
    const m = Buffer.alloc(64);
    m.writeUInt32LE(0xdeadbeef, 0);
    m.writeUInt32LE(code, 4);
    m.writeBigUInt64LE(BigInt(bytes.length), 8);
    m.writeBigUInt64LE(BigInt(meta + 64), 16);
    m.writeBigUInt64LE(BigInt(bits < 8 ? (8 - ((n * bits) % 8)) % 8 : 0), 24);
    if (meta > this.size) fs.writeSync(this.fd, Buffer.alloc(meta - this.size), 0, meta - this.size, this.size);
    fs.writeSync(this.fd, m, 0, 64, meta);
    fs.writeSync(this.fd, bytes, 0, bytes.length, meta + 64);
    this.size = meta + 64 + bytes.length;
    this.count++;
    this.header();
    return meta;
  }
  close(): void { fs.closeSync(this.fd); }
}

function packBitsLsb(values: Uint8Array, bits: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((values.length * bits) / 8));
  let bit = 0;
  for (const v of values) for (let b = 0; b < bits; b++, bit++) if ((v >> b) & 1) out[bit >> 3]! |= 1 << (bit & 7);
  return out;
}
