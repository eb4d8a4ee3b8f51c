/**
 * Which weights a compression pass touches (coremltools' need_compress_const + config resolution,
 * spec §5.1): every blob-stored const op with a resolved config that passes the size/shape gate.
 * Pure graph logic: no weight data is read here.
 */
import type { MilFunction, Operation, Program } from '../mil/program.js';
import type { ValueMsg } from '../mil/values.js';
import { tensorDType, tensorShape, type MilDType } from '../mil/types.js';
import {
  channelAxesForConsumers, eligibleWeightInputs, passesWeightGate, type CompressionApi, type OpCompressorConfig,
  type OptimizationConfig, type OpRef, type WeightConsumer,
} from './config.js';

/**
 * Joint compression (spec §4.5): the weight is a blob-valued input of a constexpr op an earlier
 * step wrote, not a const op. `op` is then that constexpr op.
 */
export interface JointSite {
  /** The op parameter holding the value to compress (nonzero_data, data, lut). */
  readonly input: string;
  /** Its value (a blob reference). */
  readonly value: ValueMsg;
  /** The last op of the constexpr chain and its dense output var (what the model's ops read). */
  readonly end: Operation;
  readonly endVar: string;
  readonly denseShape: number[];
  readonly denseDtype: MilDType;
}

export interface WeightCandidate {
  readonly fn: MilFunction;
  /** The const op holding the weight. */
  readonly op: Operation;
  /** Its output var (also the op name in coremltools' files). */
  readonly name: string;
  readonly dtype: MilDType;
  readonly shape: number[];
  readonly elementCount: number;
  /** BlobFileValue of the const: weight file name and metadata offset. */
  readonly fileName: string;
  readonly offset: number;
  readonly consumers: readonly { op: Operation; input: string }[];
  readonly config: OpCompressorConfig;
  /** Output / input channel axes agreed by all consumers (null: they disagree). */
  readonly axes: { output: number | null; input: number | null };
  /** The consumers as the axis rules see them (op type, input, transpose flags, conv groups). */
  readonly weightConsumers: readonly WeightConsumer[];
  /** The weight's name is a key of op_name_configs (structured pruning then applies to any op). */
  readonly namedInConfig: boolean;
  /** Set for a constexpr input compressed in joint mode; the other fields describe that input. */
  readonly joint?: JointSite;
}

export interface SelectOptions {
  api?: CompressionApi;
  jointCompression?: boolean;
}

export interface SkippedWeight {
  readonly name: string;
  readonly reason: string;
}

export interface Selection {
  readonly candidates: WeightCandidate[];
  readonly skipped: SkippedWeight[];
}

/**
 * A scalar parameter of `op`: an immediate value, or a const op bound by name (coremltools' writers
 * and the ProgramBuilder bind `transpose_y`, `groups`, ... to named const ops). undefined when the
 * parameter is absent or not a constant.
 */
export function constScalarParam(fn: MilFunction, op: Operation, key: string): number | boolean | undefined {
  const p = op.param(key);
  if (!p) return undefined;
  try {
    if (p.kind === 'value') return toScalar(p.value.scalar());
    const from = fn.producerOf(p.name);
    return from?.isConst ? toScalar(from.constValue().scalar()) : undefined;
  } catch {
    return undefined;
  }
}

function toScalar(v: unknown): number | boolean | undefined {
  if (typeof v === 'boolean' || typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

/**
 * How coremltools sees one consumer of the const `varName` (select_input_output_channel_axis,
 * is_cluster_dim_valid in coremltools/optimize/coreml/_utils.py):
 *   `if child_op.y == var: ... transpose_y.val ... else: # var is used as matmul's x ... transpose_x.val`
 * so a matmul that reads the var as y takes the y rule whichever binding this use is, and the
 * transpose flags are the const values whether inline or bound to a const op.
 */
function weightConsumer(fn: MilFunction, c: { op: Operation; input: string }, varName: string): WeightConsumer {
  const op = c.op;
  if (op.type === 'matmul') {
    const y = op.input('y')[0];
    const readsAsY = y?.kind === 'name' && y.name === varName;
    return {
      type: op.type,
      input: readsAsY ? 'y' : c.input,
      transposeX: constScalarParam(fn, op, 'transpose_x') === true,
      transposeY: constScalarParam(fn, op, 'transpose_y') === true,
    };
  }
  if (op.type === 'conv' || op.type === 'conv_transpose') {
    const g = constScalarParam(fn, op, 'groups');
    return { type: op.type, input: c.input, ...(typeof g === 'number' ? { groups: g } : {}) };
  }
  return { type: op.type, input: c.input };
}

/** Consumers of a var as the config lookup wants them (op name + type). */
function opRefs(fn: MilFunction, varName: string): OpRef[] {
  return fn.consumersOf(varName).flatMap((u) => (u.op ? [{ name: u.op.name, type: u.op.type }] : []));
}

/** Consumers of every output of the op named `opName` (following constexpr chains). */
function consumersOfOp(fn: MilFunction, opName: string): OpRef[] {
  for (const op of fn.walk()) if (op.name === opName) return op.outputs.flatMap((o) => opRefs(fn, o.name));
  return [];
}

/**
 * Candidates under `config`. Weights that have a config but fail a rule are listed in
 * `skipped` with the reason, so reports can say why a weight stayed dense.
 */
export function selectWeights(program: Program, config: OptimizationConfig, options: SelectOptions = {}): Selection {
  const candidates: WeightCandidate[] = [];
  const skipped: SkippedWeight[] = [];
  for (const fn of program.functions.values()) {
    for (const op of fn.walk()) {
      if (op.isConstexpr && options.jointCompression) {
        const c = jointCandidate(fn, op, config, options, skipped);
        if (c) candidates.push(c);
        continue;
      }
      if (!op.isConst) continue;
      const value = op.constValue();
      const blob = value.blob;
      if (!value.isTensor || !blob) continue; // immediates are never compressed (blob rule)
      const name = op.outputs[0]!.name;
      const dtype = tensorDType(value.type)!;
      const dims = tensorShape(value.type) ?? [];
      if (dims.some((d) => d === null)) continue;
      const shape = dims as number[];
      const uses = fn.consumersOf(name);
      const consumers = uses.flatMap((u) => (u.op ? [{ op: u.op, input: u.input! }] : []));
      const opConfig = config.configForConst(name, opRefs(fn, name), (opName) => consumersOfOp(fn, opName));
      if (!opConfig) continue;
      const elementCount = shape.reduce((a, b) => a * b, 1);
      const firstConsumerIsConstexpr = consumers[0]?.op.isConstexpr ?? false;
      if (firstConsumerIsConstexpr) {
        skipped.push({ name, reason: 'feeds a constexpr op (already compressed)' });
        continue;
      }
      if (!passesWeightGate({ shape, dtype, consumerCount: consumers.length, firstConsumerIsConstexpr }, opConfig.weight_threshold)) {
        const reason = consumers.length === 0 ? 'no consumer op'
          : shape.length <= 1 ? 'rank 1 (biases and vectors are never compressed)'
          : !['fp16', 'fp32', 'int8', 'uint8'].includes(dtype) ? `dtype ${dtype} is not compressible`
          : `${elementCount} elements <= weight_threshold ${opConfig.weight_threshold}`;
        skipped.push({ name, reason });
        continue;
      }
      const weightConsumers = consumers.map((c) => weightConsumer(fn, c, name));
      candidates.push({
        fn, op, name, dtype, shape, elementCount,
        fileName: blob.fileName, offset: blob.offset,
        consumers, config: opConfig,
        axes: channelAxesForConsumers(weightConsumers, shape.length),
        weightConsumers,
        namedInConfig: config.op_name_configs.has(name),
      });
    }
  }
  return { candidates, skipped };
}

function weightConsumersOf(fn: MilFunction, varName: string): { op: Operation; input: string }[] {
  return fn.consumersOf(varName).flatMap((u) => (u.op ? [{ op: u.op, input: u.input! }] : []));
}

/** Follows a constexpr op's outputs through further constexpr ops to the op the model reads. */
function chainEnd(fn: MilFunction, op: Operation): Operation {
  let cur = op;
  for (let guard = 0; guard < 16; guard++) {
    const uses = cur.outputs.flatMap((o) => weightConsumersOf(fn, o.name));
    const next = uses.find((u) => u.op.isConstexpr);
    if (!next || uses.some((u) => !u.op.isConstexpr)) return cur;
    cur = next.op;
  }
  return cur;
}

/** A joint-mode candidate: the eligible blob input of a constexpr op (spec §4.5), gated like a const. */
function jointCandidate(fn: MilFunction, op: Operation, config: OptimizationConfig, options: SelectOptions, skipped: SkippedWeight[]): WeightCandidate | undefined {
  // Joint pruning takes the compressed op itself (its stored data / indices get masked); the
  // other APIs take the inputs of spec §4.5.
  const prunesOp = options.api === 'prune';
  const eligible = prunesOp
    ? (op.type === 'constexpr_blockwise_shift_scale' ? ['data'] : op.type === 'constexpr_lut_to_dense' ? ['indices'] : [])
    : eligibleWeightInputs(op.type, { ...(options.api ? { api: options.api } : {}), jointCompression: true });
  if (eligible === 'any') return undefined;
  for (const input of eligible) {
    const binding = op.input(input)[0];
    if (!binding || binding.kind !== 'value' || !binding.value.blobFileValue) continue;
    const value = binding.value;
    const dtype = tensorDType(value.type);
    const dims = tensorShape(value.type);
    if (!dtype || !dims || dims.some((d) => d === null)) continue;
    const shape = dims as number[];
    const end = chainEnd(fn, op);
    const endVar = end.outputs[end.outputs.length - 1]!.name;
    const denseDims = tensorShape(end.outputs[end.outputs.length - 1]!.type) ?? [];
    const denseDtype = tensorDType(end.outputs[end.outputs.length - 1]!.type);
    if (!denseDtype || denseDims.some((d) => d === null)) continue;
    const denseShape = denseDims as number[];
    // coremltools names the inlined const `<op>_<input>_0`; op_name_configs may use that name.
    const name = prunesOp ? endVar : `${op.name}_${input}_0`;
    const opConfig = prunesOp
      ? config.configForConst(name, opRefs(fn, endVar), (opName) => consumersOfOp(fn, opName))
      : config.configForConst(name, [{ name: op.name, type: op.type }], (opName) => consumersOfOp(fn, opName));
    if (!opConfig) continue;
    const elementCount = shape.reduce((a, b) => a * b, 1);
    const denseCount = denseShape.reduce((a, b) => a * b, 1);
    const consumers = weightConsumersOf(fn, endVar);
    const gate = prunesOp ? { shape: denseShape, dtype: denseDtype } : { shape, dtype };
    if (!passesWeightGate({ ...gate, consumerCount: consumers.length, firstConsumerIsConstexpr: true, denseElementCount: denseCount }, opConfig.weight_threshold)) {
      skipped.push({ name, reason: elementCount < 10 ? 'fewer than 10 elements (an immediate value)' : `${denseCount} elements <= weight_threshold ${opConfig.weight_threshold}` });
      continue;
    }
    const weightConsumers = consumers.map((c) => weightConsumer(fn, c, endVar));
    return {
      fn, op, name, dtype, shape, elementCount,
      fileName: value.blobFileValue!.fileName ?? '', offset: Number(value.blobFileValue!.offset ?? 0),
      consumers, config: opConfig,
      axes: channelAxesForConsumers(weightConsumers, denseShape.length),
      weightConsumers,
      namedInConfig: config.op_name_configs.has(name),
      joint: { input, value, end, endVar, denseShape, denseDtype },
    };
  }
  return undefined;
}
