/**
 * MIL blob storage files (`weights/weight.bin`, format version 2; spec §3) through the native
 * memory-mapped reader and buffered writer (native/blob). Opening a file maps it and checks the
 * header; records are validated when accessed. Reads return copies, so use them for inspection and
 * small tensors; bulk work passes `nativeHandle` to native jobs, which stream between mappings.
 *
 * Also: the MIL DataType ↔ blob dtype mapping (spec §2.5.1) and LSB-first sub-byte packing for
 * immediates (spec §3.5).
 */
import { CoreMLOptimizeError, WeightFileError } from '../errors.js';
import { nativeAddon, withCancel, type CancelToken, type ProgressCallback } from '../native.js';

export type BlobDType =
  | 'float16' | 'float32' | 'uint8' | 'int8' | 'bfloat16' | 'int16' | 'uint16' | 'int32' | 'uint32'
  | 'int4' | 'uint1' | 'uint2' | 'uint3' | 'uint4' | 'uint6' | 'float8e4m3fn' | 'float8e5m2';

/** The sub-byte dtypes (packed LSB-first). */
export type SubByteDType = 'int4' | 'uint1' | 'uint2' | 'uint3' | 'uint4' | 'uint6';

export interface BlobRecord {
  /** Offset of the 64-byte metadata record: what a MIL `BlobFileValue.offset` holds. */
  metadataOffset: number;
  dataOffset: number;
  dtype: BlobDType;
  sizeInBytes: number;
  elementCount: number;
}

/** What `read()` returns: one element per array slot (float16/bfloat16 as raw Uint16 bits). */
export type BlobTypedArray = Float32Array | Uint16Array | Int16Array | Int32Array | Uint32Array | Int8Array | Uint8Array;
/** What `append()` accepts for each dtype. */
export type BlobValues = BlobTypedArray | Uint8ClampedArray;

interface BlobDTypeInfo { code: number; bits: number; mil: number }
/** Blob code (MILBlob BlobDataType), bit width and MIL DataType value of each blob dtype. */
const INFO: Record<BlobDType, BlobDTypeInfo> = {
  float16: { code: 1, bits: 16, mil: 10 },
  float32: { code: 2, bits: 32, mil: 11 },
  uint8: { code: 3, bits: 8, mil: 31 },
  int8: { code: 4, bits: 8, mil: 21 },
  bfloat16: { code: 5, bits: 16, mil: 13 },
  int16: { code: 6, bits: 16, mil: 22 },
  uint16: { code: 7, bits: 16, mil: 32 },
  int4: { code: 8, bits: 4, mil: 25 },
  uint1: { code: 9, bits: 1, mil: 37 },
  uint2: { code: 10, bits: 2, mil: 36 },
  uint4: { code: 11, bits: 4, mil: 35 },
  uint3: { code: 12, bits: 3, mil: 39 },
  uint6: { code: 13, bits: 6, mil: 38 },
  int32: { code: 14, bits: 32, mil: 23 },
  uint32: { code: 15, bits: 32, mil: 33 },
  float8e4m3fn: { code: 16, bits: 8, mil: 40 },
  float8e5m2: { code: 17, bits: 8, mil: 41 },
};

export const BLOB_DTYPES = Object.freeze(Object.keys(INFO) as BlobDType[]);
const BY_MIL = new Map<number, BlobDType>(BLOB_DTYPES.map((d) => [INFO[d].mil, d]));

export function isBlobDType(name: string): name is BlobDType {
  return Object.prototype.hasOwnProperty.call(INFO, name);
}
/** Bits per element (1..32). */
export function blobDTypeBits(dtype: BlobDType): number {
  return INFO[dtype].bits;
}
export function isSubByteDType(dtype: BlobDType): dtype is SubByteDType {
  return INFO[dtype].bits < 8;
}
/** The u32 `BlobDataType` code written in the file. */
export function blobDTypeCode(dtype: BlobDType): number {
  return INFO[dtype].code;
}
/** Bytes that `n` elements occupy in a blob: ceil(n·bits/8). */
export function blobPackedSize(dtype: BlobDType, n: number): number {
  return Math.ceil((n * INFO[dtype].bits) / 8);
}
/** Blob dtype for a MIL `DataType` enum value, or undefined when that type cannot live in weight.bin (bool, string, fp64, int64, uint64). */
export function blobDTypeFromMilDataType(milDataType: number): BlobDType | undefined {
  return BY_MIL.get(milDataType);
}
/** MIL `DataType` enum value of a blob dtype (FLOAT16 = 10, UINT4 = 35, ...). */
export function milDataTypeFromBlobDType(dtype: BlobDType): number {
  return INFO[dtype].mil;
}

/* ---- sub-byte packing for immediates (small data; the native packer handles blobs) ---- */

function checkedBits(dtype: BlobDType, what: string): number {
  const bits = INFO[dtype]?.bits;
  if (bits === undefined || bits > 8) throw new TypeError(`${what}: ${dtype} is not a sub-byte or 8-bit dtype`);
  return bits;
}

/**
 * Packs values LSB-first (element i at bit i·bits). Values are range-checked: int4 in [-8, 7]
 * (stored as a two's-complement nibble), uintN in [0, 2^N − 1]; unused high bits of the last byte
 * are 0. 8-bit dtypes are copied.
 */
export function packSubByte(dtype: BlobDType, values: ArrayLike<number>): Uint8Array {
  const bits = checkedBits(dtype, 'packSubByte');
  const signed = dtype === 'int4' || dtype === 'int8';
  const lo = signed ? -(1 << (bits - 1)) : 0;
  const hi = signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
  const out = new Uint8Array(blobPackedSize(dtype, values.length));
  const mask = (1 << bits) - 1;
  let bit = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isInteger(v) || v < lo || v > hi) {
      throw new RangeError(`${dtype} value ${v} at index ${i} is out of range [${lo}, ${hi}]`);
    }
    // A value never spans more than two bytes (bits <= 8).
    const word = (v & mask) << (bit & 7);
    out[bit >> 3]! |= word & 0xff;
    if (word > 0xff) out[(bit >> 3) + 1]! |= word >> 8;
    bit += bits;
  }
  return out;
}

/** Unpacks `n` LSB-first values; int4 (and int8) come back sign-extended in an Int8Array. */
export function unpackSubByte(dtype: 'int4' | 'int8', bytes: Uint8Array, n: number): Int8Array;
export function unpackSubByte(dtype: BlobDType, bytes: Uint8Array, n: number): Uint8Array | Int8Array;
export function unpackSubByte(dtype: BlobDType, bytes: Uint8Array, n: number): Uint8Array | Int8Array {
  const bits = checkedBits(dtype, 'unpackSubByte');
  const need = blobPackedSize(dtype, n);
  if (bytes.length < need) throw new RangeError(`${n} ${dtype} values need ${need} bytes, got ${bytes.length}`);
  const signed = dtype === 'int4' || dtype === 'int8';
  const out = signed ? new Int8Array(n) : new Uint8Array(n);
  const mask = (1 << bits) - 1;
  const sign = 1 << (bits - 1);
  let bit = 0;
  for (let i = 0; i < n; i++) {
    const at = bit >> 3;
    const word = bytes[at]! | ((at + 1 < bytes.length ? bytes[at + 1]! : 0) << 8);
    let v = (word >> (bit & 7)) & mask;
    if (signed && v & sign) v -= 1 << bits;
    out[i] = v;
    bit += bits;
  }
  return out;
}

/* ---- native binding ---- */

interface NativeBlobFile {
  readonly path: string;
  readonly count: number;
  readonly size: number;
  readonly closed: boolean;
  record(offset: number): BlobRecord;
  records(): BlobRecord[];
  read(offset: number): BlobTypedArray;
  readFloat32(offset: number): Float32Array;
  readRaw(offset: number): Buffer;
  close(): void;
}
interface NativeBlobWriter {
  readonly path: string;
  readonly count: number;
  readonly size: number;
  readonly closed: boolean;
  append(dtype: BlobDType, values: BlobValues, elementCount?: number): number;
  appendRaw(dtype: BlobDType, bytes: Uint8Array, elementCount: number): number;
  copyFrom(file: NativeBlobFile, offset: number): number;
  close(): void;
}
/** The blob part of the addon's surface. */
export interface BlobAddon {
  BlobFile: new (path: string) => NativeBlobFile;
  BlobWriter: new (path: string) => NativeBlobWriter;
  blobPackSubByte(dtype: BlobDType, values: Uint8Array | Int8Array): Buffer;
  blobUnpackSubByte(dtype: BlobDType, bytes: Uint8Array, n: number): Uint8Array | Int8Array;
  blobCopyRecords(
    file: NativeBlobFile, writer: NativeBlobWriter, offsets: number[] | undefined,
    onProgress: ProgressCallback | undefined, cancel: CancelToken,
  ): Promise<number[]>;
}

function addon(): BlobAddon {
  return nativeAddon<BlobAddon>();
}

/** Native errors carry a code and a message starting with the file path; re-raise as WeightFileError. */
function convert(err: unknown, file: string): unknown {
  const e = err as { code?: unknown; message?: unknown };
  if (err instanceof CoreMLOptimizeError) return err;  // already converted (copyFrom's source errors)
  if (!(err instanceof Error) || typeof e.code !== 'string') return err;  // TypeError/RangeError from argument checks
  const message = String(e.message);
  const prefix = `${file}: `;
  return new WeightFileError(message.startsWith(prefix) ? message.slice(prefix.length) : message, { file, cause: err });
}

function guard<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw convert(err, file);
  }
}

/** A weight.bin opened for reading (memory-mapped). */
export class BlobFile {
  /** The native object; pass it (or this BlobFile) to native jobs that stream from the mapping. */
  readonly nativeHandle: NativeBlobFile;
  readonly path: string;

  private constructor(path: string, handle: NativeBlobFile) {
    this.path = path;
    this.nativeHandle = handle;
  }

  /** Maps the file and checks its header. Throws WeightFileError naming the file. */
  static open(path: string): BlobFile {
    const native = addon();
    return new BlobFile(path, guard(path, () => new native.BlobFile(path)));
  }

  /** Number of blobs the header declares. */
  get count(): number {
    return guard(this.path, () => this.nativeHandle.count);
  }
  /** File size in bytes. */
  get size(): number {
    return guard(this.path, () => this.nativeHandle.size);
  }
  get closed(): boolean {
    return this.nativeHandle.closed;
  }
  /** The validated record whose metadata is at `offset` (a BlobFileValue.offset). */
  record(offset: number): BlobRecord {
    return guard(this.path, () => this.nativeHandle.record(offset));
  }
  /** All records in file order. */
  records(): BlobRecord[] {
    return guard(this.path, () => this.nativeHandle.records());
  }
  /**
   * A copy of the record's elements: Float32Array (float32), Uint16Array raw bits (float16,
   * bfloat16, uint16), Int16Array, Int32Array, Uint32Array, Int8Array (int8, int4 sign-extended),
   * Uint8Array (uint8, uint1..uint6 one per element, float8 raw bytes).
   */
  read(offset: number): BlobTypedArray {
    return guard(this.path, () => this.nativeHandle.read(offset));
  }
  /** float16 / bfloat16 / float32 data widened to float32. */
  readFloat32(offset: number): Float32Array {
    return guard(this.path, () => this.nativeHandle.readFloat32(offset));
  }
  /** The record's bytes as stored (packed for sub-byte dtypes). */
  readRaw(offset: number): Buffer {
    return guard(this.path, () => this.nativeHandle.readRaw(offset));
  }
  /** Releases the mapping (native jobs still using it keep it alive until they finish). */
  close(): void {
    this.nativeHandle.close();
  }
}

/** A weight.bin being written (created/truncated; byte-identical to coremltools' writer). */
export class BlobWriter {
  /** The native object; pass it (or this BlobWriter) to native jobs that append records. */
  readonly nativeHandle: NativeBlobWriter;
  readonly path: string;

  private constructor(path: string, handle: NativeBlobWriter) {
    this.path = path;
    this.nativeHandle = handle;
  }

  static create(path: string): BlobWriter {
    const native = addon();
    return new BlobWriter(path, guard(path, () => new native.BlobWriter(path)));
  }

  get count(): number {
    return this.nativeHandle.count;
  }
  /** Bytes written so far. */
  get size(): number {
    return this.nativeHandle.size;
  }
  get closed(): boolean {
    return this.nativeHandle.closed;
  }
  /**
   * Appends unpacked values (one per element: Uint16Array raw bits for float16/bfloat16, one value
   * per byte for sub-byte dtypes, packed here). `elementCount` defaults to `values.length`.
   * Returns the record's metadata offset, for the BlobFileValue.
   */
  append(dtype: BlobDType, values: BlobValues, elementCount?: number): number {
    return guard(this.path, () => this.nativeHandle.append(dtype, values, elementCount));
  }
  /** Appends data already in file layout (packed for sub-byte dtypes). */
  appendRaw(dtype: BlobDType, bytes: Uint8Array, elementCount: number): number {
    return guard(this.path, () => this.nativeHandle.appendRaw(dtype, bytes, elementCount));
  }
  /** Copies the record at `offset` of another file without going through JS memory. */
  copyFrom(file: BlobFile, offset: number): number {
    return guard(this.path, () => {
      try {
        return this.nativeHandle.copyFrom(file.nativeHandle, offset);
      } catch (err) {
        // Errors about the source record name the source file.
        if ((err as Error)?.message?.startsWith(`${file.path}: `)) throw convert(err, file.path);
        throw err;
      }
    });
  }
  /** Flushes, writes the final header and fsyncs. Idempotent. */
  close(): void {
    guard(this.path, () => this.nativeHandle.close());
  }
}

export interface CopyRecordsOptions {
  /** Metadata offsets to copy, in this order (default: every record in file order). */
  offsets?: number[];
  /** Called with bytes copied / total bytes. */
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/**
 * Copies records from `source` into `writer` on a native worker thread, streaming from the mapping
 * (no JS copies). Resolves with the new metadata offsets, one per copied record. Closing either JS
 * handle meanwhile does not disturb the copy of `source`; closing the writer makes it fail.
 */
export async function copyRecords(source: BlobFile, writer: BlobWriter, options: CopyRecordsOptions = {}): Promise<number[]> {
  const native = addon();
  try {
    return await withCancel(options.signal, (token) =>
      native.blobCopyRecords(source.nativeHandle, writer.nativeHandle, options.offsets, options.onProgress, token),
    );
  } catch (err) {
    const message = (err as Error)?.message ?? '';
    throw convert(err, message.startsWith(`${source.path}: `) ? source.path : writer.path);
  }
}
