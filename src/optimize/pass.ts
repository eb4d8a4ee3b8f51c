/**
 * The driver every compression pass shares (palettize, prune, quantize): pick the weights, stream
 * the old weight.bin into a new one in op order (copying or compressing each blob natively), then
 * rewrite the program's const ops into constexpr chains. The input model is never modified; the
 * result is an unsaved Model whose new weight.bin waits in a temporary directory until save().
 */
import fs from 'node:fs';
import { createTempDir, removeTempDir } from '../util/temp-dirs.js';
import path from 'node:path';
import { Model } from '../model.js';
import { Program, type MilFunction, type Operation } from '../mil/program.js';
import { OPSET_OF_SPEC, dtypeFromBlob, storedBytes, type MilDType } from '../mil/types.js';
import type { ValueMsg } from '../mil/values.js';
import { encodeModel, decodeModel } from '../format/proto.js';
import type { ModelSpec } from '../format/spec-types.js';
import { CoreMLOptimizeError, ModelFormatError, UnsupportedError, throwIfAborted } from '../errors.js';
import { BlobFile } from '../format/blob.js';
import { setThreads, getThreads, type ProgressCallback } from '../native.js';
import { selectWeights, type WeightCandidate } from './select.js';
import { runCompressJob, type CompressEntry, type CompressResult } from './native-compress.js';
import { WEIGHT_FILE_NAME } from './values.js';
import { TARGET_MESSAGES, isIos18OrLater, targetError, type CompressionApi, type OptimizationConfig } from './config.js';

export interface PassOptions {
  /** Native threads for this run (default: the pool's current size). */
  threads?: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  /** coremltools' joint_compression flag. */
  jointCompression?: boolean;
}

export interface WeightReport {
  name: string;
  shape: number[];
  dtype: MilDType;
  /** 'compressed' or the reason it was left as it was. */
  status: 'compressed' | 'skipped';
  /** e.g. "4-bit LUT, per_grouped_channel gs16" or the skip reason. */
  detail: string;
  bytesBefore: number;
  bytesAfter: number;
  /** Signal-to-quantization-noise ratio of the compressed weight in dB (Infinity when exact). */
  sqnrDb?: number;
}

export interface CompressionReport {
  /** The step's api ('sparsegpt' / 'gptq' for the calibrated layerwise steps). */
  api: CompressionApi | 'sparsegpt' | 'gptq';
  weights: WeightReport[];
  /** weight.bin sizes. */
  weightFileBytesBefore: number;
  weightFileBytesAfter: number;
  seconds: number;
}

/** A compressed, not yet saved model and what was done to it. */
export type CompressedModel = Model & { readonly compression: CompressionReport };

/**
 * A native entry without its source offset (the driver adds it). `extraValues`: further blob values
 * of the candidate's op the transform reads (joint compression); the driver turns them into
 * `extraSources` and they are no longer copied on their own.
 */
export type PlannedEntry = { kind: string; extraValues?: ValueMsg[] } & Record<string, unknown>;

/** What the driver gives a handler while planning and rewriting. */
export interface PassContext {
  /** The function's opset after the spec-version floor ("CoreML6" … "CoreML9"). */
  opset(fn: MilFunction): string;
  /** iOS generation of the function's ops (16, 17, 18, 26). */
  ios(fn: MilFunction): number;
  specVersion: number;
  jointCompression: boolean;
}

/** One kind of compression: how to plan a weight and how to rewrite its op from the native result. */
export interface PassHandler {
  api: CompressionApi;
  /** The native entry (kind + parameters) for a candidate, or a reason to leave it dense. */
  plan(candidate: WeightCandidate, ctx: PassContext): PlannedEntry | { skip: string };
  /** Replace the candidate's const op with the compressed form; returns a one-line description. */
  emit(candidate: WeightCandidate, result: CompressResult, ctx: PassContext): string;
}

/** A temporary directory for an unsaved model's weight.bin (see util/temp-dirs.ts for its lifetime). */
export function tempDir(): string {
  return createTempDir();
}

/** Native errors about a weight's data become typed errors naming the model file. */
export function passError(err: unknown, api: string, file: string | undefined): unknown {
  if (err instanceof CoreMLOptimizeError || (err as { code?: string })?.code === 'ABORT_ERR' || !(err instanceof Error)) return err;
  return new ModelFormatError(`${api}: ${err.message}`, { ...(file ? { file } : {}), cause: err });
}

export function discardTempDir(dir: string): void {
  removeTempDir(dir);
}

/** Every BlobFileValue of an op, in the order coremltools writes them (its parameters in order). */
export function blobValuesOf(op: Operation): ValueMsg[] {
  const out: ValueMsg[] = [];
  for (const v of Object.values(op.msg.attributes ?? {})) if (v.blobFileValue) out.push(v);
  for (const arg of Object.values(op.msg.inputs ?? {})) for (const b of arg.arguments ?? []) if (b.value?.blobFileValue) out.push(b.value);
  return out;
}

/**
 * Plans a verbatim copy of a blob value, once per source record: several values may share one blob
 * (coremltools dedups equal constants), and the copy must be shared too. Returns the entry index.
 */
export function planCopy(entries: CompressEntry[], copyIndex: Map<number, number>, value: ValueMsg): number {
  const source = offsetOf(value);
  let index = copyIndex.get(source);
  if (index === undefined) {
    index = entries.length;
    copyIndex.set(source, index);
    entries.push({ source, kind: 'copy' });
  }
  return index;
}

export function offsetOf(v: ValueMsg): number {
  return Number(v.blobFileValue!.offset ?? 0);
}

/** Floor to spec 7 (compression ops need iOS16), renaming each function's opset like coremltools. */
export function floorSpecVersion(spec: ModelSpec): void {
  if ((spec.specificationVersion ?? 0) >= 7) return;
  spec.specificationVersion = 7;
  const newOpset = OPSET_OF_SPEC[7]!;
  for (const fn of Object.values(spec.mlProgram?.functions ?? {})) {
    const old = fn.opset ?? '';
    const block = fn.blockSpecializations?.[old];
    if (block && fn.blockSpecializations) {
      delete fn.blockSpecializations[old];
      fn.blockSpecializations[newOpset] = block;
    }
    fn.opset = newOpset;
  }
}

function sqnrDb(signal: number, sse: number): number {
  if (sse <= 0) return Infinity;
  return 10 * Math.log10(signal / sse);
}

/** A model's program opened for a pass: a private copy of the spec (the input model stays untouched). */
export interface OpenedProgram {
  spec: ModelSpec;
  program: Program;
  close(): void;
}

export function openProgram(model: Model, api: string): OpenedProgram {
  const where = model.path;
  if (!model.program) throw new UnsupportedError(`${api}: only ML Program models can be compressed (this is ${model.modelType ?? 'an unknown model type'})`, { file: where });
  if (model.missingWeightFiles.length > 0) {
    throw new UnsupportedError(`${api}: the weight file ${model.missingWeightFiles.join(', ')} is missing, so the weights cannot be compressed`, { file: where });
  }
  const spec = decodeModel(encodeModel(model.spec), where);
  floorSpecVersion(spec);
  // Blob values stay lazy; a handler that needs a weight's data in JS (a custom LUT function)
  // reads it through a memory-mapped BlobFile.
  const openFiles = new Map<string, BlobFile>();
  const program = new Program(spec.mlProgram!, {
    file: where,
    blobs: (fileName) => {
      const file = model.weightFilePath(fileName);
      let f = openFiles.get(file);
      if (!f) openFiles.set(file, (f = BlobFile.open(file)));
      return f;
    },
  });
  return {
    spec, program, close: () => {
      for (const f of openFiles.values()) f.close();
    },
  };
}

export async function runPass(model: Model, config: OptimizationConfig, handler: PassHandler, options: PassOptions = {}): Promise<CompressedModel> {
  const started = performance.now();
  throwIfAborted(options.signal);
  const opened = openProgram(model, handler.api);
  try {
    return await runPassOnProgram(model, opened.spec, opened.program, config, handler, options, started);
  } finally {
    opened.close();
  }
}

/** A planned pass: the native entries in op order and what to rewrite once they ran. */
export interface PassPlan {
  handler: PassHandler;
  ctx: PassContext;
  entries: CompressEntry[];
  /** Blob values copied as they are, with the entry that copies them. */
  copiedValues: { value: ValueMsg; entry: number }[];
  /** Candidates with a native entry, and the blob values that entry reads. */
  planned: { candidate: WeightCandidate; entry: number; values: ValueMsg[] }[];
  /** Weights left dense at planning time (no native work). */
  skippedReports: WeightReport[];
  /** The weight file every entry reads. */
  inputFile: string;
}

/** Picks the weights and plans one native entry per blob of the program, in op order. */
export function planPass(model: Model, spec: ModelSpec, program: Program, config: OptimizationConfig, handler: PassHandler, options: PassOptions = {}): PassPlan {
  const where = model.path;
  if (program.functions.size > 1) throw new UnsupportedError(`${handler.api}: multi-function models are not supported (coremltools rejects them too)`, { file: where });
  const specVersion = spec.specificationVersion ?? 7;
  // coremltools checks this before looking at any weight.
  if (options.jointCompression && !isIos18OrLater({ specVersion, opset: program.main.opset })) throw targetError('ValueError', TARGET_MESSAGES.joint);
  const ctx: PassContext = {
    opset: (fn) => fn.opset,
    ios: (fn) => fn.iosVersion,
    specVersion,
    jointCompression: options.jointCompression ?? false,
  };

  const { candidates, skipped } = selectWeights(program, config, { api: handler.api, jointCompression: ctx.jointCompression });
  const byOp = new Map<Operation['msg'], WeightCandidate>(candidates.map((c) => [c.op.msg, c]));
  const skippedReports: WeightReport[] = skipped.map((s) => ({ name: s.name, shape: [], dtype: 'fp16' as MilDType, status: 'skipped', detail: s.reason, bytesBefore: 0, bytesAfter: 0 }));

  const entries: CompressEntry[] = [];
  const copyIndex = new Map<number, number>(); // source offset → entry index (shared blobs copied once)
  const copiedValues: PassPlan['copiedValues'] = [];
  const planned: PassPlan['planned'] = [];
  let inputFile: string | undefined;
  for (const fn of program.functions.values()) {
    for (const op of fn.walk()) {
      let values = blobValuesOf(op);
      if (values.length === 0) continue;
      for (const v of values) {
        const file = model.weightFilePath(v.blobFileValue!.fileName ?? '');
        if (inputFile && file !== inputFile) throw new UnsupportedError(`${handler.api}: weights spread over several files (${inputFile}, ${file}) are not supported`, { file: where });
        inputFile = file;
      }
      const candidate = byOp.get(op.msg);
      if (candidate) {
        const plan = handler.plan(candidate, ctx);
        if (typeof plan['skip'] !== 'string') {
          const { extraValues, ...entry } = plan as PlannedEntry;
          const primary = candidate.joint ? candidate.joint.value : candidate.op.constValue().msg;
          const used = [primary, ...(extraValues ?? [])];
          planned.push({ candidate, entry: entries.length, values: used });
          entries.push({ ...entry, name: candidate.name, source: candidate.offset, ...(extraValues?.length ? { extraSources: extraValues.map(offsetOf) } : {}) } as CompressEntry);
          values = values.filter((v) => !used.includes(v));
          if (values.length === 0) continue;
        } else {
          skippedReports.push({ name: candidate.name, shape: candidate.shape, dtype: candidate.dtype, status: 'skipped', detail: String(plan['skip']), bytesBefore: 0, bytesAfter: 0 });
        }
      }
      for (const v of values) copiedValues.push({ value: v, entry: planCopy(entries, copyIndex, v) });
    }
  }
  if (!inputFile) throw new UnsupportedError(`${handler.api}: the model has no weights in a weight file`, { file: where });
  return { handler, ctx, entries, copiedValues, planned, skippedReports, inputFile };
}

/** Rewrites the planned program from the native results; returns a report line per weight. */
export function applyPass(plan: PassPlan, results: CompressResult[]): WeightReport[] {
  const reports = [...plan.skippedReports];
  for (const { value, entry } of plan.copiedValues) {
    value.blobFileValue = { fileName: WEIGHT_FILE_NAME, offset: results[entry]!.outputs[0]!.offset! };
  }
  for (const { candidate, entry, values } of plan.planned) {
    const result = results[entry]!;
    const bytesBefore = storedBytes(candidate.dtype, candidate.elementCount);
    if (result.skipped) {
      // The records were copied verbatim: keep the op, pointing at the new offsets.
      values.forEach((v, i) => { v.blobFileValue = { fileName: WEIGHT_FILE_NAME, offset: result.outputs[i]!.offset! }; });
      reports.push({ name: candidate.name, shape: candidate.shape, dtype: candidate.dtype, status: 'skipped', detail: result.skipped, bytesBefore, bytesAfter: bytesBefore });
      continue;
    }
    const detail = plan.handler.emit(candidate, result, plan.ctx);
    const bytesAfter = result.outputs.reduce((s, o) => s + (o.offset !== undefined ? storedBytes(dtypeFromBlob(o.dtype) ?? 'uint8', o.elementCount) : 0), 0);
    const sse = result.info['sse']?.[0];
    const signal = result.info['signal']?.[0];
    reports.push({
      name: candidate.name, shape: candidate.shape, dtype: candidate.dtype, status: 'compressed', detail, bytesBefore, bytesAfter,
      ...(sse !== undefined && signal !== undefined ? { sqnrDb: sqnrDb(signal, sse) } : {}),
    });
  }
  return reports;
}

/** Runs a compression job into a fresh temporary weight.bin; the directory is removed on failure. */
export async function runJobToTemp(entries: CompressEntry[], inputFile: string, api: string, where: string | undefined, options: PassOptions): Promise<{ output: string; results: CompressResult[] }> {
  const dir = tempDir();
  const output = path.join(dir, 'weight.bin');
  const previousThreads = options.threads !== undefined ? getThreads() : undefined;
  if (options.threads !== undefined) setThreads(options.threads);
  try {
    const results = await runCompressJob(inputFile, output, entries, {
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return { output, results };
  } catch (err) {
    discardTempDir(dir);
    throw passError(err, api, where ?? inputFile);
  } finally {
    if (previousThreads !== undefined) setThreads(previousThreads);
  }
}

/** The compressed model: the rewritten spec with the new weight.bin (moved in on save). */
export function deriveCompressed(model: Model, spec: ModelSpec, output: string, report: CompressionReport): CompressedModel {
  // coremltools re-exports compressed programs without the buildInfo attribute.
  if (spec.mlProgram?.attributes) delete spec.mlProgram.attributes['buildInfo'];
  const derived = model.derive(spec, { weightFiles: [{ name: 'weight.bin', from: output, move: true }] });
  return Object.assign(derived, { compression: report });
}

async function runPassOnProgram(
  model: Model, spec: ModelSpec, program: Program, config: OptimizationConfig, handler: PassHandler, options: PassOptions, started: number,
): Promise<CompressedModel> {
  const plan = planPass(model, spec, program, config, handler, options);
  const { output, results } = await runJobToTemp(plan.entries, plan.inputFile, handler.api, model.path, options);
  const weights = applyPass(plan, results);
  return deriveCompressed(model, spec, output, {
    api: handler.api,
    weights,
    weightFileBytesBefore: fs.statSync(plan.inputFile).size,
    weightFileBytesAfter: fs.statSync(output).size,
    seconds: (performance.now() - started) / 1000,
  });
}
