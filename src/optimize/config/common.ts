/**
 * Shared pieces of the compression-config vocabulary: error helpers and value checks.
 * Messages follow coremltools' wording where coremltools has one, and always name the key,
 * the bad value and what is allowed.
 */
import { ConfigError, UnsupportedError } from '../../errors.js';

/** A ConfigError that also records which config key (snake_case) was wrong. */
export interface ConfigKeyError extends ConfigError {
  readonly key: string;
}

/** The Python exception coremltools raises for the same condition (kept for parity checks). */
export type CoremltoolsErrorType = 'ValueError' | 'NotImplementedError' | 'TypeError';

export interface TargetError extends Error {
  readonly coremltoolsType: CoremltoolsErrorType;
}

export function configError(key: string, message: string): ConfigKeyError {
  const err = new ConfigError(message) as ConfigError & { key: string };
  Object.defineProperty(err, 'key', { value: key, enumerable: true });
  return err;
}

/** Deployment-target problems are UnsupportedError; coremltools' exception type rides along. */
export function targetError(coremltoolsType: CoremltoolsErrorType, message: string): UnsupportedError & TargetError {
  const err = new UnsupportedError(message) as UnsupportedError & { coremltoolsType: CoremltoolsErrorType };
  Object.defineProperty(err, 'coremltoolsType', { value: coremltoolsType, enumerable: true });
  return err;
}

/** Python-style repr of a value, used where coremltools' message prints a tuple or a value. */
export function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'string') return `'${value}'`;
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  if (typeof value === 'function') return '<function>';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** Python tuple repr: ('A', 'B') / (1, 2). */
export function pyTuple(values: readonly (string | number)[]): string {
  return `(${values.map(pyRepr).join(', ')})`;
}

/** How a value is shown inside our own messages (f-string style: strings bare). */
export function show(value: unknown): string {
  if (typeof value === 'string') return value;
  return pyRepr(value);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Rejects keys outside `allowed`, naming the key and the allowed set (cattrs forbid_extra_keys). */
export function checkKeys(obj: Record<string, unknown>, allowed: readonly string[], owner: string): void {
  for (const k of Object.keys(obj)) {
    if (obj[k] === undefined) continue;
    if (!allowed.includes(k)) {
      throw configError(k, `Unknown key "${k}" for ${owner}. Allowed keys: ${allowed.join(', ')}.`);
    }
  }
}

export function requireInt(key: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw configError(key, `"${key}" must be an integer, got ${show(value)}.`);
  }
  return value;
}

export function requireFloat(key: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw configError(key, `"${key}" must be a finite number, got ${show(value)}.`);
  }
  return value;
}

export function requireBool(key: string, value: unknown): boolean {
  if (typeof value !== 'boolean') {
    throw configError(key, `"${key}" must be a boolean (true or false), got ${show(value)}.`);
  }
  return value;
}

export function requireString(key: string, value: unknown): string {
  if (typeof value !== 'string') {
    throw configError(key, `"${key}" must be a string, got ${show(value)}.`);
  }
  return value;
}

/** weight_threshold: coremltools allows None at construction but fails when compressing; we reject early. */
export function checkWeightThreshold(value: unknown): number {
  if (value === null) {
    throw configError('weight_threshold', '"weight_threshold" must be a non-negative integer. Got None (weight_threshold cannot be None).');
  }
  const v = requireInt('weight_threshold', value);
  if (v < 0) throw configError('weight_threshold', `"weight_threshold" must be a non-negative integer. Got ${v}.`);
  return v;
}

export type Granularity = 'per_tensor' | 'per_grouped_channel' | 'per_channel' | 'per_block';
const ALL_GRANULARITIES: readonly Granularity[] = ['per_tensor', 'per_grouped_channel', 'per_channel', 'per_block'];

/** coremltools' _normalize_granularity + the class's allowed subset (exact, lower-case strings). */
export function normalizeGranularity<G extends Granularity>(value: unknown, allowed: readonly G[]): G {
  if (typeof value !== 'string' || !ALL_GRANULARITIES.includes(value as Granularity)) {
    throw configError('granularity', `Invalid granularity=${show(value)}. "granularity" must be one of ${allowed.join(', ')}.`);
  }
  if (!allowed.includes(value as G)) {
    throw configError('granularity', `"granularity" must be one of ${allowed.join(', ')}, but got ${value}`);
  }
  return value as G;
}

/** A dict written by toDict carries its own config_type; accept it when it names this class. */
export function dropOwnConfigType(d: Record<string, unknown>, className: string): Record<string, unknown> {
  if (!('config_type' in d)) return d;
  const { config_type: type, ...rest } = d;
  if (type !== className) {
    throw configError('config_type', `config_type ${show(type)} does not match ${className}.`);
  }
  return rest;
}
