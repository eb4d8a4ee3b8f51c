/**
 * CLI flags → a global OptimizationConfig. Flags are the kebab-case config keys (`--group-size`);
 * commander's camelCase option names (`groupSize`) are accepted too. Errors name the flag.
 */
import { ConfigError } from '../../errors.js';
import { configError, type ConfigKeyError } from './common.js';
import { OpLinearQuantizerConfig, type OpLinearQuantizerConfigOptions } from './quantizer.js';
import { OpPalettizerConfig, type OpPalettizerConfigOptions } from './palettizer.js';
import { OpMagnitudePrunerConfig, OpThresholdPrunerConfig } from './pruners.js';
import { OptimizationConfig, type CompressionApi, type OpCompressorConfig } from './optimization-config.js';

export type CliFlagValue = string | number | boolean | readonly number[] | null | undefined;
export type CliFlags = Readonly<Record<string, CliFlagValue>>;

type Parser = (flag: string, raw: Exclude<CliFlagValue, undefined>) => unknown;

const int: Parser = (flag, raw) => {
  const v = typeof raw === 'string' && /^[+-]?\d+$/.test(raw.trim()) ? Number(raw) : raw;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw flagError(flag, raw, 'expected an integer');
  return v;
};
const float: Parser = (flag, raw) => {
  const v = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw flagError(flag, raw, 'expected a number');
  return v;
};
const bool: Parser = (flag, raw) => {
  if (typeof raw === 'boolean') return raw;
  if (raw === 'true' || raw === '1' || raw === 'yes') return true;
  if (raw === 'false' || raw === '0' || raw === 'no') return false;
  throw flagError(flag, raw, 'expected true or false');
};
const str: Parser = (flag, raw) => {
  if (typeof raw !== 'string') throw flagError(flag, raw, 'expected a string');
  return raw;
};
const nullable = (p: Parser): Parser => (flag, raw) =>
  raw === null || (typeof raw === 'string' && /^(none|null)$/i.test(raw.trim())) ? null : p(flag, raw);
const intList: Parser = (flag, raw) => {
  if (Array.isArray(raw)) return raw.map((x) => int(flag, x));
  if (typeof raw !== 'string') throw flagError(flag, raw, 'expected a list of integers like 2:4 or 1,32');
  const parts = raw.trim().replace(/^[[(]|[\])]$/g, '').split(/[,:x\s]+/).filter((p) => p !== '');
  if (parts.length === 0) throw flagError(flag, raw, 'expected a list of integers like 2:4 or 1,32');
  return parts.map((p) => int(flag, p));
};
const intOrList: Parser = (flag, raw) =>
  typeof raw === 'number' || (typeof raw === 'string' && /^\s*[+-]?\d+\s*$/.test(raw)) ? int(flag, raw) : intList(flag, raw);

const PARSERS: Readonly<Record<CompressionApi, Readonly<Record<string, Parser>>>> = {
  palettize: {
    mode: str, nbits: nullable(int), granularity: str, group_size: int, channel_axis: nullable(int), cluster_dim: int,
    enable_per_channel_scale: bool, num_kmeans_workers: int, lut_dtype: nullable(str), weight_threshold: int,
  },
  prune: {
    target_sparsity: float, block_size: int, n_m_ratio: intList, dim: int, threshold: float,
    minimum_sparsity_percentile: float, weight_threshold: int,
  },
  quantize: { mode: str, dtype: str, granularity: str, block_size: intOrList, weight_threshold: int },
};
const THRESHOLD_KEYS = ['threshold', 'minimum_sparsity_percentile'];
const MAGNITUDE_KEYS = ['target_sparsity', 'block_size', 'n_m_ratio', 'dim'];

const toFlag = (key: string): string => `--${key.replace(/_/g, '-')}`;

function flagError(flag: string, raw: unknown, what: string): ConfigKeyError {
  return configError(flag.replace(/^--/, '').replace(/-/g, '_'), `${flag} ${JSON.stringify(raw)}: ${what}.`);
}

/** Flag name (kebab `group-size`, `--group-size` or camelCase `groupSize`) → config key `group_size`. */
function flagToKey(name: string): string {
  // Every capital starts a word: commander turns --n-m-ratio into nMRatio.
  return name.replace(/^--/, '').replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).replace(/-/g, '_');
}

export function configFromCliFlags(kind: CompressionApi, flags: CliFlags): OptimizationConfig {
  const parsers = PARSERS[kind];
  if (!parsers) throw new ConfigError(`unknown compression kind ${JSON.stringify(kind)} (palettize, prune or quantize)`);
  const values: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(flags)) {
    if (raw === undefined) continue;
    const key = flagToKey(name);
    const parse = Object.hasOwn(parsers, key) ? parsers[key] : undefined;
    if (!parse) {
      throw configError(key, `${toFlag(key)} is not an option of ${kind}. Options: ${Object.keys(parsers).map(toFlag).join(', ')}.`);
    }
    values[key] = parse(toFlag(key), raw);
  }
  let op: OpCompressorConfig;
  try {
    if (kind === 'palettize') op = new OpPalettizerConfig(values as OpPalettizerConfigOptions);
    else if (kind === 'quantize') op = new OpLinearQuantizerConfig(values as OpLinearQuantizerConfigOptions);
    else {
      const thr = THRESHOLD_KEYS.filter((k) => k in values);
      const mag = MAGNITUDE_KEYS.filter((k) => k in values);
      if (thr.length > 0 && mag.length > 0) {
        throw configError(mag[0]!, `${toFlag(thr[0]!)} (threshold pruning) cannot be combined with ${toFlag(mag[0]!)} (magnitude pruning).`);
      }
      op = thr.length > 0
        ? new OpThresholdPrunerConfig(values)
        : new OpMagnitudePrunerConfig(values);
    }
  } catch (e) {
    const key = (e as Partial<ConfigKeyError>).key;
    if (e instanceof ConfigError && key !== undefined && !e.message.startsWith('--')) {
      e.message = `${toFlag(key)}: ${e.message}`;
    }
    throw e;
  }
  return new OptimizationConfig({ global_config: op });
}
