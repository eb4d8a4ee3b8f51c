/**
 * MIL data types and ValueType helpers. Dtype names follow coremltools' short names
 * ("fp16", "uint4", ...), which is also what the golden sidecars use.
 */

/** MIL.proto `DataType` enum values. */
export const DataType = {
  UNUSED_TYPE: 0,
  BOOL: 1,
  STRING: 2,
  FLOAT16: 10,
  FLOAT32: 11,
  FLOAT64: 12,
  BFLOAT16: 13,
  INT8: 21,
  INT16: 22,
  INT32: 23,
  INT64: 24,
  INT4: 25,
  UINT8: 31,
  UINT16: 32,
  UINT32: 33,
  UINT64: 34,
  UINT4: 35,
  UINT2: 36,
  UINT1: 37,
  UINT6: 38,
  UINT3: 39,
  FLOAT8E4M3FN: 40,
  FLOAT8E5M2: 41,
} as const;

export type MilDType =
  | 'bool' | 'string' | 'fp16' | 'fp32' | 'fp64' | 'bf16'
  | 'int4' | 'int8' | 'int16' | 'int32' | 'int64'
  | 'uint1' | 'uint2' | 'uint3' | 'uint4' | 'uint6' | 'uint8' | 'uint16' | 'uint32' | 'uint64'
  | 'fp8e4m3fn' | 'fp8e5m2';

interface DTypeInfo { code: number; bits: number; blob?: string }

/** Bit width and blob-file dtype name (the BlobWriter's BlobDType) of each MIL dtype. */
const DTYPES: Record<MilDType, DTypeInfo> = {
  bool: { code: 1, bits: 8 },
  string: { code: 2, bits: 0 },
  fp16: { code: 10, bits: 16, blob: 'float16' },
  fp32: { code: 11, bits: 32, blob: 'float32' },
  fp64: { code: 12, bits: 64 },
  bf16: { code: 13, bits: 16, blob: 'bfloat16' },
  int8: { code: 21, bits: 8, blob: 'int8' },
  int16: { code: 22, bits: 16, blob: 'int16' },
  int32: { code: 23, bits: 32, blob: 'int32' },
  int64: { code: 24, bits: 64 },
  int4: { code: 25, bits: 4, blob: 'int4' },
  uint8: { code: 31, bits: 8, blob: 'uint8' },
  uint16: { code: 32, bits: 16, blob: 'uint16' },
  uint32: { code: 33, bits: 32, blob: 'uint32' },
  uint64: { code: 34, bits: 64 },
  uint4: { code: 35, bits: 4, blob: 'uint4' },
  uint2: { code: 36, bits: 2, blob: 'uint2' },
  uint1: { code: 37, bits: 1, blob: 'uint1' },
  uint6: { code: 38, bits: 6, blob: 'uint6' },
  uint3: { code: 39, bits: 3, blob: 'uint3' },
  fp8e4m3fn: { code: 40, bits: 8, blob: 'float8e4m3fn' },
  fp8e5m2: { code: 41, bits: 8, blob: 'float8e5m2' },
};

const BY_CODE = new Map<number, MilDType>(Object.entries(DTYPES).map(([k, v]) => [v.code, k as MilDType]));
const BY_BLOB = new Map<string, MilDType>(
  Object.entries(DTYPES).filter(([, v]) => v.blob).map(([k, v]) => [v.blob as string, k as MilDType]),
);

export function dtypeFromCode(code: number): MilDType {
  const d = BY_CODE.get(code);
  if (!d) throw new RangeError(`unknown MIL DataType ${code}`);
  return d;
}
export function dtypeCode(d: MilDType): number { return DTYPES[d].code; }
export function dtypeBits(d: MilDType): number { return DTYPES[d].bits; }
/** Blob-file dtype name for the BlobWriter, or undefined when the dtype cannot live in weight.bin. */
export function blobDTypeOf(d: MilDType): string | undefined { return DTYPES[d].blob; }
export function dtypeFromBlob(name: string): MilDType | undefined { return BY_BLOB.get(name); }
export function isSubByte(d: MilDType): boolean { return DTYPES[d].bits > 0 && DTYPES[d].bits < 8; }
export function isFloat(d: MilDType): boolean { return d === 'fp16' || d === 'fp32' || d === 'fp64' || d === 'bf16' || d === 'fp8e4m3fn' || d === 'fp8e5m2'; }
export function isInteger(d: MilDType): boolean { return d.startsWith('int') || d.startsWith('uint'); }
export function isSigned(d: MilDType): boolean { return d.startsWith('int'); }
/** Bytes a dense tensor of this dtype takes in weight.bin / an immediate `bytes` field. */
export function storedBytes(d: MilDType, elementCount: number): number {
  return Math.ceil((elementCount * DTYPES[d].bits) / 8);
}

/** A dimension: a number, or null when unknown (flexible). */
export type Dim = number | null;

/* ---- ValueType messages (protobufjs field names, camelCase) ---- */

export interface DimensionMsg { constant?: { size?: number | Long | null } | null; unknown?: { variadic?: boolean | null } | null }
export interface TensorTypeMsg { dataType?: number | null; rank?: number | Long | null; dimensions?: DimensionMsg[] | null; attributes?: Record<string, unknown> | null }
export interface ValueTypeMsg {
  tensorType?: TensorTypeMsg | null;
  listType?: { type?: ValueTypeMsg | null; length?: DimensionMsg | null } | null;
  tupleType?: { types?: ValueTypeMsg[] | null } | null;
  dictionaryType?: { keyType?: ValueTypeMsg | null; valueType?: ValueTypeMsg | null } | null;
  stateType?: { wrappedType?: ValueTypeMsg | null } | null;
}
/** Minimal structural view of a `long` Long (protobufjs decodes 64-bit fields to it). */
export interface Long { toNumber(): number; low: number; high: number; unsigned: boolean }

export function toNumber(v: number | Long | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

/** Kind of a ValueType: 'tensor' | 'list' | 'tuple' | 'dictionary' | 'state' | 'none'. */
export function valueTypeKind(t: ValueTypeMsg | null | undefined): 'tensor' | 'list' | 'tuple' | 'dictionary' | 'state' | 'none' {
  if (!t) return 'none';
  if (t.tensorType) return 'tensor';
  if (t.listType) return 'list';
  if (t.tupleType) return 'tuple';
  if (t.dictionaryType) return 'dictionary';
  if (t.stateType) return 'state';
  return 'none';
}

export function tensorDType(t: ValueTypeMsg | null | undefined): MilDType | undefined {
  const tt = t?.tensorType ?? t?.stateType?.wrappedType?.tensorType;
  return tt ? dtypeFromCode(tt.dataType ?? 0) : undefined;
}

export function tensorShape(t: ValueTypeMsg | null | undefined): Dim[] | undefined {
  const tt = t?.tensorType ?? t?.stateType?.wrappedType?.tensorType;
  if (!tt) return undefined;
  return (tt.dimensions ?? []).map(d => (d.constant ? toNumber(d.constant.size) : null));
}

export function tensorRank(t: ValueTypeMsg | null | undefined): number | undefined {
  const tt = t?.tensorType;
  return tt ? toNumber(tt.rank) : undefined;
}

/** Product of a fully known shape, or undefined when a dimension is unknown. */
export function elementCountOf(shape: readonly Dim[]): number | undefined {
  let n = 1;
  for (const d of shape) { if (d === null) return undefined; n *= d; }
  return n;
}

/** A tensor ValueType as coremltools writes it (rank 0 = scalar with no dimensions). */
export function tensorType(dtype: MilDType, shape: readonly Dim[]): ValueTypeMsg {
  const tt: TensorTypeMsg = { dataType: dtypeCode(dtype), rank: shape.length, dimensions: shape.map(d => (d === null ? { unknown: { variadic: false } } : { constant: { size: d } })) };
  // proto3 writers omit default scalars: an absent rank is rank 0.
  if (shape.length === 0) delete tt.rank;
  if (tt.dimensions!.length === 0) delete tt.dimensions;
  return { tensorType: tt };
}

/** Human form, e.g. `fp16[64, 32, 3, 3]`, `int32[?, 1]`, `fp32` (scalar). */
export function formatValueType(t: ValueTypeMsg | null | undefined): string {
  switch (valueTypeKind(t)) {
    case 'tensor': {
      const s = tensorShape(t)!;
      return `${tensorDType(t)}${s.length ? `[${s.map(d => (d === null ? '?' : d)).join(', ')}]` : ''}`;
    }
    case 'list': return `list<${formatValueType(t!.listType!.type)}>`;
    case 'tuple': return `tuple<${(t!.tupleType!.types ?? []).map(formatValueType).join(', ')}>`;
    case 'dictionary': return `dict<${formatValueType(t!.dictionaryType!.keyType)}, ${formatValueType(t!.dictionaryType!.valueType)}>`;
    case 'state': return `state<${formatValueType(t!.stateType!.wrappedType)}>`;
    default: return 'unknown';
  }
}

/** Opset string written for each specification version (coremltools `_OPSET`). */
export const OPSET_OF_SPEC: Record<number, string> = { 4: 'CoreML3', 5: 'CoreML4', 6: 'CoreML5', 7: 'CoreML6', 8: 'CoreML7', 9: 'CoreML8', 10: 'CoreML9' };

/** iOS generation of an opset string ("CoreML6" → 16), used to pick op definitions. */
export function iosOfOpset(opset: string): number {
  const m = /^CoreML(\d+)$/.exec(opset);
  if (!m) return 0;
  const n = Number(m[1]);
  // Apple jumped from iOS 18 (CoreML8) to iOS 26 (CoreML9).
  return n >= 9 ? n + 17 : n + 10;
}
