/**
 * Reading diffusers `scheduler_config.json`: JSON as Python's json module writes it (bare `Infinity`, `-Infinity`,
 * `NaN`), and typed access to the keys a scheduler knows. Keys a scheduler does not know are ignored (diffusers
 * logs and ignores them too: SD 1.5's PNDM file carries `clip_sample`, SDXL's Euler file carries `skip_prk_steps`);
 * a known key with a value diffusers would reject is a ConfigError naming the key.
 */
import { existsSync, readFileSync } from 'node:fs';
import { ConfigError, ModelFormatError } from '../../errors.js';

export type SchedulerConfig = Record<string, unknown>;

export { parsePythonJson } from '../../util/python-json.js';
import { parsePythonJson } from '../../util/python-json.js';

/** A diffusers scheduler_config.json: `_class_name` and the whole object (all keys kept). */
export function readSchedulerConfig(file: string): { className: string | undefined; config: SchedulerConfig } {
  if (!existsSync(file)) throw new ConfigError('scheduler config not found', { file });
  let raw: unknown;
  try {
    raw = parsePythonJson(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ModelFormatError(`scheduler config is not valid JSON: ${(err as Error).message}`, { file, cause: err });
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ModelFormatError('scheduler config must be a JSON object', { file });
  }
  const config = raw as SchedulerConfig;
  const className = config['_class_name'];
  if (className !== undefined && typeof className !== 'string') throw new ModelFormatError('"_class_name" must be a string', { file });
  return { className, config };
}

/** Typed, validated access to one scheduler's config keys, with that scheduler's diffusers defaults. */
export class ConfigReader {
  constructor(private readonly config: SchedulerConfig, private readonly scheduler: string) {}

  private bad(key: string, want: string, value: unknown): never {
    throw new ConfigError(`${this.scheduler}: config "${key}" must be ${want}, got ${JSON.stringify(value) ?? String(value)}`);
  }

  /** The raw value (the optional* getters treat null, Python's None, as absent). */
  private get(key: string): unknown {
    return this.config[key];
  }

  number(key: string, def: number, check?: (v: number) => boolean, want = 'a number'): number {
    const v = this.get(key);
    if (v === undefined) return def;
    if (typeof v !== 'number' || Number.isNaN(v) || (check && !check(v))) this.bad(key, want, v);
    return v as number;
  }

  optionalNumber(key: string, check?: (v: number) => boolean, want = 'a number or null'): number | undefined {
    const v = this.get(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || Number.isNaN(v) || (check && !check(v))) this.bad(key, want, v);
    return v as number;
  }

  int(key: string, def: number, min: number): number {
    return this.number(key, def, v => Number.isInteger(v) && v >= min, `an integer ≥ ${min}`);
  }

  bool(key: string, def: boolean): boolean {
    const v = this.get(key);
    if (v === undefined) return def;
    if (typeof v !== 'boolean') this.bad(key, 'true or false', v);
    return v as boolean;
  }

  choice<T extends string>(key: string, def: T, allowed: readonly T[]): T {
    const v = this.get(key);
    if (v === undefined) return def;
    if (typeof v !== 'string' || !allowed.includes(v as T)) this.bad(key, `one of ${allowed.map(a => JSON.stringify(a)).join(', ')}`, v);
    return v as T;
  }

  /** A string choice where null (None) is also allowed. */
  optionalChoice<T extends string>(key: string, allowed: readonly T[]): T | undefined {
    const v = this.get(key);
    if (v === undefined || v === null) return undefined;
    return this.choice(key, allowed[0]!, allowed);
  }

  optionalNumberArray(key: string): number[] | undefined {
    const v = this.get(key);
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.some(x => typeof x !== 'number' || !Number.isFinite(x))) this.bad(key, 'null or a list of numbers', v);
    return v as number[];
  }
}
