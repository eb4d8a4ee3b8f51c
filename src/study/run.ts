/**
 * runStudy: the compression study in one call. In the output folder:
 *   study.json              the normalized config (a --resume must match it)
 *   baseline/               the uncompressed pipeline's images, its recorded UNet inputs and the UNet's
 *                           outputs on the fixed inputs (the UNet PSNR reference), result.json
 *   calibration/samples/    UNet inputs of the calibration prompts at every timestep (sparsegpt / gptq steps)
 *   variants/<name>/        plan.json, images/, pipeline/ (the compressed UNet + links to the shared models;
 *                           removed unless keepModels), result.json (written last, atomically: the variant is done)
 *   report.json / .md / .html, grid.png, plot.svg
 * A variant = compress the UNet with its plan (in a `coreml-optimize compress` child process by default, so
 * its peak RSS is its own), draw the images with the variant's pipeline, compare them (PSNR, SSIM) and the
 * UNet output on the fixed inputs with the baseline's. Finished variants are never redone by a resume; a
 * cancelled run leaves them intact.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AbortError, ConfigError, CoreMLOptimizeError, ModelFormatError, UnsupportedError, throwIfAborted } from '../errors.js';
import { decodeModel, encodeModel } from '../format/proto.js';
import { loadModel, loadModelSync, type Model } from '../model.js';
import { compressModel } from '../optimize/compress.js';
import { checkPlanTarget, compressPlanFromData } from '../optimize/steps.js';
import { resolvePipelineFolder } from '../pipeline/pipeline-folder.js';
import { decodePng, encodePng } from '../pipeline/png.js';
import { StableDiffusionPipeline } from '../pipeline/stable-diffusion.js';
import { halfBitsToFloatArray } from '../mil/values.js';
import { loadBackend, type BackendLoadOptions, type BackendTensor, type ModelBackend } from '../pipeline/backends/index.js';
import { ErrorAccumulator } from '../runtime/compare.js';
import { readNpy, writeNpy } from '../runtime/npy.js';
import { writeFileAtomically } from '../util/atomic-write.js';
import { isLayerwiseStep, studyConfigToData, type StudyConfig, type StudyVariant } from './config.js';
import { encodeGridPng, fitImage, renderGrid } from './grid.js';
import { dbOrNull, psnr8bit, ssimRgb } from './metrics.js';
import { renderPlotSvg } from './plot.js';
import { COREMLTOOLS_SDXL_PUBLISHED_GIB } from './presets.js';
import { renderHtml } from './report-html.js';
import { formatSize, renderMarkdown } from './report-md.js';
import type { ImageResult, MemoryResult, StudyReport, UnetResult, VariantResult } from './types.js';

export type StudyPhase = 'baseline' | 'calibration' | 'variant' | 'report';

export interface StudyProgress {
  phase: StudyPhase;
  /** Variant name (phase variant). */
  variant?: string;
  /** 0-based position of the variant in the config, and the variant count. */
  index?: number;
  count?: number;
  /** What is happening: generate (denoising steps), record, retarget, compress, compress-step, unet, skipped, done. */
  step: string;
  done?: number;
  total?: number;
  message?: string;
}

export interface RunStudyOptions {
  outDir: string;
  /** Continue a study in outDir: finished variants are kept as they are. */
  resume?: boolean;
  /** Variants at a time (default 1). */
  parallel?: number;
  /** Override the config's keepModels. */
  keepModels?: boolean;
  /**
   * process (default): each compression runs `coreml-optimize compress` in a child process (its peak RSS
   * is measured on its own; needs the built CLI, dist/). inline: in this process (peak memory then is this
   * process's high-water mark, an upper bound).
   */
  isolation?: 'process' | 'inline';
  /** The CLI launcher for process isolation (default: this package's bin/coreml-optimize.js). */
  cliPath?: string;
  onProgress?: (p: StudyProgress) => void;
  signal?: AbortSignal;
}

export interface StudyResult {
  outDir: string;
  report: StudyReport;
  files: { json: string; markdown: string; html: string; grid: string; plot: string };
  /** Variants compressed by this call (the others were finished before). */
  ran: string[];
  skipped: string[];
}

const STUDY_FORMAT = 'coreml-optimize-study';
const WEIGHT_FILE = path.join('Data', 'com.apple.CoreML', 'weights', 'weight.bin');

/* ---------- small file helpers ---------- */

async function writeJson(file: string, data: unknown): Promise<void> {
  await writeFileAtomically(file, `${JSON.stringify(data, null, 2)}\n`);
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

function dirBytes(p: string): number {
  const st = fs.lstatSync(p);
  if (!st.isDirectory()) return st.size;
  return fs.readdirSync(p).reduce((a, n) => a + dirBytes(path.join(p, n)), 0);
}

export function unetSize(unetPackage: string): VariantResult['size'] {
  const weights = path.join(unetPackage, WEIGHT_FILE);
  if (!fs.existsSync(weights)) throw new UnsupportedError('the UNet package has no weight file at Data/com.apple.CoreML/weights/weight.bin', { file: unetPackage });
  const bytes = fs.statSync(weights).size;
  return { weightFileBytes: bytes, gb: bytes / 1e9, gib: bytes / 2 ** 30, packageBytes: dirBytes(unetPackage) };
}

/**
 * `dst` mirrors `src` with symbolic links, except the entry at `replace` (absolute, inside src), which
 * is left for the caller to write. Folders on the way to it are real folders whose other entries are links.
 */
function mirrorFolder(src: string, dst: string, replace: string): string {
  fs.mkdirSync(dst, { recursive: true });
  const rel = path.relative(src, replace);
  const [head, ...rest] = rel.split(path.sep);
  for (const name of fs.readdirSync(src)) {
    if (name === head) {
      if (rest.length > 0) mirrorFolder(path.join(src, name), path.join(dst, name), replace);
      continue;
    }
    fs.symlinkSync(path.join(src, name), path.join(dst, name));
  }
  return path.join(dst, rel);
}

/* ---------- the study ---------- */

interface Context {
  config: StudyConfig;
  outDir: string;
  isolation: 'process' | 'inline';
  cliPath: string;
  keepModels: boolean;
  threads: number;
  signal: AbortSignal | undefined;
  progress: (p: StudyProgress) => void;
  /** The baseline pipeline's UNet package and folder. */
  unetPath: string;
  pipelineDir: string;
  /** The uncompressed pipeline, loaded once; variants share its text encoders and VAE (when run one at a time). */
  base?: StableDiffusionPipeline;
  parallel: number;
}

interface BaselineRecord {
  result: VariantResult;
  modelKind: string;
  scheduler: string;
  backend: string;
  /** Fixed UNet inputs (sample folders) and the reference outputs (one folder per sample, same order). */
  unetSamples: string[];
  unetReference: string[];
  unetOutputs: string[];
}

function imageJobs(config: StudyConfig): { prompt: string; seed: number; key: string }[] {
  const jobs: { prompt: string; seed: number; key: string }[] = [];
  config.prompts.forEach((prompt, p) => config.seeds.forEach((seed) => jobs.push({ prompt, seed, key: `p${p}-s${seed}` })));
  return jobs;
}

function backendOptions(ctx: Context): BackendLoadOptions {
  const c = ctx.config;
  return {
    ...(c.backend ? { backend: c.backend } : {}),
    ...(c.computeUnit ? { computeUnit: c.computeUnit } : {}),
    ...(ctx.threads > 0 ? { threads: ctx.threads } : {}),
  };
}

async function basePipeline(ctx: Context): Promise<StableDiffusionPipeline> {
  ctx.base ??= await StableDiffusionPipeline.load(ctx.pipelineDir, backendOptions(ctx));
  return ctx.base;
}

/**
 * The pipeline of a variant: the baseline's text encoders and VAE with the compressed UNet (one variant
 * at a time), or the variant's own folder loaded afresh (parallel variants do not share backends).
 */
async function variantPipeline(ctx: Context, dir: string, unet: string): Promise<StableDiffusionPipeline> {
  if (ctx.parallel > 1) return StableDiffusionPipeline.load(dir, backendOptions(ctx));
  const base = await basePipeline(ctx);
  const backend = await loadBackend(unet, backendOptions(ctx));
  return StableDiffusionPipeline.fromComponents({ ...base.components, unet: backend }, base.config);
}

/** A recorded input as a backend tensor (float32, or int32 for integer inputs). */
function npyTensor(file: string): BackendTensor {
  const a = readNpy(file);
  if (a.dtype === 'fp32') return { data: a.data as Float32Array, shape: a.shape };
  if (a.dtype === 'fp16') return { data: halfBitsToFloatArray(a.data as Uint16Array), shape: a.shape };
  if (a.dtype === 'fp64') return { data: Float32Array.from(a.data as Float64Array), shape: a.shape };
  if (a.dtype === 'int32') return { data: a.data as Int32Array, shape: a.shape };
  if (a.dtype === 'int64') return { data: Int32Array.from(a.data as BigInt64Array, (v) => Number(v)), shape: a.shape };
  throw new UnsupportedError(`UNet input .npy of dtype ${a.dtype} is not supported (float16/32/64, int32/64)`, { file });
}

function sampleInputs(unet: ModelBackend, sample: string): Record<string, BackendTensor> {
  const out: Record<string, BackendTensor> = {};
  for (const input of unet.inputs) {
    const file = path.join(sample, `${input.name}.npy`);
    if (!fs.existsSync(file)) throw new ConfigError(`UNet input sample has no ${input.name}.npy for the UNet input '${input.name}'`, { file: sample });
    out[input.name] = npyTensor(file);
  }
  return out;
}

/** Draws every prompt × seed with the pipeline in `pipelineDir`; PNGs go to `<dir>/<key>.png`. */
async function drawImages(ctx: Context, pipeline: StableDiffusionPipeline, imagesDir: string, report: (done: number, total: number) => void, record?: string) {
  const jobs = imageJobs(ctx.config);
  const c = ctx.config;
  const total = jobs.length * c.steps;
  const out: { key: string; prompt: string; seed: number; file: string; width: number; height: number; pixels: Uint8Array }[] = [];
  let scheduler = '';
  const t0 = performance.now();
  for (const [j, job] of jobs.entries()) {
    const r = await pipeline.generate({
      prompt: job.prompt,
      seed: job.seed,
      numInferenceSteps: c.steps,
      guidanceScale: c.guidance,
      ...(c.negativePrompt !== undefined ? { negativePrompt: c.negativePrompt } : {}),
      ...(c.scheduler ? { scheduler: c.scheduler } : {}),
      ...(record ? { recordUnetInputs: path.join(record, job.key) } : {}),
      onProgress: (d) => report(j * c.steps + d, total),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
    scheduler = r.scheduler;
    const img = r.images[0]!;
    const file = path.join(imagesDir, `${job.key}.png`);
    await writeFileAtomically(file, img.png);
    out.push({ ...job, file, width: img.width, height: img.height, pixels: img.pixels });
  }
  return { images: out, scheduler, modelKind: pipeline.config.modelKind, backend: pipeline.components.unet.kind, seconds: (performance.now() - t0) / 1000 };
}

/** Sample folders of a recorded-inputs folder (any depth of grouping folders), in order. */
function sampleFolders(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    const entries = fs.readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory() && !e.name.endsWith('.partial'))
      .map((e) => e.name).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    const hasNpy = fs.readdirSync(d).some((n) => n.endsWith('.npy'));
    if (hasNpy) out.push(d);
    else for (const e of entries) walk(path.join(d, e));
  };
  walk(dir);
  return out;
}

function pickSpread<T>(items: T[], count: number): T[] {
  const n = Math.min(count, items.length);
  return Array.from({ length: n }, (_, k) => items[Math.floor((k * items.length) / n)]!);
}

/** UNet outputs of `model` on each sample, compared with the reference outputs (pooled statistics over samples). */
async function unetAgainstReference(ctx: Context, unet: ModelBackend, samples: string[], reference: string[], outputs: string[], onSample: (d: number, t: number) => void): Promise<UnetResult> {
  const acc = new ErrorAccumulator();
  for (let i = 0; i < samples.length; i++) {
    throwIfAborted(ctx.signal);
    const res = await unet.predict(sampleInputs(unet, samples[i]!), ctx.signal ? { signal: ctx.signal } : {});
    for (const name of outputs) {
      const ref = readNpy(path.join(reference[i]!, `${name}.npy`)).data as Float32Array;
      const got = res[name];
      if (!got) throw new ModelFormatError(`the UNet did not produce '${name}'`, { file: unet.path });
      acc.add(ref, got.data);
    }
    onSample(i + 1, samples.length);
  }
  const r = acc.result('unet');
  return { psnr: dbOrNull(r.psnr ?? Infinity), snr: dbOrNull(r.snr ?? Infinity), cosine: r.cosine, maxAbsError: r.maxAbsError, samples: samples.length };
}

function rel(ctx: Context, p: string): string {
  return path.relative(ctx.outDir, p).split(path.sep).join('/');
}

async function runBaseline(ctx: Context): Promise<BaselineRecord> {
  const dir = path.join(ctx.outDir, 'baseline');
  const file = path.join(dir, 'result.json');
  const existing = readJson<BaselineRecord>(file);
  if (existing) {
    ctx.progress({ phase: 'baseline', step: 'skipped', message: 'baseline finished before' });
    return existing;
  }
  fs.rmSync(dir, { recursive: true, force: true });
  const recordDir = path.join(dir, 'unet-inputs');
  const pipeline = await basePipeline(ctx);
  const drawn = await drawImages(ctx, pipeline, path.join(dir, 'images'), (d, t) => ctx.progress({ phase: 'baseline', step: 'generate', done: d, total: t }),
    ctx.config.unetInputs.dir ? undefined : recordDir);
  const samples = pickSpread(sampleFolders(ctx.config.unetInputs.dir ?? recordDir), ctx.config.unetInputs.count);
  if (samples.length === 0) throw new ConfigError('unetInputs.dir holds no sample folders (one folder of <input>.npy files per sample)', { file: ctx.config.unetInputs.dir ?? recordDir });
  // The reference: the uncompressed UNet's outputs on the fixed inputs, computed once.
  const unet = pipeline.components.unet;
  const outputs = unet.outputs.map((o) => o.name);
  const reference: string[] = [];
  for (const [i, s] of samples.entries()) {
    throwIfAborted(ctx.signal);
    const res = await unet.predict(sampleInputs(unet, s), ctx.signal ? { signal: ctx.signal } : {});
    const refDir = path.join(dir, 'unet-reference', String(i).padStart(4, '0'));
    fs.mkdirSync(refDir, { recursive: true });
    for (const name of outputs) {
      const t = res[name]!;
      writeNpy(path.join(refDir, `${name}.npy`), { dtype: 'float32', shape: t.shape, data: t.data instanceof Float32Array ? t.data : Float32Array.from(t.data) });
    }
    reference.push(refDir);
    ctx.progress({ phase: 'baseline', step: 'unet', done: i + 1, total: samples.length });
  }
  // The baseline against itself, through the same measures as every variant.
  const images: ImageResult[] = drawn.images.map((im) => ({
    prompt: im.prompt, seed: im.seed, path: rel(ctx, im.file), width: im.width, height: im.height,
    psnr: dbOrNull(psnr8bit(im.pixels, im.pixels)), ssim: ssimRgb(im.pixels, im.pixels, im.width, im.height),
  }));
  const self = await unetAgainstReference(ctx, unet, samples, reference, outputs, () => undefined);
  const result: VariantResult = {
    name: 'baseline', label: 'baseline (uncompressed)', plan: { steps: [] }, size: unetSize(ctx.unetPath), compressionSeconds: 0, memory: null,
    images, imagePsnr: meanDb(images), imageSsim: mean(images.map((i) => i.ssim)), unet: self, unetPath: ctx.unetPath, generateSeconds: drawn.seconds,
  };
  const record: BaselineRecord = {
    result, modelKind: drawn.modelKind, scheduler: drawn.scheduler, backend: drawn.backend,
    unetSamples: samples, unetReference: reference, unetOutputs: outputs,
  };
  await writeJson(file, record);
  return record;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
/** Mean PSNR over images, identical ones left out; null when all are identical. */
function meanDb(images: ImageResult[]): number | null {
  const finite = images.map((i) => i.psnr).filter((p): p is number => p !== null);
  return finite.length === 0 ? null : mean(finite);
}

function needsCalibration(config: StudyConfig): boolean {
  return config.variants.some((v) => v.plan.steps.some((s) => isLayerwiseStep(s) && s['calibration'] === undefined));
}

/** Records the UNet inputs of every calibration prompt at every timestep into calibration/samples/. */
async function runCalibration(ctx: Context): Promise<{ dir: string; samples: number }> {
  const dir = path.join(ctx.outDir, 'calibration');
  const samplesDir = path.join(dir, 'samples');
  const index = path.join(dir, 'index.json');
  const done = readJson<{ samples: number }>(index);
  if (done) {
    ctx.progress({ phase: 'calibration', step: 'skipped', message: 'calibration data recorded before' });
    return { dir: samplesDir, samples: done.samples };
  }
  fs.rmSync(dir, { recursive: true, force: true });
  const pipeline = await basePipeline(ctx);
  const c = ctx.config;
  const total = c.calibration.prompts.length * c.steps;
  for (const [k, prompt] of c.calibration.prompts.entries()) {
    const rec = path.join(dir, 'recording', `p${k}`);
    await pipeline.generate({
      prompt, seed: c.calibration.seed, numInferenceSteps: c.steps, guidanceScale: c.guidance,
      ...(c.negativePrompt !== undefined ? { negativePrompt: c.negativePrompt } : {}),
      ...(c.scheduler ? { scheduler: c.scheduler } : {}),
      recordUnetInputs: rec,
      onProgress: (d) => ctx.progress({ phase: 'calibration', step: 'record', done: k * c.steps + d, total }),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
    // One flat folder of sample folders, prompt-major (p0-0000, p0-0001, ..., p1-0000, ...).
    fs.mkdirSync(samplesDir, { recursive: true });
    for (const s of sampleFolders(rec)) fs.renameSync(s, path.join(samplesDir, `p${k}-${path.basename(s)}`));
  }
  fs.rmSync(path.join(dir, 'recording'), { recursive: true, force: true });
  const samples = sampleFolders(samplesDir).length;
  await writeJson(index, { prompts: c.calibration.prompts, seed: c.calibration.seed, steps: c.steps, samples });
  return { dir: samplesDir, samples };
}

/** The variant's plan with the study's calibration folder and nsamples filled into calibrated steps. */
function resolvedPlan(ctx: Context, v: StudyVariant, calibrationDir: string | undefined): { steps: Record<string, unknown>[] } {
  return {
    steps: v.plan.steps.map((s) => {
      if (!isLayerwiseStep(s)) return s;
      const config = { ...((s['config'] as Record<string, unknown> | undefined) ?? {}) };
      if (config['calibration_nsamples'] === undefined) config['calibration_nsamples'] = ctx.config.calibration.nsamples;
      return { ...s, config, ...(s['calibration'] === undefined ? { calibration: calibrationDir } : {}) };
    }),
  };
}

/** A copy of the UNet as an iOS18 (spec 9, opset CoreML8) program: the same ops and weights. */
async function retargetUnet(src: string, dest: string): Promise<void> {
  const model = await loadModel(src);
  const spec = decodeModel(encodeModel(model.spec));
  spec.specificationVersion = 9;
  for (const fn of Object.values(spec.mlProgram?.functions ?? {})) {
    const old = fn.opset ?? '';
    const block = fn.blockSpecializations?.[old];
    if (block) {
      fn.blockSpecializations = { CoreML8: block };
      fn.opset = 'CoreML8';
    }
  }
  await model.derive(spec).save(dest);
}

function targetOf(model: Model): { specVersion: number; opset?: string } {
  const fn = Object.values(model.program?.functions ?? {})[0] as { opset?: string } | undefined;
  return { specVersion: model.specificationVersion, ...(fn?.opset ? { opset: fn.opset } : {}) };
}

const RSS_HOOK = `data:text/javascript,${encodeURIComponent(
  "import fs from 'node:fs'; process.on('exit', () => { const f = process.env.COREML_OPTIMIZE_STUDY_RSS_FILE; if (f) fs.writeFileSync(f, String(process.resourceUsage().maxRSS * 1024)); });",
)}`;

function defaultCliPath(): string {
  return fileURLToPath(new URL('../../bin/coreml-optimize.js', import.meta.url));
}

/** Compresses `src` into `dest` with the plan; returns wall seconds and peak memory. */
async function compressUnet(ctx: Context, v: StudyVariant, src: string, dest: string, planFile: string, plan: { steps: Record<string, unknown>[] }, report: (p: Partial<StudyProgress>) => void): Promise<{ seconds: number; memory: MemoryResult }> {
  const t0 = performance.now();
  if (ctx.isolation === 'inline') {
    const model = await loadModel(src);
    // No `threads` here: compressModel sets the process-wide pool size, which concurrent variants would race on
    // (the compressed bytes do not depend on it).
    const result = await compressModel(model, compressPlanFromData(plan), {
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      onStep: (i, n, api) => report({ step: 'compress-step', done: i, total: n, message: api }),
      onProgress: (d, t) => report({ step: 'compress', done: d, total: t }),
    });
    await result.save(dest, { newIdentifiers: true, ...(ctx.signal ? { signal: ctx.signal } : {}) });
    result.dispose();
    return { seconds: (performance.now() - t0) / 1000, memory: { peakRssBytes: process.resourceUsage().maxRSS * 1024, method: 'inline' } };
  }
  const rssFile = path.join(path.dirname(planFile), 'compress-rss.txt');
  fs.rmSync(rssFile, { force: true });
  const args = ['--import', RSS_HOOK, ctx.cliPath, 'compress', src, dest, '--config', planFile, '--json', ...(ctx.threads > 0 ? ['--threads', String(ctx.threads)] : [])];
  report({ step: 'compress-step', done: 0, total: plan.steps.length, message: `${plan.steps.map((s) => s['api']).join(' + ')} (child process)` });
  const stderr: string[] = [];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      env: { ...process.env, COREML_OPTIMIZE_STUDY_RSS_FILE: rssFile },
      stdio: ['ignore', 'ignore', 'pipe'],
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr.push(b.toString());
      if (stderr.length > 50) stderr.shift();
    });
    child.on('error', (e) => reject((e as { name?: string }).name === 'AbortError' ? new AbortError() : e));
    child.on('close', (c) => resolve(c));
  });
  throwIfAborted(ctx.signal);
  if (code !== 0) {
    const last = stderr.join('').trim().split('\n').pop() ?? '';
    throw new CoreMLOptimizeError('ESTUDY', `variant ${v.name}: compress exited with ${code}: ${last}`, { file: planFile });
  }
  const rss = Number(fs.readFileSync(rssFile, 'utf8'));
  fs.rmSync(rssFile, { force: true });
  report({ step: 'compress-step', done: plan.steps.length, total: plan.steps.length });
  return { seconds: (performance.now() - t0) / 1000, memory: { peakRssBytes: rss, method: 'process' } };
}

async function runVariant(ctx: Context, v: StudyVariant, index: number, baseline: BaselineRecord, calibration: { dir: string } | undefined, sources: { plain: string; ios18?: string }): Promise<VariantResult> {
  const count = ctx.config.variants.length;
  const report = (p: Partial<StudyProgress>) => ctx.progress({ phase: 'variant', variant: v.name, index, count, step: 'compress', ...p });
  const dir = path.join(ctx.outDir, 'variants', v.name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const plan = resolvedPlan(ctx, v, calibration?.dir);
  const planFile = path.join(dir, 'plan.json');
  await writeJson(planFile, plan);
  // The UNet this plan can be applied to: iOS18 steps (joint, per_grouped_channel) get the retargeted copy.
  const src = sources.ios18 && !planFitsPlain(plan, sources.plain) ? sources.ios18 : sources.plain;
  const pipelineDir = path.join(dir, 'pipeline');
  const dest = mirrorFolder(ctx.pipelineDir, pipelineDir, ctx.unetPath);
  const { seconds, memory } = await compressUnet(ctx, v, src, dest, planFile, plan, report);
  const size = unetSize(dest);
  const pipeline = await variantPipeline(ctx, pipelineDir, dest);
  const drawn = await drawImages(ctx, pipeline, path.join(dir, 'images'), (d, t) => report({ step: 'generate', done: d, total: t }));
  const images: ImageResult[] = [];
  for (const [k, im] of drawn.images.entries()) {
    const base = baseline.result.images[k]!;
    const ref = decodePng(fs.readFileSync(path.join(ctx.outDir, base.path)));
    images.push({
      prompt: im.prompt, seed: im.seed, path: rel(ctx, im.file), width: im.width, height: im.height,
      psnr: dbOrNull(psnr8bit(ref.pixels, im.pixels)), ssim: ssimRgb(ref.pixels, im.pixels, im.width, im.height),
    });
  }
  const unet = await unetAgainstReference(ctx, pipeline.components.unet, baseline.unetSamples, baseline.unetReference, baseline.unetOutputs, (d, t) => report({ step: 'unet', done: d, total: t }));
  if (!ctx.keepModels) fs.rmSync(pipelineDir, { recursive: true, force: true });
  const result: VariantResult = {
    name: v.name, label: v.label, plan, size, compressionSeconds: seconds, memory, images,
    imagePsnr: meanDb(images), imageSsim: mean(images.map((i) => i.ssim)), unet,
    unetPath: ctx.keepModels ? rel(ctx, dest) : null, generateSeconds: drawn.seconds,
  };
  await writeJson(path.join(dir, 'result.json'), result);
  report({ step: 'done' });
  return result;
}

let plainUnetTarget: { file: string; target: { specVersion: number; opset?: string } } | undefined;

function planFitsPlain(plan: { steps: Record<string, unknown>[] }, unet: string): boolean {
  if (plainUnetTarget?.file !== unet) plainUnetTarget = { file: unet, target: targetOf(loadModelSyncCached(unet)) };
  try {
    const p = compressPlanFromData({ steps: plan.steps.map((s) => (isLayerwiseStep(s) ? { ...s, calibration: s['calibration'] ?? '.' } : s)) });
    checkPlanTarget(p, plainUnetTarget.target);
    // Joint compression is checked by compressModel against the model, not per step config.
    if (p.steps.some((s) => s.joint_compression) && plainUnetTarget.target.specVersion < 9) return false;
    return true;
  } catch (e) {
    if (e instanceof UnsupportedError) return false;
    throw e;
  }
}

const modelCache = new Map<string, Model>();
function loadModelSyncCached(file: string): Model {
  let m = modelCache.get(file);
  if (!m) {
    m = loadModelSync(file);
    modelCache.set(file, m);
  }
  return m;
}

/** The study's input settings; a resumed study must have the same. */
function inputsKey(c: StudyConfig): string {
  const { variants: _v, keepModels: _k, preset: _p, threads: _t, ...inputs } = c;
  return JSON.stringify(inputs);
}

export async function runStudy(config: StudyConfig, options: RunStudyOptions): Promise<StudyResult> {
  const outDir = path.resolve(options.outDir);
  const signal = options.signal;
  throwIfAborted(signal);
  const parallel = options.parallel ?? 1;
  if (!Number.isInteger(parallel) || parallel < 1) throw new ConfigError(`parallel must be a positive integer, got ${parallel}`);
  const folder = resolvePipelineFolder(config.pipeline);
  if (!folder.models.unet.endsWith('.mlpackage')) {
    throw new UnsupportedError(`the study compresses the UNet as an .mlpackage; ${path.basename(folder.models.unet)} is compiled (point the study at the .mlpackage folder)`, { file: folder.models.unet });
  }
  const isolation = options.isolation ?? 'process';
  const cliPath = options.cliPath ?? defaultCliPath();
  if (isolation === 'process' && !fs.existsSync(path.join(path.dirname(cliPath), '..', 'dist', 'cli', 'main.js')) && !options.cliPath) {
    throw new ConfigError(`process isolation runs the built CLI, but ${path.join(path.dirname(cliPath), '..', 'dist', 'cli', 'main.js')} is missing: run \`npm run build:ts\`, or use isolation: 'inline' (--inline)`);
  }

  // The study folder: a fresh one, or (resume) one whose inputs match.
  const studyFile = path.join(outDir, 'study.json');
  const previous = readJson<{ format: string; config: StudyConfig }>(studyFile);
  if (previous && !options.resume) throw new ConfigError('the output folder already holds a study: pass --resume (resume: true) to continue it, or choose another folder', { file: outDir });
  if (previous && options.resume && inputsKey(previous.config) !== inputsKey(config)) {
    const a = previous.config as unknown as Record<string, unknown>, b = config as unknown as Record<string, unknown>;
    const keys = Object.keys(b).filter((k) => !['variants', 'keepModels', 'preset', 'threads'].includes(k) && JSON.stringify(a[k]) !== JSON.stringify(b[k]));
    throw new ConfigError(`--resume: the study in this folder was run with other settings (${keys.join(', ')}); use another output folder`, { file: studyFile });
  }
  fs.mkdirSync(outDir, { recursive: true });
  await writeJson(studyFile, { format: STUDY_FORMAT, version: 1, config: studyConfigToData(config) });

  // Executor threads as configured, whatever --parallel is: the kernels split work by this count, so the
  // same threads give the same bytes, and a resumed or parallel study the same figures as a sequential one.
  const threads = config.threads;
  const ctx: Context = {
    config, outDir, isolation, cliPath, keepModels: options.keepModels ?? config.keepModels, threads, signal,
    progress: (p) => options.onProgress?.(p), unetPath: folder.models.unet, pipelineDir: folder.dir, parallel,
  };

  const baseline = await runBaseline(ctx);
  const calibration = needsCalibration(config) ? await runCalibration(ctx) : undefined;

  // An iOS18 copy of the UNet for plans that need it (joint compression, per_grouped_channel), made once.
  const sources: { plain: string; ios18?: string } = { plain: ctx.unetPath };
  const pending: { v: StudyVariant; index: number }[] = [];
  const skipped: string[] = [];
  config.variants.forEach((v, index) => {
    const done = readJson<VariantResult>(path.join(outDir, 'variants', v.name, 'result.json'));
    if (done && JSON.stringify(done.plan) === JSON.stringify(resolvedPlan(ctx, v, calibration?.dir))) {
      skipped.push(v.name);
      ctx.progress({ phase: 'variant', variant: v.name, index, count: config.variants.length, step: 'skipped', message: 'finished before' });
    } else {
      pending.push({ v, index });
    }
  });
  if (pending.some(({ v }) => !planFitsPlain(resolvedPlan(ctx, v, calibration?.dir ?? '.'), ctx.unetPath))) {
    const ios18 = path.join(outDir, 'baseline', 'Unet-ios18.mlpackage');
    if (!fs.existsSync(path.join(ios18, WEIGHT_FILE))) {
      ctx.progress({ phase: 'baseline', step: 'retarget', message: 'writing an iOS18 copy of the UNet for joint / per_grouped_channel variants' });
      await retargetUnet(ctx.unetPath, ios18);
    }
    sources.ios18 = ios18;
  }

  const ran: string[] = [];
  let next = 0;
  let failed: unknown;
  const worker = async (): Promise<void> => {
    while (next < pending.length && failed === undefined) {
      const { v, index } = pending[next++]!;
      try {
        await runVariant(ctx, v, index, baseline, calibration, sources);
        ran.push(v.name);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, Math.max(1, pending.length)) }, worker));
  if (failed !== undefined) throw failed;

  ctx.progress({ phase: 'report', step: 'write' });
  const results = config.variants.map((v) => readJson<VariantResult>(path.join(outDir, 'variants', v.name, 'result.json'))!);
  const report: StudyReport = {
    format: STUDY_FORMAT, version: 1, preset: config.preset ?? null, pipeline: config.pipeline, modelKind: baseline.modelKind,
    prompts: config.prompts, seeds: config.seeds, steps: config.steps, guidance: config.guidance, scheduler: baseline.scheduler, backend: baseline.backend,
    unetInputs: { dir: config.unetInputs.dir ?? path.join(outDir, 'baseline', 'unet-inputs'), samples: baseline.unetSamples.length },
    calibration: calibration ? { dir: calibration.dir, samples: calibration.samples } : null,
    ios18Unet: fs.existsSync(path.join(outDir, 'baseline', 'Unet-ios18.mlpackage')) ? 'baseline/Unet-ios18.mlpackage' : null,
    baseline: baseline.result, variants: results,
    ...(config.preset === 'coremltools-sdxl' ? { publishedGib: COREMLTOOLS_SDXL_PUBLISHED_GIB } : {}),
  };
  const files = await writeReports(outDir, report);
  return { outDir, report, files, ran, skipped };
}

/** report.json / .md / .html, grid.png and plot.svg from the recorded results. */
export async function writeReports(outDir: string, report: StudyReport): Promise<StudyResult['files']> {
  const rows = [report.baseline, ...report.variants];
  const firstImage = (v: VariantResult) => decodePng(fs.readFileSync(path.join(outDir, v.images[0]!.path)));
  const cells = rows.map((v) => {
    const psnr = v === report.baseline ? 'reference' : v.imagePsnr === null ? 'PSNR inf' : `PSNR ${v.imagePsnr.toFixed(1)} dB`;
    return { image: firstImage(v), lines: [v === report.baseline ? 'baseline (uncompressed)' : v.label, `${formatSize(v.size.weightFileBytes)}`, psnr] };
  });
  const grid = renderGrid(cells);
  const thumbnails: Record<string, Uint8Array> = {};
  rows.forEach((v, i) => { thumbnails[v.name] = encodePng(fitImage(cells[i]!.image, 256)); });
  const plotSvg = renderPlotSvg(report);
  const files = {
    json: path.join(outDir, 'report.json'), markdown: path.join(outDir, 'report.md'), html: path.join(outDir, 'report.html'),
    grid: path.join(outDir, 'grid.png'), plot: path.join(outDir, 'plot.svg'),
  };
  await writeFileAtomically(files.json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFileAtomically(files.markdown, renderMarkdown(report));
  await writeFileAtomically(files.html, renderHtml(report, { thumbnails, plotSvg }));
  await writeFileAtomically(files.grid, encodeGridPng(grid));
  await writeFileAtomically(files.plot, plotSvg);
  return files;
}
