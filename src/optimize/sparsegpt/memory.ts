/**
 * How the layerwise driver splits `maxMemory` (--max-memory) so that it bounds what the run holds,
 * not only the Hessians:
 *
 *   Hessians of one wave + boundary cache in memory + max(sub-program executor, prune step) ≤ maxMemory
 *
 * - boundary cache: `cacheMemory` (default maxMemory / 8), spilled to disk past it;
 * - each sub-program executor: its weight caches (`executorCacheMemory`, default maxMemory / 8:
 *   Winograd / packed conv weights ½,
 *   transposed linear weights ¼, idle pooled buffers ¼; fp16 weights are not kept widened — widening
 *   per call is one pass over the weight next to an op that reads it once per output row) plus its
 *   activations, estimated from the program's shapes (live values at each op + that op's scratch);
 *   and its weights as stored (memory-mapped from the weight file, resident once read); a capture
 *   graph runs only `calibration_nsamples` times, so caching saves little there; it is closed
 *   before the wave's layers are compressed;
 * - the prune step (after the wave's capture graph is closed): the copies of one weight it makes;
 * - the Hessians of a wave get the rest (a group whose largest share set does not fit is a
 *   ConfigError before any work, naming the parts and the budget that would hold them).
 */
import { ConfigError } from '../../errors.js';
import type { GraphType } from '../../runtime/executor.js';
import type { LayerOp, ProgramGraph } from './graph.js';
import { hessianBytes } from './groups.js';

/** Byte limits of a sub-program executor's weight caches (native exec::CacheLimits). */
export interface ExecutorCacheLimits {
  widen: number;
  pack: number;
  derived: number;
  pool: number;
}

export interface MemorySplit {
  maxMemory: number;
  boundaryCache: number;
  executorCaches: ExecutorCacheLimits & { total: number };
}

/** Scratch of any op besides its inputs and outputs: GEMM packing panels per thread, small buffers. */
export const OP_SCRATCH_BYTES = 16 * 2 ** 20;
/** A conv's im2col chunk is at most this (native/executor/ops/conv.cc). */
const IM2COL_CHUNK_BYTES = 16 * 2 ** 20;

export function splitBudget(maxMemory: number, cacheMemory?: number, executorCacheMemory?: number): MemorySplit {
  const caches = executorCacheMemory ?? Math.floor(maxMemory / 8);
  const derived = Math.floor(caches / 2), pack = Math.floor(caches / 4), pool = caches - derived - pack;
  return {
    maxMemory,
    boundaryCache: cacheMemory ?? Math.floor(maxMemory / 8),
    executorCaches: { widen: 0, pack, derived, pool, total: derived + pack + pool },
  };
}

function typeBytes(t: GraphType | undefined): number {
  if (!t || !t.shape) return 0;
  // The executor computes every float in fp32 and every integer / bool in int32: 4 bytes an element.
  return t.shape.reduce((a, d) => a * Math.max(1, d), 4);
}

/**
 * Upper estimate of what the executor holds running ops [from, to] as a sub-program besides its
 * weight caches: at each op, the values still to be read (inputs of the sub-program included) plus
 * the op's outputs and scratch — a conv's or linear's fp16 weight widened for the call, and a
 * stride-1 3×3 conv's Winograd-transformed weights when it transforms them per call (the kernel keeps
 * that buffer per thread).
 */
export function activationBytes(graph: ProgramGraph, from: number, to: number): number {
  const live = new Map<string, number>();  // name → bytes
  let liveBytes = 0;
  const lastIn = (name: string) => Math.min(graph.lastUse.get(name) ?? -1, to);
  const add = (name: string, t: GraphType | undefined) => {
    if (live.has(name)) return;
    const b = typeBytes(t);
    live.set(name, b);
    liveBytes += b;
  };
  const sub = graph.subProgram(from, to, []);
  for (const i of sub.inputs) add(i.name, i.type);
  let peak = liveBytes;
  const weightBytes = (op: (typeof graph.ops)[number], param: string): number => {
    const c = graph.constant(op.inputs[param]);
    return c && 'blob' in c.value ? c.value.shape.reduce((a, d) => a * d, 4) : 0;
  };
  for (let k = Math.max(0, from); k <= to && k < graph.ops.length; k++) {
    const op = graph.ops[k]!;
    if (op.type === 'const' || op.type.startsWith('constexpr_')) continue;
    let outBytes = 0;
    for (const o of op.outputs) outBytes += typeBytes(o.type);
    let scratch = OP_SCRATCH_BYTES;
    if (op.type === 'conv' || op.type === 'linear' || op.type === 'matmul') {
      const w = weightBytes(op, op.type === 'matmul' ? 'y' : 'weight');
      scratch += w;
      if (op.type === 'conv' && w > 0) scratch += winogradScratch(graph, op, w) + Math.min(IM2COL_CHUNK_BYTES, im2colBytes(graph, op));
    }
    peak = Math.max(peak, liveBytes + outBytes + scratch);
    for (const o of op.outputs) add(o.name, o.type);
    for (const [name, b] of [...live]) {
      if (lastIn(name) <= k) {
        live.delete(name);
        liveBytes -= b;
      }
    }
  }
  return peak;
}

/** Bytes of a conv's whole im2col matrix (C_in/g·kh·kw × N·out spatial, fp32). */
function im2colBytes(graph: ProgramGraph, op: ProgramGraph['ops'][number]): number {
  const out = op.outputs[0]?.type.shape;
  const w = graph.constant(op.inputs['weight'])?.value.shape;
  if (!out || !w) return IM2COL_CHUNK_BYTES;
  const cols = w.slice(1).reduce((a, d) => a * d, 1);
  return cols * [out[0]!, ...out.slice(2)].reduce((a, d) => a * Math.max(1, d), 4);
}

/** The per-call Winograd weights a stride-1 3×3 conv may keep (F(4×4): 36/9 of the weight) when its tile count passes the kernel's per-call threshold. */
function winogradScratch(graph: ProgramGraph, op: ProgramGraph['ops'][number], weightBytes: number): number {
  const x = op.inputs['x']?.[0];
  const out = op.outputs[0]?.type.shape;
  if (!x || !out || out.length !== 4) return 0;
  const c = graph.constant(op.inputs['weight']);
  const shape = c?.value.shape;
  if (!shape || shape.length !== 4 || shape[2] !== 3 || shape[3] !== 3) return 0;
  // Most tiles: F(2×2) over the output; the kernel transforms per call from 1024 tiles up.
  const tiles = Math.max(1, out[0]!) * Math.ceil(Math.max(1, out[2]!) / 2) * Math.ceil(Math.max(1, out[3]!) / 2);
  return tiles >= 1024 ? weightBytes * 4 : 0;
}

/** Bytes the prune step holds for one layer besides its Hessian: the weight as float, its result and the magnitude baseline (≈ 5 fp32 copies), the masks and codes. */
export function pruneWorkingBytes(layer: LayerOp): number {
  const n = layer.rows * layer.columns;
  return n * (5 * 4 + 3) + OP_SCRATCH_BYTES;
}

export interface GroupMemory {
  activations: number;
  /** The sub-program's weights as stored (memory-mapped from the weight file: resident once read). */
  weights: number;
  prune: number;
  /** max(executor caches + activations + weights, prune): what runs next to the Hessians and the boundary cache. */
  reserve: number;
  /** What the group's Hessian waves may take. */
  hessians: number;
}

const DTYPE_BYTES: Record<string, number> = { fp32: 4, fp16: 2, int32: 4, uint8: 1, int8: 1, uint16: 2, int16: 2 };

/** Bytes of the blob-backed constants ops [from, to] read (sub-byte types counted as bytes: an upper bound). */
export function weightBytes(graph: ProgramGraph, from: number, to: number): number {
  let bytes = 0;
  for (const op of graph.subProgram(from, to, []).block.ops) {
    if (op.type !== 'const') continue;
    const v = op.attributes['val'];
    if (v && 'blob' in v) bytes += v.shape.reduce((a, d) => a * d, DTYPE_BYTES[v.dtype] ?? 1);
  }
  return bytes;
}

export function groupMemory(split: MemorySplit, graph: ProgramGraph, from: number, to: number, layers: readonly LayerOp[]): GroupMemory {
  const activations = activationBytes(graph, from, to);
  const weights = weightBytes(graph, from, to);
  const prune = layers.reduce((m, l) => Math.max(m, pruneWorkingBytes(l)), 0);
  const reserve = Math.max(split.executorCaches.total + activations + weights, prune);
  return { activations, weights, prune, reserve, hessians: split.maxMemory - split.boundaryCache - reserve };
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

export interface GroupNeed {
  /** The group's largest share set of Hessians (its ops) and its bytes. */
  largest: LayerOp[];
  bytes: number;
  /** The smallest maxMemory whose split leaves the Hessians `bytes`. */
  need: number;
}

/** What the group's largest share set of Hessians needs, and the smallest maxMemory that holds it next to the other parts. */
export function groupNeed(mem: GroupMemory, layers: readonly LayerOp[], cacheMemory?: number, executorCacheMemory?: number): GroupNeed {
  const sets = new Map<string, LayerOp[]>();
  for (const l of layers) {
    const key = `${l.shareKey}#${l.groups}`;
    sets.set(key, [...(sets.get(key) ?? []), l]);
  }
  let largest: LayerOp[] = [];
  let bytes = 0;
  for (const s of sets.values()) {
    const b = hessianBytes(s[0]!.columns) * s[0]!.groups;
    if (b > bytes) [largest, bytes] = [s, b];
  }
  // Smallest M with M − boundary(M) − max(caches(M) + activations, prune) ≥ bytes, where a part not
  // given is M / 8 (the integer splits make it a few bytes off the formula: stepped to the exact one).
  const sB = cacheMemory === undefined ? 1 / 8 : 0, sE = executorCacheMemory === undefined ? 1 / 8 : 0;
  const fB = cacheMemory ?? 0, fE = executorCacheMemory ?? 0;
  const fits = (m: number) => {
    const s = splitBudget(m, cacheMemory, executorCacheMemory);
    return m - s.boundaryCache - Math.max(s.executorCaches.total + mem.activations + mem.weights, mem.prune) >= bytes;
  };
  let need = Math.ceil(Math.max((bytes + fB + fE + mem.activations + mem.weights) / (1 - sB - sE), (bytes + fB + mem.prune) / (1 - sB)));
  while (!fits(need)) need++;
  while (need > 1 && fits(need - 1)) need--;
  return { largest, bytes, need };
}

/** The ConfigError for a budget that cannot hold a group's largest share set (raised before any work). */
export function budgetError(split: MemorySplit, mem: GroupMemory, g: GroupNeed): ConfigError {
  const first = g.largest[0]!;
  const size = first.groups > 1 ? `${first.groups} Hessians of ${first.columns}×${first.columns} fp32 (one per conv group)` : `a ${first.columns}×${first.columns} fp32 Hessian`;
  return new ConfigError(
    `maxMemory (--max-memory) ${split.maxMemory} bytes (${mib(split.maxMemory)}) cannot hold the Hessians of ${g.largest.map((l) => l.name).join(', ')}: ` +
    `${size} = ${g.bytes} bytes, built in one pass and factored whole, next to the boundary cache (${mib(split.boundaryCache)}) and ` +
    `max(executor weight caches ${mib(split.executorCaches.total)} + activations ≈ ${mib(mem.activations)} + mapped weights ${mib(mem.weights)}, prune step ≈ ${mib(mem.prune)}), ` +
    `which leave the Hessians ${Math.max(0, mem.hessians)} bytes; raise it to at least ${g.need} bytes`,
  );
}
