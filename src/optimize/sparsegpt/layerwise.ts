/**
 * The layerwise driver (coremltools' LayerwiseCompressor on the ML Program graph):
 *
 * sequential (default): the program is cut at layer boundaries. The ops before the first layer run
 *   once; then for each layer in program order: its sub-program runs every calibration sample with
 *   the layer's ops watched (Hessians accumulate natively), the layer is compressed, and the same
 *   sub-program runs again on the compressed weights to produce what crosses into the next one. So
 *   each layer's Hessians come from inputs computed with every earlier layer already compressed, and
 *   no prefix is ever recomputed: the boundary values are cached per sample (spilled to disk past a
 *   budget).
 * oneshot: every Hessian from the uncompressed model (one pass per wave).
 *
 * Hessians of a layer that do not fit `maxMemory` together are built in waves (the layer's
 * sub-program runs once per wave). `maxMemory` bounds the whole run, not only the Hessians: the
 * boundary cache, the sub-program executors' weight caches and activations and the prune step's
 * copies get their shares first (memory.ts), and the report shows each part.
 */
import os from 'node:os';
import path from 'node:path';
import type { Model } from '../../model.js';
import { ConfigError, UnsupportedError, throwIfAborted } from '../../errors.js';
import { executorModelOf, lowerProgram, type GraphDescription } from '../../runtime/executor.js';
import { getThreads, setThreads, type ProgressCallback } from '../../native.js';
import { CaptureGraph, compressLayers, createHessianSet, type LayerCompressRequest, type NativeTensor } from '../../kernels/calibrate.js';
import { isIos18OrLater } from '../config.js';
import { ModuleGPTQConfig, type LayerwiseCompressorConfig, type LayerwiseModuleConfig } from '../config/layerwise.js';
import type { CompressedModel } from '../pass.js';
import { openCalibrationSet, loadSample, type CalibrationSet } from './calibration.js';
import { ProgramGraph, type LayerOp, type SkippedLayer } from './graph.js';
import { groupLayers, planWaves, type LayerGroup, type Wave } from './groups.js';
import { BoundaryCache } from './cache.js';
import { createTempDir, removeTempDir } from '../../util/temp-dirs.js';
import { writeCompressedLayers, compressedOps, type CompressedLayer } from './write.js';
import { budgetError, groupMemory, groupNeed, splitBudget, type GroupMemory } from './memory.js';

export type LayerwiseMode = 'sequential' | 'oneshot';

export interface LayerwiseOptions {
  threads?: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  /**
   * Bytes the run may hold (default: half the machine's RAM): the Hessians of one wave, the boundary
   * cache, the sub-program executors' weight caches and activations (estimated from the shapes) and
   * the prune step's weight copies together (see memory.ts).
   */
  maxMemory?: number;
  /** Bytes of boundary values kept in memory before spilling to disk (default: maxMemory / 8); part of maxMemory. */
  cacheMemory?: number;
  /**
   * Bytes each sub-program executor may keep in weight caches (Winograd / packed conv weights,
   * transposed linear weights, pooled buffers; default maxMemory / 8; 0 = none); part of maxMemory.
   */
  executorCacheMemory?: number;
  mode?: LayerwiseMode;
  /**
   * How SparseGPT's quantized survivors (weight_dtype uint8 / uint4 …) are written in an iOS18+
   * model: 'codes' (default) as coremltools writes joint sparse + quantized weights,
   * constexpr_sparse_blockwise_shift_scale → constexpr_sparse_to_dense; 'values' as their dequantized
   * values inside constexpr_sparse_to_dense (the only form before iOS18, and the one a following
   * joint palettization step can take: compressModel picks it then).
   */
  quantizedSurvivors?: 'codes' | 'values';
}

export interface LayerwiseLayerReport {
  name: string;
  weight: string;
  type: string;
  layer: string;
  status: 'compressed' | 'skipped';
  detail: string;
  shape: number[];
  hessianColumns?: number;
  groups?: number;
  deadColumns?: number;
  sparsity?: number;
  /** ‖WX − ŴX‖²/‖WX‖² on the calibration inputs. */
  error?: number;
  /** The same for magnitude pruning at the same sparsity (sparsegpt) or round-to-nearest on the same grid (gptq). */
  baselineError?: number;
  /** Calibration samples the layer's Hessian saw. */
  samples?: number;
}

export interface LayerwiseReport {
  api: 'sparsegpt' | 'gptq';
  mode: LayerwiseMode;
  samples: number;
  samplesAvailable: number;
  layers: { key: string; ops: string[] }[];
  /** Layers merged into the one before because their op ranges interleave. */
  merged: string[];
  ops: LayerwiseLayerReport[];
  waves: number;
  /** Largest Hessian allocation of a wave, bytes. */
  peakHessianBytes: number;
  maxMemory: number;
  cachePeakBytes: number;
  cacheSpilledBytes: number;
  /** How maxMemory was split, and what each part held at its peak (bytes). */
  memory: LayerwiseMemoryReport;
  /** forward: sub-program runs without the Hessian updates; hessian: feeding the Hessians; compress: SparseGPT / GPTQ; write: the new weight file. */
  seconds: { forward: number; hessian: number; compress: number; write: number; total: number };
}

export interface LayerwiseMemoryReport {
  maxMemory: number;
  /** The budget's parts: Hessians of a wave (the least any group left them), boundary cache in memory, each executor's weight caches (and their split), activations, mapped weights and the prune step's copies (largest over the sub-programs). */
  budget: {
    hessians: number; boundaryCache: number; executorCaches: number; activations: number; weights: number; pruneWorking: number;
    executorCacheLimits: { widen: number; pack: number; derived: number; pool: number };
  };
  /** Measured peaks: largest wave's Hessians, boundary cache in memory, one executor's weight caches. */
  peak: { hessians: number; boundaryCache: number; executorCaches: number };
  /** peak Hessians + peak boundary cache + max(peak executor caches + activations + weights, prune step): ≤ maxMemory. */
  bound: number;
}

export type LayerwiseModel = CompressedModel & { readonly layerwise: LayerwiseReport };

interface Planned {
  layer: LayerOp;
  config: LayerwiseModuleConfig;
}

function describe(config: LayerwiseModuleConfig): string {
  return config.describe();
}

/** The native request for a layer under its config. Returns a skip reason instead when it cannot be written. */
function request(p: Planned, ios16: boolean, hessians: number[], release: number[], survivorCodes: boolean): LayerCompressRequest | string {
  const { layer, config } = p;
  const common = {
    name: layer.weightName, file: layer.weightValue.blob.file, offset: layer.weightValue.blob.offset, shape: layer.shape,
    transposed: layer.transposed, hessians, release, ios16, blockSize: config.processing_group_size, dampening: config.hessian_dampening,
  };
  if (config instanceof ModuleGPTQConfig) {
    // Columns per grid: a block (input channels × kh·kw), a row (0) or the whole weight (-1).
    const groupSize = config.granularity === 'per_block' ? config.block_size! * layer.window : config.granularity === 'per_tensor' ? -1 : 0;
    if (groupSize > 0 && layer.columns % groupSize !== 0) return `per_block ${config.block_size} does not divide ${layer.columns / layer.window} input channels`;
    return { ...common, method: 'gptq', bits: config.bits, symmetric: config.quantization_scheme === 'symmetric', groupSize, actOrder: config.use_activation_order_heuristic };
  }
  const nm = config.n_m_ratio;
  return {
    ...common, method: 'sparsegpt', targetSparsity: config.target_sparsity, n: nm?.[0] ?? 0, m: nm?.[1] ?? 0, sparseCodes: survivorCodes && !ios16 && config.bits > 0,
    bits: config.bits, symmetric: config.quantization_scheme === 'symmetric', groupSize: config.quantization_granularity === 'per_tensor' ? -1 : 0,
  };
}

function checkTargetFor(p: Planned, ios16: boolean, file: string | undefined): void {
  const c = p.config;
  if (ios16 && c instanceof ModuleGPTQConfig && (c.bits !== 8 || c.granularity === 'per_block')) {
    throw new UnsupportedError(`gptq: ${c.bits}-bit ${c.granularity} data needs constexpr_blockwise_shift_scale (iOS18); ${p.layer.name} is in an iOS16/17 model (iOS16 writes 8-bit per_channel constexpr_affine_dequantize)`, file ? { file } : {});
  }
}

export async function runLayerwise(
  model: Model, config: LayerwiseCompressorConfig, calibrationDir: string, api: 'sparsegpt' | 'gptq', options: LayerwiseOptions = {},
): Promise<LayerwiseModel> {
  const started = performance.now();
  throwIfAborted(options.signal);
  const mode = options.mode ?? 'sequential';
  if (mode !== 'sequential' && mode !== 'oneshot') throw new ConfigError(`mode must be sequential or oneshot, got ${String(mode)}`);
  const maxMemory = options.maxMemory ?? Math.floor(os.totalmem() / 2);
  if (!(maxMemory > 0)) throw new ConfigError(`maxMemory must be a positive number of bytes, got ${String(options.maxMemory)}`);
  for (const k of ['cacheMemory', 'executorCacheMemory'] as const) {
    const v = options[k];
    if (v !== undefined && !(v >= 0)) throw new ConfigError(`${k} must be a number of bytes >= 0, got ${String(v)}`);
  }
  const split = splitBudget(maxMemory, options.cacheMemory, options.executorCacheMemory);
  const cacheMemory = split.boundaryCache;
  const survivors = options.quantizedSurvivors ?? 'codes';
  if (survivors !== 'codes' && survivors !== 'values') throw new ConfigError(`quantizedSurvivors must be codes or values, got ${String(survivors)}`);
  const survivorCodes = survivors === 'codes';
  const file = model.path;
  const desc: GraphDescription = lowerProgram(executorModelOf(model));
  const graph = new ProgramGraph(desc);
  const fnOpset = desc.opset;
  const ios16 = !isIos18OrLater({ specVersion: Math.max(model.spec.specificationVersion ?? 7, 7), ...(/^CoreML\d+$/.test(fnOpset) ? { opset: fnOpset } : {}) });

  // What to compress, and why the rest stays.
  const { layers: found, skipped } = graph.findLayers();
  const reports: LayerwiseLayerReport[] = skipped.map((s: SkippedLayer) => ({ name: s.name, weight: '', type: s.type, layer: '', status: 'skipped', detail: s.reason, shape: [] }));
  const skipLayer = (l: LayerOp, reason: string, layerKey = ''): void => {
    reports.push({ name: l.name, weight: l.weightName, type: l.kind, layer: layerKey, status: 'skipped', detail: reason, shape: l.shape, hessianColumns: l.columns });
  };
  const planned = new Map<LayerOp, Planned>();
  const configured: LayerOp[] = [];
  for (const l of found) {
    const c = config.configFor(l.name, l.weightName, l.kind);
    if (!c) {
      skipLayer(l, 'its config is None');
      continue;
    }
    const p = { layer: l, config: c };
    checkTargetFor(p, ios16, file);
    planned.set(l, p);
    configured.push(l);
  }
  const grouping = groupLayers(configured, config.layers);
  for (const l of grouping.unmatched) skipLayer(l, 'no `layers` regex matches its name');
  const groups = grouping.groups;

  // Hessian waves in what the budget leaves them next to the other parts (a share set that does not
  // fit is a ConfigError here, before any work).
  const lastEnd = groups.length ? groups[groups.length - 1]!.end : -1;
  const wavesOf = new Map<LayerGroup, Wave[]>();
  const ranges = mode === 'oneshot' ? (groups.length > 0 ? [{ from: 0, to: lastEnd, layers: groups.flatMap((g) => g.layers) }] : [])
    : groups.map((g) => ({ from: g.start, to: g.end, layers: g.layers }));
  const mems = ranges.map((r) => groupMemory(split, graph, r.from, r.to, r.layers));
  {
    // The error names the budget that holds every group.
    let worst: { i: number; need: ReturnType<typeof groupNeed> } | null = null;
    ranges.forEach((r, i) => {
      const need = groupNeed(mems[i]!, r.layers, options.cacheMemory, options.executorCacheMemory);
      if (need.bytes > mems[i]!.hessians && (!worst || need.need > worst.need.need)) worst = { i, need };
    });
    if (worst) {
      const w: { i: number; need: ReturnType<typeof groupNeed> } = worst;
      const need = Math.max(...ranges.map((r, i) => groupNeed(mems[i]!, r.layers, options.cacheMemory, options.executorCacheMemory).need));
      throw budgetError(split, mems[w.i]!, { ...w.need, need });
    }
  }
  const allWaves: Wave[] = mode === 'oneshot' && ranges.length > 0 ? planWaves(ranges[0]!.layers, mems[0]!.hessians) : [];
  if (mode === 'sequential') groups.forEach((g, i) => wavesOf.set(g, planWaves(g.layers, mems[i]!.hessians)));
  const cacheLimits = { widen: split.executorCaches.widen, pack: split.executorCaches.pack, derived: split.executorCaches.derived, pool: split.executorCaches.pool };
  let peakExecutorCaches = 0;
  const noteCaches = (g: CaptureGraph) => {
    const st = g.cacheStats();
    peakExecutorCaches = Math.max(peakExecutorCaches, st.widen + st.pack + st.derived + st.pool);
  };

  // Calibration data: every picked sample checked before any work.
  const calib: CalibrationSet = openCalibrationSet(calibrationDir, desc.inputs, config.calibration_nsamples);
  const nSamples = calib.samples.length;
  const inputCache = new Map<number, Record<string, NativeTensor>>();
  const inputOf = (s: number, name: string): NativeTensor | undefined => {
    if (!desc.inputs.some((i) => i.name === name)) return undefined;
    let loaded = inputCache.get(s);
    if (!loaded) {
      // Only the latest sample's inputs are kept (the runs go sample by sample).
      inputCache.clear();
      loaded = loadSample(calib.samples[s]!, desc.inputs);
      inputCache.set(s, loaded);
    }
    return loaded[name];
  };
  const cache = new BoundaryCache(nSamples, cacheMemory, inputOf);
  // pid-named, so a run killed with SIGKILL leaves nothing the next run does not sweep
  const tmp = createTempDir();
  const previousThreads = options.threads !== undefined ? getThreads() : undefined;
  if (options.threads !== undefined) setThreads(options.threads);

  const compressed: CompressedLayer[] = [];
  const seconds = { forward: 0, hessian: 0, compress: 0, write: 0, total: 0 };
  let peakHessianBytes = 0;
  let waveCount = 0;
  let fileCount = 0;
  // Progress: one unit per sample run of a sub-program, one per compressed layer.
  let total = configured.length - grouping.unmatched.length;
  if (mode === 'oneshot') total += allWaves.length * nSamples;
  else total += ((groups[0]?.start ?? 0) > 0 ? nSamples : 0) + groups.reduce((s, g, i) => s + (wavesOf.get(g)!.length + (i < groups.length - 1 ? 1 : 0)) * nSamples, 0);
  let done = 0;
  const tick = () => options.onProgress?.(++done, Math.max(total, 1));
  const runOpts = { ...(options.threads !== undefined ? { threads: options.threads } : {}), ...(options.signal ? { signal: options.signal } : {}) };

  const inputsFor = (d: GraphDescription, s: number): Record<string, NativeTensor> => Object.fromEntries(d.inputs.map((i) => [i.name, cache.get(s, i.name)]));

  /** Runs one wave: capture over all samples with `d`, then compress the wave's layers. */
  const runWave = async (wave: Wave, d: GraphDescription, groupKey: string): Promise<void> => {
    throwIfAborted(options.signal);
    const set = createHessianSet(wave.columns);
    peakHessianBytes = Math.max(peakHessianBytes, set.peakBytes());
    waveCount++;
    const capture = new CaptureGraph(d, wave.watches, set, cacheLimits);
    const t0 = performance.now();
    let hessian = 0;
    try {
      for (let s = 0; s < nSamples; s++) {
        hessian = (await capture.run(inputsFor(d, s), runOpts)).hessianSeconds;
        tick();
      }
      noteCaches(capture);
    } finally {
      // The set alone owns the Hessians now, so compressLayers frees each after its last layer.
      capture.close();
    }
    seconds.hessian += hessian;
    seconds.forward += (performance.now() - t0) / 1000 - hessian;
    const requests: LayerCompressRequest[] = [];
    const forRequest: Planned[] = [];
    const seen: number[] = [];
    for (const l of wave.layers) {
      const p = planned.get(l)!;
      const hs = wave.hessians.get(l)!;
      const reached = hs.every((h) => set.samples(h) > 0);
      const r = reached ? request(p, ios16, hs, wave.release.get(l)!, survivorCodes) : 'no calibration sample reached it';
      if (typeof r === 'string') {
        // Its Hessians may be shared with a layer still to compress: freed with the wave below.
        skipLayer(l, r, groupKey);
        tick();
        continue;
      }
      requests.push(r);
      forRequest.push(p);
      seen.push(set.samples(hs[0]!));
    }
    const out = path.join(tmp, `layers-${fileCount++}.bin`);
    const t1 = performance.now();
    let results: Awaited<ReturnType<typeof compressLayers>> = [];
    try {
      if (requests.length > 0) results = await compressLayers(set, out, requests, options.signal ? { signal: options.signal } : {});
    } finally {
      // Whatever the native job did not free (layers left dense), before the next wave allocates.
      wave.columns.forEach((_, i) => set.release(i));
    }
    seconds.compress += (performance.now() - t1) / 1000;
    results.forEach((r, i) => {
      const p = forRequest[i]!;
      const c: CompressedLayer = { layer: p.layer, method: requests[i]!.method, ios16, sparseCodes: requests[i]!.sparseCodes === true, file: out, report: r, detail: describe(p.config) + (r.note ? ` (${r.note})` : '') };
      compressed.push(c);
      reports.push({
        name: p.layer.name, weight: p.layer.weightName, type: p.layer.kind, layer: groupKey, status: 'compressed', detail: c.detail,
        shape: p.layer.shape, hessianColumns: r.columns, groups: r.groups, deadColumns: r.deadColumns, sparsity: r.sparsity,
        error: r.error, baselineError: r.baselineError, samples: seen[i]!,
      });
      tick();
    });
  };

  /** Runs `d` (a segment without layers to compress) on every sample and caches `outs` for what follows. */
  const forwardSegment = async (d: GraphDescription, outs: readonly string[]): Promise<void> => {
    const sub = plainGraph(d, cacheLimits);
    const t0 = performance.now();
    try {
      for (let s = 0; s < nSamples; s++) {
        const r = (await sub.run(inputsFor(d, s), runOpts)).outputs;
        for (const n of outs) cache.put(s, n, r[n]!);
        tick();
      }
      noteCaches(sub);
    } finally {
      sub.close();
    }
    seconds.forward += (performance.now() - t0) / 1000;
  };

  let result: CompressedModel;
  try {
    if (mode === 'oneshot') {
      const d = graph.subProgram(0, lastEnd, []);
      for (const wave of allWaves) await runWave(wave, d, groups.find((g) => g.layers.includes(wave.layers[0]!))?.key ?? '');
    } else if (groups.length > 0) {
      // Ops before the first layer run once.
      const first = groups[0]!.start;
      if (first > 0) {
        const outs = graph.liveAfter(first - 1, lastEnd, graph.definedIn(0, first - 1));
        await forwardSegment(graph.subProgram(0, first - 1, outs), outs);
      }
      for (let gi = 0; gi < groups.length; gi++) {
        const g = groups[gi]!;
        const capture = graph.subProgram(g.start, g.end, []);
        const before = compressed.length;
        for (const wave of wavesOf.get(g)!) await runWave(wave, capture, g.key);
        if (gi === groups.length - 1) break;
        // The segment again, on the compressed weights: what the next layers read.
        const segEnd = groups[gi + 1]!.start - 1;
        const outs = graph.liveAfter(segEnd, lastEnd, graph.definedIn(g.start, segEnd));
        const replace = new Map(compressed.slice(before).map((c) => [c.layer.weightName, compressedOps(c)]));
        await forwardSegment(graph.subProgram(g.start, segEnd, outs, replace), outs);
        // Keep what is still read after this segment.
        const live = new Set<string>();
        for (const [name, last] of graph.lastUse) if (last > segEnd) live.add(name);
        cache.retain(live);
      }
    }
    const t2 = performance.now();
    if (compressed.length === 0) throw new UnsupportedError(`${api}: no layer was compressed (${reports.map((r) => `${r.name}: ${r.detail}`).join('; ') || 'the model has no linear, matmul or conv weights'})`, file ? { file } : {});
    result = await writeCompressedLayers(model, compressed, { ...(options.threads !== undefined ? { threads: options.threads } : {}), ...(options.signal ? { signal: options.signal } : {}) });
    result.compression.api = api;
    // The pass lists every other weight as "not a compressed layer": keep the layers and say why the
    // ops left as they are were left.
    result.compression.weights = [
      ...result.compression.weights.filter((w) => w.status === 'compressed'),
      ...reports.filter((r) => r.status === 'skipped').map((r) => ({
        name: r.weight || r.name, shape: r.shape, dtype: 'fp32' as const, status: 'skipped' as const, detail: `${r.name}: ${r.detail}`, bytesBefore: 0, bytesAfter: 0,
      })),
    ];
    seconds.write = (performance.now() - t2) / 1000;
  } finally {
    cache.close();
    removeTempDir(tmp);
    if (previousThreads !== undefined) setThreads(previousThreads);
  }
  seconds.total = (performance.now() - started) / 1000;
  const worst = (f: (m: GroupMemory) => number) => mems.reduce((a, m) => Math.max(a, f(m)), 0);
  // The sub-program with the most activations + weights (the executor side of the reserve), and the largest prune step.
  const heaviest = mems.reduce<GroupMemory | null>((a, m) => (!a || m.activations + m.weights > a.activations + a.weights ? m : a), null);
  const activations = heaviest?.activations ?? 0, weights = heaviest?.weights ?? 0, pruneWorking = worst((m) => m.prune);
  const executorSide = activations + weights;
  const memory: LayerwiseMemoryReport = {
    maxMemory,
    budget: {
      hessians: mems.length ? mems.reduce((a, m) => Math.min(a, m.hessians), Infinity) : 0, boundaryCache: split.boundaryCache, executorCaches: split.executorCaches.total,
      activations, weights, pruneWorking, executorCacheLimits: cacheLimits,
    },
    peak: { hessians: peakHessianBytes, boundaryCache: cache.peakBytes, executorCaches: peakExecutorCaches },
    bound: peakHessianBytes + cache.peakBytes + Math.max(peakExecutorCaches + executorSide, pruneWorking),
  };
  const layerwise: LayerwiseReport = {
    api, mode, samples: nSamples, samplesAvailable: calib.available,
    layers: groups.map((g) => ({ key: g.key, ops: g.layers.map((l) => l.name) })), merged: grouping.merged,
    ops: reports, waves: waveCount, peakHessianBytes, maxMemory, cachePeakBytes: cache.peakBytes, cacheSpilledBytes: cache.spilledBytes, memory, seconds,
  };
  return Object.assign(result, { layerwise });
}

/** A sub-program without watches. */
function plainGraph(d: GraphDescription, cacheLimits: ConstructorParameters<typeof CaptureGraph>[3]): CaptureGraph {
  return new CaptureGraph(d, [], createHessianSet([]), cacheLimits);
}
