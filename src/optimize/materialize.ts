/**
 * Materializes weights as the runtime sees them: a const's value, or the output of a constexpr
 * chain decoded op by op with the native decoders (src/kernels/decompress.ts). Used by tests,
 * error reports and `coreml-optimize decompress`. Meant for one weight at a time or small models:
 * each materialized weight is a Float32Array in the JS heap.
 */
import type { Model } from '../model.js';
import { openProgram } from '../mil/from-model.js';
import type { MilFunction, Operation } from '../mil/program.js';
import { ConstValue } from '../mil/program.js';
import { tensorDType, tensorShape, type MilDType } from '../mil/types.js';
import { UnsupportedError } from '../errors.js';
import {
  asKernelTensor, decompressOp, type CompressionOpType, type DecompressedTensor, type KernelDType, type KernelTensor,
} from '../kernels/decompress.js';

export interface MaterializedWeight {
  /** The var the model's ops read (a const output or the last output of a constexpr chain). */
  name: string;
  dtype: MilDType;
  shape: number[];
  values: Float32Array;
}

const KERNEL_DTYPES = new Set<string>(['fp16', 'fp32', 'uint8', 'int8', 'int16', 'uint16', 'int32', 'uint32', 'int4', 'uint1', 'uint2', 'uint3', 'uint4', 'uint6']);

function kernelTensorOf(value: ConstValue, what: string): KernelTensor {
  const dtype = value.dtype;
  if (!KERNEL_DTYPES.has(dtype)) throw new UnsupportedError(`${what}: constexpr parameter of dtype ${dtype} is not supported`);
  const data = value.data();
  if (Array.isArray(data)) throw new UnsupportedError(`${what}: non-numeric constexpr parameter`);
  return { dtype: dtype as KernelDType, shape: value.shape.map((d) => d ?? 0), data: data as ArrayBufferView };
}

/** The parameters of a constexpr op: inline values (attributes or input bindings) and chained vars. */
function constexprParams(op: Operation, produced: Map<string, DecompressedTensor>, where: string): Record<string, KernelTensor> {
  const params: Record<string, KernelTensor> = {};
  for (const key of op.paramNames) {
    const p = op.param(key)!;
    if (p.kind === 'value') {
      params[key] = kernelTensorOf(p.value, `${where}: ${op.name}.${key}`);
    } else {
      const prev = produced.get(p.name);
      if (!prev) throw new UnsupportedError(`${where}: ${op.name}.${key} refers to ${p.name}, which is not a constant`);
      params[key] = asKernelTensor(prev);
    }
  }
  return params;
}

/**
 * Every float weight of a function (const tensors with ≥ `minElements` elements, and every constexpr
 * output) by var name. `only` limits the work to the named vars (and the chains that produce them).
 */
export async function materializeWeights(
  model: Model,
  options: { function?: string; minElements?: number; only?: ReadonlySet<string>; signal?: AbortSignal } = {},
): Promise<Map<string, MaterializedWeight>> {
  const { program, close } = openProgram(model);
  try {
    const fn: MilFunction = program.function(options.function);
    const where = model.path ?? 'model';
    const ios = fn.iosVersion;
    const minElements = options.minElements ?? 10;
    const produced = new Map<string, DecompressedTensor>();
    const out = new Map<string, MaterializedWeight>();
    for (const op of fn.walk()) {
      if (op.isConst) {
        const v = op.constValue();
        const name = op.outputs[0]!.name;
        if (!v.isTensor || (v.dtype !== 'fp16' && v.dtype !== 'fp32') || v.elementCount < minElements) continue;
        if (options.only && !options.only.has(name)) continue;
        out.set(name, { name, dtype: v.dtype, shape: v.shape.map((d) => d ?? 0), values: v.toFloat32() });
      } else if (op.isConstexpr) {
        const params = constexprParams(op, produced, where);
        const r = await decompressOp(
          { type: op.type as CompressionOpType, opset: ios >= 18 ? 'ios18' : 'ios16', params, name: `${where}: ${op.name}` },
          options.signal ? { signal: options.signal } : {},
        );
        op.outputs.forEach((o, i) => produced.set(o.name, r.outputs[i]!));
        for (const o of op.outputs) {
          const dtype = tensorDType(o.type);
          if (!dtype || (dtype !== 'fp16' && dtype !== 'fp32')) continue;
          // Only the end of a chain is a weight; intermediates feed other constexpr ops.
          const uses = fn.consumersOf(o.name);
          if (uses.length > 0 && uses.every((u) => u.op?.isConstexpr)) continue;
          if (options.only && !options.only.has(o.name)) continue;
          const t = produced.get(o.name)!;
          out.set(o.name, { name: o.name, dtype, shape: (tensorShape(o.type) ?? t.shape).map((d) => d ?? 0), values: t.values });
        }
      }
    }
    return out;
  } finally {
    close();
  }
}
