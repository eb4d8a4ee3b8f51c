/**
 * One tensor vocabulary for the executor, `.npy` files and comparisons: the MIL spellings (`fp32`,
 * `fp16`, `fp64`, `int8`…`int64`, `uint8`, `bool`). numpy's spellings (`float32`, `float16`,
 * `float64`) are accepted everywhere as aliases, so `predict({ x: readNpy(file) })` works whichever
 * vocabulary produced the array.
 */
import { ConfigError } from '../errors.js';

/** Canonical element types. */
export type DType = 'fp32' | 'fp16' | 'fp64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';
/** Every accepted spelling (canonical names and numpy aliases). */
export type DTypeName = DType | 'float32' | 'float16' | 'float64';

/** Arrays that can carry tensor data (fp16 as raw halves in a Uint16Array, int64 as BigInt64Array). */
export type TensorData = Float32Array | Float64Array | Uint16Array | Int32Array | Int16Array | Int8Array | Uint8Array | BigInt64Array;

const ALIASES: Record<string, DType> = { float32: 'fp32', float16: 'fp16', float64: 'fp64' };
const CANONICAL = new Set<string>(['fp32', 'fp16', 'fp64', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool']);

/** The canonical spelling of a dtype name, or undefined for an unknown one. */
export function canonicalDType(name: string): DType | undefined {
  if (CANONICAL.has(name)) return name as DType;
  return ALIASES[name];
}

/** Like canonicalDType but throws a ConfigError naming `what` for an unknown name. */
export function requireDType(name: string, what: string): DType {
  const d = canonicalDType(name);
  if (!d) throw new ConfigError(`${what}: unknown dtype '${name}' (${[...CANONICAL].join(', ')}, or numpy's float32 / float16 / float64)`);
  return d;
}

/** The dtype a typed array stands for when none is given (Uint16Array = fp16 halves, Uint8Array = bool). */
export function dtypeOfArray(data: TensorData): DType {
  if (data instanceof Float32Array) return 'fp32';
  if (data instanceof Float64Array) return 'fp64';
  if (data instanceof Uint16Array) return 'fp16';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof BigInt64Array) return 'int64';
  return 'bool';
}

export const isFloatDType = (d: DType): boolean => d === 'fp32' || d === 'fp16' || d === 'fp64';

/** The array type that holds `dtype` data (the constructor predict and readNpy use). */
export function arrayTypeMatches(data: TensorData, dtype: DType): boolean {
  switch (dtype) {
    case 'fp32': return data instanceof Float32Array;
    case 'fp64': return data instanceof Float64Array;
    case 'fp16': return data instanceof Uint16Array;
    case 'int64': return data instanceof BigInt64Array;
    case 'int32': return data instanceof Int32Array;
    case 'int16': return data instanceof Int16Array;
    case 'int8': return data instanceof Int8Array;
    case 'uint8': case 'bool': return data instanceof Uint8Array;
  }
}
