/** OpLinearQuantizerConfig: coremltools.optimize.coreml.OpLinearQuantizerConfig as plain data (spec §5.4). */
import {
  checkKeys, dropOwnConfigType, checkWeightThreshold, configError, normalizeGranularity, pyTuple, requireString, show, type Granularity,
} from './common.js';

export type QuantizationMode = 'LINEAR_SYMMETRIC' | 'LINEAR';
export const QUANTIZATION_MODES: readonly QuantizationMode[] = ['LINEAR_SYMMETRIC', 'LINEAR'];
export type QuantizationDtype = 'int8' | 'uint8' | 'int4' | 'uint4';
export const QUANTIZATION_DTYPES: readonly QuantizationDtype[] = ['int8', 'uint8', 'int4', 'uint4'];
export type QuantizationGranularity = Extract<Granularity, 'per_tensor' | 'per_channel' | 'per_block'>;
const Q_GRANULARITIES: readonly QuantizationGranularity[] = ['per_tensor', 'per_channel', 'per_block'];

/** MIL builtin type names coremltools' types.string_to_builtin knows (valid names, wrong for quantization). */
const MIL_TYPE_NAMES = new Set([
  'bool', 'int4', 'int8', 'int16', 'int32', 'int64', 'uint1', 'uint2', 'uint3', 'uint4', 'uint6', 'uint8',
  'uint16', 'uint32', 'uint64', 'fp16', 'fp32', 'fp64', 'string',
]);
/** numpy scalar type names coremltools would see as np.<name>. */
const NUMPY_INT_TO_MIL: Record<string, string> = {
  int8: 'int8', uint8: 'uint8', int16: 'int16', uint16: 'uint16', int32: 'int32', uint32: 'uint32',
  int64: 'int64', uint64: 'uint64',
};

/**
 * coremltools' _normalize_dtype + check_dtype. Accepts MIL names ("int8", "int4", ...) and numpy-style
 * spellings of the same types ("np.int8", "numpy.uint8", "<class 'numpy.int8'>", "types.int4").
 */
export function normalizeQuantizationDtype(value: unknown): QuantizationDtype {
  if (typeof value !== 'string') {
    throw configError('dtype', `dtype=${show(value)} is unsupported for OpLinearQuantizerConfig. Only support int8/uint8/int4/uint4.`);
  }
  let name = value.trim();
  const cls = /^<class '(.+)'>$/.exec(name);
  if (cls) name = cls[1]!;
  const numpy = /^(?:np|numpy)\.(\w+)$/.exec(name);
  if (numpy) {
    const mil = Object.hasOwn(NUMPY_INT_TO_MIL, numpy[1]!) ? NUMPY_INT_TO_MIL[numpy[1]!] : undefined;
    if (mil === undefined) {
      throw configError('dtype', `dtype=${value} is unsupported for OpLinearQuantizerConfig. Only support int8/uint8/int4/uint4.`);
    }
    name = mil;
  } else {
    const mil = /^(?:(?:coremltools\.converters\.mil\.mil\.|ct\.converters\.mil\.mil\.|mil\.)?types\.)(\w+)$/.exec(name);
    if (mil) name = mil[1]!;
  }
  if (!MIL_TYPE_NAMES.has(name)) {
    throw configError('dtype', `Invalid dtype ${value}. Only support int8/uint8/int4/uint4.`);
  }
  if (!QUANTIZATION_DTYPES.includes(name as QuantizationDtype)) {
    throw configError('dtype', `Invalid dtype. Should be int4/8 or uint4/8, but got ${name}`);
  }
  return name as QuantizationDtype;
}

export interface OpLinearQuantizerConfigOptions {
  mode?: string;
  dtype?: string;
  granularity?: string;
  /** int >= 0, or one int >= 0 per weight axis (0 = the whole axis); only used for per_block. */
  block_size?: number | readonly number[];
  weight_threshold?: number;
}

export const QUANTIZER_DICT_KEYS = ['mode', 'dtype', 'granularity', 'block_size', 'weight_threshold'] as const;

function checkBlockSize(value: unknown): number | readonly number[] {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw configError('block_size', `The block_size should be int or list/tuple of int, but got ${show(value)}.`);
    }
    if (value < 0) throw configError('block_size', `The block_size must be non-negative values, but got ${value}`);
    return value;
  }
  if (Array.isArray(value)) {
    for (const b of value) {
      if (typeof b !== 'number' || !Number.isSafeInteger(b) || b < 0) {
        throw configError('block_size', `All values in block_size must be non-negative values. Got block_size ${show(value)}.`);
      }
    }
    return Object.freeze([...(value as number[])]);
  }
  throw configError('block_size', `The block_size should be int or list/tuple of int, but got ${show(value)}.`);
}

export class OpLinearQuantizerConfig {
  static readonly configType = 'OpLinearQuantizerConfig';
  readonly configType = 'OpLinearQuantizerConfig';
  readonly mode: QuantizationMode;
  readonly dtype: QuantizationDtype;
  readonly granularity: QuantizationGranularity;
  readonly block_size: number | readonly number[];
  readonly weight_threshold: number;

  constructor(options: OpLinearQuantizerConfigOptions = {}) {
    checkKeys(options as Record<string, unknown>, QUANTIZER_DICT_KEYS, 'OpLinearQuantizerConfig');
    // attrs order: converters (dtype, granularity), then validators in field order.
    const dtype = normalizeQuantizationDtype(options.dtype ?? 'int8');
    const granularity = normalizeGranularity(options.granularity ?? 'per_channel', Q_GRANULARITIES);
    const rawMode = requireString('mode', options.mode ?? 'linear_symmetric');
    const mode = rawMode.toUpperCase();
    if (!QUANTIZATION_MODES.includes(mode as QuantizationMode)) {
      throw configError('mode', `Only mode ${pyTuple(QUANTIZATION_MODES)} supported for weight affine quantization. Got mode: "${rawMode}".`);
    }
    this.mode = mode as QuantizationMode;
    this.dtype = dtype;
    this.granularity = granularity;
    this.block_size = checkBlockSize(options.block_size ?? 32);
    this.weight_threshold = checkWeightThreshold(options.weight_threshold === undefined ? 2048 : options.weight_threshold);
    Object.freeze(this);
  }

  /** Bits per stored value (coremltools keeps nbits/signed for backward compatibility). */
  get nbits(): 4 | 8 {
    return this.dtype.endsWith('4') ? 4 : 8;
  }
  get signed(): boolean {
    return !this.dtype.startsWith('u');
  }

  toDict(): Record<string, unknown> {
    return {
      mode: this.mode,
      dtype: this.dtype,
      granularity: this.granularity,
      block_size: Array.isArray(this.block_size) ? [...this.block_size] : this.block_size,
      weight_threshold: this.weight_threshold,
      config_type: 'OpLinearQuantizerConfig',
    };
  }

  static fromDict(d: Record<string, unknown>): OpLinearQuantizerConfig {
    d = dropOwnConfigType(d, 'OpLinearQuantizerConfig');
    checkKeys(d, QUANTIZER_DICT_KEYS, 'OpLinearQuantizerConfig');
    return new OpLinearQuantizerConfig(d as OpLinearQuantizerConfigOptions);
  }

  equals(other: unknown): boolean {
    return other instanceof OpLinearQuantizerConfig && JSON.stringify(other.toDict()) === JSON.stringify(this.toDict());
  }

  toString(): string {
    return `OpLinearQuantizerConfig(${Object.entries(this.toDict()).filter(([k]) => k !== 'config_type').map(([k, v]) => `${k}=${show(v)}`).join(', ')})`;
  }
}
