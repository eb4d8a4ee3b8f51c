/**
 * Finds the models of a Stable Diffusion folder: `coreml-optimize convert` output (pipeline.json), or
 * an apple/ml-stable-diffusion output folder as users have it — `Stable_Diffusion_version_<model>_<component>.mlpackage`
 * files (torch2coreml), plain `TextEncoder.mlpackage`-style names, or compiled `Resources/*.mlmodelc`.
 * What pipeline.json would say and such a folder does not (model kind, scheduler, VAE factor) is
 * filled in later from the models themselves and the published defaults (see stable-diffusion.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parsePythonJson } from '../convert/diffusers-config.js';
import { ConfigError, ModelFormatError, UnsupportedError } from '../errors.js';

export type ModelKind = 'sd' | 'sdxl';
export type ComponentName = 'textEncoder' | 'textEncoder2' | 'unet' | 'vaeDecoder';

export interface PipelineFolder {
  dir: string;
  /** Where the layout came from. */
  layout: 'pipeline.json' | 'ml-stable-diffusion-packages' | 'ml-stable-diffusion-compiled' | 'packages';
  /** Model paths (absolute). */
  models: { textEncoder: string; textEncoder2?: string; unet: string; vaeDecoder: string };
  /** Tokenizer folders (vocab.json + merges.txt), one per text encoder; absent when none was found. */
  tokenizers: { dir: string; padToken: string }[];
  /** A name for the PNG metadata: pipeline.json's source, or the model version in the file names. */
  modelName: string;
  /** From pipeline.json; otherwise undefined (inferred from the models). */
  modelKind?: ModelKind;
  scheduler?: { className: string; config: Record<string, unknown> };
  vaeScalingFactor?: number;
  forceZerosForEmptyPrompt?: boolean;
  latentHeight?: number;
  latentWidth?: number;
  vaeScaleFactor?: number;
  unetBatchSize?: number;
  textEncoderOutputs?: { hidden?: string; pooled?: string };
}

const COMPONENT_OF: Record<string, ComponentName | 'unsupported'> = {
  text_encoder: 'textEncoder',
  text_encoder_2: 'textEncoder2',
  unet: 'unet',
  vae_decoder: 'vaeDecoder',
  TextEncoder: 'textEncoder',
  TextEncoder2: 'textEncoder2',
  Unet: 'unet',
  VAEDecoder: 'vaeDecoder',
  // Present in ml-stable-diffusion folders but not used (or not supported) for text-to-image here.
  vae_encoder: 'unsupported',
  safety_checker: 'unsupported',
  controlnet: 'unsupported',
  refiner: 'unsupported',
  unet_chunk1: 'unsupported',
  unet_chunk2: 'unsupported',
  VAEEncoder: 'unsupported',
  SafetyChecker: 'unsupported',
  UnetChunk1: 'unsupported',
  UnetChunk2: 'unsupported',
  UnetRefiner: 'unsupported',
  UnetRefinerChunk1: 'unsupported',
  UnetRefinerChunk2: 'unsupported',
  ControlledUnet: 'unsupported',
};

const ML_SD_PACKAGE = /^Stable_Diffusion_version_(.+)_(text_encoder_2|text_encoder|unet_chunk1|unet_chunk2|unet|vae_decoder|vae_encoder|safety_checker|refiner|controlnet)\.mlpackage$/;

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function readPipelineJson(dir: string): PipelineFolder {
  const file = path.join(dir, 'pipeline.json');
  // Python-style JSON: a scheduler config may hold Infinity / NaN tokens.
  const json = parsePythonJson(fs.readFileSync(file, 'utf8'), file) as Record<string, unknown>;
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ModelFormatError('expected a JSON object', { file });
  if (json['format'] !== 'coreml-optimize-pipeline') throw new ModelFormatError(`"format" is ${JSON.stringify(json['format'])}, expected "coreml-optimize-pipeline"`, { file });
  if (json['version'] !== 1) throw new UnsupportedError(`pipeline.json version ${JSON.stringify(json['version'])} is not supported (this release reads version 1)`, { file });
  const kind = json['modelKind'];
  if (kind !== 'sd' && kind !== 'sdxl') throw new ModelFormatError(`"modelKind" must be "sd" or "sdxl", got ${JSON.stringify(kind)}`, { file });
  const models = (json['models'] ?? {}) as Record<string, unknown>;
  const model = (key: ComponentName, required: boolean): string | undefined => {
    const v = models[key];
    if (v === undefined || v === null) {
      if (required) throw new ModelFormatError(`"models.${key}" is missing`, { file });
      return undefined;
    }
    if (typeof v !== 'string') throw new ModelFormatError(`"models.${key}" must be a file name`, { file });
    const p = path.resolve(dir, v);
    if (!fs.existsSync(p)) throw new ModelFormatError(`"models.${key}" names ${v}, which does not exist`, { file });
    return p;
  };
  const textEncoder = model('textEncoder', true)!;
  const textEncoder2 = model('textEncoder2', kind === 'sdxl');
  const unet = model('unet', true)!;
  const vaeDecoder = model('vaeDecoder', true)!;
  const tokenizers = ((json['tokenizers'] ?? []) as { dir?: unknown; padToken?: unknown }[]).map((t, i) => {
    if (typeof t?.dir !== 'string') throw new ModelFormatError(`"tokenizers[${i}].dir" must be a folder name`, { file });
    return { dir: path.resolve(dir, t.dir), padToken: typeof t.padToken === 'string' ? t.padToken : '<|endoftext|>' };
  });
  const num = (key: string): number | undefined => {
    const v = json[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ModelFormatError(`"${key}" must be a number`, { file });
    return v;
  };
  const scheduler = json['scheduler'] as { className?: unknown; config?: unknown } | undefined;
  if (scheduler !== undefined && (typeof scheduler?.className !== 'string' || typeof scheduler.config !== 'object' || scheduler.config === null)) {
    throw new ModelFormatError('"scheduler" must be {"className": ..., "config": {...}}', { file });
  }
  const out: PipelineFolder = {
    dir,
    layout: 'pipeline.json',
    models: { textEncoder, unet, vaeDecoder, ...(textEncoder2 ? { textEncoder2 } : {}) },
    tokenizers,
    modelName: typeof json['source'] === 'string' ? path.basename(json['source'] as string) : path.basename(dir),
    modelKind: kind,
  };
  if (scheduler) out.scheduler = { className: scheduler.className as string, config: scheduler.config as Record<string, unknown> };
  const vsf = num('vaeScalingFactor');
  if (vsf !== undefined) out.vaeScalingFactor = vsf;
  if (typeof json['forceZerosForEmptyPrompt'] === 'boolean') out.forceZerosForEmptyPrompt = json['forceZerosForEmptyPrompt'] as boolean;
  for (const key of ['latentHeight', 'latentWidth', 'vaeScaleFactor', 'unetBatchSize'] as const) {
    const v = num(key);
    if (v !== undefined) out[key] = v;
  }
  const teo = json['textEncoderOutputs'] as { hidden?: unknown; pooled?: unknown } | undefined;
  if (teo && typeof teo === 'object') {
    out.textEncoderOutputs = {
      ...(typeof teo.hidden === 'string' ? { hidden: teo.hidden } : {}),
      ...(typeof teo.pooled === 'string' ? { pooled: teo.pooled } : {}),
    };
  }
  return out;
}

/** The first folder among `candidates` holding vocab.json and merges.txt. */
function findTokenizerDir(candidates: string[]): string | undefined {
  return candidates.find((d) => fs.existsSync(path.join(d, 'vocab.json')) && fs.existsSync(path.join(d, 'merges.txt')));
}

/** Reads a models folder (see the module comment). Throws ConfigError / ModelFormatError naming what is missing. */
export function resolvePipelineFolder(input: string): PipelineFolder {
  const dir = path.resolve(input);
  if (!isDir(dir)) throw new ConfigError('the models folder does not exist or is not a folder', { file: input });
  if (fs.existsSync(path.join(dir, 'pipeline.json'))) return readPipelineJson(dir);

  // Compiled models: <dir>/Resources/*.mlmodelc, or -i pointing at Resources itself.
  const resources = isDir(path.join(dir, 'Resources')) ? path.join(dir, 'Resources') : dir;
  const found: Partial<Record<ComponentName, string>> = {};
  const versions = new Set<string>();
  let layout: PipelineFolder['layout'] | undefined;
  const take = (component: ComponentName | 'unsupported' | undefined, file: string, what: PipelineFolder['layout']) => {
    if (component === undefined || component === 'unsupported') return;
    if (found[component] && found[component] !== file) {
      throw new ConfigError(`two ${component} models (${path.basename(found[component]!)} and ${path.basename(file)}); keep one per folder`, { file: dir });
    }
    found[component] = file;
    layout ??= what;
  };
  const names = fs.readdirSync(dir).sort();
  for (const name of names) {
    const m = ML_SD_PACKAGE.exec(name);
    if (m && COMPONENT_OF[m[2]!] !== 'unsupported') versions.add(m[1]!);
  }
  if (versions.size > 1) {
    throw new ConfigError(`packages of several models in one folder (${[...versions].join(', ')}); point -i at a folder with one model`, { file: dir });
  }
  for (const name of names) {
    const m = ML_SD_PACKAGE.exec(name);
    if (m) {
      take(COMPONENT_OF[m[2]!], path.join(dir, name), 'ml-stable-diffusion-packages');
      continue;
    }
    const plain = /^(\w+)\.mlpackage$/.exec(name);
    if (plain) take(COMPONENT_OF[plain[1]!], path.join(dir, name), 'packages');
  }
  if (!found.unet) {
    for (const name of fs.existsSync(resources) ? fs.readdirSync(resources).sort() : []) {
      const m = /^(\w+)\.mlmodelc$/.exec(name);
      if (m) take(COMPONENT_OF[m[1]!], path.join(resources, name), 'ml-stable-diffusion-compiled');
    }
  }
  const chunked = ['UnetChunk1.mlmodelc', 'Stable_Diffusion_version_'].some((n) =>
    fs.readdirSync(resources).some((f) => f.startsWith(n) && /chunk1/i.test(f)),
  );
  if (!found.unet) {
    if (chunked) throw new UnsupportedError('chunked UNets (UnetChunk1/UnetChunk2) are not supported; convert without --chunk-unet', { file: dir });
    throw new ConfigError(
      'no pipeline.json and no UNet model: expected coreml-optimize convert output, Stable_Diffusion_version_<model>_unet.mlpackage (ml-stable-diffusion) or Resources/Unet.mlmodelc',
      { file: dir },
    );
  }
  for (const c of ['textEncoder', 'vaeDecoder'] as const) {
    if (!found[c]) throw new ConfigError(`no ${c === 'textEncoder' ? 'text encoder' : 'VAE decoder'} model next to ${path.basename(found.unet)}`, { file: dir });
  }
  const tokDir = findTokenizerDir([dir, resources, path.join(dir, 'tokenizer')]);
  const tok2Dir = findTokenizerDir([path.join(dir, 'tokenizer_2')]) ?? tokDir;
  const tokenizers: PipelineFolder['tokenizers'] = [];
  if (tokDir) {
    tokenizers.push({ dir: tokDir, padToken: '<|endoftext|>' });
    // SDXL's second tokenizer: the same CLIP vocabulary, padded with "!" (diffusers' tokenizer_2 config).
    if (found.textEncoder2) tokenizers.push({ dir: tok2Dir!, padToken: '!' });
  }
  return {
    dir,
    layout: layout!,
    models: { textEncoder: found.textEncoder!, unet: found.unet, vaeDecoder: found.vaeDecoder!, ...(found.textEncoder2 ? { textEncoder2: found.textEncoder2 } : {}) },
    tokenizers,
    modelName: versions.size === 1 ? [...versions][0]! : path.basename(dir),
  };
}
