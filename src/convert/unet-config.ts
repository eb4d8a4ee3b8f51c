/**
 * UNet2DConditionModel config.json → a fully resolved plan: per-level block kinds, channels, layer
 * counts, heads and cross-attention widths, exactly as diffusers 0.25's `UNet2DConditionModel.__init__`
 * derives them (including its naming quirk: `attention_head_dim` is the number of heads when
 * `num_attention_heads` is null). Keys that change the graph in a way the converter does not build are
 * refused with a ConfigError naming the key; keys that do not affect these block types are accepted.
 */
import { ConfigError } from '../errors.js';

export type UnetActivation = 'silu' | 'gelu' | 'relu' | 'mish';
export type DownBlockKind = 'CrossAttnDownBlock2D' | 'DownBlock2D';
export type UpBlockKind = 'CrossAttnUpBlock2D' | 'UpBlock2D';

/** One Transformer2DModel's geometry. */
export interface TransformerPlan {
  heads: number;
  headDim: number;
  /** BasicTransformerBlocks in this Transformer2DModel. */
  layers: number;
  crossAttentionDim: number;
  onlyCrossAttention: boolean;
}

export interface DownBlockPlan {
  kind: DownBlockKind;
  inChannels: number;
  outChannels: number;
  /** One entry per resnet; null for DownBlock2D. */
  transformers: (TransformerPlan | null)[];
  addDownsample: boolean;
}

export interface UpBlockPlan {
  kind: UpBlockKind;
  /** prev_output_channel, in_channels and out_channels as diffusers names them. */
  prevOutputChannels: number;
  inChannels: number;
  outChannels: number;
  transformers: (TransformerPlan | null)[];
  addUpsample: boolean;
}

export interface MidBlockPlan {
  channels: number;
  transformer: TransformerPlan;
  outputScaleFactor: number;
}

export interface UnetPlan {
  inChannels: number;
  outChannels: number;
  blockOutChannels: number[];
  centerInputSample: boolean;
  flipSinToCos: boolean;
  freqShift: number;
  actFn: UnetActivation;
  normNumGroups: number;
  normEps: number;
  useLinearProjection: boolean;
  resnetTimeScaleShift: 'default' | 'scale_shift';
  timeEmbedDim: number;
  timestepPostAct: UnetActivation | null;
  timeEmbeddingActFn: UnetActivation | null;
  convInKernel: number;
  convOutKernel: number;
  downsamplePadding: number;
  /** SDXL's `text_time` added embedding; null when absent. */
  textTime: { timeEmbedDim: number; projectionInputDim: number } | null;
  down: DownBlockPlan[];
  mid: MidBlockPlan | null;
  up: UpBlockPlan[];
  /** Width of encoder_hidden_states (the first level's cross_attention_dim). */
  crossAttentionDim: number;
}

/** Keys that never change the inference graph (metadata, training-only settings). */
const IGNORED = new Set([
  '_class_name', '_diffusers_version', '_name_or_path', '_use_default_values', 'sample_size', 'dropout',
  // only used by ResnetDownsampleBlock2D / SimpleCrossAttn* / KCrossAttn* blocks, which are refused anyway
  'resnet_skip_time_act', 'resnet_out_scale_factor', 'cross_attention_norm', 'mid_block_only_cross_attention',
  // only used by addition_embed_type "text" / "text_image", which are refused
  'addition_embed_type_num_heads',
  // fp32 compute everywhere: upcasting attention to fp32 is what the executor does already
  'upcast_attention',
]);

/** Keys whose only supported value is the given default (anything else changes the graph). */
const MUST_BE: Record<string, unknown> = {
  class_embed_type: null,
  num_class_embeds: null,
  encoder_hid_dim: null,
  encoder_hid_dim_type: null,
  time_cond_proj_dim: null,
  dual_cross_attention: false,
  class_embeddings_concat: false,
  attention_type: 'default',
  time_embedding_type: 'positional',
};

const KNOWN = new Set([
  ...IGNORED, ...Object.keys(MUST_BE),
  'in_channels', 'out_channels', 'center_input_sample', 'flip_sin_to_cos', 'freq_shift', 'down_block_types', 'mid_block_type',
  'up_block_types', 'only_cross_attention', 'block_out_channels', 'layers_per_block', 'downsample_padding', 'mid_block_scale_factor',
  'act_fn', 'norm_num_groups', 'norm_eps', 'cross_attention_dim', 'transformer_layers_per_block', 'reverse_transformer_layers_per_block',
  'attention_head_dim', 'num_attention_heads', 'use_linear_projection', 'addition_embed_type', 'addition_time_embed_dim',
  'resnet_time_scale_shift', 'time_embedding_dim', 'time_embedding_act_fn', 'timestep_post_act', 'conv_in_kernel', 'conv_out_kernel',
  'projection_class_embeddings_input_dim',
]);

const ACTIVATIONS: Record<string, UnetActivation> = { silu: 'silu', swish: 'silu', gelu: 'gelu', relu: 'relu', mish: 'mish' };

export interface ParseOptions {
  /** Named in error messages (the config.json path). */
  file?: string;
}

/** Resolves a UNet2DConditionModel config (config.json as parsed JSON) into a UnetPlan. */
export function planUnet(config: Record<string, unknown>, options: ParseOptions = {}): UnetPlan {
  const file = options.file;
  const fail = (key: string, why: string): never => {
    throw new ConfigError(`UNet config "${key}": ${why}`, file !== undefined ? { file } : {});
  };
  const has = (k: string) => config[k] !== undefined;
  const get = <T>(k: string, dflt: T): unknown => (has(k) ? config[k] : dflt);

  const cls = config['_class_name'];
  if (cls !== undefined && cls !== 'UNet2DConditionModel') fail('_class_name', `${JSON.stringify(cls)} is not UNet2DConditionModel`);
  for (const key of Object.keys(config)) {
    if (!KNOWN.has(key) && config[key] !== null && !key.startsWith('_')) fail(key, `unknown key (value ${JSON.stringify(config[key])}) — not supported by this converter`);
  }
  for (const [key, want] of Object.entries(MUST_BE)) {
    if (has(key) && config[key] !== want && !(want === false && config[key] === null)) {
      fail(key, `${JSON.stringify(config[key])} is not supported (only ${JSON.stringify(want)})`);
    }
  }

  const int = (k: string, v: unknown, min = 1): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) fail(k, `expected an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const num = (k: string, v: unknown): number => {
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(k, `expected a number, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const bool = (k: string, v: unknown): boolean => {
    if (typeof v !== 'boolean') fail(k, `expected true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  };
  const act = (k: string, v: unknown): UnetActivation => {
    const a = typeof v === 'string' ? ACTIVATIONS[v] : undefined;
    if (!a) fail(k, `activation ${JSON.stringify(v)} is not supported (silu, swish, gelu, relu, mish)`);
    return a!;
  };
  const optAct = (k: string): UnetActivation | null => (config[k] === null || config[k] === undefined ? null : act(k, config[k]));
  const list = (k: string, v: unknown): unknown[] => {
    if (!Array.isArray(v) || v.length === 0) fail(k, `expected a non-empty list, got ${JSON.stringify(v)}`);
    return v as unknown[];
  };

  const downTypes = list('down_block_types', get('down_block_types', ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D']));
  const upTypes = list('up_block_types', get('up_block_types', ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D']));
  const n = downTypes.length;
  for (const t of downTypes) if (t !== 'CrossAttnDownBlock2D' && t !== 'DownBlock2D') fail('down_block_types', `block type ${JSON.stringify(t)} is not supported (CrossAttnDownBlock2D, DownBlock2D)`);
  for (const t of upTypes) if (t !== 'CrossAttnUpBlock2D' && t !== 'UpBlock2D') fail('up_block_types', `block type ${JSON.stringify(t)} is not supported (CrossAttnUpBlock2D, UpBlock2D)`);
  if (upTypes.length !== n) fail('up_block_types', `has ${upTypes.length} entries, down_block_types ${n}`);

  const blockOut = list('block_out_channels', get('block_out_channels', [320, 640, 1280, 1280])).map(v => int('block_out_channels', v));
  if (blockOut.length !== n) fail('block_out_channels', `has ${blockOut.length} entries, down_block_types ${n}`);

  /** An int (repeated per level) or a per-level list. */
  const perLevel = <T>(k: string, v: unknown, each: (x: unknown) => T): T[] => {
    if (Array.isArray(v)) {
      if (v.length !== n) fail(k, `has ${v.length} entries, down_block_types ${n}`);
      return v.map(each);
    }
    const one = each(v);
    return Array(n).fill(one) as T[];
  };

  const layersPerBlock = perLevel('layers_per_block', get('layers_per_block', 2), v => int('layers_per_block', v));
  const crossDims = perLevel('cross_attention_dim', get('cross_attention_dim', 1280), v => int('cross_attention_dim', v));
  // diffusers: `num_attention_heads = num_attention_heads or attention_head_dim` — but
  // UNet2DConditionModel raises on a non-null num_attention_heads (its naming-issue guard), so
  // attention_head_dim is always the per-level head COUNT here.
  if ((config['num_attention_heads'] ?? null) !== null) {
    fail('num_attention_heads', 'must be null: UNet2DConditionModel refuses it (diffusers issue 2011); attention_head_dim gives the number of heads');
  }
  const heads = perLevel('attention_head_dim', get('attention_head_dim', 8), v => int('attention_head_dim', v));
  const onlyCrossRaw = get('only_cross_attention', false);
  const onlyCross = perLevel('only_cross_attention', onlyCrossRaw, v => bool('only_cross_attention', v));

  /** transformer_layers_per_block: int, per-level ints, or per-level per-layer lists. */
  const tlpbRaw = get('transformer_layers_per_block', 1);
  const tlpb = perLevel('transformer_layers_per_block', tlpbRaw, v =>
    Array.isArray(v) ? v.map(x => int('transformer_layers_per_block', x)) : int('transformer_layers_per_block', v));
  const reverseRaw = config['reverse_transformer_layers_per_block'] ?? null;
  if (reverseRaw === null && tlpb.some(Array.isArray)) {
    fail('transformer_layers_per_block', 'per-layer lists need reverse_transformer_layers_per_block (as diffusers requires)');
  }
  const reversedTlpb: (number | number[])[] = reverseRaw === null
    ? [...tlpb].reverse()
    : list('reverse_transformer_layers_per_block', reverseRaw).map(v =>
      Array.isArray(v) ? v.map(x => int('reverse_transformer_layers_per_block', x)) : int('reverse_transformer_layers_per_block', v));
  if (reversedTlpb.length !== n) fail('reverse_transformer_layers_per_block', `has ${reversedTlpb.length} entries, up_block_types ${n}`);
  /** diffusers' blocks: an int applies to every layer; a list gives each layer's count (entry i for layer i). */
  const layersOf = (key: string, v: number | number[], count: number): number[] => {
    if (!Array.isArray(v)) return Array(count).fill(v) as number[];
    if (v.length < count) fail(key, `a per-layer list has ${v.length} entries for a block of ${count} layers`);
    return v.slice(0, count);
  };

  const normNumGroupsRaw = get('norm_num_groups', 32);
  if (normNumGroupsRaw === null) fail('norm_num_groups', 'null (no group norm) is not supported');
  const normNumGroups = int('norm_num_groups', normNumGroupsRaw);
  for (const c of blockOut) if (c % normNumGroups !== 0) fail('norm_num_groups', `${normNumGroups} does not divide block_out_channels entry ${c}`);
  const normEps = num('norm_eps', get('norm_eps', 1e-5));
  const useLinearProjection = bool('use_linear_projection', get('use_linear_projection', false));

  const shift = get('resnet_time_scale_shift', 'default');
  if (shift !== 'default' && shift !== 'scale_shift') fail('resnet_time_scale_shift', `${JSON.stringify(shift)} is not supported (default, scale_shift)`);

  const transformer = (level: number, channels: number, layers: number, key: string, onlyCrossAttention: boolean): TransformerPlan => {
    const h = heads[level]!;
    if (channels % h !== 0) fail(key, `${h} heads do not divide ${channels} channels`);
    return { heads: h, headDim: channels / h, layers, crossAttentionDim: crossDims[level]!, onlyCrossAttention };
  };

  // down
  const down: DownBlockPlan[] = [];
  let outCh = blockOut[0]!;
  for (let i = 0; i < n; i++) {
    const inCh = outCh;
    outCh = blockOut[i]!;
    const kind = downTypes[i] as DownBlockKind;
    const nl = layersPerBlock[i]!;
    const perLayer = layersOf('transformer_layers_per_block', tlpb[i]!, nl);
    down.push({
      kind, inChannels: inCh, outChannels: outCh, addDownsample: i < n - 1,
      transformers: perLayer.map(l => (kind === 'CrossAttnDownBlock2D' ? transformer(i, outCh, l, 'attention_head_dim', onlyCross[i]!) : null)),
    });
  }

  // mid (UNetMidBlock2DCrossAttn: one transformer between two resnets; its layer count is the last level's)
  const midType = get('mid_block_type', 'UNetMidBlock2DCrossAttn');
  let mid: MidBlockPlan | null = null;
  if (midType === 'UNetMidBlock2DCrossAttn') {
    const last = n - 1;
    const midLayers = layersOf('transformer_layers_per_block', tlpb[last]!, 1)[0]!;
    mid = {
      channels: blockOut[last]!,
      transformer: transformer(last, blockOut[last]!, midLayers, 'attention_head_dim', false),
      outputScaleFactor: num('mid_block_scale_factor', get('mid_block_scale_factor', 1)),
    };
  } else if (midType !== null) {
    fail('mid_block_type', `${JSON.stringify(midType)} is not supported (UNetMidBlock2DCrossAttn or null)`);
  }

  // up
  const up: UpBlockPlan[] = [];
  const rOut = [...blockOut].reverse();
  const rHeads = [...heads].reverse();
  const rLayers = [...layersPerBlock].reverse();
  const rCross = [...crossDims].reverse();
  const rOnlyCross = [...onlyCross].reverse();
  outCh = rOut[0]!;
  for (let i = 0; i < n; i++) {
    const prev = outCh;
    outCh = rOut[i]!;
    const inCh = rOut[Math.min(i + 1, n - 1)]!;
    const kind = upTypes[i] as UpBlockKind;
    const nl = rLayers[i]! + 1;
    const perLayer = layersOf('reverse_transformer_layers_per_block', reversedTlpb[i]!, nl);
    up.push({
      kind, prevOutputChannels: prev, inChannels: inCh, outChannels: outCh, addUpsample: i < n - 1,
      transformers: perLayer.map(l => {
        if (kind !== 'CrossAttnUpBlock2D') return null;
        const h = rHeads[i]!;
        if (outCh % h !== 0) fail('attention_head_dim', `${h} heads do not divide ${outCh} channels`);
        return { heads: h, headDim: outCh / h, layers: l, crossAttentionDim: rCross[i]!, onlyCrossAttention: rOnlyCross[i]! };
      }),
    });
  }

  // time embedding
  const timeEmbeddingDim = config['time_embedding_dim'] ?? null;
  const timeEmbedDim = timeEmbeddingDim === null ? blockOut[0]! * 4 : int('time_embedding_dim', timeEmbeddingDim);
  const addType = config['addition_embed_type'] ?? null;
  let textTime: UnetPlan['textTime'] = null;
  if (addType === 'text_time') {
    textTime = {
      timeEmbedDim: int('addition_time_embed_dim', config['addition_time_embed_dim'] ?? null),
      projectionInputDim: int('projection_class_embeddings_input_dim', config['projection_class_embeddings_input_dim'] ?? null),
    };
  } else if (addType !== null) {
    fail('addition_embed_type', `${JSON.stringify(addType)} is not supported (null or "text_time")`);
  }
  const kernel = (k: string): number => {
    const v = int(k, get(k, 3));
    if (v % 2 !== 1) fail(k, `${v} is even; diffusers pads (k-1)/2, which only keeps the size for odd kernels`);
    return v;
  };
  const crossSet = new Set(crossDims);
  if (crossSet.size !== 1) fail('cross_attention_dim', `per-level widths ${JSON.stringify(crossDims)} need an encoder_hid_proj, which is not supported`);

  return {
    inChannels: int('in_channels', get('in_channels', 4)),
    outChannels: int('out_channels', get('out_channels', 4)),
    blockOutChannels: blockOut,
    centerInputSample: bool('center_input_sample', get('center_input_sample', false)),
    flipSinToCos: bool('flip_sin_to_cos', get('flip_sin_to_cos', true)),
    freqShift: num('freq_shift', get('freq_shift', 0)),
    actFn: act('act_fn', get('act_fn', 'silu')),
    normNumGroups,
    normEps,
    useLinearProjection,
    resnetTimeScaleShift: shift as 'default' | 'scale_shift',
    timeEmbedDim,
    timestepPostAct: optAct('timestep_post_act'),
    timeEmbeddingActFn: optAct('time_embedding_act_fn'),
    convInKernel: kernel('conv_in_kernel'),
    convOutKernel: kernel('conv_out_kernel'),
    downsamplePadding: int('downsample_padding', get('downsample_padding', 1), 0),
    textTime,
    down,
    mid,
    up,
    crossAttentionDim: crossDims[0]!,
  };
}
