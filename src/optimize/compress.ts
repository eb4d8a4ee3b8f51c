/**
 * compressModel runs a multi-step plan (`{steps: [{api, config, joint_compression}]}`, see steps.ts;
 * `{api: sparsegpt | gptq, config, calibration}` steps run the calibrated layerwise driver) step by step, each a streaming pass over the previous step's output, like calling coremltools'
 * prune_weights / palettize_weights / linear_quantize_weights in sequence. decompressWeights writes
 * every constexpr chain back as a plain const (coremltools' decompress_weights), materializing each
 * chain natively while the weight file is streamed.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Model } from '../model.js';
import { Program, makeConstOp, type MilFunction, type Operation } from '../mil/program.js';
import type { ValueMsg } from '../mil/values.js';
import { chainEntry } from './chain-entry.js';
import { tensorDType, tensorShape, type MilDType } from '../mil/types.js';
import { encodeModel, decodeModel } from '../format/proto.js';
import { UnsupportedError, throwIfAborted } from '../errors.js';
import { getThreads, setThreads } from '../native.js';
import { OptimizationConfig, TARGET_MESSAGES, isIos18OrLater, targetError } from './config.js';
import { loadCompressPlan, type CompressPlan } from './steps.js';
import { gptq, sparseGPT } from './sparsegpt/index.js';
import { palettizeWeights } from './palettize.js';
import { pruneWeights } from './prune.js';
import { linearQuantizeWeights } from './quantize.js';
import {
  blobValuesOf, discardTempDir, floorSpecVersion, offsetOf, passError, planCopy, tempDir, type CompressedModel, type CompressionReport, type PassOptions,
} from './pass.js';
import { runCompressJob, type CompressEntry } from './native-compress.js';
import { fusablePair, runFusedPair } from './fused.js';
import { blobValue, WEIGHT_FILE_NAME } from './values.js';

export type CompressModelOptions = Omit<PassOptions, 'jointCompression'> & {
  /** Called before each step starts (index, total). */
  onStep?: (index: number, total: number, api: string) => void;
  /**
   * Run prune followed by a joint palettize / quantize step as one pass over the weights (default
   * true; the output is the same byte for byte). false runs every step as its own pass.
   */
  fuse?: boolean;
};

export type MultiStepModel = Model & {
  readonly compression: CompressionReport;
  readonly steps: CompressionReport[];
  /** Passes over the weight file (fewer than steps when a prune step was fused with the next). */
  readonly passes: number;
};

function isCompressPlan(plan: unknown): plan is CompressPlan {
  const steps = (plan as { steps?: unknown } | null)?.steps;
  return Array.isArray(steps) && steps.length > 0 && steps.every((s) => (s as { config?: unknown }).config instanceof OptimizationConfig);
}

function programOpset(model: Model): string {
  const fns = Object.values(model.program?.functions ?? {});
  return (fns[0] as { opset?: string } | undefined)?.opset ?? '';
}

/**
 * Runs every step of `plan` (a CompressPlan, its data, or a YAML/JSON file path) in order. The result
 * is unsaved; `steps` holds each step's report, `compression` the last one.
 */
export async function compressModel(model: Model, plan: CompressPlan | string | object, options: CompressModelOptions = {}): Promise<MultiStepModel> {
  const p = isCompressPlan(plan) ? plan : loadCompressPlan(plan);
  if (model.program && model.missingWeightFiles.length === 0) {
    const specVersion = Math.max(model.spec.specificationVersion ?? 7, 7);
    const opset = programOpset(model);
    // coremltools checks joint compression against the target before it touches any weight.
    if (p.steps.some((s) => s.joint_compression) && !isIos18OrLater(opset ? { specVersion, opset } : { specVersion })) {
      throw targetError('ValueError', TARGET_MESSAGES.joint);
    }
  }
  const { onStep, fuse = true, ...passOptions } = options;
  let current: Model = model;
  const reports: CompressionReport[] = [];
  let passes = 0;
  for (let i = 0; i < p.steps.length; i++) {
    const step = p.steps[i]!;
    throwIfAborted(options.signal);
    onStep?.(i, p.steps.length, step.api);
    if (step.layerwise) {
      // Calibrated steps (SparseGPT / GPTQ) run on their own: their weights come from the graph.
      const run = step.api === 'gptq' ? gptq : sparseGPT;
      // A joint palettization next takes the non-zeros of constexpr_sparse_to_dense as values: quantized
      // survivors stay values there (coremltools has no prune → quantize → palettize chain).
      const palettizedNext = p.steps[i + 1]?.api === 'palettize' && p.steps[i + 1]?.joint_compression === true;
      const next = await run(current, step.layerwise.config, step.layerwise.calibration, {
        ...passOptions, mode: step.layerwise.mode, ...(palettizedNext ? { quantizedSurvivors: 'values' as const } : {}),
      });
      reports.push(Object.assign({ ...next.compression }, { layerwise: next.layerwise }));
      current = next;
      passes++;
      continue;
    }
    const next2 = p.steps[i + 1];
    if (fuse && next2 && fusablePair(step, next2)) {
      const fused = await runFusedPair(current, step, next2, passOptions);
      if (fused) {
        onStep?.(i + 1, p.steps.length, next2.api);
        reports.push(...fused.reports);
        current = replaceIntermediate(current, fused.model, model);
        passes++;
        i++;
        continue;
      }
    }
    const opts: PassOptions = { ...passOptions, jointCompression: step.joint_compression };
    const next: CompressedModel = step.api === 'prune' ? await pruneWeights(current, step.config, opts)
      : step.api === 'palettize' ? await palettizeWeights(current, step.config, opts)
      : await linearQuantizeWeights(current, step.config, opts);
    reports.push(next.compression);
    current = replaceIntermediate(current, next, model);
    passes++;
  }
  return Object.assign(current, { steps: reports, compression: reports[reports.length - 1]!, passes }) as MultiStepModel;
}

/** The next step's model replaces an intermediate one, whose temporary weight file goes now. */
function replaceIntermediate(previous: Model, next: Model, input: Model): Model {
  if (previous !== input) previous.dispose();
  return next;
}

/* ---- decompression ---- */

export interface DecompressReport {
  /** Chains replaced by a const: the var the model reads and the ops that produced it. */
  weights: { name: string; ops: string[]; shape: number[]; dtype: MilDType }[];
  weightFileBytesBefore: number;
  weightFileBytesAfter: number;
  seconds: number;
}

export type DecompressedModel = Model & { readonly decompression: DecompressReport };

interface Chain {
  end: Operation;
  /** Chain ops in program order (producers first). */
  ops: Operation[];
}

/** Every constexpr chain, keyed by its last op (the one non-constexpr ops read). */
function findChains(fn: MilFunction): Map<Operation, Chain> {
  const chains = new Map<Operation, Chain>();
  for (const op of fn.walk()) {
    if (!op.isConstexpr) continue;
    const uses = op.outputs.flatMap((o) => fn.consumersOf(o.name));
    const feedsModel = uses.length === 0 || uses.some((u) => !u.op || !u.op.isConstexpr);
    if (!feedsModel) continue;
    const seen = new Set<Operation>();
    const visit = (o: Operation): void => {
      if (seen.has(o)) return;
      seen.add(o);
      for (const key of o.paramNames) {
        const p = o.param(key);
        if (p?.kind !== 'var') continue;
        const producer = fn.producerOf(p.name);
        if (producer?.isConstexpr) visit(producer);
      }
    };
    visit(op);
    chains.set(op, { end: op, ops: [...seen].sort((a, b) => fn.positionOf(a) - fn.positionOf(b)) });
  }
  return chains;
}

/**
 * Writes a plain model back: every constexpr chain becomes a const of the chain's output dtype
 * (fp16/fp32) with the materialized values (coremltools' decompress_weights).
 */
export async function decompressWeights(model: Model, options: Omit<PassOptions, 'jointCompression'> = {}): Promise<DecompressedModel> {
  const started = performance.now();
  throwIfAborted(options.signal);
  const where = model.path;
  if (!model.program) throw new UnsupportedError(`decompress: only ML Program models have compressed weights (this is ${model.modelType ?? 'an unknown model type'})`, { file: where });
  if (model.missingWeightFiles.length > 0) {
    throw new UnsupportedError(`decompress: the weight file ${model.missingWeightFiles.join(', ')} is missing, so the weights cannot be decompressed`, { file: where });
  }
  const spec = decodeModel(encodeModel(model.spec), where);
  floorSpecVersion(spec);
  const program = new Program(spec.mlProgram!, { file: where });
  const entries: CompressEntry[] = [];
  const copyIndex = new Map<number, number>();
  const copied: { value: ValueMsg; entry: number }[] = [];
  const replaced: { chain: Chain; entry: number; fn: MilFunction }[] = [];
  let inputFile: string | undefined;
  const noteFile = (v: ValueMsg): void => {
    const file = model.weightFilePath(v.blobFileValue!.fileName ?? '');
    if (inputFile && file !== inputFile) throw new UnsupportedError(`decompress: weights spread over several files (${inputFile}, ${file}) are not supported`, { file: where });
    inputFile = file;
  };
  for (const fn of program.functions.values()) {
    const chains = findChains(fn);
    const inChain = new Set<Operation>([...chains.values()].flatMap((c) => c.ops));
    const opset = fn.iosVersion >= 18 ? 'ios18' : 'ios16';
    for (const op of fn.walk()) {
      const chain = chains.get(op);
      if (chain) {
        let spec;
        try {
          spec = chainEntry(fn, chain.ops);
        } catch (e) {
          throw new UnsupportedError(`decompress: ${(e as Error).message}`, { file: where, cause: e });
        }
        const { ops, sources: values } = spec;
        values.forEach(noteFile);
        const sources = values.map(offsetOf);
        const end = chain.end;
        const resultOutput = end.outputs.length - 1;
        // A chain of immediates only has nothing to read from the file: it stays as it is.
        if (sources.length === 0) continue;
        replaced.push({ chain, entry: entries.length, fn });
        entries.push({ kind: 'decompress', name: end.outputs[resultOutput]!.name, source: sources[0]!, ...(sources.length > 1 ? { extraSources: sources.slice(1) } : {}), opset, ops, resultOp: ops.length - 1, resultOutput });
        continue;
      }
      if (inChain.has(op)) continue;
      for (const v of blobValuesOf(op)) {
        noteFile(v);
        copied.push({ value: v, entry: planCopy(entries, copyIndex, v) });
      }
    }
  }
  if (!inputFile) throw new UnsupportedError('decompress: the model has no weights in a weight file', { file: where });
  const dir = tempDir();
  const output = path.join(dir, 'weight.bin');
  const previousThreads = options.threads !== undefined ? getThreads() : undefined;
  if (options.threads !== undefined) setThreads(options.threads);
  let results;
  try {
    results = await runCompressJob(inputFile, output, entries, {
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (err) {
    discardTempDir(dir);
    throw passError(err, 'decompress', where ?? inputFile);
  } finally {
    if (previousThreads !== undefined) setThreads(previousThreads);
  }
  for (const { value, entry } of copied) value.blobFileValue = { fileName: WEIGHT_FILE_NAME, offset: results[entry]!.outputs[0]!.offset! };
  const weights: DecompressReport['weights'] = [];
  for (const { chain, entry, fn } of replaced) {
    const end = chain.end;
    const out = end.outputs[end.outputs.length - 1]!;
    const dtype = tensorDType(out.type)!;
    const shape = (tensorShape(out.type) ?? []).map((d) => d ?? 0);
    const constOp = makeConstOp(out.name, blobValue(dtype, shape, results[entry]!.outputs[0]!.offset!));
    const block = end.block;
    // The const takes the chain end's place and name; the rest of the chain goes.
    const msgs = block.msg.operations!;
    msgs.splice(msgs.indexOf(end.msg), 1, constOp);
    for (const o of chain.ops) {
      if (o === end) continue;
      const list = o.block.msg.operations!;
      const i = list.indexOf(o.msg);
      if (i >= 0) list.splice(i, 1);
    }
    fn.invalidate();
    weights.push({ name: out.name, ops: chain.ops.map((o) => o.type), shape, dtype });
  }
  if (spec.mlProgram?.attributes) delete spec.mlProgram.attributes['buildInfo'];
  const derived = model.derive(spec, { weightFiles: [{ name: 'weight.bin', from: output, move: true }] });
  const report: DecompressReport = {
    weights,
    weightFileBytesBefore: fs.statSync(inputFile).size,
    weightFileBytesAfter: fs.statSync(output).size,
    seconds: (performance.now() - started) / 1000,
  };
  return Object.assign(derived, { decompression: report });
}
