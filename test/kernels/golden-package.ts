/**
 * Test-only reader for the coremltools golden packages: parses model.mlmodel with protobufjs
 * (proto/MIL.proto + a two-field Model wrapper) and reads blob records straight from weight.bin
 * (64-byte metadata records, spec §3). Deliberately self-contained so the kernel tests do not
 * depend on the format/blob modules.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import type { KernelDType, KernelTensor } from '../../src/kernels/decompress.js';

export const goldenDir = path.resolve(import.meta.dirname, '../../../shared/fixtures/coremltools-golden');

function toNum(x: any): number {
  return typeof x === 'number' ? x : typeof x === 'string' ? Number(x) : x.toNumber();
}

const MIL_DTYPES: Record<number, KernelDType> = {
  10: 'fp16', 11: 'fp32', 21: 'int8', 22: 'int16', 23: 'int32', 25: 'int4', 31: 'uint8', 32: 'uint16',
  33: 'uint32', 35: 'uint4', 36: 'uint2', 37: 'uint1', 38: 'uint6', 39: 'uint3',
};

let modelType: protobuf.Type | undefined;
function getModelType(): protobuf.Type {
  if (!modelType) {
    const root = protobuf.loadSync(path.resolve(import.meta.dirname, '../../proto/MIL.proto'));
    const model = new protobuf.Type('GoldenModel')
      .add(new protobuf.Field('specificationVersion', 1, 'int32'))
      .add(new protobuf.Field('mlProgram', 502, 'CoreML.Specification.MILSpec.Program'));
    root.add(model);
    modelType = root.lookupType('GoldenModel');
  }
  return modelType;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
export interface GoldenOp {
  type: string;
  name: string;
  outputs: string[];
  /** Parameter → a value or the name of an earlier op output. */
  params: Record<string, KernelTensor | { ref: string }>;
}

export interface GoldenPackage {
  dir: string;
  opset: 'ios16' | 'ios18';
  ops: GoldenOp[];
  /** const ops by output name. */
  consts: Map<string, KernelTensor>;
}

function tensorFromValue(v: any, weights: Buffer, where: string): KernelTensor {
  const tt = v.type?.tensorType;
  if (!tt) throw new Error(`${where}: not a tensor value`);
  const dtype = MIL_DTYPES[tt.dataType];
  if (!dtype) throw new Error(`${where}: unsupported MIL dtype ${tt.dataType}`);
  const shape: number[] = (tt.dimensions ?? []).map((d: any) => toNum(d.constant.size));
  if (v.blobFileValue) {
    const off = toNum(v.blobFileValue.offset);
    if (weights.readUInt32LE(off) !== 0xdeadbeef) throw new Error(`${where}: bad blob sentinel at ${off}`);
    const size = Number(weights.readBigUInt64LE(off + 8));
    const dataOff = Number(weights.readBigUInt64LE(off + 16));
    return { dtype, shape, data: new Uint8Array(weights.buffer, weights.byteOffset + dataOff, size) };
  }
  const t = v.immediateValue?.tensor;
  if (!t) throw new Error(`${where}: neither blob nor immediate tensor`);
  if (t.floats) return { dtype, shape, data: Float32Array.from(t.floats.values) };
  if (t.bytes) return { dtype, shape, data: new Uint8Array(t.bytes.values) };
  if (t.ints) {
    const vals: number[] = t.ints.values;
    if (dtype === 'int32') return { dtype, shape, data: Int32Array.from(vals) };
    if (dtype === 'uint16') return { dtype, shape, data: Uint16Array.from(vals) };
    if (dtype === 'int16') return { dtype, shape, data: Int16Array.from(vals) };
    if (dtype === 'uint8') return { dtype, shape, data: Uint8Array.from(vals) };
    if (dtype === 'int8') return { dtype, shape, data: Int8Array.from(vals) };
  }
  throw new Error(`${where}: unsupported immediate encoding`);
}

export function loadGoldenPackage(pkgName: string): GoldenPackage {
  const dir = path.join(goldenDir, pkgName.endsWith('.mlpackage') ? pkgName : `${pkgName}.mlpackage`);
  const data = path.join(dir, 'Data/com.apple.CoreML');
  const model: any = getModelType().decode(readFileSync(path.join(data, 'model.mlmodel')));
  const weights = readFileSync(path.join(data, 'weights/weight.bin'));
  const fn = model.mlProgram.functions.main;
  const opsetName: string = fn.opset;
  const block = fn.blockSpecializations[opsetName];
  const opset = opsetName === 'CoreML6' || opsetName === 'CoreML7' ? 'ios16' : 'ios18';
  const ops: GoldenOp[] = [];
  const consts = new Map<string, KernelTensor>();
  for (const op of block.operations) {
    const name = op.attributes?.name?.immediateValue?.tensor?.strings?.values?.[0] ?? '';
    const outputs = (op.outputs ?? []).map((o: any) => o.name as string);
    if (op.type === 'const') {
      const tt = op.attributes.val?.type?.tensorType;
      if (tt && MIL_DTYPES[tt.dataType]) consts.set(outputs[0], tensorFromValue(op.attributes.val, weights, `${pkgName} ${name}`));
      continue;
    }
    if (!String(op.type).startsWith('constexpr_')) continue;
    const params: GoldenOp['params'] = {};
    for (const [k, v] of Object.entries<any>(op.attributes ?? {})) {
      if (k === 'name') continue;
      params[k] = tensorFromValue(v, weights, `${pkgName} ${name}.${k}`);
    }
    for (const [k, arg] of Object.entries<any>(op.inputs ?? {})) {
      const b = arg.arguments[0];
      params[k] = b.name ? { ref: b.name } : tensorFromValue(b.value, weights, `${pkgName} ${name}.${k}`);
    }
    ops.push({ type: op.type, name, outputs, params });
  }
  return { dir, opset, ops, consts };
}

export interface Sidecar {
  steps: { config: any }[];
  weights: { name: string; shape: number[]; sha256_f32le: string; chain: string[]; consumers: string[]; source_weight?: string }[];
  coremltools_warnings?: string[];
}

export function loadSidecar(pkgName: string): Sidecar {
  return JSON.parse(readFileSync(path.join(goldenDir, `${pkgName}.json`), 'utf8'));
}

/** Unpacks LSB-first sub-byte data (test oracle for packed params). */
export function unpackLsb(bytes: Uint8Array, count: number, bits: number, signed = false): Int32Array {
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    let v = 0;
    for (let b = 0; b < bits; b++) {
      const bit = i * bits + b;
      v |= ((bytes[bit >> 3] >> (bit & 7)) & 1) << b;
    }
    if (signed && v & (1 << (bits - 1))) v -= 1 << bits;
    out[i] = v;
  }
  return out;
}

export function bytesOf(t: KernelTensor): Uint8Array {
  const d = t.data;
  return d instanceof ArrayBuffer ? new Uint8Array(d) : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}
