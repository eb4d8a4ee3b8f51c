/** OpPalettizerConfig: coremltools.optimize.coreml.OpPalettizerConfig as plain data (spec §5.2). */
import {
  checkKeys, dropOwnConfigType, checkWeightThreshold, configError, normalizeGranularity, pyTuple, requireBool, requireInt,
  requireString, show, type Granularity,
} from './common.js';

export type PalettizationMode = 'KMEANS' | 'UNIFORM' | 'UNIQUE' | 'CUSTOM';
export const PALETTIZATION_MODES: readonly PalettizationMode[] = ['KMEANS', 'UNIFORM', 'UNIQUE', 'CUSTOM'];
export const PALETTIZATION_NBITS: readonly number[] = [1, 2, 3, 4, 6, 8];
export type PalettizationGranularity = Extract<Granularity, 'per_tensor' | 'per_grouped_channel'>;
const PAL_GRANULARITIES: readonly PalettizationGranularity[] = ['per_tensor', 'per_grouped_channel'];
export type LutDtype = 'int8' | 'uint8';

/** What a custom LUT function receives: one group's data, channel axis moved to axis 0. */
export interface LutFunctionInput {
  readonly data: Float32Array;
  readonly shape: readonly number[];
}
/** coremltools' lut_function returns (lut, indices); nbits = ceil(log2(lut.length)). */
export interface LutFunctionResult {
  readonly lut: ArrayLike<number>;
  readonly indices: ArrayLike<number>;
}
export type LutFunction = (weight: LutFunctionInput) => LutFunctionResult;

/** Constructor keywords, snake_case like coremltools (plus `lutFunction` as a JS-style alias). */
export interface OpPalettizerConfigOptions {
  mode?: string;
  nbits?: number | null;
  lut_function?: LutFunction | null;
  lutFunction?: LutFunction | null;
  granularity?: string;
  group_size?: number;
  channel_axis?: number | null;
  cluster_dim?: number;
  enable_per_channel_scale?: boolean;
  num_kmeans_workers?: number;
  weight_threshold?: number;
  /**
   * Extension (not in coremltools 9.0, whose constructor raises TypeError for it): store the LUT as
   * int8/uint8. Implemented as palettize followed by a joint per-tensor linear quantization of the
   * LUT, the coremltools 9.0 way to get an int8 LUT (see joint_pal4_q8lut_ios18), so it needs iOS18.
   */
  lut_dtype?: LutDtype | null;
}

/** Keys accepted by from_dict (coremltools' fields minus lut_function, plus our lut_dtype). */
export const PALETTIZER_DICT_KEYS = [
  'mode', 'nbits', 'granularity', 'group_size', 'channel_axis', 'cluster_dim', 'enable_per_channel_scale',
  'num_kmeans_workers', 'weight_threshold', 'lut_dtype',
] as const;
const CONSTRUCTOR_KEYS: readonly string[] = [...PALETTIZER_DICT_KEYS, 'lut_function', 'lutFunction'];

export class OpPalettizerConfig {
  static readonly configType = 'OpPalettizerConfig';
  readonly configType = 'OpPalettizerConfig';
  readonly mode: PalettizationMode;
  /** null for unique/custom (derived per weight). */
  readonly nbits: number | null;
  readonly lutFunction: LutFunction | null;
  readonly granularity: PalettizationGranularity;
  readonly group_size: number;
  /** null: picked from the consuming op (see defaultChannelAxis). Only used for per_grouped_channel. */
  readonly channel_axis: number | null;
  readonly cluster_dim: number;
  readonly enable_per_channel_scale: boolean;
  readonly num_kmeans_workers: number;
  readonly weight_threshold: number;
  readonly lut_dtype: LutDtype | null;

  constructor(options: OpPalettizerConfigOptions = {}) {
    checkKeys(options as Record<string, unknown>, CONSTRUCTOR_KEYS, 'OpPalettizerConfig');
    if (options.lut_function != null && options.lutFunction != null) {
      throw configError('lut_function', 'Give the LUT function once: "lut_function" or "lutFunction", not both.');
    }
    // attrs order: converters first (granularity), then validators in field order.
    const granularity = normalizeGranularity(options.granularity ?? 'per_tensor', PAL_GRANULARITIES);

    const rawMode = requireString('mode', options.mode ?? 'kmeans');
    const mode = rawMode.toUpperCase();
    if (!PALETTIZATION_MODES.includes(mode as PalettizationMode)) {
      throw configError('mode', `Only modes ${pyTuple(PALETTIZATION_MODES)} are supported for weight palettization. Got "mode": "${rawMode}".`);
    }
    const nbits = options.nbits ?? null;
    if (nbits === null && (mode === 'KMEANS' || mode === 'UNIFORM')) {
      throw configError('nbits', `"nbits" must be provided for ${rawMode} mode`);
    }
    if (nbits !== null && (mode === 'UNIQUE' || mode === 'CUSTOM')) {
      throw configError('nbits', `"nbits" must NOT be provided for ${rawMode} mode`);
    }
    if (nbits !== null && !PALETTIZATION_NBITS.includes(nbits as number)) {
      throw configError('nbits', `Invalid value of "nbits" (${show(nbits)}) for palettization. Supported "nbits" are ${pyTuple(PALETTIZATION_NBITS)}`);
    }
    const lutFunction = options.lut_function ?? options.lutFunction ?? null;
    if (lutFunction === null && mode === 'CUSTOM') {
      throw configError('lut_function', '"lut_function" can not be None, if "mode" is "custom".');
    }
    if (lutFunction !== null && mode !== 'CUSTOM') {
      throw configError('lut_function', '"lut_function" must be None, if "mode" is not "custom".');
    }
    if (lutFunction !== null && typeof lutFunction !== 'function') {
      throw configError('lut_function', `A function object must be provided as "lut_function". Got a "lut_function" as type ${typeof lutFunction}`);
    }
    const groupSize = requireInt('group_size', options.group_size ?? 32);
    const channelAxis = options.channel_axis ?? null;
    if (channelAxis !== null) requireInt('channel_axis', channelAxis);
    const clusterDim = requireInt('cluster_dim', options.cluster_dim ?? 1);
    const pcs = requireBool('enable_per_channel_scale', options.enable_per_channel_scale ?? false);
    const workers = requireInt('num_kmeans_workers', options.num_kmeans_workers ?? 1);
    const weightThreshold = checkWeightThreshold(options.weight_threshold === undefined ? 2048 : options.weight_threshold);

    // Checks coremltools only hits while compressing (or never, leading to a crash); we fail early.
    if (groupSize < 0) {
      throw configError('group_size', `"group_size" must be >= 0 (0 = one group over the whole axis), got ${groupSize}.`);
    }
    if (clusterDim < 1) throw configError('cluster_dim', `"cluster_dim" must be >= 1, got ${clusterDim}.`);
    if (workers < 1) throw configError('num_kmeans_workers', `"num_kmeans_workers" must be >= 1, got ${workers}.`);
    if (mode === 'UNIFORM' && clusterDim > 1) {
      throw configError('cluster_dim', `Vector palettization (cluster_dim > 1) doesn't support UNIFORM mode. Got "cluster_dim": ${clusterDim}.`);
    }
    // group_size % cluster_dim != 0 is not an error in coremltools: each weight is skipped with a warning.
    const lutDtype = options.lut_dtype ?? null;
    if (lutDtype !== null && lutDtype !== 'int8' && lutDtype !== 'uint8') {
      throw configError('lut_dtype', `"lut_dtype" must be one of int8, uint8 or null, got ${show(lutDtype)}.`);
    }

    this.mode = mode as PalettizationMode;
    this.nbits = nbits;
    this.lutFunction = lutFunction;
    this.granularity = granularity;
    this.group_size = groupSize;
    this.channel_axis = channelAxis;
    this.cluster_dim = clusterDim;
    this.enable_per_channel_scale = pcs;
    this.num_kmeans_workers = workers;
    this.weight_threshold = weightThreshold;
    this.lut_dtype = lutDtype;
    Object.freeze(this);
  }

  /** The from_dict schema, as coremltools stores it (lut_dtype only when set; lut_function never). */
  toDict(): Record<string, unknown> {
    const d: Record<string, unknown> = {
      mode: this.mode,
      nbits: this.nbits,
      granularity: this.granularity,
      group_size: this.group_size,
      channel_axis: this.channel_axis,
      cluster_dim: this.cluster_dim,
      enable_per_channel_scale: this.enable_per_channel_scale,
      num_kmeans_workers: this.num_kmeans_workers,
      weight_threshold: this.weight_threshold,
    };
    if (this.lut_dtype !== null) d['lut_dtype'] = this.lut_dtype;
    d['config_type'] = 'OpPalettizerConfig';
    return d;
  }

  static fromDict(d: Record<string, unknown>): OpPalettizerConfig {
    d = dropOwnConfigType(d, 'OpPalettizerConfig');
    if ('lut_function' in d || 'lutFunction' in d) {
      throw configError('lut_function', '_from_dict method does not support lut_function. Please create the OpPalettizerConfig from scratch.');
    }
    checkKeys(d, PALETTIZER_DICT_KEYS, 'OpPalettizerConfig');
    return new OpPalettizerConfig(d as OpPalettizerConfigOptions);
  }

  /** attrs equality: every field, the LUT function by identity. */
  equals(other: unknown): boolean {
    return other instanceof OpPalettizerConfig && other.lutFunction === this.lutFunction
      && JSON.stringify(other.toDict()) === JSON.stringify(this.toDict());
  }

  toString(): string {
    return `OpPalettizerConfig(${Object.entries(this.toDict()).filter(([k]) => k !== 'config_type').map(([k, v]) => `${k}=${show(v)}`).join(', ')})`;
  }
}

/**
 * The quantization that implements our lut_dtype extension: a joint, per-tensor linear quantization
 * of the LUT (int8: linear_symmetric like joint_pal4_q8lut_ios18; uint8: linear, with a zero point),
 * run right after palettization with the same weight_threshold (joint mode measures the dense weight).
 */
export function lutDtypeQuantizerOptions(config: OpPalettizerConfig): {
  mode: 'linear_symmetric' | 'linear'; dtype: LutDtype; granularity: 'per_tensor'; weight_threshold: number;
} | null {
  if (config.lut_dtype === null) return null;
  return {
    mode: config.lut_dtype === 'int8' ? 'linear_symmetric' : 'linear',
    dtype: config.lut_dtype,
    granularity: 'per_tensor',
    weight_threshold: config.weight_threshold,
  };
}
