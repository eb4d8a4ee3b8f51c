/**
 * ProgramBuilder: write ML Programs the way coremltools' exporter lays them out (Program.version 1,
 * one function `main`, block keyed by the opset, every op named through `attributes.name`, const
 * ops with `name` + `val`, blob rule ≥ 10 elements), for tests, benchmarks and the demo.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { BlobWriter, type BlobDType, type BlobValues } from '../format/blob.js';
import { Model } from '../model.js';
import type { WeightFileSource } from '../format/package.js';
import type { ModelSpec } from '../format/spec-types.js';
import { makeConstexprOp, makeConstOp, makeOp, Program, type BlobResolver, type OperationMsg, type ProgramMsg } from './program.js';
import {
  blobDTypeOf, dtypeBits, elementCountOf, isSubByte, OPSET_OF_SPEC, tensorDType, tensorShape, tensorType,
  type Dim, type MilDType, type ValueTypeMsg,
} from './types.js';
import { encodeImmediateTensor, floatToHalfBits, type ValueMsg } from './values.js';

/** What the builder needs from a weight-file writer (format/blob.ts `BlobWriter` satisfies it). */
export interface WeightSink {
  /** Append one record; returns the metadata offset that goes into BlobFileValue.offset. */
  append(dtype: string, data: ArrayBufferView, elementCount?: number): number;
  close(): void;
}

export interface ProgramBuilderOptions {
  /** Core ML specification version; the opset follows (6 → CoreML5 … 9 → CoreML8, 10 → CoreML9). */
  specVersion: 6 | 7 | 8 | 9 | 10;
  /** Where weight.bin is written (created on the first blob). */
  weightsPath?: string;
  /** Opens the writer for weightsPath; default the native BlobWriter (format/blob.ts). */
  openWeightSink?: (path: string) => WeightSink;
  /** Extra `Metadata.userDefined` entries. */
  metadata?: Record<string, string>;
  author?: string;
  shortDescription?: string;
}

export interface Var { readonly name: string; readonly type: ValueTypeMsg; readonly dtype: MilDType; readonly shape: Dim[] }

/** An inline tensor for constexpr parameters (stored in the op, not as a const op). */
export interface TensorLiteral { readonly literal: true; readonly dtype: MilDType; readonly data: ArrayLike<number> | readonly boolean[] | readonly string[]; readonly shape: Dim[] }
export function tensor(dtype: MilDType, data: TensorLiteral['data'], shape: Dim[]): TensorLiteral {
  return { literal: true, dtype, data, shape };
}

/** Op input: a var, several vars (variadic), a TensorLiteral, or a JS literal made into a const op. */
export type OpInput = Var | Var[] | TensorLiteral | number | boolean | string | readonly number[] | readonly boolean[];

export interface OpOptions {
  /** Op name (also the output var's name). Default `<type>_<n>`. */
  name?: string;
  /** Explicit output types, when inference does not know the op. */
  outputs?: { dtype: MilDType; shape: Dim[] }[];
}

/** The ModelDescription-bearing spec (a plain object the format layer encodes as CoreML.Specification.Model). */
export interface BuiltSpec {
  specificationVersion: number;
  description: {
    input: FeatureDescription[];
    output: FeatureDescription[];
    metadata: { author?: string; shortDescription?: string; userDefined: Record<string, string> };
  };
  mlProgram: ProgramMsg;
}
export interface FeatureDescription { name: string; type: { multiArrayType: { shape: number[]; dataType: number; shapeRange?: unknown } } }

/** ArrayFeatureType.ArrayDataType of the I/O dtypes Core ML accepts. */
const ARRAY_DATA_TYPE: Partial<Record<MilDType, number>> = { fp32: 65568, fp64: 65600, int32: 131104, fp16: 65552, int8: 131080 };

const LITERAL_BLOBABLE_ALWAYS = new Set<MilDType>(['fp16', 'fp32', 'uint8', 'int8', 'int4', 'uint1', 'uint2', 'uint3', 'uint4', 'uint6']);
const LITERAL_BLOBABLE_SPEC9 = new Set<MilDType>(['uint16', 'int16', 'int32', 'uint32']);

export class ProgramBuilder {
  readonly specVersion: number;
  readonly opset: string;
  private readonly options: ProgramBuilderOptions;
  private readonly inputs: { name: string; type: ValueTypeMsg }[] = [];
  private readonly ops: OperationMsg[] = [];
  private readonly outputs: string[] = [];
  private readonly vars = new Map<string, Var>();
  private readonly counters = new Map<string, number>();
  private sink: WeightSink | undefined;
  private built = false;
  /** Const ops by var name: constexpr ops inline their values, as coremltools does. */
  private readonly constOps = new Map<string, { msg: OperationMsg; value: ValueMsg; literal: TensorLiteral }>();
  /** Vars referenced by name (op inputs, outputs); a const used only inline is not emitted. */
  private readonly usedByName = new Set<string>();

  constructor(options: ProgramBuilderOptions) {
    const opset = OPSET_OF_SPEC[options.specVersion];
    if (!opset || options.specVersion < 6) throw new ConfigError(`ML Programs need specification version 6 to 10, got ${options.specVersion}`);
    this.options = options;
    this.specVersion = options.specVersion;
    this.opset = opset;
  }

  private define(name: string, type: ValueTypeMsg): Var {
    if (this.vars.has(name)) throw new ConfigError(`var "${name}" is already defined`);
    if (!/^[A-Za-z_][A-Za-z0-9_@]*$/.test(name)) throw new ConfigError(`"${name}" is not a valid MIL identifier`);
    const v: Var = { name, type, dtype: tensorDType(type)!, shape: tensorShape(type) ?? [] };
    this.vars.set(name, v);
    return v;
  }
  private uniqueName(base: string): string {
    for (;;) {
      const n = this.counters.get(base) ?? 0;
      this.counters.set(base, n + 1);
      const name = `${base}_${n}`;
      if (!this.vars.has(name)) return name;
    }
  }

  /** A function input (and model input). Use null for a flexible dimension. */
  input(name: string, dtype: MilDType, shape: Dim[]): Var {
    const type = tensorType(dtype, shape);
    const v = this.define(name, type);
    this.inputs.push({ name, type });
    return v;
  }

  /**
   * Encode a tensor as a Value following coremltools' blob rule: ≥ 10 elements of a blob-able
   * dtype (fp16/fp32/int8/uint8/sub-byte; from spec 9 also int16/uint16/int32/uint32) go to
   * weight.bin, everything else is immediate. fp16 data may be raw bits (Uint16Array) or numbers.
   */
  value(dtype: MilDType, data: TensorLiteral['data'], shape: Dim[]): ValueMsg {
    const n = elementCountOf(shape);
    if (n === undefined) throw new ConfigError('a constant needs a fully known shape');
    if (data.length !== n) throw new ConfigError(`constant ${dtype}[${shape.join(', ')}] needs ${n} values, got ${data.length}`);
    const blobable = LITERAL_BLOBABLE_ALWAYS.has(dtype) || (this.specVersion >= 9 && LITERAL_BLOBABLE_SPEC9.has(dtype));
    if (!(blobable && n >= 10)) return encodeImmediateTensor(dtype, data, shape);
    const offset = this.weightSink().append(blobDTypeOf(dtype)!, toStorageArray(dtype, data as ArrayLike<number>), n);
    return { type: tensorType(dtype, shape), blobFileValue: { fileName: '@model_path/weights/weight.bin', offset } };
  }

  /** A const op (coremltools layout) holding `data`. */
  const(name: string, data: TensorLiteral['data'], shape: Dim[], dtype: MilDType = inferLiteralDType(data)): Var {
    const value = this.value(dtype, data, shape);
    const msg = makeConstOp(name, value);
    this.ops.push(msg);
    // A blob-stored const keeps only its type here: converters stream gigabytes of weights through
    // this method, and constexpr ops fed by it inline the blob reference, not the values.
    const kept = value.blobFileValue ? tensor(dtype, [], shape) : tensor(dtype, data, shape);
    this.constOps.set(name, { msg, value, literal: kept });
    return this.define(name, value.type!);
  }

  /**
   * Append an op. Literal inputs become const ops named `<op>_<param>_0` as coremltools names
   * them. Constexpr ops store TensorLiteral parameters inline (attributes for iOS16 definitions,
   * value bindings for iOS18) and take earlier constexpr outputs by name.
   */
  op(type: string, inputs: Record<string, OpInput | undefined>, options: OpOptions = {}): Var & { all: Var[] } {
    const name = options.name ?? this.uniqueName(type);
    const present = Object.entries(inputs).filter((e): e is [string, OpInput] => e[1] !== undefined);
    let msg: OperationMsg;
    const resolved: Record<string, Var | Var[] | TensorLiteral> = {};
    if (type.startsWith('constexpr_')) {
      const inlined = new Map<string, ValueMsg>();
      for (const [k, v] of present) {
        const c = isVar(v) ? this.constOps.get(v.name) : undefined;
        if (c) { resolved[k] = c.literal; inlined.set(k, c.value); } // inferred from the values, stored inline
        else if (isVar(v) || isLiteral(v)) resolved[k] = v;
        else if (Array.isArray(v) && v.every(isVar)) throw new ConfigError(`${type}.${k} cannot be variadic`);
        else resolved[k] = literalOf(v as number | boolean | string | readonly number[]);
      }
      const outs = this.outputTypes(type, resolved, options, name);
      const param = (k: string, v: Var | Var[] | TensorLiteral): ValueMsg | string | undefined => {
        const c = inlined.get(k);
        if (c) return c; // a plain const's value lives inline in the constexpr op
        if (isLiteral(v)) return this.value(v.dtype, v.data, v.shape);
        if (!isVar(v)) return undefined;
        this.usedByName.add(v.name);
        return v.name;
      };
      msg = makeConstexprOp(this.opset, type, name, Object.entries(resolved).map(([k, v]) => [k, param(k, v)]), outs);
    } else {
      const bindings: Record<string, string | string[]> = {};
      for (const [k, v] of present) {
        if (isVar(v)) { resolved[k] = v; bindings[k] = v.name; this.usedByName.add(v.name); }
        else if (Array.isArray(v) && v.length > 0 && v.every(isVar)) { resolved[k] = v as Var[]; bindings[k] = (v as Var[]).map(x => x.name); for (const x of v as Var[]) this.usedByName.add(x.name); }
        else {
          const lit = isLiteral(v) ? v : literalOf(v as number | boolean | string | readonly number[]);
          const c = this.const(`${name}_${k}_0`, lit.data, lit.shape, lit.dtype);
          resolved[k] = lit; // inference needs the literal's values
          bindings[k] = c.name;
          this.usedByName.add(c.name);
        }
      }
      msg = makeOp(type, name, bindings, this.outputTypes(type, resolved, options, name));
    }
    this.ops.push(msg);
    const all = (msg.outputs ?? []).map(o => this.define(o.name!, o.type!));
    return Object.assign(Object.create(null) as object, all[0], { all }) as Var & { all: Var[] };
  }

  private outputTypes(type: string, ins: Record<string, Var | Var[] | TensorLiteral>, options: OpOptions, name: string): { name: string; type: ValueTypeMsg }[] {
    const types = options.outputs ?? inferOutputs(type, ins);
    if (!types) throw new ConfigError(`cannot infer the output type of op "${type}"; pass outputs explicitly`);
    return types.map((t, i) => ({ name: types.length === 1 ? name : `${name}_${i}`, type: tensorType(t.dtype, t.shape) }));
  }

  /** Mark a var as a function (and model) output, optionally renaming it with an identity op. */
  output(v: Var, name?: string): Var {
    let out = v;
    if (name && name !== v.name) out = this.op('identity', { x: v }, { name });
    this.outputs.push(out.name);
    this.usedByName.add(out.name);
    return out;
  }

  /** The Program message and its wrapper (weight file closed). */
  buildProgram(): { program: Program; msg: ProgramMsg; weightsFile: string | undefined } {
    if (this.built) throw new ConfigError('ProgramBuilder.build() was already called');
    this.built = true;
    if (this.outputs.length === 0) throw new ConfigError('the program has no outputs');
    this.sink?.close();
    const inlinedOnly = new Set([...this.constOps].filter(([n]) => !this.usedByName.has(n)).map(([, c]) => c.msg));
    const operations = this.ops.filter(o => !inlinedOnly.has(o));
    const msg: ProgramMsg = {
      version: 1,
      functions: {
        main: { inputs: this.inputs.map(i => ({ name: i.name, type: i.type })), opset: this.opset, blockSpecializations: { [this.opset]: { outputs: [...this.outputs], operations } } },
      },
    };
    const weightsFile = this.sink ? this.options.weightsPath : undefined;
    return { program: new Program(msg), msg, weightsFile };
  }

  /** The Model spec (description matching the function I/O, coreml-optimize metadata) and weight.bin path. */
  build(): { spec: BuiltSpec; weightsFile: string | undefined; program: Program } {
    const { program, msg, weightsFile } = this.buildProgram();
    const feature = (name: string): FeatureDescription => {
      const v = this.vars.get(name)!;
      const dataType = ARRAY_DATA_TYPE[v.dtype];
      if (!dataType) throw new ConfigError(`model input/output "${name}" has dtype ${v.dtype}, which Core ML cannot take as a multi-array`);
      if (v.dtype === 'fp16' && this.specVersion < 7) throw new ConfigError(`fp16 model input/output "${name}" needs specification version 7`);
      if (v.dtype === 'int8' && this.specVersion < 10) throw new ConfigError(`int8 model input/output "${name}" needs specification version 10`);
      const fixed = v.shape.every(d => d !== null);
      const multiArrayType: FeatureDescription['type']['multiArrayType'] = { shape: v.shape.map(d => d ?? 1), dataType };
      // Flexible dims: coremltools writes a range per dimension (lower == upper for fixed ones).
      if (!fixed) multiArrayType.shapeRange = { sizeRanges: v.shape.map(d => (d === null ? { lowerBound: 1, upperBound: -1 } : { lowerBound: d, upperBound: d })) };
      return { name, type: { multiArrayType } };
    };
    const require = createRequire(import.meta.url);
    const pkg = require('../../package.json') as { version: string };
    const spec: BuiltSpec = {
      specificationVersion: this.specVersion,
      description: {
        input: this.inputs.map(i => feature(i.name)),
        output: this.outputs.map(feature),
        metadata: {
          ...(this.options.author ? { author: this.options.author } : {}),
          ...(this.options.shortDescription ? { shortDescription: this.options.shortDescription } : {}),
          userDefined: {
            'com.github.apple.coremltools.source': 'coreml-optimize',
            'com.github.apple.coremltools.version': `coreml-optimize ${pkg.version}`,
            ...this.options.metadata,
          },
        },
      },
      mlProgram: msg,
    };
    return { spec, weightsFile, program };
  }

  /**
   * Build and save as a .mlpackage at `dest` (Manifest, model.mlmodel, weights/weight.bin) through
   * the format layer. The weight file written at weightsPath is moved into the package unless
   * `keepWeightsFile` is set.
   */
  async save(dest: string, options: { keepWeightsFile?: boolean } = {}): Promise<Model> {
    const { spec, weightsFile } = this.build();
    const weightFiles: WeightFileSource[] = weightsFile ? [{ name: 'weight.bin', from: weightsFile, move: !options.keepWeightsFile }] : [];
    return Model.fromSpec(spec as unknown as ModelSpec, { weightFiles }).save(dest);
  }

  private weightSink(): WeightSink {
    if (!this.sink) {
      const p = this.options.weightsPath;
      if (!p) throw new ConfigError('this program needs a weight file (a constant has ≥ 10 elements): pass weightsPath');
      const open = this.options.openWeightSink ?? ((f: string) => nativeSink(BlobWriter.create(f)));
      this.sink = open(path.resolve(p));
    }
    return this.sink;
  }
}

/** A resolver for Program options that maps any `@model_path/weights/<name>` to a directory. */
export function weightsDirResolver(dir: string, open: (file: string) => ReturnType<BlobResolver>): BlobResolver {
  const cache = new Map<string, ReturnType<BlobResolver>>();
  return fileName => {
    const base = fileName.split('/').pop()!;
    let r = cache.get(base);
    if (!r) cache.set(base, (r = open(path.join(dir, base))));
    return r;
  };
}

/* ---- literals ---- */

function isVar(v: unknown): v is Var { return typeof v === 'object' && v !== null && 'name' in v && 'type' in v && !Array.isArray(v); }
function isLiteral(v: unknown): v is TensorLiteral { return typeof v === 'object' && v !== null && (v as TensorLiteral).literal === true; }

function inferLiteralDType(data: TensorLiteral['data']): MilDType {
  if (data instanceof Float32Array || data instanceof Float64Array) return 'fp32';
  if (data instanceof Uint16Array) return 'fp16';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int32Array) return 'int32';
  if (data.length && typeof data[0] === 'string') return 'string';
  if (data.length && typeof data[0] === 'boolean') return 'bool';
  return Array.from(data as ArrayLike<number>).every(Number.isInteger) ? 'int32' : 'fp32';
}

/** JS literal → tensor: integers → int32, other numbers → fp32, booleans → bool, strings → string. */
function literalOf(v: number | boolean | string | readonly number[] | readonly boolean[]): TensorLiteral {
  if (Array.isArray(v)) return tensor(inferLiteralDType(v), v, [v.length]);
  const data = [v] as number[] | boolean[] | string[];
  return tensor(inferLiteralDType(data), data, []);
}

/** Data as stored: fp16 bits, sub-byte one value per byte (the writer packs). */
function toStorageArray(dtype: MilDType, data: ArrayLike<number>): ArrayBufferView {
  switch (dtype) {
    case 'fp16': return data instanceof Uint16Array ? data : Uint16Array.from(data, x => floatToHalfBits(x));
    case 'fp32': return data instanceof Float32Array ? data : Float32Array.from(data);
    case 'int8': case 'int4': return data instanceof Int8Array ? data : Int8Array.from(data);
    case 'uint8': return data instanceof Uint8Array ? data : Uint8Array.from(data);
    case 'int16': return Int16Array.from(data);
    case 'uint16': return Uint16Array.from(data);
    case 'int32': return data instanceof Int32Array ? data : Int32Array.from(data);
    case 'uint32': return Uint32Array.from(data);
    default:
      if (isSubByte(dtype)) {
        const max = (1 << dtypeBits(dtype)) - 1;
        for (let i = 0; i < data.length; i++) if (data[i]! < 0 || data[i]! > max) throw new ConfigError(`${dtype} value ${data[i]} out of range [0, ${max}]`);
        return Uint8Array.from(data);
      }
      throw new ConfigError(`dtype ${dtype} cannot be stored in a weight file`);
  }
}

/* ---- output type inference ---- */

type In = Record<string, Var | Var[] | TensorLiteral>;
type OutT = { dtype: MilDType; shape: Dim[] }[];

const UNARY_SAME = new Set([
  'relu', 'relu6', 'gelu', 'silu', 'sigmoid', 'tanh', 'softmax', 'softplus', 'elu', 'leaky_relu', 'clip', 'exp', 'exp2', 'log', 'sqrt', 'rsqrt',
  'abs', 'neg', 'square', 'sin', 'cos', 'erf', 'floor', 'ceil', 'round', 'sign', 'inverse', 'identity', 'layer_norm', 'batch_norm',
  'instance_norm', 'l2_norm', 'local_response_norm', 'hard_sigmoid', 'sigmoid_hard', 'prelu', 'scaled_tanh', 'softsign', 'thresholded_relu',
  'linear_activation', 'log_softmax', 'band_part', 'cumsum', 'clamped_relu',
]);
const BINARY = new Set(['add', 'sub', 'mul', 'real_div', 'floor_div', 'mod', 'pow', 'maximum', 'minimum']);
const COMPARE = new Set(['equal', 'not_equal', 'greater', 'greater_equal', 'less', 'less_equal', 'logical_and', 'logical_or', 'logical_xor']);
const REDUCE = new Set(['reduce_sum', 'reduce_mean', 'reduce_max', 'reduce_min', 'reduce_prod', 'reduce_l2_norm', 'reduce_l1_norm', 'reduce_log_sum', 'reduce_log_sum_exp', 'reduce_sum_square', 'reduce_argmax', 'reduce_argmin']);

function litValues(v: Var | Var[] | TensorLiteral | undefined): number[] | undefined {
  return v && isLiteral(v) ? Array.from(v.data as ArrayLike<number | boolean>, Number) : undefined;
}
function litString(v: Var | Var[] | TensorLiteral | undefined): string | undefined {
  return v && isLiteral(v) && typeof v.data[0] === 'string' ? (v.data[0] as string) : undefined;
}
function asVar(v: Var | Var[] | TensorLiteral | undefined): { dtype: MilDType; shape: Dim[] } | undefined {
  if (!v || Array.isArray(v)) return undefined;
  return isLiteral(v) ? { dtype: v.dtype, shape: v.shape } : v;
}
function broadcast(a: Dim[], b: Dim[]): Dim[] {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x === 1) out.push(y);
    else if (y === 1 || x === y) out.push(x);
    else if (x === null || y === null) out.push(x ?? y);
    else throw new ConfigError(`shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
  }
  return out;
}
const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

const DTYPE_NAMES: Record<string, MilDType> = { fp16: 'fp16', fp32: 'fp32', fp64: 'fp64', int32: 'int32', int16: 'int16', int8: 'int8', uint8: 'uint8', uint16: 'uint16', bool: 'bool', int64: 'int64' };

export function inferOutputs(type: string, ins: In): OutT | undefined {
  const x = asVar(ins['x']);
  if (UNARY_SAME.has(type) && x) return [{ ...x }];
  if (BINARY.has(type) || COMPARE.has(type)) {
    const y = asVar(ins['y']);
    if (!x || !y) return undefined;
    return [{ dtype: COMPARE.has(type) ? 'bool' : x.dtype, shape: broadcast(x.shape, y.shape) }];
  }
  if (REDUCE.has(type) && x) {
    const axes = litValues(ins['axes'])?.map(a => norm(a, x.shape.length)) ?? x.shape.map((_, i) => i);
    const keep = Boolean(litValues(ins['keep_dims'])?.[0]);
    const shape = keep ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
    return [{ dtype: type.endsWith('argmax') || type.endsWith('argmin') ? 'int32' : x.dtype, shape }];
  }
  switch (type) {
    case 'linear': {
      const w = asVar(ins['weight']);
      if (!x || !w) return undefined;
      return [{ dtype: x.dtype, shape: [...x.shape.slice(0, -1), w.shape[0]!] }];
    }
    case 'matmul': {
      const y = asVar(ins['y']);
      if (!x || !y) return undefined;
      const tx = Boolean(litValues(ins['transpose_x'])?.[0]);
      const ty = Boolean(litValues(ins['transpose_y'])?.[0]);
      const xs = x.shape.length === 1 ? [1, x.shape[0]!] : x.shape;
      const ys = y.shape.length === 1 ? [y.shape[0]!, 1] : y.shape;
      const m = tx ? xs.at(-1)! : xs.at(-2)!;
      const n = ty ? ys.at(-2)! : ys.at(-1)!;
      const batch = broadcast(xs.slice(0, -2), ys.slice(0, -2));
      const shape = [...batch, ...(x.shape.length === 1 ? [] : [m]), ...(y.shape.length === 1 ? [] : [n])];
      return [{ dtype: x.dtype, shape }];
    }
    case 'conv': case 'conv_transpose': {
      const w = asVar(ins['weight']);
      if (!x || !w) return undefined;
      const nsp = x.shape.length - 2;
      const k = w.shape.slice(2) as number[];
      const strides = litValues(ins['strides']) ?? Array(nsp).fill(1);
      const dil = litValues(ins['dilations']) ?? Array(nsp).fill(1);
      const padType = litString(ins['pad_type']) ?? 'valid';
      const pad = litValues(ins['pad']) ?? Array(2 * nsp).fill(0);
      const groups = litValues(ins['groups'])?.[0] ?? 1;
      const spatial = x.shape.slice(2).map((d, i) => {
        if (d === null) return null;
        const ke = dil[i]! * (k[i]! - 1) + 1;
        if (type === 'conv_transpose') {
          if (padType === 'same') return d * strides[i]!;
          const p = padType === 'custom' ? pad[2 * i]! + pad[2 * i + 1]! : 0;
          return (d - 1) * strides[i]! + ke - p;
        }
        if (padType === 'same') return Math.ceil(d / strides[i]!);
        const p = padType === 'custom' ? pad[2 * i]! + pad[2 * i + 1]! : 0;
        return Math.floor((d + p - ke) / strides[i]!) + 1;
      });
      const cout = type === 'conv' ? w.shape[0]! : (w.shape[1]! as number) * groups;
      return [{ dtype: x.dtype, shape: [x.shape[0]!, cout, ...spatial] }];
    }
    case 'reshape': {
      const s = litValues(ins['shape']);
      if (!x || !s) return undefined;
      const total = elementCountOf(x.shape);
      const known = s.reduce((a, d, i) => a * (d === -1 ? 1 : d === 0 ? ((x.shape[i] as number) ?? 1) : d), 1);
      return [{ dtype: x.dtype, shape: s.map((d, i) => (d === -1 ? (total === undefined ? null : total / known) : d === 0 ? x.shape[i]! : d)) }];
    }
    case 'transpose': {
      const perm = litValues(ins['perm']);
      if (!x || !perm) return undefined;
      return [{ dtype: x.dtype, shape: perm.map(p => x.shape[norm(p, x.shape.length)]!) }];
    }
    case 'concat': {
      const vals = ins['values'];
      const axisV = litValues(ins['axis'])?.[0];
      if (!Array.isArray(vals) || axisV === undefined) return undefined;
      const a = norm(axisV, vals[0]!.shape.length);
      const shape = [...vals[0]!.shape];
      shape[a] = vals.reduce<Dim>((acc, v) => (acc === null || v.shape[a] === null ? null : (acc as number) + (v.shape[a] as number)), 0);
      return [{ dtype: vals[0]!.dtype, shape }];
    }
    case 'cast': {
      const d = litString(ins['dtype']);
      if (!x || !d || !DTYPE_NAMES[d]) return undefined;
      return [{ dtype: DTYPE_NAMES[d]!, shape: x.shape }];
    }
    case 'expand_dims': {
      const axes = litValues(ins['axes']);
      if (!x || !axes) return undefined;
      const rank = x.shape.length + axes.length;
      const ax = axes.map(a => norm(a, rank));
      const out: Dim[] = [];
      let j = 0;
      for (let i = 0; i < rank; i++) out.push(ax.includes(i) ? 1 : x.shape[j++]!);
      return [{ dtype: x.dtype, shape: out }];
    }
    case 'squeeze': {
      if (!x) return undefined;
      const axes = litValues(ins['axes'])?.map(a => norm(a, x.shape.length));
      return [{ dtype: x.dtype, shape: x.shape.filter((d, i) => (axes ? !axes.includes(i) : d !== 1)) }];
    }
    case 'gather': {
      const idx = asVar(ins['indices']);
      const axis = norm(litValues(ins['axis'])?.[0] ?? 0, x?.shape.length ?? 0);
      if (!x || !idx) return undefined;
      return [{ dtype: x.dtype, shape: [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)] }];
    }
    case 'max_pool': case 'avg_pool': case 'l2_pool': {
      const k = litValues(ins['kernel_sizes']);
      if (!x || !k) return undefined;
      const strides = litValues(ins['strides']) ?? k.map(() => 1);
      const padType = litString(ins['pad_type']) ?? 'valid';
      const pad = litValues(ins['pad']) ?? k.flatMap(() => [0, 0]);
      const ceil = Boolean(litValues(ins['ceil_mode'])?.[0]);
      const spatial = x.shape.slice(2).map((d, i) => {
        if (d === null) return null;
        if (padType === 'same') return Math.ceil(d / strides[i]!);
        const p = padType === 'custom' ? pad[2 * i]! + pad[2 * i + 1]! : 0;
        const r = (d + p - k[i]!) / strides[i]!;
        return (ceil ? Math.ceil(r) : Math.floor(r)) + 1;
      });
      return [{ dtype: x.dtype, shape: [...x.shape.slice(0, 2), ...spatial] }];
    }
    /* constexpr ops */
    case 'constexpr_lut_to_dense': {
      const lut = asVar(ins['lut']);
      const idx = asVar(ins['indices']);
      const shapeLit = litValues(ins['shape']);
      if (!lut || !idx) return undefined;
      if (shapeLit) return [{ dtype: lut.dtype, shape: shapeLit }];
      const v = (lut.shape.at(-1) as number) ?? 1;
      const va = litValues(ins['vector_axis'])?.[0];
      const shape = [...idx.shape];
      if (v > 1 && va !== undefined) { const a = norm(va, shape.length); shape[a] = (shape[a] as number) * v; }
      return [{ dtype: lut.dtype, shape }];
    }
    case 'constexpr_sparse_to_dense': {
      const nz = asVar(ins['nonzero_data']);
      const mask = asVar(ins['mask']);
      const shapeLit = litValues(ins['shape']);
      if (!nz || !mask) return undefined;
      return [{ dtype: nz.dtype, shape: shapeLit ?? mask.shape }];
    }
    case 'constexpr_blockwise_shift_scale': {
      const data = asVar(ins['data']);
      const scale = asVar(ins['scale']);
      if (!data || !scale) return undefined;
      return [{ dtype: scale.dtype, shape: data.shape }];
    }
    case 'constexpr_affine_dequantize': {
      const data = asVar(ins['quantized_data']);
      const scale = asVar(ins['scale']);
      if (!data || !scale) return undefined;
      return [{ dtype: scale.dtype, shape: data.shape }];
    }
    case 'constexpr_cast': {
      const src = asVar(ins['source_val']);
      const d = litString(ins['output_dtype']);
      if (!src || !d || !DTYPE_NAMES[d]) return undefined;
      return [{ dtype: DTYPE_NAMES[d]!, shape: src.shape }];
    }
    case 'constexpr_lut_to_sparse': {
      const mask = asVar(ins['indices_mask']);
      const nz = asVar(ins['indices_nonzero_data']);
      const lut = asVar(ins['lut']);
      if (!mask || !nz || !lut) return undefined;
      const v = (lut.shape.at(-1) as number) ?? 1;
      const va = litValues(ins['vector_axis'])?.[0];
      const mshape = [...mask.shape];
      if (v > 1 && va !== undefined) { const a = norm(va, mshape.length); mshape[a] = (mshape[a] as number) * v; }
      return [{ dtype: 'uint1', shape: mshape }, { dtype: lut.dtype, shape: [(nz.shape[0] as number) * v] }];
    }
    case 'constexpr_sparse_blockwise_shift_scale': {
      const mask = asVar(ins['data_mask']);
      const nz = asVar(ins['nonzero_data']);
      const scale = asVar(ins['scale']);
      if (!mask || !nz || !scale) return undefined;
      return [{ dtype: 'uint1', shape: mask.shape }, { dtype: scale.dtype, shape: nz.shape }];
    }
    default:
      return undefined;
  }
}

/** Adapts the native BlobWriter to the builder's WeightSink (dtype names are blob dtype names). */
function nativeSink(writer: BlobWriter): WeightSink {
  return {
    append: (dtype, data, elementCount) => writer.append(dtype as BlobDType, data as BlobValues, elementCount),
    close: () => writer.close(),
  };
}
