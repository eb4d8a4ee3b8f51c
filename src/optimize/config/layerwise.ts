/**
 * coremltools' layerwise compression configs (coremltools/optimize/torch/layerwise_compression/):
 * ModuleSparseGPTConfig (algorithm "sparse_gpt"), ModuleGPTQConfig (algorithm "gptq") and
 * LayerwiseCompressorConfig, as their dicts are written in Python. Field names and defaults are
 * coremltools' (note: ModuleSparseGPTConfig's weight_dtype defaults to "uint8", so by default the
 * surviving weights are also snapped to an 8-bit symmetric per-channel grid, as coremltools does;
 * "float16" / "float32" give pure pruning).
 */
import { checkKeys, configError, isPlainObject, requireBool, requireFloat, requireInt, show } from './common.js';
import { parseJsonText, parseYamlText, readDataFile, withFile } from './parse.js';

export type LayerwiseAlgorithm = 'sparse_gpt' | 'gptq';
export type LayerwiseGranularity = 'per_channel' | 'per_tensor' | 'per_block';
export type LayerwiseScheme = 'symmetric' | 'affine';

/** Bits of a weight_dtype string (torch.uint8, "uint4", "int8", ...); 0 for float16/float32 (no quantization). */
export function weightDtypeBits(key: string, value: unknown): number {
  if (typeof value !== 'string') throw configError(key, `"${key}" must be a dtype string such as "uint8", "uint4" or "float32", got ${show(value)}.`);
  const v = value.replace(/^torch\./, '');
  if (v === 'float32' || v === 'float16' || v === 'float' || v === 'half') return 0;
  const m = /^u?int(\d)$/.exec(v);
  const bits = m ? Number(m[1]) : NaN;
  if (bits !== 8 && bits !== 4) {
    throw configError(key, `Invalid "${key}": ${show(value)}. Use uint8 / int8 / uint4 / int4 (quantized) or float16 / float32.`);
  }
  return bits;
}

function granularity(key: string, value: unknown): LayerwiseGranularity {
  const v = typeof value === 'string' ? value.replace(/^QuantizationGranularity\./, '').toLowerCase() : value;
  if (v !== 'per_channel' && v !== 'per_tensor' && v !== 'per_block') {
    throw configError(key, `"${key}" must be one of per_channel, per_tensor, per_block, got ${show(value)}.`);
  }
  return v;
}

function scheme(key: string, value: unknown): LayerwiseScheme {
  const v = typeof value === 'string' ? value.replace(/^QuantizationScheme\./, '').toLowerCase() : value;
  if (v !== 'symmetric' && v !== 'affine') throw configError(key, `"${key}" must be symmetric or affine, got ${show(value)}.`);
  return v;
}

function dampening(value: unknown): number {
  const d = requireFloat('hessian_dampening', value);
  if (d < 0) throw configError('hessian_dampening', `"hessian_dampening" must be >= 0, got ${d}.`);
  return d;
}

function groupSize(value: unknown): number {
  const g = requireInt('processing_group_size', value);
  if (g < 1) throw configError('processing_group_size', `"processing_group_size" must be a positive integer, got ${g}.`);
  return g;
}

export const SPARSE_GPT_KEYS = [
  'algorithm', 'target_sparsity', 'n_m_ratio', 'weight_dtype', 'quantization_granularity', 'quantization_scheme',
  'enable_normal_float', 'hessian_dampening', 'processing_group_size',
] as const;

export interface ModuleSparseGPTConfigOptions {
  target_sparsity?: number;
  n_m_ratio?: readonly number[] | null;
  weight_dtype?: string;
  quantization_granularity?: string;
  quantization_scheme?: string;
  enable_normal_float?: boolean;
  hessian_dampening?: number;
  processing_group_size?: number;
}

export class ModuleSparseGPTConfig {
  readonly algorithm = 'sparse_gpt' as const;
  readonly target_sparsity: number;
  readonly n_m_ratio: readonly [number, number] | null;
  readonly weight_dtype: string;
  /** Bits the surviving weights are snapped to (0 = none). */
  readonly bits: number;
  readonly quantization_granularity: LayerwiseGranularity;
  readonly quantization_scheme: LayerwiseScheme;
  readonly enable_normal_float: boolean;
  readonly hessian_dampening: number;
  readonly processing_group_size: number;

  constructor(o: ModuleSparseGPTConfigOptions = {}) {
    checkKeys(o as Record<string, unknown>, SPARSE_GPT_KEYS.filter((k) => k !== 'algorithm'), 'ModuleSparseGPTConfig');
    const ts = requireFloat('target_sparsity', o.target_sparsity ?? 0.5);
    if (ts < 0 || ts > 1) throw configError('target_sparsity', `Invalid value of "target_sparsity": ${ts}. Needs to be in [0, 1].`);
    this.target_sparsity = ts;
    const nm = o.n_m_ratio ?? null;
    if (nm !== null) {
      if (!Array.isArray(nm) || nm.length !== 2 || !nm.every((x) => Number.isSafeInteger(x)) || nm[0]! < 0 || nm[1]! < 1 || nm[0]! > nm[1]!) {
        throw configError('n_m_ratio', `"n_m_ratio" must be two integers (n, m) with 0 <= n <= m, got ${show(nm)}.`);
      }
      this.n_m_ratio = Object.freeze([nm[0]!, nm[1]!] as [number, number]);
    } else {
      this.n_m_ratio = null;
    }
    this.weight_dtype = o.weight_dtype ?? 'uint8';
    this.bits = weightDtypeBits('weight_dtype', this.weight_dtype);
    this.quantization_granularity = granularity('quantization_granularity', o.quantization_granularity ?? 'per_channel');
    this.quantization_scheme = scheme('quantization_scheme', o.quantization_scheme ?? 'symmetric');
    this.enable_normal_float = requireBool('enable_normal_float', o.enable_normal_float ?? false);
    if (this.enable_normal_float) throw configError('enable_normal_float', '"enable_normal_float" (NF3/NF4 palettes) is not supported.');
    if (this.bits > 0 && this.quantization_granularity === 'per_block') {
      throw configError('quantization_granularity', 'SparseGPT quantizes the surviving weights per_channel or per_tensor (ModuleSparseGPTConfig has no block size), got per_block.');
    }
    this.hessian_dampening = dampening(o.hessian_dampening ?? 0.01);
    this.processing_group_size = groupSize(o.processing_group_size ?? 128);
    if (this.n_m_ratio && this.n_m_ratio[1] > 0 && this.processing_group_size % this.n_m_ratio[1] !== 0) {
      throw configError('processing_group_size', `"processing_group_size" (${this.processing_group_size}) must be a multiple of m (${this.n_m_ratio[1]}) for n:m pruning.`);
    }
    Object.freeze(this);
  }

  toDict(): Record<string, unknown> {
    return {
      algorithm: 'sparse_gpt', target_sparsity: this.target_sparsity, n_m_ratio: this.n_m_ratio ? [...this.n_m_ratio] : null,
      weight_dtype: this.weight_dtype, quantization_granularity: this.quantization_granularity,
      quantization_scheme: this.quantization_scheme, enable_normal_float: this.enable_normal_float,
      hessian_dampening: this.hessian_dampening, processing_group_size: this.processing_group_size,
    };
  }

  describe(): string {
    const what = this.n_m_ratio ? `${this.n_m_ratio[0]}:${this.n_m_ratio[1]}` : `${(this.target_sparsity * 100).toFixed(1)}%`;
    return `SparseGPT ${what}${this.bits ? `, ${this.bits}-bit ${this.quantization_scheme} survivors` : ''}`;
  }
}

export const GPTQ_KEYS = [
  'algorithm', 'weight_dtype', 'granularity', 'quantization_scheme', 'block_size', 'enable_normal_float',
  'hessian_dampening', 'use_activation_order_heuristic', 'processing_group_size',
] as const;

export interface ModuleGPTQConfigOptions {
  weight_dtype?: string;
  granularity?: string;
  quantization_scheme?: string;
  block_size?: number | null;
  enable_normal_float?: boolean;
  hessian_dampening?: number;
  use_activation_order_heuristic?: boolean;
  processing_group_size?: number;
}

export class ModuleGPTQConfig {
  readonly algorithm = 'gptq' as const;
  readonly weight_dtype: string;
  readonly bits: number;
  readonly granularity: LayerwiseGranularity;
  readonly quantization_scheme: LayerwiseScheme;
  /** per_block: input channels per block (multiplied by kh·kw for a conv, as coremltools does). */
  readonly block_size: number | null;
  readonly enable_normal_float: boolean;
  readonly hessian_dampening: number;
  readonly use_activation_order_heuristic: boolean;
  readonly processing_group_size: number;

  constructor(o: ModuleGPTQConfigOptions = {}) {
    checkKeys(o as Record<string, unknown>, GPTQ_KEYS.filter((k) => k !== 'algorithm'), 'ModuleGPTQConfig');
    this.weight_dtype = o.weight_dtype ?? 'uint8';
    this.bits = weightDtypeBits('weight_dtype', this.weight_dtype);
    if (this.bits === 0) throw configError('weight_dtype', `GPTQ quantizes: "weight_dtype" must be an integer type (uint8, uint4, ...), got ${show(this.weight_dtype)}.`);
    this.granularity = granularity('granularity', o.granularity ?? 'per_channel');
    this.quantization_scheme = scheme('quantization_scheme', o.quantization_scheme ?? 'symmetric');
    const bs = o.block_size ?? null;
    if (bs !== null && (requireInt('block_size', bs) < 1)) throw configError('block_size', `"block_size" must be a positive integer, got ${bs}.`);
    if (this.granularity === 'per_block' && bs === null) throw configError('block_size', '"block_size" is required with granularity per_block.');
    this.block_size = this.granularity === 'per_block' ? bs : null;
    this.enable_normal_float = requireBool('enable_normal_float', o.enable_normal_float ?? false);
    if (this.enable_normal_float) throw configError('enable_normal_float', '"enable_normal_float" (NF3/NF4 palettes) is not supported.');
    this.hessian_dampening = dampening(o.hessian_dampening ?? 0.01);
    this.use_activation_order_heuristic = requireBool('use_activation_order_heuristic', o.use_activation_order_heuristic ?? false);
    this.processing_group_size = groupSize(o.processing_group_size ?? 128);
    Object.freeze(this);
  }

  toDict(): Record<string, unknown> {
    return {
      algorithm: 'gptq', weight_dtype: this.weight_dtype, granularity: this.granularity, quantization_scheme: this.quantization_scheme,
      block_size: this.block_size, enable_normal_float: this.enable_normal_float, hessian_dampening: this.hessian_dampening,
      use_activation_order_heuristic: this.use_activation_order_heuristic, processing_group_size: this.processing_group_size,
    };
  }

  describe(): string {
    const g = this.granularity === 'per_block' ? `per_block ${this.block_size}` : this.granularity;
    return `GPTQ ${this.bits}-bit ${this.quantization_scheme}, ${g}${this.use_activation_order_heuristic ? ', act-order' : ''}`;
  }
}

export type LayerwiseModuleConfig = ModuleSparseGPTConfig | ModuleGPTQConfig;

/** A module config from its dict; `algorithm` picks the class (default: `defaultAlgorithm`). */
export function moduleConfigFromDict(d: unknown, defaultAlgorithm: LayerwiseAlgorithm, where: string): LayerwiseModuleConfig | null {
  if (d === null) return null;
  if (d instanceof ModuleSparseGPTConfig || d instanceof ModuleGPTQConfig) return d;
  if (!isPlainObject(d)) throw configError(where, `${where} must be a dict of config fields or null, got ${show(d)}.`);
  const { algorithm = defaultAlgorithm, ...fields } = d;
  try {
    if (algorithm === 'sparse_gpt') return new ModuleSparseGPTConfig(fields as ModuleSparseGPTConfigOptions);
    if (algorithm === 'gptq') return new ModuleGPTQConfig(fields as ModuleGPTQConfigOptions);
  } catch (e) {
    if (e instanceof Error) e.message = `${where}: ${e.message}`;
    throw e;
  }
  throw configError('algorithm', `${where}: unknown algorithm ${show(algorithm)} (sparse_gpt or gptq).`);
}

export const LAYERWISE_KEYS = ['global_config', 'module_type_configs', 'module_name_configs', 'layers', 'input_cacher', 'calibration_nsamples'] as const;

/** torch module types and the MIL ops they correspond to here. */
const MODULE_TYPE_OPS: Record<string, readonly string[]> = {
  Linear: ['linear', 'matmul'],
  Conv2d: ['conv'],
  Conv1d: ['conv'],
  linear: ['linear'],
  matmul: ['matmul'],
  conv: ['conv'],
};

export interface LayerwiseCompressorConfigOptions {
  global_config?: LayerwiseModuleConfig | Record<string, unknown> | null;
  module_type_configs?: Record<string, LayerwiseModuleConfig | Record<string, unknown> | null>;
  module_name_configs?: Record<string, LayerwiseModuleConfig | Record<string, unknown> | null>;
  layers?: readonly string[] | null;
  input_cacher?: string;
  calibration_nsamples?: number;
}

export class LayerwiseCompressorConfig {
  readonly global_config: LayerwiseModuleConfig | null;
  /** Keyed by MIL op type (linear / matmul / conv); torch names (Linear, Conv2d) are mapped. */
  readonly module_type_configs: ReadonlyMap<string, LayerwiseModuleConfig | null>;
  /** Keyed by op name or weight name. */
  readonly module_name_configs: ReadonlyMap<string, LayerwiseModuleConfig | null>;
  /** Regexes searched in op / weight names; each distinct match is one layer. null: every op (ops reading one input together). */
  readonly layers: readonly string[] | null;
  readonly calibration_nsamples: number;

  constructor(o: LayerwiseCompressorConfigOptions = {}, defaultAlgorithm: LayerwiseAlgorithm = 'sparse_gpt') {
    checkKeys(o as Record<string, unknown>, LAYERWISE_KEYS, 'LayerwiseCompressorConfig');
    const g = o.global_config === undefined ? {} : o.global_config;
    this.global_config = moduleConfigFromDict(g, defaultAlgorithm, 'global_config');
    const types = new Map<string, LayerwiseModuleConfig | null>();
    const mt = o.module_type_configs ?? {};
    if (!isPlainObject(mt)) throw configError('module_type_configs', `"module_type_configs" must be a mapping, got ${show(mt)}.`);
    for (const [k, v] of Object.entries(mt)) {
      const key = k.replace(/^(torch\.)?nn\./, '');
      const ops = MODULE_TYPE_OPS[key];
      if (!ops) throw configError('module_type_configs', `Unknown module type ${show(k)} in module_type_configs (Linear, Conv2d, Conv1d, linear, matmul, conv).`);
      const cfg = moduleConfigFromDict(v, defaultAlgorithm, `module_type_configs[${k}]`);
      for (const op of ops) types.set(op, cfg);
    }
    this.module_type_configs = types;
    const names = new Map<string, LayerwiseModuleConfig | null>();
    const mn = o.module_name_configs ?? {};
    if (!isPlainObject(mn)) throw configError('module_name_configs', `"module_name_configs" must be a mapping, got ${show(mn)}.`);
    for (const [k, v] of Object.entries(mn)) names.set(k, moduleConfigFromDict(v, defaultAlgorithm, `module_name_configs[${k}]`));
    this.module_name_configs = names;
    const layers = o.layers ?? null;
    if (layers !== null) {
      if (!Array.isArray(layers) || layers.length === 0 || !layers.every((l) => typeof l === 'string')) {
        throw configError('layers', `"layers" must be a non-empty list of regex strings or null, got ${show(layers)}.`);
      }
      for (const l of layers) {
        try {
          new RegExp(l);
        } catch (e) {
          throw configError('layers', `"layers" entry ${show(l)} is not a valid regex: ${(e as Error).message}`);
        }
      }
    }
    this.layers = layers ? Object.freeze([...layers]) : null;
    const cacher = o.input_cacher ?? 'default';
    if (cacher !== 'default' && cacher !== 'gpt') throw configError('input_cacher', `"input_cacher" must be "default" or "gpt", got ${show(cacher)}.`);
    const n = requireInt('calibration_nsamples', o.calibration_nsamples ?? 128);
    if (n < 1) throw configError('calibration_nsamples', `"calibration_nsamples" must be a positive integer, got ${n}.`);
    this.calibration_nsamples = n;
    Object.freeze(this);
  }

  /** coremltools' lookup: module name, then module type, then global. */
  configFor(opName: string, weightName: string, opType: string): LayerwiseModuleConfig | null {
    if (this.module_name_configs.has(opName)) return this.module_name_configs.get(opName)!;
    if (this.module_name_configs.has(weightName)) return this.module_name_configs.get(weightName)!;
    if (this.module_type_configs.has(opType)) return this.module_type_configs.get(opType)!;
    return this.global_config;
  }

  allConfigs(): LayerwiseModuleConfig[] {
    const all = [this.global_config, ...this.module_type_configs.values(), ...this.module_name_configs.values()];
    return all.filter((c): c is LayerwiseModuleConfig => c !== null);
  }

  static fromDict(d: unknown, defaultAlgorithm: LayerwiseAlgorithm = 'sparse_gpt'): LayerwiseCompressorConfig {
    if (d instanceof LayerwiseCompressorConfig) return d;
    if (!isPlainObject(d)) throw configError('config', `a LayerwiseCompressorConfig must be a mapping, got ${show(d)}.`);
    return new LayerwiseCompressorConfig(d as LayerwiseCompressorConfigOptions, defaultAlgorithm);
  }

  static fromYaml(text: string, defaultAlgorithm: LayerwiseAlgorithm = 'sparse_gpt'): LayerwiseCompressorConfig {
    return LayerwiseCompressorConfig.fromDict(parseYamlText(text), defaultAlgorithm);
  }

  static fromJson(text: string, defaultAlgorithm: LayerwiseAlgorithm = 'sparse_gpt'): LayerwiseCompressorConfig {
    return LayerwiseCompressorConfig.fromDict(parseJsonText(text), defaultAlgorithm);
  }

  static fromFile(path: string, defaultAlgorithm: LayerwiseAlgorithm = 'sparse_gpt'): LayerwiseCompressorConfig {
    const data = readDataFile(path);
    return withFile(path, () => LayerwiseCompressorConfig.fromDict(data, defaultAlgorithm));
  }

  equals(other: unknown): boolean {
    return other instanceof LayerwiseCompressorConfig && JSON.stringify(other.toDict()) === JSON.stringify(this.toDict());
  }

  toDict(): Record<string, unknown> {
    return {
      global_config: this.global_config?.toDict() ?? null,
      module_type_configs: Object.fromEntries([...this.module_type_configs].map(([k, v]) => [k, v?.toDict() ?? null])),
      module_name_configs: Object.fromEntries([...this.module_name_configs].map(([k, v]) => [k, v?.toDict() ?? null])),
      layers: this.layers ? [...this.layers] : null,
      calibration_nsamples: this.calibration_nsamples,
    };
  }
}
