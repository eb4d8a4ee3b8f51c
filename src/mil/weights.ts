/**
 * Weight inspection, like coremltools' `get_weights_metadata`, plus what compression each weight
 * carries. A weight is a constant var (output of `const` or of a `constexpr_*` chain) that feeds
 * at least one regular op or a block output. Blob data is never read unless asked for
 * (`readData`): shapes, dtypes and sizes come from the program alone, so program-only packages
 * (weights/ missing) can still be described.
 */
import { ModelFormatError, UnsupportedError } from '../errors.js';
import type { ConstValue, MilFunction, Operation, Param, Program } from './program.js';
import { dtypeBits, elementCountOf, isFloat, isInteger, storedBytes, tensorDType, tensorShape, type Dim, type MilDType } from './types.js';

export interface WeightInputInfo {
  /** Name and type of the constexpr op this parameter belongs to. */
  op: string;
  opType: string;
  input: string;
  /** Set when the parameter is bound by name to another constexpr op's output. */
  fromOp?: string;
  fromVar?: string;
  dtype?: MilDType;
  shape?: Dim[];
  storage?: 'blob' | 'immediate';
  blobOffset?: number;
  /** Packed data bytes of this parameter (0 for name bindings). */
  bytes: number;
}

export interface PalettizationInfo {
  kind: 'palettization';
  op: string;
  opType: string;
  /** 'ios16': packed uint8 indices + 1-D LUT + shape; 'ios18': typed uint<n> indices + rank K+2 LUT. */
  encoding: 'ios16' | 'ios18';
  /** Applies to the whole weight, or to the non-zero values of a sparse weight (constexpr_lut_to_sparse). */
  target: 'weight' | 'nonzero_data';
  nbits: number;
  lutSize: number;
  lutDtype: MilDType | undefined;
  /** Where the LUT comes from: a constant, an int8/uint8 LUT dequantized by a constexpr, or a LUT scaled per channel. */
  lutSource: 'const' | 'quantized' | 'per_channel_scaled';
  granularity: 'per_tensor' | 'per_grouped_channel';
  /** LUT count along each axis of the weight (all 1 for per-tensor). */
  groups: number[];
  groupAxis?: number;
  /** Channels per group along groupAxis (in output channels, vector size included). */
  groupSize?: number;
  numGroups?: number;
  clusterDim: number;
  vectorAxis?: number;
  /** Set when the stored LUT is one table repeated this many times (read with readData). */
  lutCopies?: number;
}

export interface QuantizationInfo {
  kind: 'quantization';
  op: string;
  opType: string;
  encoding: 'ios16' | 'ios18';
  /** What is quantized: the weight, the non-zero values of a sparse weight, or a palettization LUT. */
  target: 'weight' | 'nonzero_data' | 'lut';
  dtype: MilDType | undefined;
  scaleDtype: MilDType | undefined;
  granularity: 'per_tensor' | 'per_channel' | 'per_block';
  axis?: number;
  /** Block size along each axis (data.shape[k] / scale.shape[k]), iOS18 encoding. */
  blockSizes?: number[];
  blockSize?: number;
  scaleShape: Dim[];
  /** 'none' = no offset/zero point stored. Values: 'zero' | 'constant' (with offsetValue) | 'varied' | 'unread' (in a blob, readData not set). */
  offset: 'none' | 'zero' | 'constant' | 'varied' | 'unread';
  offsetValue?: number;
  /** Symmetric when there is no offset, or it is 0 (signed) / the mid value 2^(n-1)-1 (unsigned, coremltools' linear_symmetric). */
  symmetric?: boolean;
}

export interface SparsityInfo {
  kind: 'sparsity';
  op: string;
  opType: string;
  encoding: 'ios16' | 'ios18';
  elementCount: number;
  /** Number of stored values (= popcount of the mask by the op's definition). */
  nonzeroCount: number;
  sparsity: number;
  /** Popcount read from the mask data (only with readData). */
  maskPopcount?: number;
}

export interface PerChannelScaleInfo { kind: 'per_channel_scale'; op: string; opType: string; scaleShape: Dim[]; scaleDtype: MilDType | undefined }
export interface CastInfo { kind: 'cast'; op: string; opType: string; from: MilDType | undefined; to: string }
export type CompressionInfo = PalettizationInfo | QuantizationInfo | SparsityInfo | PerChannelScaleInfo | CastInfo;

export interface WeightInfo {
  name: string;
  function: string;
  producerOp: string;
  producerType: string;
  /** `<op name>.<input>` of every regular op (or `<block output>`) using the weight. */
  consumers: string[];
  /** Op types that produce the weight, leaf first (`['const']` when stored uncompressed). */
  chain: string[];
  dtype: MilDType;
  shape: Dim[];
  elementCount: number;
  /** Bytes the weight's data takes in the model (blob data + immediate payloads; shared blobs once). */
  bytes: number;
  /** Bytes the weight would take uncompressed in its dtype. */
  denseBytes: number;
  storage: 'blob' | 'immediate' | 'mixed';
  /** Blob offset of an uncompressed const weight. */
  blobOffset?: number;
  compression: CompressionInfo[];
  inputs: WeightInputInfo[];
}

export interface ListWeightsOptions {
  /** Only float tensors (default true); false also lists integer/bool constants. */
  floatOnly?: boolean;
  /** Minimum rank (default 1). */
  minRank?: number;
  /** Minimum element count (default 0). */
  minElements?: number;
  /** Read blob data where facts need it (mask popcount, offset values). Default false. */
  readData?: boolean;
  /** Limit to one function. */
  function?: string;
}

const uses = (fn: MilFunction, name: string) => fn.consumersOf(name);

function isTerminal(fn: MilFunction, varName: string): boolean {
  return uses(fn, varName).some(u => u.blockOutput || (u.op && !u.op.isConstexpr));
}

function consumerLabels(fn: MilFunction, varName: string): string[] {
  return uses(fn, varName)
    .filter(u => u.blockOutput || (u.op && !u.op.isConstexpr))
    .map(u => (u.op ? `${u.op.name}.${u.input}` : `<output ${varName}>`));
}

/** Every weight of the program (see module comment), in op order. */
export function listWeights(program: Program, options: ListWeightsOptions = {}): WeightInfo[] {
  const floatOnly = options.floatOnly ?? true;
  const minRank = options.minRank ?? 1;
  const out: WeightInfo[] = [];
  const fns = options.function ? [program.function(options.function)] : [...program.functions.values()];
  for (const fn of fns) {
    for (const op of fn.walk()) {
      if (!op.isConst && !op.isConstexpr) continue;
      for (const o of op.outputs) {
        if (!o.type?.tensorType || !isTerminal(fn, o.name)) continue;
        const dtype = tensorDType(o.type)!;
        const shape = tensorShape(o.type)!;
        if (shape.length < minRank) continue;
        if (floatOnly && !isFloat(dtype)) continue;
        if (!floatOnly && (dtype === 'string' || dtype === 'bool') ) continue;
        const count = elementCountOf(shape) ?? 0;
        if (count < (options.minElements ?? 0)) continue;
        out.push(describeWeight(fn, op, o.name, dtype, shape, count, options.readData ?? false));
      }
    }
  }
  return out;
}

function describeWeight(fn: MilFunction, op: Operation, name: string, dtype: MilDType, shape: Dim[], count: number, readData: boolean): WeightInfo {
  const chainOps = collectChain(fn, op);
  const inputs: WeightInputInfo[] = [];
  const seenBlobs = new Set<number>();
  let bytes = 0;
  let blobs = 0;
  let immediates = 0;
  const account = (v: ConstValue) => {
    const b = v.blob;
    if (b) {
      blobs++;
      if (seenBlobs.has(b.offset)) return;
      seenBlobs.add(b.offset);
    } else immediates++;
    bytes += v.storedBytes;
  };
  let blobOffset: number | undefined;
  if (op.isConst) {
    const v = op.constValue();
    account(v);
    blobOffset = v.blob?.offset;
  }
  for (const c of chainOps) {
    for (const key of c.paramNames) {
      const p = c.param(key);
      if (!p) continue;
      if (p.kind === 'var') {
        const from = fn.producerOf(p.name);
        inputs.push({ op: c.name, opType: c.type, input: key, fromOp: from?.name, fromVar: p.name, bytes: 0 });
        if (from?.isConst) account(from.constValue());
      } else {
        const v = p.value;
        account(v);
        inputs.push({ op: c.name, opType: c.type, input: key, dtype: tensorDType(v.type), shape: v.shape, storage: v.kind, blobOffset: v.blob?.offset, bytes: v.storedBytes });
      }
    }
  }
  const compression: CompressionInfo[] = [];
  for (const c of chainOps) compression.push(...describeCompression(fn, c, readData));
  return {
    name,
    function: fn.name,
    producerOp: op.name,
    producerType: op.type,
    consumers: consumerLabels(fn, name),
    chain: op.isConst ? ['const'] : chainOps.map(c => c.type),
    dtype,
    shape,
    elementCount: count,
    bytes,
    denseBytes: storedBytes(dtype, count),
    storage: blobs && immediates ? 'mixed' : blobs ? 'blob' : 'immediate',
    ...(blobOffset !== undefined ? { blobOffset } : {}),
    compression,
    inputs,
  };
}

/** The constexpr ops feeding `op` through name bindings (op included), leaf first (op order). */
function collectChain(fn: MilFunction, op: Operation): Operation[] {
  if (!op.isConstexpr) return [];
  const found = new Set<Operation>();
  const visit = (o: Operation) => {
    if (found.has(o)) return;
    found.add(o);
    for (const key of o.paramNames) {
      const p = o.param(key);
      if (p?.kind !== 'var') continue;
      const from = fn.producerOf(p.name);
      if (from?.isConstexpr) visit(from);
    }
  };
  visit(op);
  return [...found].sort((a, b) => fn.positionOf(a) - fn.positionOf(b));
}

/* ---- per-op compression facts ---- */

interface ParamView { dtype?: MilDType; shape: Dim[]; value?: ConstValue; fromOp?: Operation }

function view(fn: MilFunction, op: Operation, key: string): ParamView | undefined {
  const p: Param | undefined = op.param(key);
  if (!p) return undefined;
  if (p.kind === 'value') return { dtype: tensorDType(p.value.type), shape: p.value.shape, value: p.value };
  const t = op.block.lookupVar(p.name)?.type;
  const from = fn.producerOf(p.name);
  const value = from?.isConst ? from.constValue() : undefined;
  return { dtype: tensorDType(t), shape: tensorShape(t) ?? [], value, fromOp: from };
}

function numeric(v: ConstValue | undefined, readData: boolean): number[] | undefined {
  if (!v || (v.kind === 'blob' && !readData)) return undefined;
  const d = v.data();
  return Array.from(d as ArrayLike<number | bigint | boolean>, Number);
}

function scalarInt(v: ConstValue | undefined): number | undefined {
  if (!v) return undefined;
  const x = v.scalar();
  return Number(x);
}

function targetOf(fn: MilFunction, op: Operation): 'weight' | 'nonzero_data' | 'lut' {
  // Where does this op's (value) output go: a LUT input, a sparse op's nonzero_data, or the weight?
  const outName = op.outputs[op.outputs.length - 1]!.name;
  for (const u of fn.consumersOf(outName)) {
    if (!u.op?.isConstexpr) continue;
    if (u.input === 'lut') return 'lut';
    if (u.input === 'nonzero_data') return 'nonzero_data';
  }
  return op.type.startsWith('constexpr_sparse_') || op.type === 'constexpr_lut_to_sparse' ? 'nonzero_data' : 'weight';
}

function describeOffset(v: ConstValue | undefined, dataDtype: MilDType | undefined, readData: boolean): Pick<QuantizationInfo, 'offset' | 'offsetValue' | 'symmetric'> {
  if (!v) return { offset: 'none', symmetric: true };
  const vals = numeric(v, readData);
  if (!vals) return { offset: 'unread' };
  const first = vals[0] ?? 0;
  const constant = vals.every(x => x === first);
  const mid = dataDtype && isInteger(dataDtype) && dataDtype.startsWith('uint') ? 2 ** (dtypeBits(dataDtype) - 1) - 1 : 0;
  if (constant && first === 0) return { offset: 'zero', offsetValue: 0, symmetric: !dataDtype?.startsWith('uint') };
  if (constant) return { offset: 'constant', offsetValue: first, symmetric: first === mid && mid !== 0 };
  return { offset: 'varied', symmetric: false };
}

function blockGranularity(data: Dim[], scale: Dim[]): Pick<QuantizationInfo, 'granularity' | 'axis' | 'blockSizes' | 'blockSize'> {
  if (scale.length !== data.length) return { granularity: 'per_tensor' };
  const blockSizes = data.map((d, k) => ((d ?? 0) && (scale[k] ?? 0) ? (d as number) / (scale[k] as number) : 0));
  const split = scale.map((s, k) => ((s ?? 1) > 1 ? k : -1)).filter(k => k >= 0);
  if (split.length === 0) return { granularity: 'per_tensor', blockSizes };
  const full = split.filter(k => blockSizes[k] === 1);
  const partial = split.filter(k => blockSizes[k]! > 1);
  if (partial.length === 0 && full.length === 1) return { granularity: 'per_channel', axis: full[0], blockSizes };
  const blockAxis = partial.length === 1 ? partial[0]! : undefined;
  return { granularity: 'per_block', ...(full.length === 1 ? { axis: full[0] } : {}), blockSizes, ...(blockAxis !== undefined ? { blockSize: blockSizes[blockAxis] } : {}) };
}

function describeCompression(fn: MilFunction, op: Operation, readData: boolean): CompressionInfo[] {
  const ios16Attrs = Object.keys(op.attributes).some(k => k !== 'name');
  const encoding: 'ios16' | 'ios18' = ios16Attrs ? 'ios16' : 'ios18';
  const base = { op: op.name, opType: op.type };
  switch (op.type) {
    case 'constexpr_lut_to_dense':
    case 'constexpr_lut_to_sparse': {
      const sparse = op.type === 'constexpr_lut_to_sparse';
      const idx = view(fn, op, sparse ? 'indices_nonzero_data' : 'indices');
      const ref = sparse ? view(fn, op, 'indices_mask') : idx;
      const lut = view(fn, op, 'lut');
      if (!idx || !lut) throw new ModelFormatError(`${op.type} ${op.name} lacks indices or lut`, { file: fn.program.file });
      const lutSource: PalettizationInfo['lutSource'] = !lut.fromOp || lut.fromOp.isConst ? 'const'
        : lut.fromOp.type === 'constexpr_blockwise_shift_scale' && isFloat(view(fn, lut.fromOp, 'data')?.dtype ?? 'fp32') ? 'per_channel_scaled' : 'quantized';
      const vectorAxisRaw = scalarInt(view(fn, op, 'vector_axis')?.value);
      const oldStyle = idx.dtype === 'uint8' && lut.shape.length === 1 && op.param('shape') !== undefined;
      if (oldStyle) {
        const lutSize = (lut.shape[0] as number) ?? 0;
        return [{ kind: 'palettization', ...base, encoding, target: 'weight', nbits: Math.log2(lutSize), lutSize, lutDtype: lut.dtype, lutSource, granularity: 'per_tensor', groups: [], clusterDim: 1 }];
      }
      const K = ref?.shape.length ?? 0;
      const clusterDim = (lut.shape[lut.shape.length - 1] as number) ?? 1;
      const lutSize = (lut.shape[lut.shape.length - 2] as number) ?? 0;
      const groups = lut.shape.slice(0, K).map(d => (d as number) ?? 1);
      const vectorAxis = vectorAxisRaw !== undefined && vectorAxisRaw < 0 ? vectorAxisRaw + K : vectorAxisRaw;
      const info: PalettizationInfo = {
        kind: 'palettization', ...base, encoding, target: sparse ? 'nonzero_data' : 'weight',
        nbits: idx.dtype ? dtypeBits(idx.dtype) : Math.log2(lutSize), lutSize, lutDtype: lut.dtype, lutSource,
        granularity: 'per_tensor', groups, clusterDim, ...(vectorAxis !== undefined && clusterDim > 1 ? { vectorAxis } : {}),
      };
      // A LUT made by a constexpr (quantized or per-channel-scaled) is often one LUT repeated to
      // carry the scales; when its stored copies are identical the palettization is per tensor.
      if (lutSource !== 'const' && readData && lut.fromOp && groups.some(g => g > 1)) {
        const src = view(fn, lut.fromOp, 'data');
        if (src?.value && identicalBlocks(src.value, lutSize * clusterDim)) info.lutCopies = groups.reduce((a, b) => a * b, 1);
      }
      const split = info.lutCopies ? [] : groups.map((g, k) => (g > 1 ? k : -1)).filter(k => k >= 0);
      if (info.lutCopies) info.groups = groups.map(() => 1);
      if (split.length >= 1) {
        const axis = split[0]!;
        info.granularity = 'per_grouped_channel';
        info.groupAxis = axis;
        info.numGroups = groups[axis];
        const per = ((ref!.shape[axis] as number) ?? 0) / groups[axis]!;
        info.groupSize = per * (vectorAxis === axis ? clusterDim : 1);
      }
      return [info];
    }
    case 'constexpr_blockwise_shift_scale':
    case 'constexpr_sparse_blockwise_shift_scale': {
      const sparse = op.type === 'constexpr_sparse_blockwise_shift_scale';
      const data = view(fn, op, sparse ? 'nonzero_data' : 'data');
      const ref = sparse ? view(fn, op, 'data_mask') : data;
      const scale = view(fn, op, 'scale');
      if (!data || !scale) throw new ModelFormatError(`${op.type} ${op.name} lacks data or scale`, { file: fn.program.file });
      const target = targetOf(fn, op);
      if (data.dtype && isFloat(data.dtype) && target === 'lut') {
        return [{ kind: 'per_channel_scale', ...base, scaleShape: scale.shape, scaleDtype: scale.dtype }];
      }
      return [{
        kind: 'quantization', ...base, encoding, target: sparse ? 'nonzero_data' : target, dtype: data.dtype, scaleDtype: scale.dtype,
        ...blockGranularity(ref?.shape ?? [], scale.shape), scaleShape: scale.shape,
        ...describeOffset(view(fn, op, 'offset')?.value, data.dtype, readData),
      }];
    }
    case 'constexpr_affine_dequantize': {
      const data = view(fn, op, 'quantized_data');
      const scale = view(fn, op, 'scale');
      const rank = data?.shape.length ?? 0;
      let axis = scalarInt(view(fn, op, 'axis')?.value) ?? 0;
      if (axis < 0) axis += rank;
      const perChannel = (scale?.shape.length ?? 0) === 1;
      return [{
        kind: 'quantization', ...base, encoding: 'ios16', target: targetOf(fn, op), dtype: data?.dtype, scaleDtype: scale?.dtype,
        granularity: perChannel ? 'per_channel' : 'per_tensor', ...(perChannel ? { axis } : {}), scaleShape: scale?.shape ?? [],
        ...describeOffset(view(fn, op, 'zero_point')?.value, data?.dtype, readData),
      }];
    }
    case 'constexpr_sparse_to_dense': {
      const nz = view(fn, op, 'nonzero_data');
      const mask = view(fn, op, 'mask');
      const shapeParam = view(fn, op, 'shape');
      const outShape = tensorShape(op.outputs[0]?.type) ?? [];
      const elementCount = elementCountOf(outShape) ?? 0;
      const nonzeroCount = (nz?.shape[0] as number) ?? 0;
      const info: SparsityInfo = { kind: 'sparsity', ...base, encoding: shapeParam ? 'ios16' : 'ios18', elementCount, nonzeroCount, sparsity: elementCount ? 1 - nonzeroCount / elementCount : 0 };
      if (readData) {
        // The mask may be output 0 of constexpr_lut_to_sparse / sparse_blockwise_shift_scale:
        // count the source mask there (expanded by the vector size, if any).
        let maskValue = mask?.value;
        let maskCount = elementCount;
        const from = mask?.fromOp;
        if (!maskValue && from) {
          maskValue = view(fn, from, from.type === 'constexpr_lut_to_sparse' ? 'indices_mask' : 'data_mask')?.value;
          maskCount = maskValue?.elementCount ?? 0;
        }
        if (maskValue) info.maskPopcount = popcount(maskValue, maskCount) * (maskCount ? elementCount / maskCount : 1);
      }
      return [info];
    }
    case 'constexpr_cast': {
      const src = view(fn, op, 'source_val');
      const to = view(fn, op, 'output_dtype')?.value;
      return [{ kind: 'cast', ...base, from: src?.dtype, to: to ? String(to.scalar()) : '?' }];
    }
    default:
      return [];
  }
}

/** True when the data, cut into blocks of `blockLen` elements, holds the same block throughout. */
function identicalBlocks(v: ConstValue, blockLen: number): boolean {
  const d = v.data() as ArrayLike<number>;
  if (blockLen <= 0 || d.length % blockLen) return false;
  for (let i = blockLen; i < d.length; i++) if (d[i] !== d[i % blockLen]) return false;
  return true;
}

/** Number of set bits of a mask (uint1 elements, or the iOS16 packed uint8 bit stream). */
export function popcount(mask: ConstValue, elementCount: number): number {
  const d = mask.data() as Uint8Array;
  let n = 0;
  if (mask.dtype === 'uint1') { for (let i = 0; i < d.length; i++) n += d[i]!; return n; }
  for (let i = 0; i < elementCount; i++) n += (d[i >> 3]! >> (i & 7)) & 1;
  return n;
}

/** Total bytes of constant data in the program (each blob counted once, immediates included). */
export function constantBytes(program: Program): { blobBytes: number; blobCount: number; immediateBytes: number } {
  const blobs = new Map<string, number>();
  let immediateBytes = 0;
  const add = (v: ConstValue) => {
    if (!v.isTensor) return;
    const b = v.blob;
    if (b) blobs.set(`${b.fileName}@${b.offset}`, v.storedBytes);
    else immediateBytes += v.storedBytes;
  };
  for (const fn of program.functions.values()) {
    for (const op of fn.walk()) {
      if (op.isConst) add(op.constValue());
      else if (op.isConstexpr) for (const k of op.paramNames) { const p = op.param(k); if (p?.kind === 'value') add(p.value); }
    }
  }
  let blobBytes = 0;
  for (const b of blobs.values()) blobBytes += b;
  return { blobBytes, blobCount: blobs.size, immediateBytes };
}

/**
 * get_weights_metadata's value facts for an uncompressed (const) weight: zero count, sparsity
 * (fraction of zeros) and number of distinct values (−0 and +0 count as one, like numpy).
 * Reads the weight's data (one tensor) from its blob.
 */
export function weightValueStats(program: Program, weight: WeightInfo): { zeros: number; sparsity: number; uniqueValues: number } {
  const fn = program.function(weight.function);
  const op = fn.producerOf(weight.name);
  if (!op?.isConst) throw new UnsupportedError(`weight ${weight.name} is produced by ${op?.type ?? 'nothing'}; value statistics need an uncompressed const`, { file: program.file });
  const v = op.constValue();
  const d = v.data() as ArrayLike<number>;
  const seen = new Set<number>();
  let zeros = 0;
  const half = v.dtype === 'fp16' || v.dtype === 'bf16';
  for (let i = 0; i < d.length; i++) {
    let x = d[i]!;
    if (half) x = (x & 0x7fff) === 0 ? 0 : x; // ±0 bit patterns
    else if (x === 0) x = 0; // folds −0
    if (x === 0) zeros++;
    seen.add(x);
  }
  return { zeros, sparsity: d.length ? zeros / d.length : 0, uniqueValues: seen.size };
}
