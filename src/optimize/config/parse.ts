/** Reading config data from YAML / JSON text and files; errors name the file. */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError, CoreMLOptimizeError } from '../../errors.js';

/** Parses YAML text (or JSON, a YAML subset) into plain data; `file` only labels errors. */
export function parseYamlText(text: string, file?: string): unknown {
  try {
    // YAML 1.1 like PyYAML's safe_load (coremltools' from_yaml): yes/no are booleans, ~ is null.
    return parseYaml(text, { version: '1.1', uniqueKeys: true, prettyErrors: false });
  } catch (e) {
    throw new ConfigError(`invalid YAML: ${(e as Error).message}`, file !== undefined ? { file, cause: e } : { cause: e });
  }
}

export function parseJsonText(text: string, file?: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new ConfigError(`invalid JSON: ${(e as Error).message}`, file !== undefined ? { file, cause: e } : { cause: e });
  }
}

/** Re-raises a config error with the file named (keeping key / coremltools type properties). */
export function withFile<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof CoreMLOptimizeError && e.file === undefined) {
      Object.defineProperty(e, 'file', { value: file });
      e.message = `${file}: ${e.message}`;
    }
    throw e;
  }
}

export function readTextFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(code === 'ENOENT' ? 'file not found' : `cannot read file (${code ?? (e as Error).message})`, { file: path, cause: e });
  }
}

/** Parses by extension: .yaml/.yml as YAML, .json as JSON; anything else is an error naming the file. */
export function readDataFile(path: string): unknown {
  const ext = extname(path).toLowerCase();
  if (ext !== '.yaml' && ext !== '.yml' && ext !== '.json') {
    throw new ConfigError(`unsupported config file extension "${ext}" (use .yaml, .yml or .json)`, { file: path });
  }
  const text = readTextFile(path);
  return ext === '.json' ? parseJsonText(text, path) : parseYamlText(text, path);
}
