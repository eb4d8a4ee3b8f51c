/**
 * Reading diffusers `scheduler_config.json`: JSON as Python's json module writes it (bare `Infinity`, `-Infinity`,
 * `NaN`), and typed access to the keys a scheduler knows. Keys a scheduler does not know are ignored (diffusers
 * logs and ignores them too: SD 1.5's PNDM file carries `clip_sample`, SDXL's Euler file carries `skip_prk_steps`);
 * a known key with a value diffusers would reject is a ConfigError naming the key.
 */
import { existsSync, readFileSync } from 'node:fs';
import { ConfigError, ModelFormatError } from '../../errors.js';

export type SchedulerConfig = Record<string, unknown>;

/**
 * Parses JSON that may contain Python's non-standard number tokens `Infinity`, `-Infinity` and `NaN`
 * (e.g. DPMSolverMultistep's `"lambda_min_clipped": -Infinity`). Throws SyntaxError on anything else invalid.
 */
export function parsePythonJson(text: string): unknown {
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at position ${i}`);
  };
  const ws = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const literal = (word: string, value: unknown): unknown => {
    if (!text.startsWith(word, i)) fail(`unexpected token ${JSON.stringify(text.slice(i, i + 10))}`);
    i += word.length;
    return value;
  };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === undefined) return fail('unexpected end of JSON');
    if (c === '{') {
      i++;
      const obj: Record<string, unknown> = {};
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a string key');
        const key = string();
        ws();
        if (text[i++] !== ':') fail('expected ":"');
        obj[key] = value();
        ws();
        const sep = text[i++];
        if (sep === '}') return obj;
        if (sep !== ',') fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      i++;
      const arr: unknown[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value());
        ws();
        const sep = text[i++];
        if (sep === ']') return arr;
        if (sep !== ',') fail('expected "," or "]"');
      }
    }
    if (c === '"') return string();
    if (c === 't') return literal('true', true);
    if (c === 'f') return literal('false', false);
    if (c === 'n') return literal('null', null);
    if (c === 'N') return literal('NaN', NaN);
    if (c === 'I') return literal('Infinity', Infinity);
    if (c === '-' && text.startsWith('-Infinity', i)) return literal('-Infinity', -Infinity);
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m) return fail(`unexpected token ${JSON.stringify(text.slice(i, i + 10))}`);
    i += m[0].length;
    return Number(m[0]);
  };
  const string = (): string => {
    // Find the closing quote (skipping escapes) and let JSON.parse decode the escapes.
    const start = i;
    i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i >= text.length) fail('unterminated string');
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const result = value();
  ws();
  if (i !== text.length) fail('unexpected text after JSON');
  return result;
}

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
