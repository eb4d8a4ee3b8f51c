/**
 * Reading and writing the on-disk forms of a Core ML model: a `.mlpackage` directory
 * (Manifest.json + Data/<items>) or a bare `.mlmodel` protobuf file (shared/spec/coreml-format.md §1).
 * This layer moves bytes and files; decoding the protobuf is done by the caller (src/model.ts).
 */
import fs, { promises as fsp } from 'node:fs';
import path from 'node:path';
import { ModelFormatError, throwIfAborted } from '../errors.js';
import { replaceWith, tempSiblingPath, moveOrCopyFile } from '../util/atomic-write.js';
import {
  MANIFEST_FILE_NAME,
  type Manifest,
  type ManifestItem,
  addWeightsItem,
  createManifest,
  findWeightsItem,
  parseManifest,
  rootItem,
  serializeManifest,
  validateManifest,
} from './manifest.js';
import { encodeModel } from './proto.js';
import type { ModelSpec } from './spec-types.js';

export type ModelFileFormat = 'mlpackage' | 'mlmodel';

export interface PackageItemInfo {
  id: string;
  item: ManifestItem;
  /** Absolute path `<package>/Data/<item.path>`. */
  absPath: string;
  exists: boolean;
}

export interface PackageContents {
  /** Absolute path of the `.mlpackage` directory or `.mlmodel` file. */
  path: string;
  format: ModelFileFormat;
  manifest: Manifest | undefined;
  /** Absolute path of the root model protobuf (`model.mlmodel` inside a package). */
  rootModelPath: string;
  specBytes: Uint8Array;
  /** The manifest's weights item (declared), whether or not its directory exists. */
  weightsItem: PackageItemInfo | undefined;
  /** Absolute weights directory when it exists on disk. */
  weightsDir: string | undefined;
  /** Names of the regular files inside weightsDir, sorted. */
  weightFileNames: string[];
  /** Items other than the root model and the weights directory. */
  otherItems: PackageItemInfo[];
}

/** Read a `.mlpackage` directory or a bare `.mlmodel` file. Errors are ModelFormatError naming the file. */
export function readModelFiles(modelPath: string): PackageContents {
  const abs = path.resolve(modelPath);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(abs);
  } catch (err) {
    throw new ModelFormatError(`cannot open model (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { file: abs, cause: err });
  }
  if (stat.isDirectory()) return readPackageDir(abs);
  if (!stat.isFile()) throw new ModelFormatError('is neither a .mlmodel file nor a .mlpackage directory', { file: abs });
  const specBytes = readRootModel(abs);
  return {
    path: abs,
    format: 'mlmodel',
    manifest: undefined,
    rootModelPath: abs,
    specBytes,
    weightsItem: undefined,
    weightsDir: undefined,
    weightFileNames: [],
    otherItems: [],
  };
}

function readPackageDir(pkg: string): PackageContents {
  const manifestPath = path.join(pkg, MANIFEST_FILE_NAME);
  let manifestBytes: Buffer;
  try {
    manifestBytes = fs.readFileSync(manifestPath);
  } catch (err) {
    throw new ModelFormatError('package has no readable Manifest.json (a valid manifest does not exist)', { file: manifestPath, cause: err });
  }
  const manifest = parseManifest(manifestBytes, manifestPath);
  const realPkg = fs.realpathSync(pkg);

  const itemInfo = (id: string): PackageItemInfo => {
    const item = manifest.itemInfoEntries[id]!;
    const absPath = path.join(pkg, 'Data', item.path);
    return { id, item, absPath, exists: existsInside(absPath, realPkg, manifestPath, id) };
  };

  const root = itemInfo(manifest.rootModelIdentifier);
  if (!root.exists) {
    throw new ModelFormatError(`root model item "${root.item.path}" does not exist in Data/`, { file: root.absPath });
  }
  const specBytes = readRootModel(root.absPath);

  const weightsFound = findWeightsItem(manifest);
  const weightsItem = weightsFound ? itemInfo(weightsFound.id) : undefined;
  let weightsDir: string | undefined;
  let weightFileNames: string[] = [];
  if (weightsItem?.exists) {
    if (!fs.statSync(weightsItem.absPath).isDirectory()) {
      throw new ModelFormatError('the weights item is not a directory', { file: weightsItem.absPath });
    }
    weightsDir = weightsItem.absPath;
    weightFileNames = listWeightFiles(weightsDir, realPkg);
  }
  const otherItems = Object.keys(manifest.itemInfoEntries)
    .filter((id) => id !== manifest.rootModelIdentifier && id !== weightsItem?.id)
    .map(itemInfo);
  return { path: pkg, format: 'mlpackage', manifest, rootModelPath: root.absPath, specBytes, weightsItem, weightsDir, weightFileNames, otherItems };
}

function readRootModel(file: string): Uint8Array {
  let bytes: Buffer;
  try {
    if (!fs.statSync(file).isFile()) throw new ModelFormatError('the root model is not a regular file', { file });
    bytes = fs.readFileSync(file);
  } catch (err) {
    if (err instanceof ModelFormatError) throw err;
    throw new ModelFormatError(`cannot read model file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { file, cause: err });
  }
  if (bytes.length === 0) throw new ModelFormatError('model file is empty (0 bytes)', { file });
  return bytes;
}

/**
 * True when `p` exists. Throws when `p`, or the deepest existing directory on its way (a symlinked
 * `Data/` for instance), resolves through symlinks to somewhere outside the package.
 */
function existsInside(p: string, realPkg: string, manifestPath: string, id: string): boolean {
  let probe = p;
  let real = safeRealpath(probe);
  while (real === undefined && path.dirname(probe) !== probe) {
    probe = path.dirname(probe);
    real = safeRealpath(probe);
  }
  if (real !== undefined && !isInside(real, realPkg)) {
    throw new ModelFormatError(`manifest item "${id}" resolves outside the package (${real})`, { file: manifestPath });
  }
  // Dangling symlinks count as missing: they are never followed.
  return probe === p && real !== undefined;
}

function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function listWeightFiles(dir: string, realPkg: string): string[] {
  const names: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isFile()) names.push(entry.name);
    else if (entry.isSymbolicLink()) {
      const real = safeRealpath(full);
      if (real && isInside(real, realPkg) && fs.statSync(real).isFile()) names.push(entry.name);
    }
  }
  return names.sort();
}

function safeRealpath(p: string): string | undefined {
  try {
    return fs.realpathSync(p);
  } catch {
    return undefined;
  }
}

/**
 * Resolve a BlobFileValue.fileName (e.g. "@model_path/weights/weight.bin") against a weights
 * directory. Like coremltools only the last '/'-separated component is kept; names that are empty,
 * '.', '..' or contain a backslash / NUL are rejected, and so is a symlink leaving `packageRoot`.
 */
export function resolveWeightFile(weightsDir: string, fileName: string, packageRoot?: string): string {
  const base = fileName.split('/').pop() ?? '';
  if (base === '' || base === '.' || base === '..' || base.includes('\\') || base.includes('\u0000')) {
    throw new ModelFormatError(`weight file name "${fileName}" does not name a file inside the weights directory`, { file: weightsDir });
  }
  const full = path.join(weightsDir, base);
  if (packageRoot) {
    const real = safeRealpath(full);
    const realRoot = safeRealpath(packageRoot);
    if (real && realRoot && !isInside(real, realRoot)) {
      throw new ModelFormatError(`weight file "${base}" resolves outside the package (${real})`, { file: full });
    }
  }
  return full;
}

// ---------------------------------------------------------------- writing

export interface WeightFileSource {
  /** File name inside the weights directory, e.g. 'weight.bin'. */
  name: string;
  /** Existing file to copy (or move) there. */
  from: string;
  /** Rename instead of copy (for freshly written temporaries). The source is gone after success. */
  move?: boolean;
}

export interface CopiedItem {
  /** Item path relative to Data/ (as in the manifest). */
  itemPath: string;
  /** File or directory copied there verbatim. */
  from: string;
}

export interface WritePackageOptions {
  spec?: ModelSpec;
  /** Serialized Model; takes precedence over `spec`. */
  specBytes?: Uint8Array;
  /** Manifest to write (identifiers kept). Default: a fresh coremltools-style manifest. */
  manifest?: Manifest;
  /** Files placed in the weights directory. A weights item is added to the manifest if needed. */
  weightFiles?: WeightFileSource[];
  /** Other manifest items copied verbatim. */
  copyItems?: CopiedItem[];
  /** Create the weights directory even when empty (coremltools does for every ML Program). Default: true when the manifest has a weights item. */
  createWeightsDir?: boolean;
  /** Checked between file copies. */
  signal?: AbortSignal;
}

/**
 * Write a `.mlpackage` at `dest` atomically: everything is assembled in a temporary sibling
 * directory, files to move are moved last, then the directory is renamed into place (replacing an
 * existing `dest` only at that point). On failure nothing is left behind and moved sources are
 * put back.
 */
export async function writePackage(dest: string, options: WritePackageOptions): Promise<void> {
  const specBytes = options.specBytes ?? (options.spec ? encodeModel(options.spec, dest) : undefined);
  if (!specBytes) throw new ModelFormatError('writePackage needs spec or specBytes', { file: dest });
  const weightFiles = options.weightFiles ?? [];
  for (const w of weightFiles) checkPlainFileName(w.name, dest);
  if (new Set(weightFiles.map((w) => w.name)).size !== weightFiles.length) {
    throw new ModelFormatError('weightFiles contains the same name twice', { file: dest });
  }

  const manifest: Manifest = options.manifest ? structuredClone(options.manifest) : createManifest({ withWeights: weightFiles.length > 0 });
  validateManifest(manifest, path.join(dest, MANIFEST_FILE_NAME));
  let weights = findWeightsItem(manifest);
  if (!weights && weightFiles.length > 0) {
    addWeightsItem(manifest, rootItem(manifest).author);
    weights = findWeightsItem(manifest);
  }

  const target = path.resolve(dest);
  await fsp.mkdir(path.dirname(target), { recursive: true });
  const temp = tempSiblingPath(target);
  const moved: { from: string; to: string }[] = [];
  const copiedInsteadOfMoved: string[] = [];
  try {
    await fsp.mkdir(path.join(temp, 'Data'), { recursive: true });
    const rootPath = path.join(temp, 'Data', rootItem(manifest).path);
    await fsp.mkdir(path.dirname(rootPath), { recursive: true });
    await fsp.writeFile(rootPath, specBytes, { flag: 'wx' });

    for (const item of options.copyItems ?? []) {
      throwIfAborted(options.signal);
      const to = path.join(temp, 'Data', item.itemPath);
      await fsp.mkdir(path.dirname(to), { recursive: true });
      await fsp.cp(item.from, to, { recursive: true, errorOnExist: true, force: false });
    }

    if (weights && (options.createWeightsDir ?? true)) {
      const dir = path.join(temp, 'Data', weights.item.path);
      await fsp.mkdir(dir, { recursive: true });
      for (const w of weightFiles.filter((f) => !f.move)) {
        throwIfAborted(options.signal);
        await fsp.copyFile(w.from, path.join(dir, w.name));
      }
      // Moves come last so that an earlier failure never consumes the caller's files.
      for (const w of weightFiles.filter((f) => f.move)) {
        const to = path.join(dir, w.name);
        if (await moveOrCopyFile(w.from, to)) moved.push({ from: w.from, to });
        else copiedInsteadOfMoved.push(w.from);
      }
    }
    await fsp.writeFile(path.join(temp, MANIFEST_FILE_NAME), serializeManifest(manifest), { flag: 'wx' });
    await replaceWith(temp, target);
  } catch (err) {
    for (const m of moved) await fsp.rename(m.to, m.from).catch(() => undefined);
    await fsp.rm(temp, { recursive: true, force: true });
    throw err;
  }
  for (const f of copiedInsteadOfMoved) await fsp.rm(f, { force: true });
}

/** Write a bare `.mlmodel` (temp file + rename). */
export async function writeModelFile(dest: string, options: { spec?: ModelSpec; specBytes?: Uint8Array }): Promise<void> {
  const specBytes = options.specBytes ?? (options.spec ? encodeModel(options.spec, dest) : undefined);
  if (!specBytes) throw new ModelFormatError('writeModelFile needs spec or specBytes', { file: dest });
  const target = path.resolve(dest);
  await fsp.mkdir(path.dirname(target), { recursive: true });
  const temp = tempSiblingPath(target);
  try {
    await fsp.writeFile(temp, specBytes, { flag: 'wx' });
    await replaceWith(temp, target);
  } catch (err) {
    await fsp.rm(temp, { force: true });
    throw err;
  }
}

function checkPlainFileName(name: string, dest: string): void {
  if (name === '' || name === '.' || name === '..' || /[\\/\u0000]/.test(name)) {
    throw new ModelFormatError(`weight file name "${name}" must be a plain file name`, { file: dest });
  }
}
