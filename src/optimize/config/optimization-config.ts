/**
 * OptimizationConfig: global / op-type / op-name configs and coremltools' lookup rules (spec §5.1, §5.5).
 */
import { configError, isPlainObject, pyTuple, show } from './common.js';
import { parseJsonText, parseYamlText } from './parse.js';
import { OpLinearQuantizerConfig } from './quantizer.js';
import { OpPalettizerConfig } from './palettizer.js';
import { OpMagnitudePrunerConfig, OpThresholdPrunerConfig } from './pruners.js';

export type OpCompressorConfig = OpPalettizerConfig | OpLinearQuantizerConfig | OpMagnitudePrunerConfig | OpThresholdPrunerConfig;
export type OpConfigType = OpCompressorConfig['configType'];

/** config_type name → class. Only the Op*Config classes are accepted (coremltools does getattr on its module). */
export const OP_CONFIG_CLASSES = {
  OpPalettizerConfig,
  OpLinearQuantizerConfig,
  OpMagnitudePrunerConfig,
  OpThresholdPrunerConfig,
} as const;
export const OP_CONFIG_TYPES = Object.keys(OP_CONFIG_CLASSES) as OpConfigType[];

export function isOpCompressorConfig(value: unknown): value is OpCompressorConfig {
  return value instanceof OpPalettizerConfig || value instanceof OpLinearQuantizerConfig
    || value instanceof OpMagnitudePrunerConfig || value instanceof OpThresholdPrunerConfig;
}

/** Builds one op config from its dict; a `config_type` inside the dict overrides the default class. */
export function opConfigFromDict(defaultType: string, d: unknown, where: string): OpCompressorConfig | null {
  if (d === null || d === undefined) return null;
  if (!isPlainObject(d)) {
    throw configError(where, `${where} must be a dict of config fields or null, got ${show(d)}.`);
  }
  const { config_type: ownType, ...fields } = d;
  const type = ownType ?? defaultType;
  if (typeof type !== 'string' || !Object.hasOwn(OP_CONFIG_CLASSES, type)) {
    throw configError('config_type', `Invalid config_type ${show(type)} in ${where}. Supported config types are ${pyTuple(OP_CONFIG_TYPES)}.`);
  }
  const cls = OP_CONFIG_CLASSES[type as OpConfigType];
  try {
    return cls.fromDict(fields);
  } catch (e) {
    if (e instanceof Error) e.message = `${where}: ${e.message}`;
    throw e;
  }
}

/** An op as the lookup rule sees it. */
export interface OpRef {
  readonly name: string;
  readonly type: string;
}

export interface OptimizationConfigOptions {
  global_config?: OpCompressorConfig | null;
  op_type_configs?: Record<string, OpCompressorConfig | null> | Map<string, OpCompressorConfig | null> | null;
  op_name_configs?: Record<string, OpCompressorConfig | null> | Map<string, OpCompressorConfig | null> | null;
}

const TOP_LEVEL_KEYS = ['config_type', 'global_config', 'op_name_configs', 'op_type_configs'] as const;

function toMap(key: string, v: OptimizationConfigOptions['op_type_configs']): Map<string, OpCompressorConfig | null> {
  if (v === null || v === undefined) return new Map();
  const entries = v instanceof Map ? [...v.entries()] : isPlainObject(v) ? Object.entries(v) : null;
  if (entries === null) throw configError(key, `${key} must be type of dict. Got ${show(v)}`);
  for (const [name, c] of entries) {
    if (c !== null && !isOpCompressorConfig(c)) {
      throw configError(key, `config must be type of OpCompressorConfig. Got ${show(c)} for ${key}[${name}].`);
    }
  }
  return new Map(entries as [string, OpCompressorConfig | null][]);
}

function checkOpTypeEntry(opType: string, c: OpCompressorConfig | null): void {
  // coremltools raises this when resolving any const not named in op_name_configs, i.e. on every run.
  if (opType === 'const') {
    throw configError('op_type_configs', 'const ops cannot be set by the `set_op_type` function. Please use `set_global`');
  }
  if (c instanceof OpMagnitudePrunerConfig) c.validateOpType(opType);
}

export class OptimizationConfig {
  global_config: OpCompressorConfig | null;
  readonly op_type_configs: Map<string, OpCompressorConfig | null>;
  readonly op_name_configs: Map<string, OpCompressorConfig | null>;
  /** config_type given to fromDict; toDict falls back to it when there is no non-null config. */
  private readonly defaultConfigType: string | null;

  constructor(options: OptimizationConfigOptions = {}, defaultConfigType: string | null = null) {
    if (!isPlainObject(options as unknown)) throw configError('config', `OptimizationConfig options must be an object, got ${show(options)}.`);
    for (const k of Object.keys(options)) {
      if (!(['global_config', 'op_type_configs', 'op_name_configs'] as string[]).includes(k)) {
        throw configError(k, `Unknown key "${k}" for OptimizationConfig. Allowed keys: global_config, op_type_configs, op_name_configs.`);
      }
    }
    const g = options.global_config ?? null;
    if (g !== null && !isOpCompressorConfig(g)) {
      throw configError('global_config', `config must be type of OpCompressorConfig. Got ${show(g)}.`);
    }
    this.global_config = g;
    this.op_type_configs = toMap('op_type_configs', options.op_type_configs);
    this.op_name_configs = toMap('op_name_configs', options.op_name_configs);
    for (const [t, c] of this.op_type_configs) checkOpTypeEntry(t, c);
    this.defaultConfigType = defaultConfigType;
  }

  setGlobal(config: OpCompressorConfig | null): this {
    if (config !== null && !isOpCompressorConfig(config)) throw configError('global_config', `config must be type of OpCompressorConfig. Got ${show(config)}.`);
    this.global_config = config;
    return this;
  }

  setOpType(opType: string, config: OpCompressorConfig | null): this {
    if (config !== null && !isOpCompressorConfig(config)) throw configError('op_type_configs', `config must be type of OpCompressorConfig. Got ${show(config)}.`);
    checkOpTypeEntry(opType, config);
    this.op_type_configs.set(opType, config);
    return this;
  }

  /** Name of a const or of a (non-const) op. null = do not compress it. */
  setOpName(name: string, config: OpCompressorConfig | null): this {
    if (config !== null && !isOpCompressorConfig(config)) throw configError('op_name_configs', `config must be type of OpCompressorConfig. Got ${show(config)}.`);
    this.op_name_configs.set(name, config);
    return this;
  }

  /** Every non-null op config: global, then op types, then op names (insertion order). */
  allConfigs(): OpCompressorConfig[] {
    const out: OpCompressorConfig[] = [];
    if (this.global_config) out.push(this.global_config);
    for (const c of this.op_type_configs.values()) if (c) out.push(c);
    for (const c of this.op_name_configs.values()) if (c) out.push(c);
    return out;
  }

  /** coremltools' _get_op_config for a non-const op: op name → op type → global. */
  configForOp(op: OpRef): OpCompressorConfig | null {
    if (op.type === 'const') throw configError('op', 'op must not be of type const');
    if (this.op_name_configs.has(op.name)) return this.op_name_configs.get(op.name)!;
    if (this.op_type_configs.has(op.type)) return this.op_type_configs.get(op.type)!;
    return this.global_config;
  }

  /**
   * coremltools' _get_const_op_config: the config that applies to a const (or constexpr, in joint
   * mode) named `constName` whose output feeds `consumers`.
   * - op_name_configs can name the const itself (null there = skip it);
   * - no consumers → null (a const that only feeds block outputs is never compressed);
   * - all consumers constexpr_* → resolve through the first one (needs `consumersOf` for its consumers);
   * - else each consumer's op config (name → type → global); they must all be equal.
   */
  configForConst(constName: string, consumers: readonly OpRef[], consumersOf?: (opName: string) => readonly OpRef[]): OpCompressorConfig | null {
    if (this.op_name_configs.has(constName)) return this.op_name_configs.get(constName)!;
    if (this.op_type_configs.has('const')) {
      throw configError('op_type_configs', 'const ops cannot be set by the `set_op_type` function. Please use `set_global`');
    }
    if (consumers.length === 0) return null;
    if (consumers.every((c) => c.type.startsWith('constexpr_'))) {
      const first = consumers[0]!;
      if (!consumersOf) throw configError('consumers', `const ${constName} feeds ${first.type} ${first.name}; pass consumersOf to follow the constexpr chain.`);
      return this.configForConst(first.name, consumersOf(first.name), consumersOf);
    }
    const configs = consumers.map((c) => this.configForOp(c));
    for (let i = 1; i < configs.length; i++) {
      if (!sameConfig(configs[i]!, configs[0]!)) {
        const a = consumers[0]!, b = consumers[i]!;
        throw configError('op_name_configs',
          `compression config conflict detected between ops ${a.name} and ${b.name}. ${a.name} has config ${String(configs[0])} while ${b.name} has ${String(configs[i])}.`);
      }
    }
    return configs[0]!;
  }

  /**
   * Convenience lookup for one op: if `constName` (the weight const feeding `op`) is named in
   * op_name_configs that entry wins, else op name → op type → global.
   */
  configFor(op: OpRef, constName?: string): OpCompressorConfig | null {
    if (constName !== undefined && this.op_name_configs.has(constName)) return this.op_name_configs.get(constName)!;
    return this.configForOp(op);
  }

  /** coremltools' OptimizationConfig.from_dict schema. */
  static fromDict(d: unknown): OptimizationConfig {
    if (!isPlainObject(d)) throw configError('config', `An OptimizationConfig dict must be a mapping, got ${show(d)}.`);
    for (const k of Object.keys(d)) {
      if (!(TOP_LEVEL_KEYS as readonly string[]).includes(k)) {
        throw configError(k, `Invalid key ${k} to construct an OptimizationConfig object. Supported keys are ${pyTuple(TOP_LEVEL_KEYS)}.`);
      }
    }
    const configType = d['config_type'];
    if (typeof configType !== 'string') {
      throw configError('config_type', `config_type must be provided with type of string. Got ${show(configType)}; supported config types are ${pyTuple(OP_CONFIG_TYPES)}.`);
    }
    const opts: OptimizationConfigOptions = {};
    if (d['global_config'] != null) opts.global_config = opConfigFromDict(configType, d['global_config'], 'global_config');
    for (const key of ['op_type_configs', 'op_name_configs'] as const) {
      const v = d[key];
      if (v == null) continue;
      if (!isPlainObject(v)) throw configError(key, `${key} must be type of dict. Got ${show(v)}`);
      const m = new Map<string, OpCompressorConfig | null>();
      for (const [name, c] of Object.entries(v)) m.set(name, opConfigFromDict(configType, c, `${key}[${name}]`));
      opts[key] = m;
    }
    return new OptimizationConfig(opts, configType);
  }

  static from_dict(d: unknown): OptimizationConfig {
    return OptimizationConfig.fromDict(d);
  }

  /** coremltools' from_yaml, given the YAML text (use loadConfigFile for a path). */
  static fromYaml(text: string): OptimizationConfig {
    return OptimizationConfig.fromDict(parseYamlText(text));
  }

  static fromJson(text: string): OptimizationConfig {
    return OptimizationConfig.fromDict(parseJsonText(text));
  }

  /** The from_dict schema (the shape coremltools' golden sidecars store); fromDict(toDict()) is equal. */
  toDict(): Record<string, unknown> {
    const first = this.allConfigs()[0];
    const out: Record<string, unknown> = { config_type: first?.configType ?? this.defaultConfigType ?? 'OpPalettizerConfig' };
    if (this.global_config) out['global_config'] = this.global_config.toDict();
    for (const key of ['op_type_configs', 'op_name_configs'] as const) {
      const m = this[key];
      if (m.size === 0) continue;
      const o: Record<string, unknown> = {};
      for (const [k, c] of m) o[k] = c === null ? null : c.toDict();
      out[key] = o;
    }
    return out;
  }

  equals(other: unknown): boolean {
    if (!(other instanceof OptimizationConfig)) return false;
    if (!sameConfig(this.global_config, other.global_config)) return false;
    for (const key of ['op_type_configs', 'op_name_configs'] as const) {
      const a = this[key], b = other[key];
      if (a.size !== b.size) return false;
      for (const [k, c] of a) if (!b.has(k) || !sameConfig(c, b.get(k)!)) return false;
    }
    return true;
  }
}

export function sameConfig(a: OpCompressorConfig | null, b: OpCompressorConfig | null): boolean {
  if (a === null || b === null) return a === b;
  return a.equals(b);
}

/** Which config classes each compression API accepts (coremltools' _SUPPORTED_CONFIG_TYPE). */
export type CompressionApi = 'palettize' | 'prune' | 'quantize';
export const API_FUNCTION_NAMES: Readonly<Record<CompressionApi, string>> = {
  palettize: 'palettize_weights',
  prune: 'prune_weights',
  quantize: 'linear_quantize_weights',
};
const API_CONFIG_TYPES: Readonly<Record<CompressionApi, readonly OpConfigType[]>> = {
  palettize: ['OpPalettizerConfig'],
  prune: ['OpMagnitudePrunerConfig', 'OpThresholdPrunerConfig'],
  quantize: ['OpLinearQuantizerConfig'],
};

/** Throws coremltools' message when `config` holds a config class the API does not accept. */
export function checkConfigForApi(config: OptimizationConfig, api: CompressionApi): void {
  const allowed = API_CONFIG_TYPES[api];
  for (const c of config.allConfigs()) {
    if (!allowed.includes(c.configType)) {
      throw configError('config_type', `${API_FUNCTION_NAMES[api]} only accept ${allowed.join(', ')} type config. Got ${c.configType}.`);
    }
  }
}
