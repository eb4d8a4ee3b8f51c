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

// ---------------------------------------------------------------------------------------------
// Decoded MIL.proto shapes (only what the executor reads; protobufjs camelCase field names).

type LongLike = number | { toNumber(): number } | string;

export interface MilDimension {
  constant?: { size?: LongLike } | null;
  unknown?: { variadic?: boolean } | null;
}
export interface MilValueType {
  tensorType?: { dataType?: number; rank?: LongLike; dimensions?: MilDimension[] } | null;
  listType?: unknown;
  tupleType?: unknown;
  dictionaryType?: unknown;
  stateType?: unknown;
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
  immediateValue?: { tensor?: MilTensorValue | null; list?: unknown; tuple?: unknown; dictionary?: unknown } | null;
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
  'abs', 'acos', 'add', 'argsort', 'asin', 'atan', 'atanh', 'avg_pool', 'band_part', 'batch_norm', 'cast', 'ceil',
  'clamped_relu', 'clip', 'concat', 'cond', 'const', 'constexpr_affine_dequantize',
  'constexpr_blockwise_shift_scale', 'constexpr_cast', 'constexpr_lut_to_dense', 'constexpr_lut_to_sparse',
  'constexpr_sparse_blockwise_shift_scale', 'constexpr_sparse_to_dense', 'conv', 'conv_transpose', 'cos', 'cosh',
  'cumsum', 'depth_to_space', 'einsum', 'elu', 'equal', 'erf', 'exp', 'exp2', 'expand_dims', 'fill', 'fill_like',
  'flatten2d', 'floor', 'floor_div', 'gather', 'gather_along_axis', 'gather_nd', 'gelu', 'greater', 'greater_equal',
  'identity', 'instance_norm', 'inverse', 'l2_norm', 'l2_pool', 'layer_norm', 'leaky_relu', 'less', 'less_equal',
  'linear', 'linear_activation', 'log', 'logical_and', 'logical_not', 'logical_or', 'logical_xor', 'lstm', 'matmul',
  'max_pool', 'maximum', 'minimum', 'mod', 'mul', 'neg', 'non_zero', 'not_equal', 'one_hot', 'pad', 'pixel_shuffle',
  'pixel_unshuffle', 'pow', 'prelu', 'range_1d', 'real_div', 'reduce_argmax', 'reduce_argmin', 'reduce_l1_norm',
  'reduce_l2_norm', 'reduce_log_sum', 'reduce_log_sum_exp', 'reduce_max', 'reduce_mean', 'reduce_min', 'reduce_prod',
  'reduce_sum', 'reduce_sum_square', 'relu', 'relu6', 'reshape', 'reverse', 'round', 'rsqrt',
  'scaled_dot_product_attention', 'scaled_tanh', 'scatter', 'scatter_along_axis', 'scatter_nd', 'select', 'shape',
  'sigmoid', 'sigmoid_hard', 'sign', 'silu', 'sin', 'sinh', 'slice_by_index', 'slice_by_size', 'slice_update',
  'softmax', 'softplus', 'softplus_parametric', 'softsign', 'space_to_depth', 'split', 'sqrt', 'square', 'squeeze',
  'stack', 'sub', 'tan', 'tanh', 'threshold', 'tile', 'topk', 'transpose', 'upsample_bilinear',
  'upsample_nearest_neighbor', 'while_loop',
];

function num(v: LongLike | undefined | null): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return Number(v);
  return v.toNumber();
}

function lowerType(t: MilValueType | null | undefined): GraphType {
  const tt = t?.tensorType;
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

export type TensorDType = 'fp32' | 'fp16' | 'int32' | 'bool';
export interface TensorInput {
  /** fp32: Float32Array; fp16: Uint16Array of raw halves; int32: Int32Array; bool: Uint8Array. */
  data: Float32Array | Uint16Array | Int32Array | Uint8Array;
  shape: number[];
  /** Defaults from the array type (Uint16Array = fp16, Uint8Array = bool). */
  dtype?: TensorDType;
}
export interface TensorOutput {
  data: Float32Array | Uint16Array | Int32Array | Uint8Array;
  shape: number[];
  dtype: TensorDType;
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

function inferDType(data: TensorInput['data']): TensorDType {
  if (data instanceof Float32Array) return 'fp32';
  if (data instanceof Uint16Array) return 'fp16';
  if (data instanceof Int32Array) return 'int32';
  return 'bool';
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

export class Executor {
  readonly functionName: string;
  readonly inputs: readonly { name: string; dtype: string; shape: number[] | null }[];
  readonly outputs: readonly { name: string; dtype: string; shape: number[] | null }[];

  /** @internal use createExecutor */
  constructor(
    private readonly handle: NativeExecutorHandle,
    desc: GraphDescription,
    private readonly specs: InputSpec[],
    private readonly file: string | undefined,
    /** Default compute precision of predict(). */
    readonly computePrecision: ComputePrecision = 'fp32',
  ) {
    this.functionName = desc.function;
    this.inputs = specs.map(({ name, dtype, shape }) => ({ name, dtype, shape }));
    const types = handle.info().outputs;
    this.outputs = types.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }));
  }

  async predict(inputs: Record<string, TensorInput>, options: PredictOptions = {}): Promise<Record<string, TensorOutput>> {
    const native: Record<string, { dtype: string; shape: number[]; data: ArrayBufferView }> = {};
    for (const name of Object.keys(inputs)) {
      if (!this.specs.some((s) => s.name === name)) {
        throw new UnsupportedError(`unknown input '${name}' (the model's inputs: ${this.specs.map((s) => s.name).join(', ')})`, { file: this.file });
      }
    }
    for (const spec of this.specs) {
      const input = inputs[spec.name];
      if (!input) throw new UnsupportedError(`missing input '${spec.name}'`, { file: this.file });
      const dtype = input.dtype ?? inferDType(input.data);
      const count = input.shape.reduce((a, b) => a * b, 1);
      if (!input.shape.every((d) => Number.isInteger(d) && d >= 0)) throw new RangeError(`input '${spec.name}': shape must be non-negative integers`);
      if (input.data.length !== count) {
        throw new RangeError(`input '${spec.name}': data has ${input.data.length} elements, shape [${input.shape.join(', ')}] needs ${count}`);
      }
      const want = spec.dtype;
      const compatible = dtype === want || (want === 'fp16' && dtype === 'fp32') || (want === 'fp32' && dtype === 'fp16');
      if (!compatible) throw new UnsupportedError(`input '${spec.name}' must be ${want}, got ${dtype}`, { file: this.file });
      const problem = shapeProblem(input.shape, spec);
      if (problem) throw new UnsupportedError(`input '${spec.name}': ${problem}`, { file: this.file });
      native[spec.name] = { dtype, shape: input.shape, data: input.data };
    }
    const profile = options.profile !== undefined && options.profile !== false;
    const computePrecision = options.computePrecision ?? this.computePrecision;
    if (computePrecision !== 'fp32' && computePrecision !== 'fp16') {
      throw new ConfigError(`computePrecision must be 'fp32' or 'fp16', got '${String(computePrecision)}'`);
    }
    const result = await withCancel(options.signal, (token) =>
      this.handle.predict(native, { threads: options.threads ?? 0, profile, computePrecision }, options.onProgress, token),
    );
    if (!profile) return result as Record<string, TensorOutput>;
    const { outputs, profile: report } = result as { outputs: Record<string, TensorOutput>; profile: ExecutorProfile };
    this.lastProfile = report;
    if (typeof options.profile === 'function') options.profile(report);
    return outputs;
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
