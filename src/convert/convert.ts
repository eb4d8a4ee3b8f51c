/**
 * `convertDiffusers(dir, options)`: a diffusers Stable Diffusion / SDXL pipeline folder → Core ML
 * packages with apple/ml-stable-diffusion's names and I/O (`TextEncoder.mlpackage`,
 * `TextEncoder2.mlpackage`, `Unet.mlpackage`, `VAEDecoder.mlpackage`), the tokenizer files and a
 * `pipeline.json` (see pipeline-json.ts). Weights stream from the memory-mapped safetensors one
 * tensor at a time into each package's weight.bin; every package is built at a temporary path and
 * renamed into place when complete. Progress counts weight elements; an AbortSignal cancels between
 * tensors.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AbortError, ConfigError, ModelFormatError, UnsupportedError } from '../errors.js';
import { ProgramBuilder } from '../mil/builder.js';
import { tempSiblingPath } from '../util/atomic-write.js';
import type { ProgressCallback } from '../native.js';
import { buildClipTextEncoder, TEXT_ENCODER_OUTPUTS, type TextEncoderKind } from './clip.js';
import {
  readClipTextConfig, readModelIndex, readPythonJsonFile, readSchedulerConfig, readUnetConfig, readVaeConfig, type ModelIndex,
} from './diffusers-config.js';
import type { AttentionImplementation, ConvertContext, Precision } from './layers.js';
import { PIPELINE_FORMAT, PIPELINE_VERSION, writePipelineJson, type PipelineJson, type PipelineModelName } from './pipeline-json.js';
import { WeightStore } from './safetensors.js';
import { convertUnet } from './unet.js';
import { buildVaeDecoder, vaeScaleFactor } from './vae.js';

export type DiffusersComponent = 'text_encoder' | 'text_encoder_2' | 'unet' | 'vae_decoder';
export const DIFFUSERS_COMPONENTS: readonly DiffusersComponent[] = ['text_encoder', 'text_encoder_2', 'unet', 'vae_decoder'];

export interface ConvertDiffusersOptions {
  outDir: string;
  /** Weight storage and compute precision (default fp16, as ml-stable-diffusion converts). */
  precision?: Precision;
  /** UNet attention form (default split_einsum, ml-stable-diffusion's default). */
  attention?: AttentionImplementation;
  /** Latent [height, width] (image = latent × 8); default the UNet's sample_size. */
  latentSize?: [number, number];
  /** Which components (default: every one the pipeline has). */
  components?: DiffusersComponent[];
  /** UNet batch: 2 = both classifier-free-guidance halves in one call (default), 1 = one each. */
  batchSize?: 1 | 2;
  /** diffusers weight variant (`fp16` reads `*.fp16.safetensors`). */
  variant?: string;
  /**
   * Core ML specification version of the packages (default 7: macOS 13 / iOS 16, ml-stable-diffusion's
   * minimum). 9 (iOS 18) is what joint compression (e.g. SparseGPT + palettize) needs.
   */
  specVersion?: 7 | 8 | 9;
  /** (weight elements converted, total) over all selected components. */
  onProgress?: ProgressCallback;
  /** Called when a component starts (for the CLI's label). */
  onComponent?: (component: DiffusersComponent, packageName: string) => void;
  signal?: AbortSignal;
}

export interface ConvertDiffusersResult {
  outDir: string;
  pipelineJson: string;
  modelKind: 'sd' | 'sdxl';
  /** Converted packages (absolute paths) by component. */
  packages: Partial<Record<DiffusersComponent, string>>;
  /** Seconds per component. */
  seconds: Partial<Record<DiffusersComponent, number>>;
  pipeline: PipelineJson;
}

/** Package file names (ml-stable-diffusion's compiled resource names) and pipeline.json keys. */
const PACKAGE: Record<DiffusersComponent, { file: string; key: PipelineModelName }> = {
  text_encoder: { file: 'TextEncoder.mlpackage', key: 'textEncoder' },
  text_encoder_2: { file: 'TextEncoder2.mlpackage', key: 'textEncoder2' },
  unet: { file: 'Unet.mlpackage', key: 'unet' },
  vae_decoder: { file: 'VAEDecoder.mlpackage', key: 'vaeDecoder' },
};
/** The folder (and model_index entry) each component's weights come from. */
const SOURCE: Record<DiffusersComponent, string> = { text_encoder: 'text_encoder', text_encoder_2: 'text_encoder_2', unet: 'unet', vae_decoder: 'vae' };

const SUPPORTED_PIPELINES: Record<string, 'sd' | 'sdxl'> = { StableDiffusionPipeline: 'sd', StableDiffusionXLPipeline: 'sdxl' };
/** Default: macOS 13 / iOS 16, ml-stable-diffusion's minimum deployment target (fp16 I/O allowed). */
const SPEC_VERSION = 7;

export async function convertDiffusers(dir: string, options: ConvertDiffusersOptions): Promise<ConvertDiffusersResult> {
  const source = path.resolve(dir);
  const outDir = path.resolve(options.outDir);
  const precision = options.precision ?? 'fp16';
  const attention = options.attention ?? 'split_einsum';
  const batchSize = options.batchSize ?? 2;
  const specVersion = options.specVersion ?? SPEC_VERSION;
  if (specVersion !== 7 && specVersion !== 8 && specVersion !== 9) throw new ConfigError(`specVersion must be 7, 8 or 9, got ${String(specVersion)}`);
  if (precision !== 'fp16' && precision !== 'fp32') throw new ConfigError(`precision must be fp16 or fp32, got ${String(precision)}`);
  if (attention !== 'original' && attention !== 'split_einsum') throw new ConfigError(`attention must be original or split_einsum, got ${String(attention)}`);
  if (batchSize !== 1 && batchSize !== 2) throw new ConfigError(`UNet batch size must be 1 or 2, got ${String(batchSize)}`);
  if (options.signal?.aborted) throw new AbortError();

  const index = readModelIndex(source);
  const modelKind = SUPPORTED_PIPELINES[index.className];
  if (!modelKind) throw new UnsupportedError(`_class_name: ${index.className} is not supported (supported: ${Object.keys(SUPPORTED_PIPELINES).join(', ')})`, { file: index.file });
  const present = DIFFUSERS_COMPONENTS.filter(c => index.components[SOURCE[c]] !== undefined);
  const selected = options.components ?? present;
  for (const c of selected) {
    if (!DIFFUSERS_COMPONENTS.includes(c)) throw new ConfigError(`unknown component '${c}' (components: ${DIFFUSERS_COMPONENTS.join(', ')})`);
    if (!present.includes(c)) throw new ConfigError(`the pipeline has no ${SOURCE[c]} component`, { file: index.file });
  }

  // Sizes: the UNet's sample_size unless given; the VAE's block count fixes the image scale.
  const unetConfigFile = path.join(source, 'unet', 'config.json');
  const unetRaw = fs.existsSync(unetConfigFile) ? readPythonJsonFile(unetConfigFile) : undefined;
  const [latentHeight, latentWidth] = options.latentSize ?? sampleSize(unetRaw, unetConfigFile);
  for (const v of [latentHeight, latentWidth]) if (!Number.isInteger(v) || v < 1) throw new ConfigError(`latent size must be positive integers, got ${latentHeight}×${latentWidth}`);
  const vaeConfig = readVaeConfig(path.join(source, 'vae'));

  // Weight-element totals up front, for one progress bar over everything.
  const stores = new Map<DiffusersComponent, WeightStore>();
  const totals = new Map<DiffusersComponent, number>();
  try {
    for (const c of selected) {
      const store = WeightStore.openDir(path.join(source, SOURCE[c]), options.variant ? { variant: options.variant } : {});
      stores.set(c, store);
      const names = store.names().filter(n => c !== 'vae_decoder' || !(n.startsWith('encoder.') || n.startsWith('quant_conv.')));
      totals.set(c, names.reduce((a, n) => a + store.shape(n).reduce((x, d) => x * d, 1), 0));
    }
  } catch (err) {
    for (const s of stores.values()) s.close();
    throw err;
  }
  const total = [...totals.values()].reduce((a, b) => a + b, 0);
  let done = 0;
  options.onProgress?.(0, total);

  await fs.promises.mkdir(outDir, { recursive: true });
  const packages: ConvertDiffusersResult['packages'] = {};
  const seconds: ConvertDiffusersResult['seconds'] = {};
  const componentPrecision: NonNullable<PipelineJson['componentPrecision']> = {};
  const teKind: TextEncoderKind = modelKind;
  try {
    for (const c of selected) {
      const store = stores.get(c)!;
      const started = performance.now();
      options.onComponent?.(c, PACKAGE[c].file);
      store.onRead = (_name, elements) => {
        if (options.signal?.aborted) throw new AbortError();
        done += elements;
        options.onProgress?.(done, total);
      };
      // diffusers upcasts the SDXL VAE to fp32 (force_upcast: it overflows in fp16); so does Apple.
      const p: Precision = c === 'vae_decoder' && modelKind === 'sdxl' && vaeConfig.forceUpcast ? 'fp32' : precision;
      if (p !== precision) componentPrecision[PACKAGE[c].key] = p;
      const dest = path.join(outDir, PACKAGE[c].file);
      await buildPackage(dest, store, p, attention, specVersion, async (ctx) => {
        switch (c) {
          case 'text_encoder':
          case 'text_encoder_2':
            buildClipTextEncoder(ctx, readClipTextConfig(path.join(source, SOURCE[c])), { kind: teKind });
            break;
          case 'vae_decoder':
            buildVaeDecoder(ctx, vaeConfig, { latentHeight, latentWidth });
            break;
          case 'unet':
            convertUnet(ctx, readUnetConfig(path.join(source, 'unet')), { latentHeight, latentWidth, batchSize });
            break;
        }
      }, `${source}/${SOURCE[c]}`);
      packages[c] = dest;
      seconds[c] = (performance.now() - started) / 1000;
      store.close();
      stores.delete(c);
    }
  } finally {
    for (const s of stores.values()) s.close();
  }

  const tokenizers = await copyTokenizers(source, outDir, index, modelKind);
  const scheduler = readSchedulerConfig(path.join(source, 'scheduler'));
  const models: PipelineJson['models'] = {};
  for (const c of DIFFUSERS_COMPONENTS) if (fs.existsSync(path.join(outDir, PACKAGE[c].file))) models[PACKAGE[c].key] = PACKAGE[c].file;
  const pipeline: PipelineJson = {
    format: PIPELINE_FORMAT,
    version: PIPELINE_VERSION,
    modelKind,
    source: dir,
    models,
    tokenizers,
    scheduler: { className: scheduler.className, config: scheduler.config },
    vaeScalingFactor: vaeConfig.scalingFactor,
    forceZerosForEmptyPrompt: index.forceZerosForEmptyPrompt,
    latentHeight,
    latentWidth,
    vaeScaleFactor: vaeScaleFactor(vaeConfig),
    unetBatchSize: batchSize,
    precision,
    attention,
    textEncoderOutputs: TEXT_ENCODER_OUTPUTS[teKind],
    ...(Object.keys(componentPrecision).length ? { componentPrecision } : {}),
  };
  const pipelineJson = await writePipelineJson(outDir, pipeline);
  return { outDir, pipelineJson, modelKind, packages, seconds, pipeline };
}

function sampleSize(unetRaw: Record<string, unknown> | undefined, file: string): [number, number] {
  const s = unetRaw?.['sample_size'];
  if (typeof s === 'number' && Number.isInteger(s) && s > 0) return [s, s];
  if (Array.isArray(s) && s.length === 2 && s.every(x => Number.isInteger(x) && x > 0)) return [s[0] as number, s[1] as number];
  throw new ConfigError(`sample_size: ${JSON.stringify(s)} does not give a latent size; pass latentSize / --latent-size`, { file });
}

/** Builds one package: weight.bin at a temp sibling, the package saved atomically (Model.save renames). */
async function buildPackage(
  dest: string, weights: WeightStore, precision: Precision, attention: AttentionImplementation, specVersion: 7 | 8 | 9,
  build: (ctx: ConvertContext) => Promise<void>, sourceLabel: string,
): Promise<void> {
  const weightsPath = tempSiblingPath(dest, 'weight.bin');
  const builder = new ProgramBuilder({
    specVersion,
    weightsPath,
    shortDescription: `Converted by coreml-optimize from ${sourceLabel}`,
    metadata: { 'com.github.apple.ml-stable-diffusion.precision': precision, 'com.github.apple.ml-stable-diffusion.attention': attention },
  });
  try {
    await build({ builder, weights, precision, attention });
    await builder.save(dest);
  } finally {
    await fs.promises.rm(weightsPath, { force: true });
  }
}

function padTokenOf(tokDir: string): string {
  for (const f of ['special_tokens_map.json', 'tokenizer_config.json']) {
    const file = path.join(tokDir, f);
    if (!fs.existsSync(file)) continue;
    const pad = readPythonJsonFile(file)['pad_token'];
    if (typeof pad === 'string') return pad;
    if (pad && typeof pad === 'object' && typeof (pad as { content?: unknown }).content === 'string') return (pad as { content: string }).content;
  }
  return '<|endoftext|>';
}

/** vocab.json + merges.txt of tokenizer/ beside the packages; tokenizer_2/ only when its files differ. */
async function copyTokenizers(source: string, outDir: string, index: ModelIndex, kind: 'sd' | 'sdxl'): Promise<PipelineJson['tokenizers']> {
  const out: PipelineJson['tokenizers'] = [];
  const names = kind === 'sdxl' ? ['tokenizer', 'tokenizer_2'] : ['tokenizer'];
  const files = ['vocab.json', 'merges.txt'];
  for (const [i, name] of names.entries()) {
    if (!index.components[name]) continue;
    const from = path.join(source, name);
    for (const f of files) if (!fs.existsSync(path.join(from, f))) throw new ModelFormatError(`${name}/${f} is missing`, { file: source });
    const padToken = padTokenOf(from);
    const first = path.join(source, names[0]!);
    const same = i > 0 && index.components[names[0]!] && files.every(f => sameFile(path.join(from, f), path.join(first, f)));
    const rel = i === 0 || same ? '.' : name;
    if (!same) {
      await fs.promises.mkdir(path.join(outDir, rel), { recursive: true });
      for (const f of files) {
        const dest = path.join(outDir, rel, f);
        const tmp = tempSiblingPath(dest);
        await fs.promises.copyFile(path.join(from, f), tmp);
        await fs.promises.rename(tmp, dest);
      }
    }
    out.push({ dir: rel, padToken });
  }
  return out;
}

function sameFile(a: string, b: string): boolean {
  const sa = fs.statSync(a), sb = fs.statSync(b);
  return sa.size === sb.size && fs.readFileSync(a).equals(fs.readFileSync(b));
}
