// Builds small MIL programs (decoded-protobuf-shaped objects) for executor unit tests.
import type { MilOperation, MilProgram, MilValue, MilValueType } from '../../src/runtime/executor.js';

const DT: Record<string, number> = { bool: 1, string: 2, fp16: 10, fp32: 11, int32: 23, uint8: 31, int8: 21, uint4: 35, uint1: 37, uint32: 33, int16: 22, uint16: 32, int64: 24 };

export function tensorType(dtype: string, shape: (number | null)[]): MilValueType {
  return {
    tensorType: {
      dataType: DT[dtype],
      rank: shape.length,
      dimensions: shape.map((s) => (s === null ? { unknown: { variadic: false } } : { constant: { size: s } })),
    },
  };
}

/** A list of `dtype` tensors of `shape` (make_list / list_* values). */
export function listType(dtype: string, shape: (number | null)[]): MilValueType {
  return { listType: { type: tensorType(dtype, shape), length: { unknown: { variadic: false } } } };
}

/** A state wrapping a `dtype` tensor of `shape` (iOS18 stateful function inputs). */
export function stateType(dtype: string, shape: number[]): MilValueType {
  return { stateType: { wrappedType: tensorType(dtype, shape) } };
}

export function value(dtype: string, shape: number[], data: number[] | string[] | boolean[]): MilValue {
  const type = tensorType(dtype, shape);
  if (dtype === 'string') return { type, immediateValue: { tensor: { strings: { values: data as string[] } } } };
  if (dtype === 'bool') return { type, immediateValue: { tensor: { bools: { values: data as boolean[] } } } };
  if (dtype === 'fp32') return { type, immediateValue: { tensor: { floats: { values: data as number[] } } } };
  if (dtype === 'int64') return { type, immediateValue: { tensor: { longInts: { values: data as number[] } } } };
  if (dtype === 'int32' || dtype === 'uint32' || dtype === 'int16' || dtype === 'uint16') return { type, immediateValue: { tensor: { ints: { values: data as number[] } } } };
  return { type, immediateValue: { tensor: { bytes: { values: Uint8Array.from(data as number[]) } } } };
}

export const str = (s: string) => value('string', [], [s]);
export const i32 = (v: number) => value('int32', [], [v]);
export const f32 = (v: number) => value('fp32', [], [v]);
export const bool = (v: boolean) => value('bool', [], [v]);
export const ints = (v: number[]) => value('int32', [v.length], v);
export const floats = (shape: number[], v: number[]) => value('fp32', shape, v);

type Arg = string | MilValue | (string | MilValue)[];

/** An op whose inputs are names of earlier values or inline constant values. */
export function op(
  type: string,
  name: string,
  inputs: Record<string, Arg>,
  outputs: { name: string; dtype: string; shape: (number | null)[]; type?: MilValueType }[],
  blocks?: MilOperation['blocks'],
): MilOperation {
  const ins: NonNullable<MilOperation['inputs']> = {};
  for (const [k, v] of Object.entries(inputs)) {
    const list = Array.isArray(v) ? v : [v];
    ins[k] = { arguments: list.map((x) => (typeof x === 'string' ? { name: x } : { value: x })) };
  }
  return {
    type,
    inputs: ins,
    outputs: outputs.map((o) => ({ name: o.name, type: o.type ?? tensorType(o.dtype, o.shape) })),
    attributes: { name: str(name) },
    ...(blocks ? { blocks } : {}),
  };
}

export function constOp(name: string, val: MilValue): MilOperation {
  return {
    type: 'const',
    outputs: [{ name, type: val.type ?? null }],
    attributes: { name: str(name), val },
  };
}

export function program(
  inputs: { name: string; dtype: string; shape: (number | null)[]; type?: MilValueType }[],
  operations: MilOperation[],
  outputs: string[],
  opset = 'CoreML7',
): MilProgram {
  return {
    functions: {
      main: {
        inputs: inputs.map((i) => ({ name: i.name, type: i.type ?? tensorType(i.dtype, i.shape) })),
        opset,
        blockSpecializations: { [opset]: { outputs, operations } },
      },
    },
  };
}

/** Deterministic pseudo-random floats in [-1, 1). */
export function randoms(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s / 4294967296) * 2 - 1;
  }
  return out;
}
