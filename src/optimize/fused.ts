/**
 * One pass for two plan steps: prune, then palettize or quantize with joint_compression (the
 * seed's best SDXL result) read the weight file once and write it once, instead of writing a
 * pruned intermediate and reading it back.
 *
 * How, without changing what comes out: step 1 is planned on the model and applied to its program
 * with placeholder offsets; step 2 is planned on that intermediate program. Each step-2 entry that
 * reads a step-1 output becomes a native "fused" entry (stage 1 → stage 2 in memory, see
 * native/addon/compress_fused.cc); the others read the original blobs directly. After the single
 * native job, both steps are planned again on a fresh copy with the real step-1 figures and must
 * plan the same entries; then both rewrites run with the real results. A weight step 2 leaves as it
 * was (e.g. channels not divisible by group_size) keeps step 1's values, written where step 2 would
 * have copied them. Whenever the two-step run could differ otherwise (step 1 leaves a weight as it
 * was, a value would be an immediate, a plan that does not map onto one pass), runFusedPair returns
 * undefined and compressModel runs the steps one after the other. A test checks the fused output
 * equals the sequential one byte for byte.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BlobFile } from '../format/blob.js';
import type { Model } from '../model.js';
import { dtypeFromBlob, storedBytes } from '../mil/types.js';
import type { ValueMsg } from '../mil/values.js';
import { OpPalettizerConfig } from './config.js';
import type { CompressStep } from './steps.js';
import type { CompressEntry, CompressResult } from './native-compress.js';
import {
  applyPass, blobValuesOf, deriveCompressed, discardTempDir, openProgram, planPass, runJobToTemp,
  type CompressedModel, type CompressionReport, type PassHandler, type PassOptions, type PassPlan,
} from './pass.js';
import { pruneHandler } from './prune.js';
import { kmeansWorkerThreads, palettizeHandler } from './palettize.js';
import { quantizeHandler } from './quantize.js';

/** Placeholder offsets: far above any real weight file, unique per (step-1 entry, output). */
const PLACEHOLDER_BASE = 2 ** 50;
const MAX_OUTPUTS = 16;
const placeholder = (entry: number, output: number): number => PLACEHOLDER_BASE + entry * MAX_OUTPUTS + output;
const isPlaceholder = (offset: number): boolean => offset >= PLACEHOLDER_BASE;
const decodePlaceholder = (offset: number): { entry: number; output: number } => {
  const i = offset - PLACEHOLDER_BASE;
  return { entry: Math.floor(i / MAX_OUTPUTS), output: i % MAX_OUTPUTS };
};

/** Step-1 entry kinds whose outputs can be predicted before they run. */
const FUSABLE_FIRST = new Set(['copy', 'prune']);
/** Step-2 entry kinds that compute everything natively (no JS reads of the weight data). */
const FUSABLE_SECOND = new Set(['copy', 'palettize', 'palettize_sparse', 'palettize_int', 'quantize']);

const SECOND_HANDLERS: Partial<Record<CompressStep['api'], PassHandler>> = { palettize: palettizeHandler, quantize: quantizeHandler };

/** Whether compressModel may try to run `first` and `second` as one pass. */
export function fusablePair(first: CompressStep, second: CompressStep): boolean {
  if (first.api !== 'prune' || !second.joint_compression || !SECOND_HANDLERS[second.api]) return false;
  // A JS LUT function reads the weight data in JS, and lut_dtype adds a pass of its own.
  return second.config.allConfigs().every((c) => !(c instanceof OpPalettizerConfig) || (c.mode !== 'CUSTOM' && c.lut_dtype === null));
}

/** Outputs of a step-1 entry as emit() will see them, at placeholder offsets. */
function predictedResult(entry: CompressEntry, index: number, plan: PassPlan): CompressResult | undefined {
  if (entry.kind === 'copy') return { outputs: [{ dtype: 'uint8', elementCount: 0, offset: placeholder(index, 0) }], info: {} };
  if (entry.kind !== 'prune') return undefined;
  const planned = plan.planned.find((p) => p.entry === index)!;
  const count = planned.candidate.elementCount;
  const ios16 = entry['ios16'] === true;
  return {
    outputs: [
      { dtype: planned.candidate.dtype === 'fp32' ? 'float32' : 'float16', elementCount: count, offset: placeholder(index, 0) },
      { dtype: ios16 ? 'uint8' : 'uint1', elementCount: ios16 ? Math.ceil(count / 8) : count, offset: placeholder(index, 1) },
    ],
    info: { nonzeroCount: [count], sparsity: [0] },
  };
}

/** How each step-2 entry's result is found among the native results. */
type Source2 = { native: number; how: 'direct' } | { native: number; how: 'output'; output: number };

interface NativePlan {
  entries: CompressEntry[];
  second: Source2[];
  /** Step-1 transform entries → the native entry that ran them (alone or as stage 1 of a fused entry). */
  first: Map<number, { native: number; chained: boolean }>;
}

/** Maps step 2's entries onto one native job over the original file, or undefined if it cannot. */
function nativePlan(plan1: PassPlan, plan2: PassPlan): NativePlan | undefined {
  const e1 = plan1.entries;
  const entries: CompressEntry[] = [];
  const second: Source2[] = [];
  const first = new Map<number, { native: number; chained: boolean }>();
  const nextOutput = new Map<number, number>(); // standalone step-1 entry → next output step 2 must copy
  for (const e2 of plan2.entries) {
    if (!FUSABLE_SECOND.has(e2.kind)) return undefined;
    const refs = [e2.source, ...(e2.extraSources ?? [])].map((o) => (isPlaceholder(o) ? decodePlaceholder(o) : undefined));
    if (refs.some((r) => r === undefined || r.entry >= e1.length)) return undefined;
    const sources = refs as { entry: number; output: number }[];
    if (e2.kind === 'copy') {
      const { entry: i, output } = sources[0]!;
      const from = e1[i]!;
      if (from.kind === 'copy') {
        second.push({ native: entries.length, how: 'direct' });
        entries.push({ kind: 'copy', source: from.source });
        continue;
      }
      // Step 2 copies a step-1 output: step 1 runs alone here, writing its outputs in order.
      const known = first.get(i);
      if (known?.chained) return undefined;
      if ((nextOutput.get(i) ?? 0) !== output) return undefined;
      if (!known) {
        first.set(i, { native: entries.length, chained: false });
        entries.push({ ...from });
      }
      nextOutput.set(i, output + 1);
      second.push({ native: first.get(i)!.native, how: 'output', output });
      continue;
    }
    const producers = new Set(sources.map((s) => s.entry));
    if (producers.size !== 1) return undefined;
    const i = sources[0]!.entry;
    const from = e1[i]!;
    const stage2 = without(e2, ['source', 'extraSources', 'name']);
    if (from.kind === 'copy') {
      // Step 2 compresses a weight step 1 left alone: it reads the original blob.
      second.push({ native: entries.length, how: 'direct' });
      entries.push({ ...e2, source: from.source, extraSources: sources.slice(1).map((s) => e1[s.entry]!.source) });
      continue;
    }
    if (first.has(i)) return undefined;
    first.set(i, { native: entries.length, chained: true });
    second.push({ native: entries.length, how: 'direct' });
    entries.push({
      kind: 'fused', name: e2['name'], source: from.source, ...(from.extraSources ? { extraSources: from.extraSources } : {}),
      stages: [without(from, ['source', 'extraSources']), stage2], stageInputs: sources.map((s) => s.output),
    });
  }
  // Every step-1 transform must end up in the file through step 2.
  for (const [i, e] of e1.entries()) if (e.kind !== 'copy' && !first.has(i)) return undefined;
  for (const [i, next] of nextOutput) if (next !== predictedResult(e1[i]!, i, plan1)!.outputs.length) return undefined;
  return { entries, second, first };
}

function without(entry: CompressEntry, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(entry).filter(([k]) => !keys.includes(k)));
}

function plansEqual(a: PassPlan, b: PassPlan): boolean {
  return JSON.stringify(a.entries) === JSON.stringify(b.entries);
}

/** Size the intermediate weight.bin of step 1 would have had (64-byte header and record headers, 64-byte aligned data). */
function intermediateBytes(results: CompressResult[], plan1: PassPlan, sourceBytes: Map<number, number>): number {
  let total = 64;
  const align = (n: number): number => Math.ceil(n / 64) * 64;
  for (const [i, r] of results.entries()) {
    if (plan1.entries[i]!.kind === 'copy') {
      total += sourceBytes.get(plan1.entries[i]!.source) ?? 0;
      continue;
    }
    for (const o of r.outputs) total += 64 + align(storedBytes(dtypeFromBlob(o.dtype) ?? 'uint8', o.elementCount));
  }
  return total;
}

/**
 * Runs `first` (prune) and `second` (palettize / quantize, joint) as one pass over the weight file.
 * Returns undefined when the pair cannot be fused without changing the result (the caller then
 * runs the steps one after the other).
 */
export async function runFusedPair(
  model: Model, first: CompressStep, second: CompressStep, options: PassOptions = {},
): Promise<{ model: CompressedModel; reports: [CompressionReport, CompressionReport] } | undefined> {
  if (!fusablePair(first, second)) return undefined;
  const started = performance.now();
  const handler2 = SECOND_HANDLERS[second.api]!;
  const opts1: PassOptions = { ...options, jointCompression: first.joint_compression };
  const opts2: PassOptions = { ...options, jointCompression: true };

  // Plan both steps, step 1 applied with placeholder offsets.
  const speculative = openProgram(model, first.api);
  let plan1: PassPlan;
  let plan2: PassPlan;
  let predicted: CompressResult[];
  try {
    plan1 = planPass(model, speculative.spec, speculative.program, first.config, pruneHandler, opts1);
    if (plan1.entries.some((e) => !FUSABLE_FIRST.has(e.kind))) return undefined;
    predicted = plan1.entries.map((e, i) => predictedResult(e, i, plan1)!);
    applyPass(plan1, predicted);
    try {
      plan2 = planPass(model, speculative.spec, speculative.program, second.config, handler2, opts2);
    } catch {
      return undefined; // the sequential run reports whatever went wrong, with its own context
    }
  } finally {
    speculative.close();
  }
  const native = nativePlan(plan1, plan2);
  if (!native) return undefined;

  const threads = options.threads ?? kmeansWorkerThreads(second.config);
  const { output, results } = await runJobToTemp(native.entries, plan1.inputFile, `${first.api} + ${second.api}`, model.path, {
    ...options, ...(threads !== undefined ? { threads } : {}),
  });
  const dir = path.dirname(output);
  // A fused entry that reports "skipped" means the two-step run would have gone differently.
  // (Rare: those weights are then compressed again by the two passes.)
  if (results.some((r, k) => r.skipped !== undefined && native.entries[k]!.kind === 'fused')) return fail(dir);
  // A step-1 value that became an immediate changes what step 2 sees: run the steps one by one.
  for (const ran of native.first.values()) {
    if (!ran.chained && results[ran.native]!.outputs.some((o) => o.offset === undefined)) return fail(dir);
  }
  // Step 1's real figures (its outputs stay at their placeholder offsets: they never reach the file).
  const real1: CompressResult[] = predicted.map((p, i) => {
    const ran = native.first.get(i);
    if (!ran) return p;
    const r = results[ran.native]!;
    if (!ran.chained) return { ...r, outputs: r.outputs.map((o, k) => ({ ...o, offset: p.outputs[k]!.offset! })) };
    const info: Record<string, number[]> = {};
    for (const [k, v] of Object.entries(r.info)) if (k.startsWith('stage1.')) info[k.slice(7)] = v;
    const count = info['nonzeroCount']?.[0] ?? p.outputs[0]!.elementCount;
    return { outputs: [{ ...p.outputs[0]!, elementCount: count }, ...p.outputs.slice(1)], info };
  });
  const real2: CompressResult[] = native.second.map((s) => {
    const r = results[s.native]!;
    if (s.how === 'direct') {
      const info: Record<string, number[]> = {};
      for (const [k, v] of Object.entries(r.info)) if (!k.startsWith('stage1.')) info[k] = v;
      // Step 2 left this weight as it was: its values (stage 1's) were written where step 2 would have copied them.
      if (r.passedThrough !== undefined) return { outputs: r.outputs, info: {}, skipped: r.passedThrough };
      return { ...r, info };
    }
    return { outputs: [r.outputs[s.output]!], info: {} };
  });

  // Replay both steps on a fresh copy with the real figures; the plans must not change.
  const final = openProgram(model, first.api);
  try {
    const replay1 = planPass(model, final.spec, final.program, first.config, pruneHandler, opts1);
    if (!plansEqual(replay1, plan1)) return fail(dir);
    const weights1 = applyPass(replay1, real1);
    const replay2 = planPass(model, final.spec, final.program, second.config, handler2, opts2);
    if (!plansEqual(replay2, plan2)) return fail(dir);
    const weights2 = applyPass(replay2, real2);
    for (const fn of final.program.functions.values()) {
      for (const op of fn.walk()) {
        if (blobValuesOf(op).some((v: ValueMsg) => isPlaceholder(Number(v.blobFileValue!.offset ?? 0)))) {
          throw new Error(`internal error: fused ${first.api} + ${second.api} left op ${op.name} pointing at an intermediate value`);
        }
      }
    }
    const seconds = (performance.now() - started) / 1000;
    const before = fs.statSync(plan1.inputFile).size;
    const after = fs.statSync(output).size;
    const sourceBytes = recordSizes(plan1);
    const report1: CompressionReport = { api: first.api, weights: weights1, weightFileBytesBefore: before, weightFileBytesAfter: intermediateBytes(real1, plan1, sourceBytes), seconds };
    const report2: CompressionReport = { api: second.api, weights: weights2, weightFileBytesBefore: report1.weightFileBytesAfter, weightFileBytesAfter: after, seconds };
    return { model: deriveCompressed(model, final.spec, output, report2), reports: [report1, report2] };
  } finally {
    final.close();
  }
}

function fail(dir: string): undefined {
  discardTempDir(dir);
  return undefined;
}

/** On-disk size (metadata + 64-byte aligned data) of each record step 1 would have copied. */
function recordSizes(plan1: PassPlan): Map<number, number> {
  const sizes = new Map<number, number>();
  const file = BlobFile.open(plan1.inputFile);
  try {
    for (const e of plan1.entries) {
      if (e.kind !== 'copy') continue;
      sizes.set(e.source, 64 + Math.ceil(file.record(e.source).sizeInBytes / 64) * 64);
    }
  } finally {
    file.close();
  }
  return sizes;
}
