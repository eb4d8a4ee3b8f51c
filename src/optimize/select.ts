/**
 * Which weights a compression pass touches (coremltools' need_compress_const + config resolution,
 * spec §5.1): every blob-stored const op with a resolved config that passes the size/shape gate.
 * Pure graph logic: no weight data is read here.
 */
import type { MilFunction, Operation, Program } from '../mil/program.js';
import { tensorDType, tensorShape, type MilDType } from '../mil/types.js';
import {
  channelAxesForConsumers, passesWeightGate, type OpCompressorConfig, type OptimizationConfig,
  type OpRef, type WeightConsumer,
} from './config.js';

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
}

export interface SkippedWeight {
  readonly name: string;
  readonly reason: string;
}

export interface Selection {
  readonly candidates: WeightCandidate[];
  readonly skipped: SkippedWeight[];
}

function boolParam(op: Operation, key: string): boolean {
  const p = op.param(key);
  if (!p || p.kind !== 'value') return false;
  try {
    return Boolean(p.value.scalar());
  } catch {
    return false;
  }
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
export function selectWeights(program: Program, config: OptimizationConfig): Selection {
  const candidates: WeightCandidate[] = [];
  const skipped: SkippedWeight[] = [];
  for (const fn of program.functions.values()) {
    for (const op of fn.walk()) {
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
      const weightConsumers: WeightConsumer[] = consumers.map((c) => ({
        type: c.op.type,
        input: c.input,
        transposeX: c.op.type === 'matmul' ? boolParam(c.op, 'transpose_x') : false,
        transposeY: c.op.type === 'matmul' ? boolParam(c.op, 'transpose_y') : false,
      }));
      candidates.push({
        fn, op, name, dtype, shape, elementCount,
        fileName: blob.fileName, offset: blob.offset,
        consumers, config: opConfig,
        axes: channelAxesForConsumers(weightConsumers, shape.length),
      });
    }
  }
  return { candidates, skipped };
}
