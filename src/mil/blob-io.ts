/**
 * Plain-JS weight.bin (blob storage v2, spec §3) access for the MIL layer: a reader that fetches
 * one record at a time with positioned reads (never the whole file) and a sequential writer.
 * Used by `info` and the ProgramBuilder; format/blob.ts (native, memory-mapped) can replace them
 * through the same BlobSource / WeightSink interfaces.
 */
import fs from 'node:fs';
import path from 'node:path';
import { WeightFileError } from '../errors.js';
import type { BlobSource } from './program.js';
import type { WeightSink } from './builder.js';
import { packBits, unpackBits, type TensorData } from './values.js';

const DTYPES: Record<number, [string, number]> = {
  1: ['float16', 16], 2: ['float32', 32], 3: ['uint8', 8], 4: ['int8', 8], 5: ['bfloat16', 16], 6: ['int16', 16], 7: ['uint16', 16],
  8: ['int4', 4], 9: ['uint1', 1], 10: ['uint2', 2], 11: ['uint4', 4], 12: ['uint3', 3], 13: ['uint6', 6], 14: ['int32', 32], 15: ['uint32', 32],
  16: ['float8e4m3fn', 8], 17: ['float8e5m2', 8],
};
const CODES = new Map(Object.entries(DTYPES).map(([code, [name, bits]]) => [name, [Number(code), bits] as const]));

export interface BlobRecord { metadataOffset: number; dataOffset: number; dtype: string; bits: number; sizeInBytes: number; elementCount: number }

export class BlobFileReader implements BlobSource {
  readonly file: string;
  readonly size: number;
  private fd: number;
  private constructor(file: string, fd: number) {
    this.file = file;
    this.fd = fd;
    this.size = fs.fstatSync(fd).size;
    const h = this.bytes(0, 64, 'storage header');
    const version = h.readUInt32LE(4);
    if (version !== 2) throw new WeightFileError(`weight file version is ${version}, expected 2`, { file });
  }
  static open(file: string): BlobFileReader {
    let fd: number;
    try { fd = fs.openSync(file, 'r'); } catch (cause) { throw new WeightFileError(`cannot open weight file: ${(cause as Error).message}`, { file, cause }); }
    try { return new BlobFileReader(file, fd); } catch (e) { fs.closeSync(fd); throw e; }
  }
  close(): void { fs.closeSync(this.fd); }
  private bytes(offset: number, length: number, what: string): Buffer {
    if (offset < 0 || offset + length > this.size) throw new WeightFileError(`${what} at offset ${offset} (+${length} bytes) lies outside the file (${this.size} bytes)`, { file: this.file });
    const b = Buffer.alloc(length);
    fs.readSync(this.fd, b, 0, length, offset);
    return b;
  }
  record(offset: number): BlobRecord {
    const m = this.bytes(offset, 64, 'blob metadata');
    if (m.readUInt32LE(0) !== 0xdeadbeef) throw new WeightFileError(`no blob record at offset ${offset} (bad sentinel)`, { file: this.file });
    const code = m.readUInt32LE(4);
    const d = DTYPES[code];
    if (!d) throw new WeightFileError(`blob at offset ${offset} has unknown dtype code ${code}`, { file: this.file });
    const [dtype, bits] = d;
    const sizeInBytes = Number(m.readBigUInt64LE(8));
    const dataOffset = Number(m.readBigUInt64LE(16));
    if (dataOffset + sizeInBytes > this.size) throw new WeightFileError(`blob at offset ${offset}: data [${dataOffset}, +${sizeInBytes}) lies outside the file (${this.size} bytes)`, { file: this.file });
    // padding_size_in_bits is garbage in older files for non-sub-byte types (spec §3.1): only use it for sub-byte.
    const pad = bits < 8 ? Number(m.readBigUInt64LE(24)) : 0;
    if (bits < 8 && pad >= 8) throw new WeightFileError(`blob at offset ${offset}: padding of ${pad} bits`, { file: this.file });
    const elementCount = bits < 8 ? (sizeInBytes * 8 - pad) / bits : sizeInBytes / (bits / 8);
    if (!Number.isInteger(elementCount)) throw new WeightFileError(`blob at offset ${offset}: ${sizeInBytes} bytes is not a whole number of ${dtype} values`, { file: this.file });
    return { metadataOffset: offset, dataOffset, dtype, bits, sizeInBytes, elementCount };
  }
  read(offset: number): TensorData {
    const r = this.record(offset);
    const raw = new Uint8Array(this.bytes(r.dataOffset, r.sizeInBytes, 'blob data'));
    const ab = raw.buffer;
    switch (r.dtype) {
      case 'float16': case 'uint16': case 'bfloat16': return new Uint16Array(ab);
      case 'float32': return new Float32Array(ab);
      case 'int8': return new Int8Array(ab);
      case 'uint8': case 'float8e4m3fn': case 'float8e5m2': return raw;
      case 'int16': return new Int16Array(ab);
      case 'int32': return new Int32Array(ab);
      case 'uint32': return new Uint32Array(ab);
      default: return unpackBits(raw, r.bits, r.elementCount, r.dtype === 'int4');
    }
  }
}

/** Sequential writer (spec §3.3). Sub-byte data is given one value per element and packed LSB-first. */
export class BlobFileWriter implements WeightSink {
  readonly file: string;
  private fd: number;
  private size = 64;
  private count = 0;
  private constructor(file: string) {
    this.file = file;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.fd = fs.openSync(file, 'w');
    this.writeHeader();
  }
  static create(file: string): BlobFileWriter { return new BlobFileWriter(file); }
  private writeHeader(): void {
    const h = Buffer.alloc(64);
    h.writeUInt32LE(this.count, 0);
    h.writeUInt32LE(2, 4);
    fs.writeSync(this.fd, h, 0, 64, 0);
  }
  append(dtype: string, data: ArrayBufferView, elementCount?: number): number {
    const c = CODES.get(dtype);
    if (!c) throw new WeightFileError(`cannot write blob dtype ${dtype}`, { file: this.file });
    const [code, bits] = c;
    const n = elementCount ?? (bits < 8 ? data.byteLength : data.byteLength / (bits / 8));
    const bytes = bits < 8 ? packBits(new Uint8Array(data.buffer, data.byteOffset, n), bits) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
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
    this.writeHeader();
    return meta;
  }
  close(): void { fs.closeSync(this.fd); }
}
