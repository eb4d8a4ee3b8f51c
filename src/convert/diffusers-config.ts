/**
 * diffusers / transformers configuration files: `model_index.json` and each component's
 * `config.json` (JSON as Python writes it: `Infinity`, `-Infinity` and `NaN` tokens allowed), read
 * into typed objects whose missing keys take the defaults of diffusers 0.25 / transformers 4.36.
 * A value of the wrong type or one the converters do not support is a ConfigError naming the file
 * and the key.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, ModelFormatError } from '../errors.js';
import { parsePythonJson as parsePythonJsonText } from '../util/python-json.js';

/** parsePythonJson (util/python-json.ts) with a syntax error reported as a ModelFormatError naming the file. */
export function parsePythonJson(text: string, file?: string): unknown {
  try {
    return parsePythonJsonText(text);
  } catch (err) {
    throw new ModelFormatError(`invalid JSON: ${(err as Error).message}`, { file, cause: err });
  }
}

export function readPythonJsonFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ModelFormatError(`cannot read: ${(err as Error).message}`, { file, cause: err });
  }
  const v = parsePythonJson(text, file);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ModelFormatError('not a JSON object', { file });
  return v as Record<string, unknown>;
}

/**
 * Typed access to one config object. Every getter names the file and key in its error; `unsupported`
 * is what converters call for a valid value they do not implement.
 */
export class ConfigReader {
  constructor(readonly file: string, readonly raw: Record<string, unknown>) {}

  static fromFile(file: string): ConfigReader {
    return new ConfigReader(file, readPythonJsonFile(file));
  }

  has(key: string): boolean { return this.raw[key] !== undefined; }

  error(key: string, message: string): ConfigError {
    return new ConfigError(`${key}: ${message}`, { file: this.file });
  }
  unsupported(key: string, value: unknown = this.raw[key], why = 'is not supported by the converter'): ConfigError {
    return this.error(key, `${JSON.stringify(value)} ${why}`);
  }

  private get(key: string): unknown { return this.raw[key]; }

  number(key: string, dflt: number): number {
    const v = this.get(key);
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number') throw this.error(key, `expected a number, got ${JSON.stringify(v)}`);
    return v;
  }
  int(key: string, dflt: number, min = 0): number {
    const v = this.number(key, dflt);
    if (!Number.isInteger(v) || v < min) throw this.error(key, `expected an integer ≥ ${min}, got ${v}`);
    return v;
  }
  optionalInt(key: string, min = 0): number | null {
    const v = this.get(key);
    if (v === undefined || v === null) return null;
    return this.int(key, 0, min);
  }
  bool(key: string, dflt: boolean): boolean {
    const v = this.get(key);
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') throw this.error(key, `expected true or false, got ${JSON.stringify(v)}`);
    return v;
  }
  string(key: string, dflt: string): string {
    const v = this.get(key);
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'string') throw this.error(key, `expected a string, got ${JSON.stringify(v)}`);
    return v;
  }
  optionalString(key: string): string | null {
    const v = this.get(key);
    if (v === undefined || v === null) return null;
    return this.string(key, '');
  }
  /** A string among `allowed` (else a ConfigError listing them). */
  oneOf<T extends string>(key: string, allowed: readonly T[], dflt: T): T {
    const v = this.string(key, dflt);
    if (!(allowed as readonly string[]).includes(v)) throw this.unsupported(key, v, `is not supported (supported: ${allowed.join(', ')})`);
    return v as T;
  }
  stringList(key: string, dflt: readonly string[]): string[] {
    const v = this.get(key);
    if (v === undefined || v === null) return [...dflt];
    if (!Array.isArray(v) || !v.every(x => typeof x === 'string')) throw this.error(key, `expected a list of strings, got ${JSON.stringify(v)}`);
    return v as string[];
  }
  intList(key: string, dflt: readonly number[], min = 0): number[] {
    const v = this.get(key);
    if (v === undefined || v === null) return [...dflt];
    if (!Array.isArray(v) || !v.every(x => Number.isInteger(x) && (x as number) >= min)) throw this.error(key, `expected a list of integers ≥ ${min}, got ${JSON.stringify(v)}`);
    return v as number[];
  }
  /** An int or a list of ints, broadcast to `n` entries (diffusers' per-block options). */
  intPerBlock(key: string, dflt: number | readonly number[] | null, n: number, min = 1): number[] | null {
    const v = this.get(key);
    const value = v === undefined ? dflt : v;
    if (value === null) return null;
    if (typeof value === 'number') {
      if (!Number.isInteger(value) || value < min) throw this.error(key, `expected an integer ≥ ${min}, got ${value}`);
      return Array(n).fill(value);
    }
    if (!Array.isArray(value) || !value.every(x => Number.isInteger(x) && (x as number) >= min)) throw this.error(key, `expected an integer or a list of integers, got ${JSON.stringify(value)}`);
    if (value.length !== n) throw this.error(key, `has ${value.length} entries, the model has ${n} blocks`);
    return [...value] as number[];
  }
  /** A boolean or a list of booleans, broadcast to `n` entries. */
  boolPerBlock(key: string, dflt: boolean, n: number): boolean[] {
    const v = this.get(key);
    if (v === undefined || v === null) return Array(n).fill(dflt);
    if (typeof v === 'boolean') return Array(n).fill(v);
    if (!Array.isArray(v) || !v.every(x => typeof x === 'boolean')) throw this.error(key, `expected a boolean or a list of booleans, got ${JSON.stringify(v)}`);
    if (v.length !== n) throw this.error(key, `has ${v.length} entries, the model has ${n} blocks`);
    return v as boolean[];
  }
  /** Throws `unsupported` unless the key is absent or equal to `expected` (null / false / a default). */
  requireDefault(key: string, expected: unknown): void {
    const v = this.get(key);
    if (v === undefined || JSON.stringify(v) === JSON.stringify(expected)) return;
    throw this.unsupported(key, v);
  }
}

/* ---- model_index.json ---- */

export interface ModelIndex {
  file: string;
  className: string;
  /** component name → [library, class] (null entries, like `feature_extractor: [null, null]`, omitted). */
  components: Record<string, { library: string; className: string }>;
  forceZerosForEmptyPrompt: boolean;
  requiresSafetyChecker: boolean | null;
  raw: Record<string, unknown>;
}

export function readModelIndex(dir: string): ModelIndex {
  const file = path.join(dir, 'model_index.json');
  if (!fs.existsSync(file)) throw new ModelFormatError('not a diffusers pipeline folder: model_index.json is missing', { file: dir });
  const r = ConfigReader.fromFile(file);
  const className = r.string('_class_name', '');
  if (!className) throw r.error('_class_name', 'missing');
  const components: ModelIndex['components'] = {};
  for (const [k, v] of Object.entries(r.raw)) {
    if (k.startsWith('_') || !Array.isArray(v)) continue;
    if (v.length !== 2) throw r.error(k, `expected [library, class], got ${JSON.stringify(v)}`);
    if (v[0] === null || v[1] === null) continue;
    if (typeof v[0] !== 'string' || typeof v[1] !== 'string') throw r.error(k, `expected [library, class], got ${JSON.stringify(v)}`);
    components[k] = { library: v[0], className: v[1] };
  }
  const rsc = r.raw['requires_safety_checker'];
  return {
    file,
    className,
    components,
    forceZerosForEmptyPrompt: r.bool('force_zeros_for_empty_prompt', className.includes('XL')),
    requiresSafetyChecker: typeof rsc === 'boolean' ? rsc : null,
    raw: r.raw,
  };
}

/* ---- transformers CLIPTextConfig (4.36 defaults) ---- */

export interface ClipTextConfig {
  file: string;
  architecture: 'CLIPTextModel' | 'CLIPTextModelWithProjection';
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  projectionDim: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  maxPositionEmbeddings: number;
  hiddenAct: 'quick_gelu' | 'gelu' | 'gelu_new' | 'gelu_pytorch_tanh';
  layerNormEps: number;
  padTokenId: number;
  bosTokenId: number;
  eosTokenId: number;
  reader: ConfigReader;
}

export function readClipTextConfig(componentDir: string): ClipTextConfig {
  const r = ConfigReader.fromFile(path.join(componentDir, 'config.json'));
  const archs = r.stringList('architectures', ['CLIPTextModel']);
  const architecture = archs[0];
  if (architecture !== 'CLIPTextModel' && architecture !== 'CLIPTextModelWithProjection') throw r.unsupported('architectures', archs, 'is not CLIPTextModel or CLIPTextModelWithProjection');
  const modelType = r.string('model_type', 'clip_text_model');
  if (modelType !== 'clip_text_model') throw r.unsupported('model_type', modelType);
  const hiddenSize = r.int('hidden_size', 512, 1);
  const numAttentionHeads = r.int('num_attention_heads', 8, 1);
  if (hiddenSize % numAttentionHeads !== 0) throw r.error('num_attention_heads', `${numAttentionHeads} does not divide hidden_size ${hiddenSize}`);
  return {
    file: r.file,
    architecture,
    vocabSize: r.int('vocab_size', 49408, 1),
    hiddenSize,
    intermediateSize: r.int('intermediate_size', 2048, 1),
    projectionDim: r.int('projection_dim', 512, 1),
    numHiddenLayers: r.int('num_hidden_layers', 12, 1),
    numAttentionHeads,
    maxPositionEmbeddings: r.int('max_position_embeddings', 77, 1),
    hiddenAct: r.oneOf('hidden_act', ['quick_gelu', 'gelu', 'gelu_new', 'gelu_pytorch_tanh'] as const, 'quick_gelu'),
    layerNormEps: r.number('layer_norm_eps', 1e-5),
    padTokenId: r.int('pad_token_id', 1),
    bosTokenId: r.int('bos_token_id', 49406),
    eosTokenId: r.int('eos_token_id', 49407),
    reader: r,
  };
}

/* ---- diffusers AutoencoderKL (0.25 defaults) ---- */

export interface VaeConfig {
  file: string;
  inChannels: number;
  outChannels: number;
  downBlockTypes: string[];
  upBlockTypes: string[];
  blockOutChannels: number[];
  layersPerBlock: number;
  actFn: 'silu';
  latentChannels: number;
  normNumGroups: number;
  sampleSize: number;
  scalingFactor: number;
  /** Newer diffusers (> 0.25) key; null when absent. */
  shiftFactor: number | null;
  forceUpcast: boolean;
  usePostQuantConv: boolean;
  reader: ConfigReader;
}

export function readVaeConfig(componentDir: string): VaeConfig {
  const r = ConfigReader.fromFile(path.join(componentDir, 'config.json'));
  const cls = r.string('_class_name', 'AutoencoderKL');
  if (cls !== 'AutoencoderKL') throw r.unsupported('_class_name', cls, 'is not AutoencoderKL');
  const blockOutChannels = r.intList('block_out_channels', [64], 1);
  const upBlockTypes = r.stringList('up_block_types', ['UpDecoderBlock2D']);
  const downBlockTypes = r.stringList('down_block_types', ['DownEncoderBlock2D']);
  if (upBlockTypes.length !== blockOutChannels.length) throw r.error('up_block_types', `has ${upBlockTypes.length} entries, block_out_channels has ${blockOutChannels.length}`);
  upBlockTypes.forEach(t => { if (t !== 'UpDecoderBlock2D') throw r.unsupported('up_block_types', t); });
  const normNumGroups = r.int('norm_num_groups', 32, 1);
  blockOutChannels.forEach(c => { if (c % normNumGroups) throw r.error('block_out_channels', `${c} is not a multiple of norm_num_groups ${normNumGroups}`); });
  const sf = r.raw['shift_factor'];
  r.requireDefault('latents_mean', null);
  r.requireDefault('latents_std', null);
  r.requireDefault('mid_block_add_attention', true);
  return {
    file: r.file,
    inChannels: r.int('in_channels', 3, 1),
    outChannels: r.int('out_channels', 3, 1),
    downBlockTypes,
    upBlockTypes,
    blockOutChannels,
    layersPerBlock: r.int('layers_per_block', 1, 1),
    actFn: r.oneOf('act_fn', ['silu'] as const, 'silu'),
    latentChannels: r.int('latent_channels', 4, 1),
    normNumGroups,
    sampleSize: r.int('sample_size', 32, 1),
    scalingFactor: r.number('scaling_factor', 0.18215),
    shiftFactor: sf === undefined || sf === null ? null : r.number('shift_factor', 0),
    forceUpcast: r.bool('force_upcast', true),
    usePostQuantConv: r.bool('use_post_quant_conv', true),
    reader: r,
  };
}

/* ---- diffusers UNet2DConditionModel (0.25 defaults) ---- */

export interface UnetConfig {
  file: string;
  sampleSize: number | null;
  inChannels: number;
  outChannels: number;
  centerInputSample: boolean;
  flipSinToCos: boolean;
  freqShift: number;
  downBlockTypes: string[];
  midBlockType: string | null;
  upBlockTypes: string[];
  onlyCrossAttention: boolean[];
  blockOutChannels: number[];
  layersPerBlock: number[];
  downsamplePadding: number;
  midBlockScaleFactor: number;
  actFn: string;
  normNumGroups: number | null;
  normEps: number;
  /** Per down block (config int broadcast); a list-of-lists per block is read as such. */
  crossAttentionDim: number[];
  transformerLayersPerBlock: number[];
  reverseTransformerLayersPerBlock: number[][] | null;
  encoderHidDim: number | null;
  encoderHidDimType: string | null;
  attentionHeadDim: number[];
  /** diffusers' naming quirk: `num_attention_heads` null → `attention_head_dim` is the head COUNT. */
  numAttentionHeads: number[];
  dualCrossAttention: boolean;
  useLinearProjection: boolean;
  classEmbedType: string | null;
  additionEmbedType: string | null;
  additionTimeEmbedDim: number | null;
  numClassEmbeds: number | null;
  upcastAttention: boolean;
  resnetTimeScaleShift: string;
  resnetSkipTimeAct: boolean;
  resnetOutScaleFactor: number;
  timeEmbeddingType: string;
  timeEmbeddingDim: number | null;
  timeEmbeddingActFn: string | null;
  timestepPostAct: string | null;
  timeCondProjDim: number | null;
  convInKernel: number;
  convOutKernel: number;
  projectionClassEmbeddingsInputDim: number | null;
  attentionType: string;
  classEmbeddingsConcat: boolean;
  midBlockOnlyCrossAttention: boolean | null;
  crossAttentionNorm: string | null;
  additionEmbedTypeNumHeads: number;
  reader: ConfigReader;
}

export function readUnetConfig(componentDir: string): UnetConfig {
  const r = ConfigReader.fromFile(path.join(componentDir, 'config.json'));
  const cls = r.string('_class_name', 'UNet2DConditionModel');
  if (cls !== 'UNet2DConditionModel') throw r.unsupported('_class_name', cls, 'is not UNet2DConditionModel');
  const downBlockTypes = r.stringList('down_block_types', ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D']);
  const upBlockTypes = r.stringList('up_block_types', ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D']);
  const n = downBlockTypes.length;
  const blockOutChannels = r.intList('block_out_channels', [320, 640, 1280, 1280], 1);
  if (blockOutChannels.length !== n) throw r.error('block_out_channels', `has ${blockOutChannels.length} entries, down_block_types has ${n}`);
  if (upBlockTypes.length !== n) throw r.error('up_block_types', `has ${upBlockTypes.length} entries, down_block_types has ${n}`);
  const attentionHeadDim = r.intPerBlock('attention_head_dim', 8, n)!;
  const numHeadsRaw = r.intPerBlock('num_attention_heads', null, n);
  // Like diffusers: `num_attention_heads = num_attention_heads or attention_head_dim`.
  const numAttentionHeads = numHeadsRaw ?? attentionHeadDim;
  const rtl = r.raw['reverse_transformer_layers_per_block'];
  let reverse: number[][] | null = null;
  if (rtl !== undefined && rtl !== null) {
    if (!Array.isArray(rtl) || !rtl.every(a => Array.isArray(a) && a.every(x => Number.isInteger(x) && x >= 1))) throw r.error('reverse_transformer_layers_per_block', 'expected a list of lists of integers');
    reverse = rtl as number[][];
  }
  const tl = r.raw['transformer_layers_per_block'];
  if (Array.isArray(tl) && tl.some(x => Array.isArray(x))) throw r.unsupported('transformer_layers_per_block', tl, 'as a list of lists is not supported');
  const ng = r.raw['norm_num_groups'];
  return {
    file: r.file,
    sampleSize: r.optionalInt('sample_size', 1),
    inChannels: r.int('in_channels', 4, 1),
    outChannels: r.int('out_channels', 4, 1),
    centerInputSample: r.bool('center_input_sample', false),
    flipSinToCos: r.bool('flip_sin_to_cos', true),
    freqShift: r.number('freq_shift', 0),
    downBlockTypes,
    midBlockType: r.raw['mid_block_type'] === null ? null : r.string('mid_block_type', 'UNetMidBlock2DCrossAttn'),
    upBlockTypes,
    onlyCrossAttention: r.boolPerBlock('only_cross_attention', false, n),
    blockOutChannels,
    layersPerBlock: r.intPerBlock('layers_per_block', 2, n)!,
    downsamplePadding: r.int('downsample_padding', 1),
    midBlockScaleFactor: r.number('mid_block_scale_factor', 1),
    actFn: r.string('act_fn', 'silu'),
    normNumGroups: ng === null ? null : r.int('norm_num_groups', 32, 1),
    normEps: r.number('norm_eps', 1e-5),
    crossAttentionDim: r.intPerBlock('cross_attention_dim', 1280, n)!,
    transformerLayersPerBlock: r.intPerBlock('transformer_layers_per_block', 1, n)!,
    reverseTransformerLayersPerBlock: reverse,
    encoderHidDim: r.optionalInt('encoder_hid_dim', 1),
    encoderHidDimType: r.optionalString('encoder_hid_dim_type'),
    attentionHeadDim,
    numAttentionHeads,
    dualCrossAttention: r.bool('dual_cross_attention', false),
    useLinearProjection: r.bool('use_linear_projection', false),
    classEmbedType: r.optionalString('class_embed_type'),
    additionEmbedType: r.optionalString('addition_embed_type'),
    additionTimeEmbedDim: r.optionalInt('addition_time_embed_dim', 1),
    numClassEmbeds: r.optionalInt('num_class_embeds', 1),
    upcastAttention: r.bool('upcast_attention', false),
    resnetTimeScaleShift: r.string('resnet_time_scale_shift', 'default'),
    resnetSkipTimeAct: r.bool('resnet_skip_time_act', false),
    resnetOutScaleFactor: r.number('resnet_out_scale_factor', 1),
    timeEmbeddingType: r.string('time_embedding_type', 'positional'),
    timeEmbeddingDim: r.optionalInt('time_embedding_dim', 1),
    timeEmbeddingActFn: r.optionalString('time_embedding_act_fn'),
    timestepPostAct: r.optionalString('timestep_post_act'),
    timeCondProjDim: r.optionalInt('time_cond_proj_dim', 1),
    convInKernel: r.int('conv_in_kernel', 3, 1),
    convOutKernel: r.int('conv_out_kernel', 3, 1),
    projectionClassEmbeddingsInputDim: r.optionalInt('projection_class_embeddings_input_dim', 1),
    attentionType: r.string('attention_type', 'default'),
    classEmbeddingsConcat: r.bool('class_embeddings_concat', false),
    midBlockOnlyCrossAttention: r.raw['mid_block_only_cross_attention'] == null ? null : r.bool('mid_block_only_cross_attention', false),
    crossAttentionNorm: r.optionalString('cross_attention_norm'),
    additionEmbedTypeNumHeads: r.int('addition_embed_type_num_heads', 64, 1),
    reader: r,
  };
}

/* ---- scheduler/scheduler_config.json ---- */

export interface SchedulerConfigFile {
  file: string;
  className: string;
  /** The whole object as written (Python JSON tokens decoded); `_class_name` included. */
  config: Record<string, unknown>;
}

export function readSchedulerConfig(componentDir: string): SchedulerConfigFile {
  const file = path.join(componentDir, 'scheduler_config.json');
  const r = ConfigReader.fromFile(file);
  const className = r.string('_class_name', '');
  if (!className) throw r.error('_class_name', 'missing');
  return { file, className, config: r.raw };
}
