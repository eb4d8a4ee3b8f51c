/**
 * Immediate values (`Value.immediateValue.tensor`): encode and decode exactly as coremltools does.
 * fp16/int8/uint8/uint32/sub-byte go in `bytes` (sub-byte LSB-first packed), fp32 in `floats`,
 * int16/uint16/int32 in `ints`, int64/uint64 in `longInts`, fp64 in `doubles`, bool in `bools`,
 * string in `strings` (spec §2.5.1, §2.6).
 */
import { ModelFormatError } from '../errors.js';
import { packSubByte, unpackSubByte, type BlobDType } from '../format/blob.js';
import { dtypeBits, dtypeFromCode, isSubByte, isSigned, tensorType, toNumber, type Dim, type Long, type MilDType, type ValueTypeMsg, tensorShape, elementCountOf } from './types.js';

export type TensorData =
  | Float32Array | Float64Array | Uint16Array | Int8Array | Uint8Array | Int16Array | Int32Array | Uint32Array
  | BigInt64Array | BigUint64Array | boolean[] | string[];

export interface TensorValueMsg {
  floats?: { values?: number[] | null } | null;
  ints?: { values?: number[] | null } | null;
  bools?: { values?: boolean[] | null } | null;
  strings?: { values?: string[] | null } | null;
  longInts?: { values?: (number | Long)[] | null } | null;
  doubles?: { values?: number[] | null } | null;
  bytes?: { values?: Uint8Array | null } | null;
}
export interface ValueMsg {
  docString?: string | null;
  type?: ValueTypeMsg | null;
  immediateValue?: { tensor?: TensorValueMsg | null; tuple?: { values?: ValueMsg[] | null } | null; list?: { values?: ValueMsg[] | null } | null; dictionary?: { values?: { key?: ValueMsg | null; value?: ValueMsg | null }[] | null } | null } | null;
  blobFileValue?: { fileName?: string | null; offset?: number | Long | null } | null;
}

/* ---- sub-byte packing (LSB-first, spec §3.5) ---- */

// One packing implementation for the whole package: format/blob.ts (same bit order as weight.bin).
const UNSIGNED_BY_BITS: Record<number, BlobDType> = { 1: 'uint1', 2: 'uint2', 3: 'uint3', 4: 'uint4', 6: 'uint6', 8: 'uint8' };
function subByteDType(bits: number, signed: boolean): BlobDType {
  const d = signed ? (bits === 4 ? 'int4' : bits === 8 ? 'int8' : undefined) : UNSIGNED_BY_BITS[bits];
  if (!d) throw new RangeError(`no ${signed ? 'signed' : 'unsigned'} ${bits}-bit element type`);
  return d;
}

/** Pack n-bit values LSB-first; element i starts at bit i·n. Negative values are int4 (two's complement). */
export function packBits(values: ArrayLike<number>, bits: number): Uint8Array {
  let signed = false;
  for (let i = 0; i < values.length; i++) if (values[i]! < 0) { signed = true; break; }
  return packSubByte(subByteDType(bits, signed), values);
}

/** Unpack `count` n-bit values LSB-first; `signed` sign-extends from the top bit (int4). */
export function unpackBits(bytes: Uint8Array, bits: number, count: number, signed = false): Int8Array | Uint8Array {
  return unpackSubByte(subByteDType(bits, signed), bytes, count);
}

/* ---- fp16 bits ---- */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** float → IEEE half bits, round to nearest even (matches numpy astype(float16)). */
export function floatToHalfBits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}
export function halfBitsToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export function halfBitsToFloatArray(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfBitsToFloat(bits[i]!);
  return out;
}

/* ---- decode ---- */

function shapeCount(type: ValueTypeMsg | null | undefined, what: string): number {
  const shape = tensorShape(type);
  if (!shape) throw new ModelFormatError(`${what}: value has no tensor type`);
  const n = elementCountOf(shape);
  if (n === undefined) throw new ModelFormatError(`${what}: constant has an unknown dimension`);
  return n;
}

/**
 * Decode an immediate tensor Value into a typed array: fp16 → Uint16Array of raw bits,
 * fp32 → Float32Array, sub-byte → one element per entry (Int8Array for int4, else Uint8Array).
 */
export function decodeImmediateTensor(v: ValueMsg, what = 'value'): TensorData {
  const tv = v.immediateValue?.tensor;
  if (!tv) throw new ModelFormatError(`${what}: not an immediate tensor`);
  const tt = v.type?.tensorType;
  if (!tt) throw new ModelFormatError(`${what}: immediate tensor value without a tensor type`);
  let dtype: MilDType;
  try { dtype = dtypeFromCode(tt.dataType ?? 0); } catch { throw new ModelFormatError(`${what}: unknown MIL DataType ${tt.dataType ?? 0}`); }
  const n = shapeCount(v.type, what);
  const check = (len: number) => {
    if (len !== n) throw new ModelFormatError(`${what}: immediate ${dtype} holds ${len} elements, type says ${n}`);
  };
  if (tv.bytes) {
    const raw = tv.bytes.values ?? new Uint8Array(0);
    if (isSubByte(dtype)) {
      if (raw.length !== Math.ceil((n * dtypeBits(dtype)) / 8)) throw new ModelFormatError(`${what}: immediate ${dtype} bytes hold ${raw.length} bytes, type needs ${Math.ceil((n * dtypeBits(dtype)) / 8)}`);
      return unpackBits(raw, dtypeBits(dtype), n, isSigned(dtype));
    }
    const width = dtypeBits(dtype) / 8;
    if (raw.length !== n * width) throw new ModelFormatError(`${what}: immediate ${dtype} bytes hold ${raw.length} bytes, type needs ${n * width}`);
    // protobufjs hands out Buffer views into a shared pool; copy into an own, aligned buffer.
    const copy = new Uint8Array(raw);
    switch (dtype) {
      case 'fp16': case 'bf16': return new Uint16Array(copy.buffer, 0, n);
      case 'int8': return new Int8Array(copy.buffer, 0, n);
      case 'uint8': case 'bool': return copy;
      case 'uint32': return new Uint32Array(copy.buffer, 0, n);
      case 'int32': return new Int32Array(copy.buffer, 0, n);
      case 'fp32': return new Float32Array(copy.buffer, 0, n);
      case 'int16': return new Int16Array(copy.buffer, 0, n);
      case 'uint16': return new Uint16Array(copy.buffer, 0, n);
      default: throw new ModelFormatError(`${what}: dtype ${dtype} cannot be read from bytes`);
    }
  }
  if (tv.floats) { const a = Float32Array.from(tv.floats.values ?? []); check(a.length); return a; }
  if (tv.doubles) { const a = Float64Array.from(tv.doubles.values ?? []); check(a.length); return dtype === 'fp32' ? Float32Array.from(a) : a; }
  if (tv.ints) {
    const vals = tv.ints.values ?? [];
    check(vals.length);
    switch (dtype) {
      case 'int16': return Int16Array.from(vals);
      case 'uint16': return Uint16Array.from(vals);
      case 'int8': return Int8Array.from(vals);
      case 'uint8': return Uint8Array.from(vals);
      case 'uint32': return Uint32Array.from(vals);
      default: return Int32Array.from(vals);
    }
  }
  if (tv.longInts) {
    const vals = (tv.longInts.values ?? []).map(x => (typeof x === 'number' ? BigInt(x) : BigInt.asIntN(64, (BigInt(x.high >>> 0) << 32n) | BigInt(x.low >>> 0))));
    check(vals.length);
    return dtype === 'uint64' ? BigUint64Array.from(vals.map(x => BigInt.asUintN(64, x))) : BigInt64Array.from(vals);
  }
  if (tv.bools) { const a = [...(tv.bools.values ?? [])]; check(a.length); return a; }
  if (tv.strings) { const a = [...(tv.strings.values ?? [])]; check(a.length); return a; }
  throw new ModelFormatError(`${what}: immediate tensor has no value field`);
}

/* ---- encode ---- */

function asBytes(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

/**
 * Encode a tensor as an immediate Value the way coremltools' exporter does. fp16 data is given
 * as raw bits (Uint16Array) or as numbers (converted with round-to-nearest-even).
 */
export function encodeImmediateTensor(dtype: MilDType, data: ArrayLike<number> | ArrayLike<bigint> | readonly boolean[] | readonly string[], shape: readonly Dim[]): ValueMsg {
  const n = elementCountOf(shape);
  if (n === undefined) throw new RangeError('an immediate constant needs a fully known shape');
  if (data.length !== n) throw new RangeError(`immediate ${dtype}: ${data.length} values for shape [${shape.join(', ')}]`);
  const nums = data as ArrayLike<number>;
  let tensor: TensorValueMsg;
  switch (dtype) {
    case 'fp16': case 'bf16': {
      const bits = data instanceof Uint16Array ? data : Uint16Array.from(nums, x => floatToHalfBits(x));
      if (dtype === 'bf16' && !(data instanceof Uint16Array)) throw new RangeError('bf16 immediates must be given as raw bits');
      tensor = { bytes: { values: asBytes(bits) } };
      break;
    }
    case 'fp32': tensor = { floats: { values: Array.from(nums) } }; break;
    case 'fp64': tensor = { doubles: { values: Array.from(nums) } }; break;
    case 'int8': tensor = { bytes: { values: asBytes(Int8Array.from(nums)) } }; break;
    case 'uint8': tensor = { bytes: { values: Uint8Array.from(nums) } }; break;
    case 'uint32': tensor = { bytes: { values: asBytes(Uint32Array.from(nums)) } }; break;
    case 'int16': case 'uint16': case 'int32': tensor = { ints: { values: Array.from(nums) } }; break;
    case 'int64': case 'uint64': tensor = { longInts: { values: Array.from(data as ArrayLike<number | bigint>, x => Number(x)) } }; break;
    case 'bool': tensor = { bools: { values: Array.from(data as ArrayLike<boolean | number>, x => Boolean(x)) } }; break;
    case 'string': tensor = { strings: { values: Array.from(data as readonly string[]) } }; break;
    case 'int4': case 'uint1': case 'uint2': case 'uint3': case 'uint4': case 'uint6': {
      const bits = dtypeBits(dtype);
      const lo = dtype === 'int4' ? -8 : 0;
      const hi = dtype === 'int4' ? 7 : (1 << bits) - 1;
      for (let i = 0; i < nums.length; i++) if (nums[i]! < lo || nums[i]! > hi) throw new RangeError(`${dtype} value ${nums[i]} out of range [${lo}, ${hi}]`);
      tensor = { bytes: { values: packBits(nums, bits) } };
      break;
    }
    default: throw new RangeError(`dtype ${dtype} cannot be an immediate value`);
  }
  return { type: tensorType(dtype, shape), immediateValue: { tensor } };
}

/** Scalar string Value (used for op `name` attributes). */
export function stringScalar(s: string): ValueMsg {
  return encodeImmediateTensor('string', [s], []);
}

/** Read a scalar immediate as a JS value (number, bigint, boolean or string). */
export function scalarOf(v: ValueMsg, what = 'value'): number | string | boolean | bigint {
  const d = decodeImmediateTensor(v, what);
  if (d.length < 1) throw new ModelFormatError(`${what}: empty tensor where a scalar was expected`);
  const x = d[0]!;
  return typeof x === 'number' && v.type?.tensorType?.dataType === 10 ? halfBitsToFloat(x) : x;
}

export { toNumber };
