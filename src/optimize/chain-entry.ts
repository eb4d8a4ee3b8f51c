/**
 * A constexpr chain as a native entry (native/addon/compress_chain.h): each op's parameters as an
 * input record (`source`), an immediate (raw little-endian bytes, sub-byte types one value per byte)
 * or an earlier op's output (`ref`). Used by decompressWeights and by joint pruning of compressed
 * weights, which materialize chains while the weight file is streamed.
 */
import type { MilFunction, Operation } from '../mil/program.js';
import { ConstValue } from '../mil/program.js';
import type { ValueMsg } from '../mil/values.js';
import { UnsupportedError } from '../errors.js';

export interface ChainEntry {
  ops: { type: string; name: string; params: Record<string, unknown> }[];
  /** The blob values the entry reads, in source order (deduplicated by offset). */
  sources: ValueMsg[];
}

function immediateBytes(v: ConstValue): Uint8Array {
  const d = v.data();
  if (Array.isArray(d)) throw new UnsupportedError(`${v.dtype} immediates cannot feed a compression op`);
  const view = d as ArrayBufferView;
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength).slice();
}

/**
 * The entry for `ops` (program order). `first`, when given, becomes source 0. Throws
 * UnsupportedError when a parameter reads a var the chain does not produce.
 */
export function chainEntry(fn: MilFunction, ops: readonly Operation[], first?: ValueMsg): ChainEntry {
  const sources: ValueMsg[] = [];
  const sourceIndex = new Map<number, number>();
  const addSource = (v: ValueMsg): number => {
    const off = Number(v.blobFileValue!.offset ?? 0);
    let s = sourceIndex.get(off);
    if (s === undefined) {
      s = sources.length;
      sourceIndex.set(off, s);
      sources.push(v);
    }
    return s;
  };
  if (first) addSource(first);
  const opIndex = new Map<Operation, number>(ops.map((o, i) => [o, i]));
  const out = ops.map((o) => {
    const params: Record<string, unknown> = {};
    for (const key of o.paramNames) {
      const p = o.param(key)!;
      if (p.kind === 'var') {
        const producer = fn.producerOf(p.name);
        const i = producer ? opIndex.get(producer) : undefined;
        if (i === undefined) throw new UnsupportedError(`${o.name}.${key} reads ${p.name}, which is not a constant of the chain`);
        params[key] = { ref: [i, producer!.outputs.findIndex((x) => x.name === p.name)] };
        continue;
      }
      const v = p.value;
      if (v.dtype === 'string') continue; // constexpr_cast's output_dtype: the op defines it
      const shape = v.shape.map((d) => d ?? 0);
      params[key] = v.msg.blobFileValue ? { source: addSource(v.msg), shape } : { dtype: v.dtype, shape, bytes: immediateBytes(v) };
    }
    return { type: o.type, name: o.name, params };
  });
  return { ops: out, sources };
}
