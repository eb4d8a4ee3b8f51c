/**
 * Reference CPU executor for ML Programs. `createExecutor` lowers one function of a decoded MIL
 * Program (protobufjs objects of proto/MIL.proto) into a plain graph description that the native
 * addon turns into an executable graph once (constants and constexpr_* decompression happen there,
 * weights are read from memory-mapped blob files, never through the JS heap). `predict` runs it on a
 * worker thread: exact fp32 compute, multi-threaded kernels, sgemm for linear/matmul/conv/einsum.
 */
import path from 'node:path';
import { nativeAddon, withCancel, type CancelToken, type ProgressCallback } from '../native.js';
import { ConfigError, ModelFormatError, UnsupportedError, CoreMLOptimizeError } from '../errors.js';
import { Model } from '../model.js';
import { canonicalDType, dtypeOfArray, isFloatDType, arrayTypeMatches, type DType, type DTypeName, type TensorData } from './tensor-dtype.js';

// ---------------------------------------------------------------------------------------------
// Decoded MIL.proto shapes (only what the executor reads; protobufjs camelCase field names).

type LongLike = number | { toNumber(): number } | string;

export interface MilDimension {
  constant?: { size?: LongLike } | null;
  unknown?: { variadic?: boolean } | null;
}
export interface MilValueType {
  tensorType?: { dataType?: number; rank?: LongLike; dimensions?: MilDimension[] } | null;
  listType?: { type?: MilValueType | null; length?: MilDimension | null } | null;
  tupleType?: unknown;
  dictionaryType?: unknown;
  stateType?: { wrappedType?: MilValueType | null } | null;
}
export interface MilTensorValue {
  floats?: { values?: ArrayLike<number> } | null;
  ints?: { values?: ArrayLike<number> } | null;
  bools?: { values?: ArrayLike<boolean> } | null;
  strings?: { values?: string[] } | null;
  longInts?: { values?: ArrayLike<LongLike> } | null;
  doubles?: { values?: ArrayLike<number> } | null;
  bytes?: { values?: Uint8Array } | null;
}
export interface MilValue {
  type?: MilValueType | null;
  immediateValue?: { tensor?: MilTensorValue | null; list?: { values?: MilValue[] } | null; tuple?: unknown; dictionary?: unknown } | null;
  blobFileValue?: { fileName?: string; offset?: LongLike } | null;
}
export interface MilNamedValueType {
  name: string;
  type?: MilValueType | null;
}
export interface MilOperation {
  type: string;
  inputs?: Record<string, { arguments?: { name?: string; value?: MilValue | null }[] }>;
  outputs?: MilNamedValueType[];
  blocks?: MilBlock[];
  attributes?: Record<string, MilValue>;
}
export interface MilBlock {
  inputs?: MilNamedValueType[];
  outputs?: string[];
  operations?: MilOperation[];
}
export interface MilFunction {
  inputs?: MilNamedValueType[];
  opset?: string;
  blockSpecializations?: Record<string, MilBlock>;
}
export interface MilProgram {
  functions?: Record<string, MilFunction>;
}

/** Model.proto FeatureDescription subset used for input checks. */
export interface FeatureDescription {
  name: string;
  type?: {
    multiArrayType?: {
      shape?: LongLike[];
      dataType?: number;
      enumeratedShapes?: { shapes?: { shape?: LongLike[] }[] } | null;
      shapeRange?: { sizeRanges?: { lowerBound?: LongLike; upperBound?: LongLike }[] } | null;
    } | null;
  } | null;
}

/** What createExecutor needs from a loaded model. */
export interface ExecutorModel {
  /** The decoded ML Program (Model.mlProgram). */
  program: MilProgram;
  /** Directory that "@model_path" in blob file names stands for (`<pkg>/Data/com.apple.CoreML`). */
  modelDir: string;
  /** Model description; enables input checks against enumerated/ranged shapes. */
  description?: {
    input?: FeatureDescription[];
    output?: FeatureDescription[];
    functions?: { name: string; input?: FeatureDescription[]; output?: FeatureDescription[] }[];
    defaultFunctionName?: string;
  } | null;
  /** File name used in error messages. */
  path?: string;
  /**
   * Absolute path of the weight file a BlobFileValue.fileName names (a loaded Model's
   * weightFilePath). Without it "@model_path" is replaced by modelDir.
   */
  resolveWeightFile?: (fileName: string) => string;
}

/** The executor's view of a model loaded with loadModel / loadModelSync. */
export function executorModelOf(model: Model): ExecutorModel {
  const program = model.program;
  if (!program) {
    throw new UnsupportedError(`the executor runs ML Programs only; this model is ${model.modelType ?? 'of unknown type'}`, { file: model.path });
  }
  const resolved = new Map<string, string>();
  return {
    program: program as unknown as MilProgram,
    modelDir: model.weightsDir ? path.dirname(model.weightsDir) : '.',
    description: (model.spec.description ?? null) as unknown as ExecutorModel['description'],
    ...(model.path !== undefined ? { path: model.path } : {}),
    resolveWeightFile: (fileName) => {
      let p = resolved.get(fileName);
      if (p === undefined) {
        p = model.weightFilePath(fileName);
        resolved.set(fileName, p);
      }
      return p;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Graph description handed to the addon (mirrors native/executor/graph_desc.h).

export type GraphValue = {
  dtype: string;
  shape: number[];
} & (
  | { floats: Float32Array }
  | { ints: Int32Array }
  | { doubles: Float64Array }
  | { bools: Uint8Array }
  | { bytes: Uint8Array }
  | { strings: string[] }
  | { blob: { file: string; offset: number } }
);
export interface GraphType {
  dtype: string;
  shape: number[] | null; // -1 = unknown dimension; null = unknown rank / not a tensor
  /** 'state' / 'list': the wrapped (element) tensor's dtype; `shape` is then that tensor's shape. */
  elemDtype?: string;
}
export interface GraphNamedType {
  name: string;
  type: GraphType;
}
export interface GraphOp {
  type: string;
  name: string;
  inputs: Record<string, ({ name: string } | { value: GraphValue })[]>;
  attributes: Record<string, GraphValue>;
  outputs: GraphNamedType[];
  blocks: GraphBlock[];
}
export interface GraphBlock {
  inputs: GraphNamedType[];
  outputs: string[];
  ops: GraphOp[];
}
export interface GraphDescription {
  function: string;
  opset: string;
  modelDir: string;
  inputs: GraphNamedType[];
  block: GraphBlock;
}

const MIL_DTYPE: Record<number, string> = {
  1: 'bool', 2: 'string', 10: 'fp16', 11: 'fp32', 12: 'fp64', 13: 'bf16', 21: 'int8', 22: 'int16', 23: 'int32',
  24: 'int64', 25: 'int4', 31: 'uint8', 32: 'uint16', 33: 'uint32', 34: 'uint64', 35: 'uint4', 36: 'uint2',
  37: 'uint1', 38: 'uint6', 39: 'uint3', 40: 'fp8e4m3', 41: 'fp8e5m2',
};
const ARRAY_DTYPE: Record<number, string> = { 65568: 'fp32', 65600: 'fp64', 131104: 'int32', 131080: 'int8', 65552: 'fp16' };

/** Op types the executor runs (const, constexpr_*, control flow included). */
export const SUPPORTED_OPS: readonly string[] = [
  'abs', 'acos', 'add', 'affine', 'argsort', 'asin', 'atan', 'atanh', 'avg_pool', 'band_part', 'batch_norm',
  'batch_to_space', 'cast', 'ceil', 'clamped_relu', 'classify', 'clip', 'concat', 'cond', 'const',
  'constexpr_affine_dequantize', 'constexpr_blockwise_shift_scale', 'constexpr_cast', 'constexpr_lut_to_dense',
  'constexpr_lut_to_sparse', 'constexpr_sparse_blockwise_shift_scale', 'constexpr_sparse_to_dense', 'conv',
  'conv_transpose', 'coreml_update_state', 'cos', 'cosh', 'crop', 'crop_resize', 'cumsum', 'depth_to_space',
  'dequantize', 'einsum', 'elu', 'equal', 'erf', 'exp', 'exp2', 'expand_dims', 'fill', 'fill_like', 'flatten2d',
  'floor', 'floor_div', 'gather', 'gather_along_axis', 'gather_nd', 'gelu', 'greater', 'greater_equal', 'gru',
  'identity', 'instance_norm', 'inverse', 'l2_norm', 'l2_pool', 'layer_norm', 'leaky_relu', 'less', 'less_equal',
  'linear', 'linear_activation', 'list_gather', 'list_length', 'list_read', 'list_scatter', 'list_write',
  'local_response_norm', 'log', 'logical_and', 'logical_not', 'logical_or', 'logical_xor', 'lstm', 'make_list',
  'matmul', 'max_pool', 'maximum', 'minimum', 'mod', 'mul', 'neg', 'non_maximum_suppression', 'non_zero', 'not_equal',
  'one_hot', 'pad', 'pixel_shuffle', 'pixel_unshuffle', 'pow', 'prelu', 'quantize', 'random_bernoulli',
  'random_categorical', 'random_normal', 'random_uniform', 'range_1d', 'read_state', 'real_div', 'reduce_argmax',
  'reduce_argmin', 'reduce_l1_norm', 'reduce_l2_norm', 'reduce_log_sum', 'reduce_log_sum_exp', 'reduce_max',
  'reduce_mean', 'reduce_min', 'reduce_prod', 'reduce_sum', 'reduce_sum_square', 'relu', 'relu6', 'resample',
  'reshape', 'reshape_like', 'resize', 'resize_bilinear', 'resize_nearest_neighbor', 'reverse', 'reverse_sequence',
  'rnn', 'round', 'rsqrt', 'scaled_dot_product_attention', 'scaled_tanh', 'scatter', 'scatter_along_axis',
  'scatter_nd', 'select', 'shape', 'sigmoid', 'sigmoid_hard', 'sign', 'silu', 'sin', 'sinh', 'slice_by_index',
  'slice_by_size', 'slice_update', 'sliding_windows', 'softmax', 'softplus', 'softplus_parametric', 'softsign',
  'space_to_batch', 'space_to_depth', 'split', 'sqrt', 'square', 'squeeze', 'stack', 'sub', 'tan', 'tanh',
  'threshold', 'thresholded_relu', 'tile', 'topk', 'transpose', 'upsample_bilinear', 'upsample_nearest_neighbor',
  'while_loop', 'write_state',
];

function num(v: LongLike | undefined | null): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return Number(v);
  return v.toNumber();
}

function lowerType(t: MilValueType | null | undefined): GraphType {
  const tt = t?.tensorType;
  // States and lists carry their wrapped / element tensor type (the graph zero-initialises states).
  const wrapped = t?.stateType?.wrappedType ?? t?.listType?.type;
  if (!tt && wrapped?.tensorType) {
    const inner = lowerType(wrapped);
    return { dtype: t?.stateType ? 'state' : 'list', shape: inner.shape, elemDtype: inner.dtype };
  }
  if (!tt) {
    const kind = t?.listType ? 'list' : t?.tupleType ? 'tuple' : t?.dictionaryType ? 'dict' : t?.stateType ? 'state' : 'unknown';
    return { dtype: kind, shape: null };
  }
  const dtype = MIL_DTYPE[tt.dataType ?? 0] ?? `dtype#${tt.dataType}`;
  if (num(tt.rank) < 0) return { dtype, shape: null };
  return { dtype, shape: (tt.dimensions ?? []).map((d) => (d.constant ? num(d.constant.size) : -1)) };
}

class Lowering {
  constructor(
    private readonly where: string,
    private readonly resolveWeightFile: ((fileName: string) => string) | undefined,
  ) {}

  value(v: MilValue, ctx: string): GraphValue {
    // A list of scalars (classify's class labels) becomes a 1-D tensor of its elements.
    const items = v.immediateValue?.list?.values;
    if (items) {
      const scalars = items.map((item, k) => this.value(item, `${ctx}[${k}]`));
      const dtype = scalars[0]?.dtype ?? 'fp32';
      if (scalars.some((e) => e.dtype !== dtype || e.shape.length !== 0)) {
        throw new UnsupportedError(`${ctx}: only lists of scalars of one dtype are supported`, { file: this.where });
      }
      if (dtype === 'string') return { dtype, shape: [scalars.length], strings: scalars.flatMap((e) => ('strings' in e ? e.strings : [])) };
      const nums = scalars.map((e) => ('ints' in e ? e.ints[0]! : 'doubles' in e ? e.doubles[0]! : 'floats' in e ? e.floats[0]! : NaN));
      return { dtype: dtype === 'int64' ? 'int64' : dtype, shape: [scalars.length], doubles: Float64Array.from(nums) };
    }
    const t = lowerType(v.type);
    if (t.shape === null) throw new UnsupportedError(`${ctx}: only tensor constants are supported (got ${t.dtype})`, { file: this.where });
    const base = { dtype: t.dtype, shape: t.shape };
    if (v.blobFileValue) {
      const fileName = v.blobFileValue.fileName ?? '';
      const file = this.resolveWeightFile ? this.resolveWeightFile(fileName) : fileName;
      return { ...base, blob: { file, offset: num(v.blobFileValue.offset) } };
    }
    const tv = v.immediateValue?.tensor;
    if (!tv) throw new UnsupportedError(`${ctx}: only tensor constants are supported`, { file: this.where });
    if (tv.floats) return { ...base, floats: Float32Array.from(tv.floats.values ?? []) };
    if (tv.ints) return { ...base, ints: Int32Array.from(tv.ints.values ?? []) };
    if (tv.bools) return { ...base, bools: Uint8Array.from(Array.from(tv.bools.values ?? [], (b) => (b ? 1 : 0))) };
    if (tv.strings) return { ...base, strings: [...(tv.strings.values ?? [])] };
    if (tv.longInts) return { ...base, doubles: Float64Array.from(Array.from(tv.longInts.values ?? [], (x) => num(x))) };
    if (tv.doubles) return { ...base, doubles: Float64Array.from(tv.doubles.values ?? []) };
    if (tv.bytes) return { ...base, bytes: new Uint8Array(tv.bytes.values ?? new Uint8Array(0)) };
    // An empty tensor selects no field in some writers.
    if (base.shape.some((d) => d === 0)) return { ...base, floats: new Float32Array(0) };
    throw new ModelFormatError(`${ctx}: immediate value without data`, { file: this.where });
  }

  block(b: MilBlock, ctx: string): GraphBlock {
    return {
      inputs: (b.inputs ?? []).map((i) => ({ name: i.name, type: lowerType(i.type) })),
      outputs: [...(b.outputs ?? [])],
      ops: (b.operations ?? []).map((op) => this.op(op, ctx)),
    };
  }

  op(op: MilOperation, ctx: string): GraphOp {
    const nameValue = op.attributes?.['name']?.immediateValue?.tensor?.strings?.values?.[0];
    const name = nameValue ?? op.outputs?.[0]?.name ?? '';
    const where = `${ctx}, op '${name}' (${op.type})`;
    const inputs: GraphOp['inputs'] = {};
    for (const [param, arg] of Object.entries(op.inputs ?? {})) {
      inputs[param] = (arg.arguments ?? []).map((b, k) => {
        if (b.name) return { name: b.name };
        if (b.value) return { value: this.value(b.value, `${where} input '${param}'[${k}]`) };
        throw new ModelFormatError(`${where}: input '${param}' has an empty binding`, { file: this.where });
      });
    }
    const attributes: GraphOp['attributes'] = {};
    for (const [key, val] of Object.entries(op.attributes ?? {})) {
      if (key === 'name') continue;
      attributes[key] = this.value(val, `${where} attribute '${key}'`);
    }
    return {
      type: op.type,
      name,
      inputs,
      attributes,
      outputs: (op.outputs ?? []).map((o) => ({ name: o.name, type: lowerType(o.type) })),
      blocks: (op.blocks ?? []).map((b, k) => this.block(b, `${where} block ${k}`)),
    };
  }
}

/** Lowers one function of a program into the addon's graph description (exposed for tests/tools). */
export function lowerProgram(model: ExecutorModel, functionName?: string): GraphDescription {
  const file = model.path;
  const functions = model.program.functions ?? {};
  const fnName = functionName || model.description?.defaultFunctionName || ('main' in functions ? 'main' : Object.keys(functions)[0]);
  const fn = fnName !== undefined ? functions[fnName] : undefined;
  if (!fn || fnName === undefined) {
    throw new ModelFormatError(`the program has no function '${functionName ?? 'main'}' (functions: ${Object.keys(functions).join(', ') || 'none'})`, { file });
  }
  const opset = fn.opset ?? '';
  const block = fn.blockSpecializations?.[opset];
  if (!block) throw new ModelFormatError(`function '${fnName}' has no block for its opset '${opset}'`, { file });
  const lowering = new Lowering(file ?? '<model>', model.resolveWeightFile);
  return {
    function: fnName,
    opset,
    modelDir: model.modelDir,
    inputs: (fn.inputs ?? []).map((i) => ({ name: i.name, type: lowerType(i.type) })),
    block: lowering.block(block, `function '${fnName}'`),
  };
}

// ---------------------------------------------------------------------------------------------
// Public API

/** Output dtypes (and the dtypes the native graph takes). */
export type TensorDType = 'fp32' | 'fp16' | 'int32' | 'bool';
export interface TensorInput {
  /**
   * fp32: Float32Array; fp16: Uint16Array of raw halves; int32: Int32Array; bool: Uint8Array. Wider
   * types (Float64Array, BigInt64Array, Int16Array, Int8Array, an NpyArray from readNpy) are
   * converted to what the model input declares: any number type to a float input, integers and
   * bools to an int32 / bool input (int64 values must fit in int32).
   */
  data: TensorData;
  shape: number[];
  /** Defaults from the array type (Uint16Array = fp16, Uint8Array = bool); numpy names (float32…) accepted. */
  dtype?: DTypeName;
}
export interface TensorOutput {
  /** A string output (a classifier's label) arrives as a plain array of strings with dtype 'string'. */
  data: Float32Array | Uint16Array | Int32Array | Uint8Array;
  shape: number[];
  dtype: TensorDType;
  /**
   * Dictionary outputs (classify's class probabilities) come back as the probability vector; `labels`
   * names each entry, in the order of `data`.
   */
  labels?: (string | number)[];
}
export interface PredictOptions {
  /** Worker threads for the kernels (0/undefined = the pool size, see setThreads). */
  threads?: number;
  signal?: AbortSignal;
  /** Called with (ops done, ops total). */
  onProgress?: ProgressCallback;
  /**
   * Time every op and count its work: `true` stores the per-op-type profile of this run in
   * `executor.lastProfile`; a function also receives it. Off by default (timing each op costs a little).
   */
  profile?: boolean | ((profile: ExecutorProfile) => void);
  /**
   * 'fp16' rounds the inputs, the fp32 weights and every op's float output to fp16 (round to nearest
   * even), as Core ML computes an ML Program on a Mac's GPU / Neural Engine; kernels work in fp32 in
   * between. Default: the executor's own option (createExecutor), else 'fp32'.
   */
  computePrecision?: ComputePrecision;
}

export type ComputePrecision = 'fp32' | 'fp16';
export interface ExecutorOptions {
  /** Function of a multi-function model (default: the model's default function or "main"). */
  function?: string;
  /** Default compute precision of predict() (see PredictOptions.computePrecision). */
  computePrecision?: ComputePrecision;
}

/** One op type's share of a profiled predict(). */
export interface OpTypeProfile {
  type: string;
  /** Ops of this type executed (ops inside while_loop bodies count once per iteration). */
  calls: number;
  /** Wall time summed over those ops, milliseconds. */
  ms: number;
  /** Floating-point operations (a multiply-add counts 2) of conv / conv_transpose / linear / matmul / einsum / SDPA; 0 for other ops. */
  flops: number;
  /** Bytes of every input and output tensor of those ops (4 per element, 2 for fp16 weights). */
  bytes: number;
}
export interface ExecutorProfile {
  /** Wall time of the whole run, milliseconds (the ops' sum plus the executor's own bookkeeping). */
  totalMs: number;
  /** Sorted by time, largest first. */
  ops: OpTypeProfile[];
}

interface NativeExecutorHandle {
  predict(
    inputs: Record<string, { dtype: string; shape: number[]; data: ArrayBufferView }>,
    options: { threads?: number; profile?: boolean; computePrecision?: ComputePrecision },
    onProgress?: ProgressCallback,
    cancel?: CancelToken,
  ): Promise<Record<string, TensorOutput> | { outputs: Record<string, TensorOutput>; profile: ExecutorProfile }>;
  info(): { inputs: { name: string; dtype: string; shape: number[] }[]; outputs: { name: string; dtype: string; shape: number[] }[] };
  resetState(): void;
}
interface ExecutorAddon {
  createExecutor(desc: GraphDescription): NativeExecutorHandle;
  executorSupportedOps(): string[];
}

function wrapNativeError(err: unknown, file: string | undefined): never {
  const e = err as { code?: string; message?: string };
  if (e?.code === 'EUNSUPPORTED') throw new UnsupportedError(e.message ?? 'unsupported', { file, cause: err });
  if (e?.code === 'EMODELFORMAT') throw new ModelFormatError(e.message ?? 'bad model', { file, cause: err });
  if (e?.code === 'EWEIGHTS' || e?.code === 'ENOENT' || e?.code === 'EIO') throw new CoreMLOptimizeError('EWEIGHTS', e.message ?? 'weights', { file, cause: err });
  throw err;
}

interface InputSpec {
  name: string;
  dtype: string;
  shape: number[] | null;
  feature?: FeatureDescription;
}

/**
 * Converts an input to the dtype the native graph wants for a model input of `want` (the program's
 * or the description's dtype): fp16 halves pass through to fp16/fp32 inputs, everything numeric is
 * widened or narrowed as needed. Throws a one-line error for values that cannot be represented.
 */
function convertInput(name: string, data: TensorData, given: DType, want: string, file: string | undefined): { dtype: TensorDType; data: ArrayBufferView } {
  const wantD = canonicalDType(want) ?? (want.startsWith('fp') || want === 'bf16' ? 'fp32' : want === 'bool' ? 'bool' : 'int32');
  const n = data.length;
  if (isFloatDType(wantD)) {
    if (given === 'fp32' || given === 'fp16') return { dtype: given, data };
    if (given === 'int64') return { dtype: 'fp32', data: Float32Array.from(data as BigInt64Array, (v) => Number(v)) };
    return { dtype: 'fp32', data: Float32Array.from(data as ArrayLike<number>) };
  }
  if (isFloatDType(given)) {
    throw new UnsupportedError(`input '${name}' must be ${want}, got ${given} (float data for an integer input)`, { file });
  }
  if (wantD === 'bool') {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = (data as ArrayLike<number | bigint>)[i] ? 1 : 0;
    return { dtype: 'bool', data: given === 'bool' ? data : out };
  }
  if (given === 'int32') return { dtype: 'int32', data };
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = Number((data as ArrayLike<number | bigint>)[i]);
    if (v > 2147483647 || v < -2147483648) throw new RangeError(`input '${name}': element ${i} = ${v} does not fit in int32`);
    out[i] = v;
  }
  return { dtype: 'int32', data: out };
}

/** Checks a shape against a feature's fixed, enumerated or ranged shape; returns a reason or null. */
function shapeProblem(shape: number[], spec: InputSpec): string | null {
  const ma = spec.feature?.type?.multiArrayType;
  const enumerated = ma?.enumeratedShapes?.shapes;
  if (enumerated && enumerated.length > 0) {
    const options = enumerated.map((s) => (s.shape ?? []).map(num));
    return options.some((o) => o.length === shape.length && o.every((d, i) => d === shape[i]))
      ? null
      : `shape [${shape.join(', ')}] is not one of the enumerated shapes ${options.map((o) => `[${o.join(', ')}]`).join(', ')}`;
  }
  const ranges = ma?.shapeRange?.sizeRanges;
  if (ranges && ranges.length > 0) {
    if (ranges.length !== shape.length) return `rank ${shape.length} differs from the model's rank ${ranges.length}`;
    for (let i = 0; i < ranges.length; i++) {
      const lo = num(ranges[i]!.lowerBound), hi = num(ranges[i]!.upperBound);
      if (shape[i]! < lo || (hi >= 0 && shape[i]! > hi)) return `dimension ${i} = ${shape[i]} is outside the range [${lo}, ${hi < 0 ? '∞' : hi}]`;
    }
    return null;
  }
  const declared = spec.shape;
  if (declared === null) return null;
  if (declared.length !== shape.length) return `rank ${shape.length} differs from the model's [${declared.join(', ')}]`;
  for (let i = 0; i < declared.length; i++) {
    if (declared[i]! >= 0 && declared[i] !== shape[i]) return `shape [${shape.join(', ')}] differs from the model's [${declared.join(', ')}]`;
  }
  return null;
}

/** Output name -> class labels, for the dictionary output of each classify op in the main block. */
function classifyLabels(block: GraphBlock): Map<string, (string | number)[]> {
  const consts = new Map<string, GraphValue>();
  for (const o of block.ops) if (o.type === 'const' && o.attributes.val && o.outputs[0]) consts.set(o.outputs[0].name, o.attributes.val);
  const out = new Map<string, (string | number)[]>();
  for (const o of block.ops) {
    const dict = o.outputs[1];
    const binding = o.inputs.classes?.[0];
    if (o.type !== 'classify' || !dict || !binding) continue;
    const v = 'value' in binding ? binding.value : consts.get(binding.name);
    if (v && 'strings' in v) out.set(dict.name, [...v.strings]);
    else if (v && 'doubles' in v) out.set(dict.name, Array.from(v.doubles));
    else if (v && 'ints' in v) out.set(dict.name, Array.from(v.ints));
  }
  return out;
}

export class Executor {
  readonly functionName: string;
  readonly inputs: readonly { name: string; dtype: string; shape: number[] | null }[];
  readonly outputs: readonly { name: string; dtype: string; shape: number[] | null }[];
  /**
   * State inputs (iOS18 stateful models): not fed by the caller. The executor keeps each state
   * between predict calls (zeros at first, see resetState); passing a tensor under a state's name
   * sets the state before that run.
   */
  readonly states: readonly { name: string; dtype: string; shape: number[] | null }[];
  private readonly specs: InputSpec[];
  private readonly dictLabels: Map<string, (string | number)[]>;

  /** @internal use createExecutor */
  constructor(
    private readonly handle: NativeExecutorHandle,
    desc: GraphDescription,
    allSpecs: InputSpec[],
    private readonly file: string | undefined,
    /** Default compute precision of predict(). */
    readonly computePrecision: ComputePrecision = 'fp32',
  ) {
    this.functionName = desc.function;
    const isState = (n: string) => desc.inputs.some((i) => i.name === n && i.type.dtype === 'state');
    this.specs = allSpecs.filter((s) => !isState(s.name));
    this.inputs = this.specs.map(({ name, dtype, shape }) => ({ name, dtype, shape }));
    this.states = desc.inputs
      .filter((i) => i.type.dtype === 'state')
      .map((i) => ({ name: i.name, dtype: i.type.elemDtype ?? 'fp32', shape: i.type.shape }));
    this.dictLabels = classifyLabels(desc.block);
    const types = handle.info().outputs;
    this.outputs = types.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }));
  }

  /** Sets every state back to zeros (a new sequence / a new KV cache). */
  resetState(): void {
    this.handle.resetState();
  }

  async predict(inputs: Record<string, TensorInput>, options: PredictOptions = {}): Promise<Record<string, TensorOutput>> {
    const native: Record<string, { dtype: string; shape: number[]; data: ArrayBufferView }> = {};
    for (const name of Object.keys(inputs)) {
      const state = this.states.find((s) => s.name === name);
      if (state) {
        const input = inputs[name]!;
        const given = input.dtype !== undefined ? canonicalDType(input.dtype) : dtypeOfArray(input.data);
        if (!given) throw new UnsupportedError(`state '${name}': unknown dtype '${input.dtype}'`, { file: this.file });
        native[name] = { ...convertInput(name, input.data, given, state.dtype, this.file), shape: input.shape };
        continue;
      }
      if (!this.specs.some((s) => s.name === name)) {
        throw new UnsupportedError(`unknown input '${name}' (the model's inputs: ${this.specs.map((s) => s.name).join(', ')})`, { file: this.file });
      }
    }
    for (const spec of this.specs) {
      const input = inputs[spec.name];
      if (!input) throw new UnsupportedError(`missing input '${spec.name}'`, { file: this.file });
      const given = input.dtype !== undefined ? canonicalDType(input.dtype) : dtypeOfArray(input.data);
      if (!given) throw new UnsupportedError(`input '${spec.name}': unknown dtype '${input.dtype}' (fp32, fp16, fp64, int64, int32, int16, int8, uint8, bool or numpy's float32 / float16 / float64)`, { file: this.file });
      if (!arrayTypeMatches(input.data, given)) {
        throw new UnsupportedError(`input '${spec.name}': ${given} data must be a ${given === 'fp16' ? 'Uint16Array of raw halves' : `typed array of ${given}`}, got ${input.data.constructor.name}`, { file: this.file });
      }
      const count = input.shape.reduce((a, b) => a * b, 1);
      if (!input.shape.every((d) => Number.isInteger(d) && d >= 0)) throw new RangeError(`input '${spec.name}': shape must be non-negative integers`);
      if (input.data.length !== count) {
        throw new RangeError(`input '${spec.name}': data has ${input.data.length} elements, shape [${input.shape.join(', ')}] needs ${count}`);
      }
      const problem = shapeProblem(input.shape, spec);
      if (problem) throw new UnsupportedError(`input '${spec.name}': ${problem}`, { file: this.file });
      native[spec.name] = { ...convertInput(spec.name, input.data, given, spec.dtype, this.file), shape: input.shape };
    }
    const profile = options.profile !== undefined && options.profile !== false;
    const computePrecision = options.computePrecision ?? this.computePrecision;
    if (computePrecision !== 'fp32' && computePrecision !== 'fp16') {
      throw new ConfigError(`computePrecision must be 'fp32' or 'fp16', got '${String(computePrecision)}'`);
    }
    const result = await withCancel(options.signal, (token) =>
      this.handle.predict(native, { threads: options.threads ?? 0, profile, computePrecision }, options.onProgress, token),
    );
    let out: Record<string, TensorOutput>;
    if (profile) {
      const { outputs, profile: report } = result as { outputs: Record<string, TensorOutput>; profile: ExecutorProfile };
      this.lastProfile = report;
      if (typeof options.profile === 'function') options.profile(report);
      out = outputs;
    } else {
      out = result as Record<string, TensorOutput>;
    }
    for (const [name, labels] of this.dictLabels) if (out[name]) out[name]!.labels = labels;
    return out;
  }

  /** The profile of the last predict() run with `profile` set (undefined before one). */
  lastProfile: ExecutorProfile | undefined;
}

/**
 * Builds an executor for one function (default: the description's default function or "main") of a
 * model from loadModel/loadModelSync, or of a decoded program given as an ExecutorModel.
 */
export function createExecutor(source: Model | ExecutorModel, options: ExecutorOptions = {}): Executor {
  const precision = options.computePrecision ?? 'fp32';
  if (precision !== 'fp32' && precision !== 'fp16') throw new ConfigError(`computePrecision must be 'fp32' or 'fp16', got '${String(precision)}'`);
  const model = source instanceof Model ? executorModelOf(source) : source;
  const desc = lowerProgram(model, options.function);
  const fnFeatures = options.function ? model.description?.functions?.find((f) => f.name === options.function)?.input : undefined;
  const features: FeatureDescription[] = fnFeatures ?? model.description?.input ?? [];
  const outputFeatures = options.function
    ? model.description?.functions?.find((f) => f.name === options.function)?.output
    : model.description?.output;
  if (outputFeatures && outputFeatures.length > 0) {
    const declared = outputFeatures.map((f) => f.name).sort();
    const produced = [...desc.block.outputs].sort();
    if (declared.join('\u0000') !== produced.join('\u0000')) {
      throw new ModelFormatError(
        `the model description's outputs (${declared.join(', ')}) differ from function '${desc.function}' outputs (${produced.join(', ')})`,
        { file: model.path },
      );
    }
  }
  for (const feature of features) {
    if (!desc.inputs.some((i) => i.name === feature.name)) {
      throw new ModelFormatError(`the model description's input '${feature.name}' is not an input of function '${desc.function}'`, { file: model.path });
    }
  }
  const specs: InputSpec[] = desc.inputs.map((i) => {
    const feature = features.find((f) => f.name === i.name);
    const arrayType = feature?.type?.multiArrayType?.dataType;
    const dtype = arrayType !== undefined && ARRAY_DTYPE[arrayType] ? ARRAY_DTYPE[arrayType]! : i.type.dtype;
    return feature ? { name: i.name, dtype, shape: i.type.shape, feature } : { name: i.name, dtype, shape: i.type.shape };
  });
  let handle: NativeExecutorHandle;
  try {
    handle = nativeAddon<ExecutorAddon>().createExecutor(desc);
  } catch (err) {
    wrapNativeError(err, model.path);
  }
  return new Executor(handle, desc, specs, model.path, precision);
}

/** Op types the native build supports (same as SUPPORTED_OPS; exposed to check the list). */
export function nativeSupportedOps(): string[] {
  return nativeAddon<ExecutorAddon>().executorSupportedOps();
}
