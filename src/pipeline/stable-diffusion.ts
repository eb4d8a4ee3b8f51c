/**
 * Stable Diffusion 1.x / SDXL text-to-image, step for step as diffusers' StableDiffusion(XL)Pipeline
 * and apple/ml-stable-diffusion's Python pipeline:
 *   tokens → text encoder(s) → conditioning (conditioning.ts)
 *   numpy-seeded initial latents × init_noise_sigma (ml-stable-diffusion's recipe)
 *   per timestep: scale_model_input → UNet ([uncond, cond] batch, or two batch-1 calls) → guidance → scheduler.step
 *   VAE decode of latents / scaling_factor → clamp(x/2 + 0.5) → 8-bit PNG with the settings in text chunks.
 * The models run behind ModelBackend (CPU executor or Core ML).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, ModelFormatError, UnsupportedError, throwIfAborted } from '../errors.js';
import type { ProgressCallback } from '../native.js';
import { formatNpy } from '../runtime/npy.js';
import { writeFileAtomically } from '../util/atomic-write.js';
import { loadBackend, type BackendKind, type BackendTensor, type ComputeUnit, type ModelBackend } from './backends/index.js';
import { applyGuidance, concatChannels, sdxlTimeIds, stackRows, toUnetLayout, zerosLike, type Conditioning, type Embeddings } from './conditioning.js';
import { SD15_SCHEDULER, SD15_VAE_SCALING_FACTOR, SDXL_BASE_SCHEDULER, SDXL_VAE_SCALING_FACTOR } from './default-configs.js';
import { decodedToFloatImage, floatImageTo8bit } from './image.js';
import { resolvePipelineFolder, type ModelKind, type PipelineFolder } from './pipeline-folder.js';
import { encodePng } from './png.js';
import { NumpyRandomState, randnFloat16 } from './rng.js';
import { createScheduler, schedulerClassNameOf, type Scheduler } from './schedulers/index.js';
import { CLIPTokenizer } from './tokenizer.js';

/** Anything that turns a prompt into token ids (CLIPTokenizer). */
export interface PromptTokenizer {
  encode(text: string): number[];
}

/** What generation needs to know about a pipeline (pipeline.json, or inferred from the models). */
export interface StableDiffusionConfig {
  modelKind: ModelKind;
  /** For PNG metadata and file names. */
  modelName: string;
  scheduler: { className: string; config: Record<string, unknown> };
  vaeScalingFactor: number;
  forceZerosForEmptyPrompt: boolean;
  latentChannels: number;
  latentHeight: number;
  latentWidth: number;
  /** Image pixels per latent pixel (8). */
  vaeScaleFactor: number;
  /** 2 = one UNet call per step for both guidance branches; 1 = two calls. */
  unetBatchSize: number;
  /** Output names of the text encoders: per-token hidden states and pooled embedding. */
  textEncoderOutputs: { hidden: string; pooled: string }[];
}

export interface StableDiffusionComponents {
  textEncoder: ModelBackend;
  textEncoder2?: ModelBackend;
  unet: ModelBackend;
  vaeDecoder: ModelBackend;
  /** One per text encoder. */
  tokenizers: PromptTokenizer[];
}

export interface LoadOptions {
  /** Default: coreml on macOS, executor elsewhere. */
  backend?: BackendKind;
  computeUnit?: ComputeUnit;
  /** Executor kernel threads (0 / undefined = the pool size). Same seed + threads → identical bytes. */
  threads?: number;
  /** Core ML: cache folder for compiled .mlpackages. */
  cacheDir?: string;
}

export interface GenerateOptions {
  prompt: string;
  /** SD 1.x: encoded ("" when absent). SDXL: absent + force_zeros_for_empty_prompt → zero embeddings. */
  negativePrompt?: string;
  /** numpy seed (0 ≤ seed < 2³²); default 93 as ml-stable-diffusion. */
  seed?: number;
  numInferenceSteps?: number;
  guidanceScale?: number;
  /** Short name (pndm, ddim, euler, euler_ancestral, dpmpp, lms) or diffusers class name; default the pipeline's own. */
  scheduler?: string;
  height?: number;
  width?: number;
  /** Write `<name>.png` here (and the latents with saveLatents). Without it only buffers are returned. */
  outputDir?: string;
  /** Also write the final latents (the scheduler's output, before / scaling_factor) as `<name>.latents.npy`. */
  saveLatents?: boolean;
  /** Write every UNet call's inputs as `<dir>/<call, 4 digits>/<input name>.npy` (SparseGPT calibration data). */
  recordUnetInputs?: string;
  /** Called after each denoising step with (steps done, steps total). */
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

export interface GeneratedImage {
  width: number;
  height: number;
  /** 8-bit RGB, HWC. */
  pixels: Uint8Array;
  /** float32 HWC in [0, 1] (diffusers' output_type="np"). */
  float: Float32Array;
  png: Buffer;
  /** Set when outputDir was given. */
  path?: string;
  latentsPath?: string;
}

export interface GenerateTimings {
  textEncoderSeconds: number;
  unetSeconds: number;
  /** Wall time of each denoising step (UNet + scheduler). */
  stepSeconds: number[];
  vaeSeconds: number;
  totalSeconds: number;
}

export interface GenerateResult {
  images: GeneratedImage[];
  /** Final latents [1, C, h, w] (before division by the VAE scaling factor). */
  latents: Float32Array;
  latentShape: number[];
  seed: number;
  scheduler: string;
  timesteps: number[];
  /** Prompt embeddings as diffusers has them ([77, C]), uncond and cond. */
  promptEmbeds: Float32Array;
  negativePromptEmbeds: Float32Array;
  /** Folders written by recordUnetInputs. */
  unetSampleDirs: string[];
  timings: GenerateTimings;
}

/** Per-branch UNet inputs (without the batch axis) that stay the same for every step. */
type UnetRow = Record<string, { data: Float32Array; shape: number[] }>;

/** The diffusers class name of a short or class scheduler name (unknown names pass through for createScheduler to reject). */
export function schedulerClassName(name: string): string {
  return schedulerClassNameOf(name) ?? name;
}

/**
 * A file name from the prompt as ml-stable-diffusion's Swift CLI makes it (`<prompt>.<seed>.final.png`,
 * spaces → "_", first 200 characters), with path-hostile characters replaced too.
 */
export function imageBaseName(prompt: string, seed: number): string {
  let slug = [...prompt.trim()].slice(0, 200).join('').replace(/[\s/\\:*?"<>|\u0000-\u001f]/g, '_');
  if (slug === '' || slug === '.' || slug === '..') slug = 'image';
  if (slug.startsWith('.')) slug = `_${slug.slice(1)}`;
  return `${slug}.${seed}.final`;
}

const now = () => performance.now();
const seconds = (t0: number) => (now() - t0) / 1000;

function findInput(backend: ModelBackend, name: string) {
  return backend.inputs.find((i) => i.name === name);
}

function requireInput(backend: ModelBackend, name: string, what: string) {
  const spec = findInput(backend, name);
  if (!spec) {
    throw new ModelFormatError(`the ${what} has no input '${name}' (its inputs: ${backend.inputs.map((i) => i.name).join(', ')})`, { file: backend.path });
  }
  return spec;
}

function requireOutput(backend: ModelBackend, outputs: Record<string, BackendTensor>, name: string, what: string): BackendTensor {
  const t = outputs[name];
  if (!t) throw new ModelFormatError(`the ${what} did not produce '${name}' (outputs: ${Object.keys(outputs).join(', ')})`, { file: backend.path });
  if (!(t.data instanceof Float32Array)) return { data: Float32Array.from(t.data), shape: t.shape };
  return t;
}

/** Picks the hidden-state output of a text encoder: pipeline.json's name, else by model kind. */
function hiddenOutputName(backend: ModelBackend, kind: ModelKind): string {
  const names = backend.outputs.map((o) => o.name);
  const preferred = kind === 'sdxl' ? ['hidden_embeds', 'last_hidden_state'] : ['last_hidden_state', 'hidden_embeds'];
  const found = preferred.find((n) => names.includes(n));
  if (!found) throw new ModelFormatError(`the text encoder has none of the outputs ${preferred.join(', ')} (it has ${names.join(', ')})`, { file: backend.path });
  return found;
}

/** Fills in what pipeline.json would say from the models (ml-stable-diffusion folders). */
export function inferConfig(folder: Pick<PipelineFolder, 'modelKind' | 'modelName' | 'scheduler' | 'vaeScalingFactor' | 'forceZerosForEmptyPrompt' | 'latentHeight' | 'latentWidth' | 'vaeScaleFactor' | 'unetBatchSize' | 'textEncoderOutputs'>, components: Omit<StableDiffusionComponents, 'tokenizers'>): StableDiffusionConfig {
  const { unet, textEncoder, textEncoder2, vaeDecoder } = components;
  const sample = requireInput(unet, 'sample', 'UNet');
  const hasTimeIds = findInput(unet, 'time_ids') !== undefined;
  const kind: ModelKind = folder.modelKind ?? (textEncoder2 || hasTimeIds ? 'sdxl' : 'sd');
  if (kind === 'sdxl' && !textEncoder2) throw new UnsupportedError('an SDXL UNet (time_ids input) needs TextEncoder2 next to it; refiner-only folders are not supported', { file: unet.path });
  if (kind === 'sdxl' && !hasTimeIds) throw new ModelFormatError("an SDXL pipeline's UNet must take 'time_ids' and 'text_embeds'", { file: unet.path });
  const timeIds = findInput(unet, 'time_ids')?.shape;
  if (timeIds && timeIds.length > 0 && (timeIds[timeIds.length - 1] === 5 || timeIds[timeIds.length - 1] === 10)) {
    throw new UnsupportedError('this is an SDXL refiner UNet (aesthetic-score time_ids); only base models are supported', { file: unet.path });
  }
  requireInput(unet, 'timestep', 'UNet');
  requireInput(unet, 'encoder_hidden_states', 'UNet');
  requireInput(vaeDecoder, 'z', 'VAE decoder');
  const shape = sample.shape;
  if (!shape || shape.length !== 4) throw new ModelFormatError(`the UNet's 'sample' must be rank 4 [B, C, h, w], got ${shape ? `[${shape.join(', ')}]` : 'an unknown shape'}`, { file: unet.path });
  const dim = (d: number | undefined, fallback: number | undefined, what: string): number => {
    if (d !== undefined && d > 0) return d;
    if (fallback !== undefined) return fallback;
    throw new ModelFormatError(`the UNet's 'sample' has a flexible ${what}; pipeline.json must give it`, { file: unet.path });
  };
  const batch = shape[0]! > 0 ? shape[0]! : folder.unetBatchSize ?? 2;
  if (batch !== 1 && batch !== 2) throw new UnsupportedError(`UNet batch ${batch}: only 1 (two calls per step) or 2 ([uncond, cond]) are supported`, { file: unet.path });
  const encoders = [textEncoder, ...(textEncoder2 ? [textEncoder2] : [])];
  const textEncoderOutputs = encoders.map((e) => {
    const names = e.outputs.map((o) => o.name);
    const hidden = folder.textEncoderOutputs?.hidden && names.includes(folder.textEncoderOutputs.hidden) ? folder.textEncoderOutputs.hidden : hiddenOutputName(e, kind);
    const pooled = folder.textEncoderOutputs?.pooled ?? 'pooled_outputs';
    return { hidden, pooled };
  });
  return {
    modelKind: kind,
    modelName: folder.modelName,
    scheduler: folder.scheduler ?? (kind === 'sdxl' ? structuredClone(SDXL_BASE_SCHEDULER) : structuredClone(SD15_SCHEDULER)) as StableDiffusionConfig['scheduler'],
    vaeScalingFactor: folder.vaeScalingFactor ?? (kind === 'sdxl' ? SDXL_VAE_SCALING_FACTOR : SD15_VAE_SCALING_FACTOR),
    forceZerosForEmptyPrompt: folder.forceZerosForEmptyPrompt ?? kind === 'sdxl',
    latentChannels: dim(shape[1], 4, 'channel count'),
    latentHeight: dim(shape[2], folder.latentHeight, 'height'),
    latentWidth: dim(shape[3], folder.latentWidth, 'width'),
    vaeScaleFactor: folder.vaeScaleFactor ?? 8,
    unetBatchSize: batch,
    textEncoderOutputs,
  };
}

export class StableDiffusionPipeline {
  /** Seconds spent loading the models (0 for fromComponents). */
  loadSeconds = 0;

  private constructor(
    readonly config: StableDiffusionConfig,
    readonly components: StableDiffusionComponents,
  ) {}

  /**
   * Loads a models folder: `coreml-optimize convert` output (pipeline.json) or an apple/ml-stable-diffusion
   * output folder (`Stable_Diffusion_version_<model>_<component>.mlpackage`, or `Resources/*.mlmodelc` on
   * Core ML) with vocab.json / merges.txt.
   */
  static async load(dir: string, options: LoadOptions = {}): Promise<StableDiffusionPipeline> {
    const t0 = now();
    const folder = resolvePipelineFolder(dir);
    if (folder.tokenizers.length === 0) {
      throw new ConfigError('no vocab.json / merges.txt in the folder, its Resources/ or tokenizer/: copy the CLIP tokenizer files (the diffusers model\'s tokenizer/ folder) next to the models', { file: folder.dir });
    }
    const backendOptions = {
      ...(options.backend ? { backend: options.backend } : {}),
      ...(options.computeUnit ? { computeUnit: options.computeUnit } : {}),
      ...(options.threads !== undefined ? { threads: options.threads } : {}),
      ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
    };
    const [textEncoder, textEncoder2, unet, vaeDecoder] = await Promise.all([
      loadBackend(folder.models.textEncoder, backendOptions),
      folder.models.textEncoder2 ? loadBackend(folder.models.textEncoder2, backendOptions) : Promise.resolve(undefined),
      loadBackend(folder.models.unet, backendOptions),
      loadBackend(folder.models.vaeDecoder, backendOptions),
    ]);
    const models = { textEncoder, unet, vaeDecoder, ...(textEncoder2 ? { textEncoder2 } : {}) };
    const config = inferConfig(folder, models);
    const nEncoders = textEncoder2 ? 2 : 1;
    const tokenizers = folder.tokenizers.slice(0, nEncoders).map((t) => CLIPTokenizer.fromDir(t.dir, { padToken: t.padToken }));
    if (tokenizers.length < nEncoders) throw new ConfigError(`pipeline.json lists ${tokenizers.length} tokenizer(s) for ${nEncoders} text encoders`, { file: folder.dir });
    const pipeline = new StableDiffusionPipeline(config, { ...models, tokenizers });
    pipeline.loadSeconds = seconds(t0);
    return pipeline;
  }

  /** A pipeline over given backends (tests, custom loading). Missing config fields are inferred as in load(). */
  static fromComponents(components: StableDiffusionComponents, config: Partial<StableDiffusionConfig> & { modelName?: string } = {}): StableDiffusionPipeline {
    const inferred = inferConfig({ modelName: config.modelName ?? 'custom', ...(config.modelKind ? { modelKind: config.modelKind } : {}) }, components);
    const merged: StableDiffusionConfig = { ...inferred, ...config } as StableDiffusionConfig;
    if (components.tokenizers.length < (components.textEncoder2 ? 2 : 1)) throw new ConfigError('one tokenizer per text encoder is needed');
    return new StableDiffusionPipeline(merged, components);
  }

  /** Runs one text encoder on a prompt: hidden states [77, C] and (when present) the pooled output. */
  private async encodeText(index: number, text: string, signal: AbortSignal | undefined): Promise<Embeddings> {
    const encoder = index === 0 ? this.components.textEncoder : this.components.textEncoder2!;
    const ids = this.components.tokenizers[index]!.encode(text);
    requireInput(encoder, 'input_ids', 'text encoder');
    const out = await encoder.predict({ input_ids: { data: Float32Array.from(ids), shape: [1, ids.length] } }, signal ? { signal } : {});
    const names = this.config.textEncoderOutputs[index]!;
    const hidden = requireOutput(encoder, out, names.hidden, 'text encoder');
    const channels = hidden.shape[hidden.shape.length - 1]!;
    const seqLen = hidden.data.length / channels;
    const pooled = out[names.pooled];
    return {
      hidden: hidden.data as Float32Array,
      seqLen,
      channels,
      ...(pooled ? { pooled: pooled.data instanceof Float32Array ? pooled.data : Float32Array.from(pooled.data) } : {}),
    };
  }

  /** Prompt (and negative) embeddings as diffusers' encode_prompt builds them. */
  async encodePrompt(prompt: string, negativePrompt: string | undefined, guidance: boolean, signal?: AbortSignal): Promise<Conditioning> {
    if (this.config.modelKind === 'sd') {
      const cond = await this.encodeText(0, prompt, signal);
      const uncond = guidance ? await this.encodeText(0, negativePrompt ?? '', signal) : zerosLike(cond);
      return { cond, uncond };
    }
    // SDXL: penultimate hidden states of both encoders side by side; pooled from encoder 2 only.
    const encodeBoth = async (text: string): Promise<Embeddings> => {
      const a = await this.encodeText(0, text, signal);
      const b = await this.encodeText(1, text, signal);
      if (!b.pooled) throw new ModelFormatError(`text encoder 2 has no '${this.config.textEncoderOutputs[1]!.pooled}' output (SDXL's text_embeds)`, { file: this.components.textEncoder2!.path });
      return { ...concatChannels([a, b]), pooled: b.pooled };
    };
    const cond = await encodeBoth(prompt);
    const zeroNegative = negativePrompt === undefined && this.config.forceZerosForEmptyPrompt;
    const uncond = !guidance || zeroNegative ? zerosLike(cond) : await encodeBoth(negativePrompt ?? '');
    return { cond, uncond };
  }

  async generate(options: GenerateOptions): Promise<GenerateResult> {
    const tStart = now();
    const cfg = this.config;
    const { unet, vaeDecoder } = this.components;
    const signal = options.signal;
    const seed = options.seed ?? 93;
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new ConfigError(`seed must be an integer in [0, 2^32), got ${seed}`);
    const steps = options.numInferenceSteps ?? 50;
    if (!Number.isInteger(steps) || steps < 1 || steps > 1000) throw new ConfigError(`numInferenceSteps must be an integer in [1, 1000], got ${steps}`);
    const guidanceScale = options.guidanceScale ?? 7.5;
    if (!Number.isFinite(guidanceScale)) throw new ConfigError(`guidanceScale must be a finite number, got ${guidanceScale}`);
    const height = options.height ?? cfg.latentHeight * cfg.vaeScaleFactor;
    const width = options.width ?? cfg.latentWidth * cfg.vaeScaleFactor;
    if (height !== cfg.latentHeight * cfg.vaeScaleFactor || width !== cfg.latentWidth * cfg.vaeScaleFactor) {
      throw new ConfigError(
        `${height}x${width} is not this UNet's size: it was converted for ${cfg.latentHeight}x${cfg.latentWidth} latents = ${cfg.latentHeight * cfg.vaeScaleFactor}x${cfg.latentWidth * cfg.vaeScaleFactor} pixels (convert again with --latent-size for another size)`,
        { file: unet.path },
      );
    }
    const doCfg = guidanceScale > 1;
    const schedulerName = options.scheduler ? schedulerClassName(options.scheduler) : cfg.scheduler.className;
    const scheduler: Scheduler = createScheduler(schedulerName, cfg.scheduler.config);
    scheduler.setTimesteps(steps);
    throwIfAborted(signal);

    // Text conditioning.
    const tText = now();
    const cond = await this.encodePrompt(options.prompt, options.negativePrompt, doCfg, signal);
    const textEncoderSeconds = seconds(tText);
    if (cfg.modelKind === 'sdxl') cond.timeIds = sdxlTimeIds(height, width);

    // Initial latents: np.random.seed(seed); randn(...).astype(float16) (ml-stable-diffusion's noise), then
    // × init_noise_sigma in float32 as diffusers' prepare_latents (and ml-stable-diffusion under NumPy 2,
    // where Euler's float32 sigma promotes the product) — see rng.ts initialLatents for the half product.
    const latentShape = [1, cfg.latentChannels, cfg.latentHeight, cfg.latentWidth];
    const n = latentShape.reduce((a, b) => a * b, 1);
    let latents = randnFloat16(seed, latentShape);
    const sigma0 = Math.fround(scheduler.initNoiseSigma);
    if (sigma0 !== 1) for (let k = 0; k < n; k++) latents[k] = latents[k]! * sigma0;
    // Ancestral schedulers draw their noise from numpy's stream, continuing after the initial latents.
    const rng = new NumpyRandomState(seed);
    rng.randn(n);

    const rows = this.unetRows(cond);
    const recorder = options.recordUnetInputs ? new UnetInputRecorder(options.recordUnetInputs) : undefined;
    const stepSeconds: number[] = [];
    let unetSeconds = 0;
    const timesteps = [...scheduler.timesteps];
    try {
      for (let i = 0; i < timesteps.length; i++) {
        throwIfAborted(signal);
        const tStep = now();
        const t = timesteps[i]!;
        const scaled = scheduler.scaleModelInput(latents, t);
        const tUnet = now();
        const noise = await this.predictNoise(scaled, t, rows, doCfg, recorder, signal);
        unetSeconds += seconds(tUnet);
        const guided = doCfg ? applyGuidance(noise.uncond!, noise.cond, guidanceScale) : noise.cond;
        latents = scheduler.step(guided, t, latents, { rng });
        stepSeconds.push(seconds(tStep));
        options.onProgress?.(i + 1, timesteps.length);
      }
      throwIfAborted(signal);
    } finally {
      recorder?.finish({ prompt: options.prompt, negativePrompt: options.negativePrompt ?? null, seed, steps, guidanceScale, scheduler: schedulerName, timesteps });
    }

    // VAE decode of latents / scaling_factor (float32 division, as torch).
    const tVae = now();
    const sf = Math.fround(cfg.vaeScalingFactor);
    const z = new Float32Array(n);
    for (let k = 0; k < n; k++) z[k] = latents[k]! / sf;
    const decoded = await vaeDecoder.predict({ z: { data: z, shape: latentShape } }, signal ? { signal } : {});
    const image = requireOutput(vaeDecoder, decoded, 'image', 'VAE decoder');
    const [, ch, ih, iw] = image.shape;
    if (image.shape.length !== 4 || ch !== 3) throw new ModelFormatError(`the VAE decoder's image must be [1, 3, H, W], got [${image.shape.join(', ')}]`, { file: vaeDecoder.path });
    const floatImage = decodedToFloatImage(image.data as Float32Array, ih!, iw!);
    const pixels = floatImageTo8bit(floatImage);
    const vaeSeconds = seconds(tVae);
    throwIfAborted(signal);

    const text: Record<string, string> = {
      prompt: options.prompt,
      ...(options.negativePrompt !== undefined ? { negative_prompt: options.negativePrompt } : {}),
      seed: String(seed),
      steps: String(steps),
      guidance_scale: String(guidanceScale),
      scheduler: schedulerName,
      model: cfg.modelName,
      models: [this.components.textEncoder, this.components.textEncoder2, unet, vaeDecoder].filter((b) => b).map((b) => path.basename(b!.path)).join(', '),
      Software: 'coreml-optimize',
    };
    const png = encodePng({ width: iw!, height: ih!, pixels }, text);
    const out: GeneratedImage = { width: iw!, height: ih!, pixels, float: floatImage, png };
    if (options.outputDir) {
      const base = imageBaseName(options.prompt, seed);
      fs.mkdirSync(options.outputDir, { recursive: true });
      out.path = path.join(options.outputDir, `${base}.png`);
      await writeFileAtomically(out.path, png);
      if (options.saveLatents) {
        out.latentsPath = path.join(options.outputDir, `${base}.latents.npy`);
        await writeFileAtomically(out.latentsPath, formatNpy({ dtype: 'float32', shape: latentShape, data: latents }));
      }
    } else if (options.saveLatents) {
      throw new ConfigError('saveLatents needs outputDir');
    }
    return {
      images: [out],
      latents,
      latentShape,
      seed,
      scheduler: schedulerName,
      timesteps,
      promptEmbeds: cond.cond.hidden,
      negativePromptEmbeds: cond.uncond.hidden,
      unetSampleDirs: recorder?.dirs ?? [],
      timings: { textEncoderSeconds, unetSeconds, stepSeconds, vaeSeconds, totalSeconds: seconds(tStart) },
    };
  }

  /** Per-branch UNet inputs that do not change between steps. */
  private unetRows(cond: Conditioning): { uncond: UnetRow; cond: UnetRow } {
    const row = (e: Embeddings): UnetRow => ({
      encoder_hidden_states: { data: toUnetLayout(e), shape: [e.channels, 1, e.seqLen] },
      ...(this.config.modelKind === 'sdxl'
        ? { text_embeds: { data: e.pooled!, shape: [e.pooled!.length] }, time_ids: { data: cond.timeIds!, shape: [cond.timeIds!.length] } }
        : {}),
    });
    return { uncond: row(cond.uncond), cond: row(cond.cond) };
  }

  /** UNet noise prediction for the guidance branches: one batch-2 call, or one batch-1 call per branch. */
  private async predictNoise(
    scaled: Float32Array,
    t: number,
    rows: { uncond: UnetRow; cond: UnetRow },
    doCfg: boolean,
    recorder: UnetInputRecorder | undefined,
    signal: AbortSignal | undefined,
  ): Promise<{ uncond?: Float32Array; cond: Float32Array }> {
    const { unet } = this.components;
    const batch = this.config.unetBatchSize;
    const call = async (branches: UnetRow[]): Promise<Float32Array> => {
      const B = branches.length;
      const inputs: Record<string, BackendTensor> = {
        sample: { data: stackRows(branches.map(() => scaled)), shape: [B, this.config.latentChannels, this.config.latentHeight, this.config.latentWidth] },
        timestep: { data: new Float32Array(B).fill(t), shape: [B] },
      };
      for (const name of Object.keys(branches[0]!)) {
        const data = stackRows(branches.map((b) => b[name]!.data));
        // Older SDXL conversions take time_ids flat ([12]) instead of [B, 6].
        const flat = name === 'time_ids' && findInput(unet, name)?.shape?.length === 1;
        inputs[name] = { data, shape: flat ? [data.length] : [B, ...branches[0]![name]!.shape] };
      }
      recorder?.record(inputs);
      const out = await unet.predict(inputs, signal ? { signal } : {});
      const noise = out['noise_pred'] ?? (Object.keys(out).length === 1 ? Object.values(out)[0] : undefined);
      if (!noise) throw new ModelFormatError(`the UNet did not produce 'noise_pred' (outputs: ${Object.keys(out).join(', ')})`, { file: unet.path });
      return noise.data instanceof Float32Array ? noise.data : Float32Array.from(noise.data);
    };
    const n = scaled.length;
    if (!doCfg) {
      // No guidance: only the prompt branch matters (a batch-2 UNet gets it twice).
      const out = await call(batch === 2 ? [rows.cond, rows.cond] : [rows.cond]);
      return { cond: out.subarray(batch === 2 ? n : 0, batch === 2 ? 2 * n : n) };
    }
    if (batch === 2) {
      const out = await call([rows.uncond, rows.cond]);
      return { uncond: out.subarray(0, n), cond: out.subarray(n, 2 * n) };
    }
    const uncond = await call([rows.uncond]);
    const condOut = await call([rows.cond]);
    return { uncond, cond: condOut };
  }
}

/** Writes each UNet call's inputs as a sample folder of .npy files (each folder renamed into place when complete). */
class UnetInputRecorder {
  readonly dirs: string[] = [];
  constructor(private readonly root: string) {
    fs.mkdirSync(root, { recursive: true });
  }

  record(inputs: Record<string, BackendTensor>): void {
    const dir = path.join(this.root, String(this.dirs.length).padStart(4, '0'));
    const tmp = `${dir}.partial`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp);
    for (const [name, t] of Object.entries(inputs)) {
      fs.writeFileSync(path.join(tmp, `${name}.npy`), formatNpy({ dtype: 'float32', shape: t.shape, data: t.data instanceof Float32Array ? t.data : Float32Array.from(t.data) }));
    }
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
    this.dirs.push(dir);
  }

  finish(info: Record<string, unknown>): void {
    fs.writeFileSync(path.join(this.root, 'index.json'), `${JSON.stringify({ ...info, samples: this.dirs.map((d) => path.basename(d)) }, null, 1)}\n`);
  }
}
