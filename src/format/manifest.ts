/**
 * `.mlpackage` Manifest.json: parsing, validation and the exact coremltools serialization
 * (shared/spec/coreml-format.md §1.2–1.4).
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { ModelFormatError } from '../errors.js';

export interface ManifestItem {
  author: string;
  description: string;
  name: string;
  /** Relative to `<package>/Data/`, '/'-separated. */
  path: string;
  /** Keys other than the four standard ones are kept so re-serialization is lossless. */
  [extra: string]: JsonValue;
}

export interface Manifest {
  fileFormatVersion: string;
  itemInfoEntries: Record<string, ManifestItem>;
  rootModelIdentifier: string;
  [extra: string]: JsonValue | Record<string, ManifestItem>;
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export const MANIFEST_FILE_NAME = 'Manifest.json';
export const FILE_FORMAT_VERSION = '1.0.0';
export const DEFAULT_AUTHOR = 'com.apple.CoreML';
export const ROOT_MODEL_NAME = 'model.mlmodel';
export const WEIGHTS_ITEM_NAME = 'weights';
export const MODEL_DESCRIPTION = 'CoreML Model Specification';
export const WEIGHTS_DESCRIPTION = 'CoreML Model Weights';

const ITEM_KEYS = ['author', 'description', 'name', 'path'] as const;

/** A fresh item identifier: an upper-case v4 UUID, as coremltools writes on macOS. */
export function newItemIdentifier(): string {
  return randomUUID().toUpperCase();
}

/** Parse and validate Manifest.json contents. `file` is named in every error. */
export function parseManifest(text: string | Uint8Array, file: string): Manifest {
  const source = typeof text === 'string' ? text : Buffer.from(text.buffer, text.byteOffset, text.byteLength).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(source);
  } catch (err) {
    throw new ModelFormatError(`Manifest.json is not valid JSON (${(err as Error).message})`, { file, cause: err });
  }
  validateManifest(value, file);
  return value;
}

/**
 * Check the rules of coremltools' package validator plus path safety: every item has the four
 * string keys, item paths stay inside Data/ (no '..', no absolute path), the root item exists and
 * (name, author) pairs are unique.
 */
export function validateManifest(value: unknown, file: string): asserts value is Manifest {
  if (!isPlainObject(value)) throw new ModelFormatError('Manifest.json must contain a JSON object', { file });
  const version = value['fileFormatVersion'];
  if (typeof version !== 'string') throw new ModelFormatError('Manifest.json has no string "fileFormatVersion"', { file });
  checkFileFormatVersion(version, file);

  const entries = value['itemInfoEntries'];
  if (!isPlainObject(entries)) throw new ModelFormatError('Manifest.json has no "itemInfoEntries" object', { file });
  const seen = new Map<string, string>();
  for (const [id, item] of Object.entries(entries)) {
    if (!isPlainObject(item)) throw new ModelFormatError(`manifest item "${id}" is not an object`, { file });
    for (const key of ITEM_KEYS) {
      if (typeof item[key] !== 'string') throw new ModelFormatError(`manifest item "${id}" has no string "${key}"`, { file });
    }
    checkItemPath(item['path'] as string, id, file);
    const pair = `${item['name'] as string}\u0000${item['author'] as string}`;
    const other = seen.get(pair);
    if (other !== undefined) {
      throw new ModelFormatError(`manifest items "${other}" and "${id}" have the same name and author`, { file });
    }
    seen.set(pair, id);
  }

  const rootId = value['rootModelIdentifier'];
  if (typeof rootId !== 'string') throw new ModelFormatError('Manifest.json has no string "rootModelIdentifier"', { file });
  if (!Object.prototype.hasOwnProperty.call(entries, rootId)) {
    throw new ModelFormatError(`rootModelIdentifier "${rootId}" is not an entry of itemInfoEntries`, { file });
  }
}

/** Only 1.0.0 (and older) is readable: coremltools rejects newer majors/minors/patches. */
function checkFileFormatVersion(version: string, file: string): void {
  const match = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
  if (!match) throw new ModelFormatError(`fileFormatVersion "${version}" is not of the form major.minor.patch`, { file });
  const [major, minor, patch] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (major > 1 || (major === 1 && minor > 0) || (minor === 0 && patch > 0)) {
    throw new ModelFormatError(`unsupported fileFormatVersion "${version}" (this reader supports ${FILE_FORMAT_VERSION})`, { file });
  }
}

/** Item paths are relative to Data/ and must not leave it. */
export function checkItemPath(itemPath: string, id: string, file: string): void {
  const bad = (why: string): never => {
    throw new ModelFormatError(`manifest item "${id}" has path "${itemPath}" ${why}`, { file });
  };
  if (itemPath.length === 0) bad('which is empty');
  if (itemPath.includes('\u0000')) bad('which contains a NUL byte');
  if (itemPath.startsWith('/') || itemPath.startsWith('\\') || /^[A-Za-z]:/.test(itemPath) || path.isAbsolute(itemPath)) {
    bad('which is absolute (paths are relative to Data/)');
  }
  const parts = itemPath.split(/[\\/]/);
  if (parts.includes('..')) bad('which escapes the package ("..")');
  if (parts.every((p) => p === '' || p === '.')) bad('which names Data/ itself');
}

/**
 * Serialize like coremltools (nlohmann::json with setw(4)): keys sorted by UTF-8 bytes, 4-space
 * indent, `": "` separators, one trailing newline.
 */
export function serializeManifest(manifest: Manifest): string {
  return `${stringifySorted(manifest as unknown as JsonValue, '')}\n`;
}

function stringifySorted(value: JsonValue, indent: string): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const inner = `${indent}    `;
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => inner + stringifySorted(v, inner)).join(',\n')}\n${indent}]`;
  }
  const keys = Object.keys(value).sort(compareUtf8);
  if (keys.length === 0) return '{}';
  const lines = keys.map((k) => `${inner}${JSON.stringify(k)}: ${stringifySorted(value[k] as JsonValue, inner)}`);
  return `{\n${lines.join(',\n')}\n${indent}}`;
}

/** std::map<std::string> order: byte-wise on UTF-8 (differs from UTF-16 order only past U+FFFF). */
function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** A manifest with only the root model item, like coremltools' setRootModel. */
export function createManifest(options: { author?: string; withWeights?: boolean } = {}): Manifest {
  const author = options.author ?? DEFAULT_AUTHOR;
  const rootId = newItemIdentifier();
  const manifest: Manifest = {
    fileFormatVersion: FILE_FORMAT_VERSION,
    itemInfoEntries: {
      [rootId]: { author, description: MODEL_DESCRIPTION, name: ROOT_MODEL_NAME, path: `${author}/${ROOT_MODEL_NAME}` },
    },
    rootModelIdentifier: rootId,
  };
  if (options.withWeights) addWeightsItem(manifest, author);
  return manifest;
}

/** Add the coremltools weights directory item (returns its identifier). */
export function addWeightsItem(manifest: Manifest, author = DEFAULT_AUTHOR): string {
  const id = newItemIdentifier();
  manifest.itemInfoEntries[id] = {
    author,
    description: WEIGHTS_DESCRIPTION,
    name: WEIGHTS_ITEM_NAME,
    path: `${author}/${WEIGHTS_ITEM_NAME}`,
  };
  return id;
}

export function rootItem(manifest: Manifest): ManifestItem {
  return manifest.itemInfoEntries[manifest.rootModelIdentifier]!;
}

/**
 * The weights directory item: by (name "weights", author of the root model) like coremltools'
 * findItem, else any item named "weights", else the item whose path is `<root dir>/weights`.
 */
export function findWeightsItem(manifest: Manifest): { id: string; item: ManifestItem } | undefined {
  const root = rootItem(manifest);
  const entries = Object.entries(manifest.itemInfoEntries).filter(([id]) => id !== manifest.rootModelIdentifier);
  const byAuthor = entries.find(([, it]) => it.name === WEIGHTS_ITEM_NAME && it.author === root.author);
  const byName = byAuthor ?? entries.find(([, it]) => it.name === WEIGHTS_ITEM_NAME);
  const rootDir = path.posix.dirname(root.path.replace(/\\/g, '/'));
  const found = byName ?? entries.find(([, it]) => path.posix.normalize(it.path.replace(/\\/g, '/')) === path.posix.join(rootDir, WEIGHTS_ITEM_NAME));
  return found ? { id: found[0], item: found[1] } : undefined;
}

/** Deep copy with new identifiers for every item (root identifier follows its item). */
export function withNewIdentifiers(manifest: Manifest): Manifest {
  const copy = structuredClone(manifest);
  const entries: Record<string, ManifestItem> = {};
  for (const [id, item] of Object.entries(copy.itemInfoEntries)) {
    const fresh = newItemIdentifier();
    entries[fresh] = item;
    if (id === manifest.rootModelIdentifier) copy.rootModelIdentifier = fresh;
  }
  copy.itemInfoEntries = entries;
  return copy;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
