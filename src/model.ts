/**
 * A Core ML model as loaded from disk (`.mlpackage` or `.mlmodel`), or built from a new spec for
 * saving. Holds the decoded `CoreML.Specification.Model` message and knows where the weight files
 * are; weight files are never read here (they are copied file to file on save).
 */
import fs from 'node:fs';
import path from 'node:path';
import { ModelFormatError, UnsupportedError, WeightFileError, throwIfAborted } from './errors.js';
import { isLiveTempDir, removeTempDir } from './util/temp-dirs.js';
import { referencedBlobFileNames } from './format/blob-references.js';
import { type Manifest, createManifest, findWeightsItem, withNewIdentifiers } from './format/manifest.js';
import {
  type CopiedItem,
  type ModelFileFormat,
  type PackageContents,
  type WeightFileSource,
  readModelFiles,
  resolveWeightFile,
  writeModelFile,
  writePackage,
} from './format/package.js';
import { decodeModel, encodeModel, modelType as modelProtoType } from './format/proto.js';
import type { MilProgram, ModelSpec } from './format/spec-types.js';

export interface SaveOptions {
  /** Give every manifest item a fresh identifier (default: keep the original ones). */
  newIdentifiers?: boolean;
  /** Output form; default from the extension of `dest` ('.mlpackage' / '.mlmodel'), else the model's own. */
  format?: ModelFileFormat;
  /** Checked before the (possibly long) weight copies start. */
  signal?: AbortSignal;
}

export interface DeriveOptions {
  /**
   * The complete set of weight files of the new model (e.g. a freshly written weight.bin at a temp
   * path with `move: true`). Omit to keep the original model's weight files.
   */
  weightFiles?: WeightFileSource[];
}

export interface FromSpecOptions extends DeriveOptions {
  /** Manifest to use (identifiers kept). Default: a fresh coremltools-style one on save. */
  manifest?: Manifest;
}

export class Model {
  /** Absolute path of the file/directory this model was loaded from; undefined for an unsaved spec. */
  readonly path: string | undefined;
  readonly format: ModelFileFormat;
  /** The decoded `CoreML.Specification.Model` message (protobufjs message instance). */
  readonly spec: ModelSpec;
  readonly manifest: Manifest | undefined;
  /** Absolute weights directory, when it exists on disk. */
  readonly weightsDir: string | undefined;
  /** Regular files present in weightsDir (or the pending weight files of a derived model). */
  readonly weightFileNames: readonly string[];
  /** BlobFileValue file names used by the ML Program. */
  readonly referencedWeightFiles: readonly string[];
  /** Referenced weight files that are not available (program-only packages). */
  readonly missingWeightFiles: readonly string[];

  private readonly source: PackageContents | undefined;
  private readonly pendingWeightFiles: readonly WeightFileSource[] | undefined;

  private constructor(init: {
    path: string | undefined;
    format: ModelFileFormat;
    spec: ModelSpec;
    manifest: Manifest | undefined;
    source: PackageContents | undefined;
    pendingWeightFiles: readonly WeightFileSource[] | undefined;
  }) {
    this.path = init.path;
    this.format = init.format;
    this.spec = init.spec;
    this.manifest = init.manifest;
    this.source = init.source;
    this.pendingWeightFiles = init.pendingWeightFiles;
    this.weightsDir = init.source?.weightsDir;
    this.weightFileNames = init.pendingWeightFiles ? init.pendingWeightFiles.map((w) => w.name).sort() : (init.source?.weightFileNames ?? []);
    this.referencedWeightFiles = referencedBlobFileNames(init.spec);
    const available = new Set(this.weightFileNames);
    const hasDir = this.pendingWeightFiles !== undefined || this.weightsDir !== undefined;
    this.missingWeightFiles = this.referencedWeightFiles.filter((f) => !hasDir || !available.has(baseName(f)));
  }

  /** Build a Model from contents read by readModelFiles. */
  static fromFiles(contents: PackageContents): Model {
    const spec = decodeModel(contents.specBytes, contents.rootModelPath);
    if (!(typeof spec.specificationVersion === 'number' && spec.specificationVersion >= 1)) {
      throw new ModelFormatError('not a Core ML model: specificationVersion is missing or < 1', { file: contents.rootModelPath });
    }
    return new Model({ path: contents.path, format: contents.format, spec, manifest: contents.manifest, source: contents, pendingWeightFiles: undefined });
  }

  /** A new, unsaved model (e.g. built by a compression pass) to be written with save(). */
  static fromSpec(spec: ModelSpec, options: FromSpecOptions = {}): Model {
    return new Model({
      path: undefined,
      format: spec.mlProgram ? 'mlpackage' : 'mlmodel',
      spec,
      manifest: options.manifest ? structuredClone(options.manifest) : undefined,
      source: undefined,
      pendingWeightFiles: options.weightFiles ?? [],
    });
  }

  /**
   * A new model with `spec` that keeps this model's manifest (identifiers included), extra package
   * items and, unless `weightFiles` is given, its weight files.
   */
  derive(spec: ModelSpec, options: DeriveOptions = {}): Model {
    return new Model({
      path: undefined,
      format: this.format,
      spec,
      manifest: this.manifest ? structuredClone(this.manifest) : undefined,
      source: this.source,
      pendingWeightFiles: options.weightFiles ?? this.pendingWeightFiles,
    });
  }

  /**
   * derive() with a new ML Program message (e.g. `program.toMessage()` of an edited src/mil
   * Program) and, optionally, other top-level fields changed; everything else of the spec is kept.
   */
  withProgram(program: MilProgram, options: DeriveOptions & { changes?: Partial<ModelSpec> } = {}): Model {
    return this.derive(cloneSpecWith(this.spec, { ...options.changes, mlProgram: program }), options);
  }

  get specificationVersion(): number {
    return this.spec.specificationVersion ?? 0;
  }

  /** Name of the member of Model's `Type` oneof that is set: 'mlProgram', 'neuralNetwork', 'pipelineClassifier', … */
  get modelType(): string | undefined {
    return modelTypeOf(this.spec);
  }

  /** The ML Program message (`spec.mlProgram`), or undefined for other model types. */
  get program(): MilProgram | undefined {
    return this.spec.mlProgram ?? undefined;
  }

  /** True when the ML Program refers to weight files that are not there (program-only package). */
  get weightsMissing(): boolean {
    return this.missingWeightFiles.length > 0;
  }

  /**
   * Absolute path of the weight file a BlobFileValue.fileName refers to
   * ("@model_path/weights/weight.bin" → <weightsDir>/weight.bin; only the last component counts,
   * as in coremltools). Throws WeightFileError when the model has no weights directory.
   */
  weightFilePath(fileName: string): string {
    const base = baseName(fileName);
    if (this.pendingWeightFiles) {
      // A derived / new model's weight files are exactly the pending set.
      const pending = this.pendingWeightFiles.find((w) => w.name === base);
      if (pending && base !== '..' && base !== '.') return path.resolve(pending.from);
      throw new WeightFileError(`weight file "${fileName}" is not among the model's weight files`, { file: this.path ?? '(unsaved model)' });
    }
    if (!this.weightsDir) {
      const where = this.path ?? '(unsaved model)';
      throw new WeightFileError(`model has no weights directory, cannot resolve "${fileName}" (program-only package?)`, { file: where });
    }
    try {
      return resolveWeightFile(this.weightsDir, fileName, this.source?.path);
    } catch (err) {
      if (err instanceof ModelFormatError) throw new WeightFileError(err.message, { file: this.weightsDir, cause: err });
      throw err;
    }
  }

  /**
   * Write the model to `dest` (atomically; an existing dest is replaced at the end). With no changes
   * this reproduces model.mlmodel, Manifest.json and every weight file byte for byte. Weight files
   * are copied with fs.copyFile (or moved, for pending files marked `move`). Returns the saved model.
   */
  async save(dest: string, options: SaveOptions = {}): Promise<Model> {
    const target = path.resolve(dest);
    const format = options.format ?? formatFromExtension(target) ?? this.format;
    const specBytes = encodeModel(this.spec, target);
    if (format === 'mlmodel') {
      if (this.modelType === 'mlProgram') {
        throw new UnsupportedError('an ML Program must be saved as a .mlpackage (its weights live outside the protobuf)', { file: target });
      }
      throwIfAborted(options.signal);
      await writeModelFile(target, { specBytes });
      return loadModelSync(target);
    }

    let manifest = this.manifest ?? createManifest({ withWeights: this.modelType === 'mlProgram' });
    if (options.newIdentifiers) manifest = withNewIdentifiers(manifest);
    const weightFiles = this.pendingWeightFiles
      ? [...this.pendingWeightFiles]
      : this.weightFileNames.map((name) => ({ name, from: path.join(this.weightsDir!, name) }));
    const copyItems: CopiedItem[] = (this.source?.otherItems ?? [])
      .filter((it) => it.exists)
      .map((it) => ({ itemPath: it.item.path, from: it.absPath }));
    // Reproduce a program-only package as it was (no weights dir) rather than inventing one.
    const declaredButAbsent = this.source?.weightsItem !== undefined && this.source.weightsDir === undefined;
    const createWeightsDir = !(declaredButAbsent && !this.pendingWeightFiles) && (findWeightsItem(manifest) !== undefined || weightFiles.length > 0);
    throwIfAborted(options.signal);
    await writePackage(target, { specBytes, manifest, weightFiles, copyItems, createWeightsDir, signal: options.signal });
    // Weight files moved out of a temporary directory leave it empty: nothing more to keep.
    for (const w of this.pendingWeightFiles ?? []) if (w.move && !fs.existsSync(w.from)) removeTempDir(path.dirname(path.resolve(w.from)));
    return loadModelSync(target);
  }

  /**
   * Releases what an unsaved model holds on disk: the temporary directory of a weight file a
   * compression pass wrote (removed now instead of at process exit). A loaded model owns nothing and
   * is left as it is; a disposed unsaved model can no longer be saved or run.
   */
  dispose(): void {
    for (const w of this.pendingWeightFiles ?? []) {
      const dir = path.dirname(path.resolve(w.from));
      if (w.move && isLiveTempDir(dir)) removeTempDir(dir);
    }
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }
}

/**
 * Shallow copy of a decoded Model with some top-level fields replaced. Keeps the protobufjs
 * prototype (defaults) and preserved unknown fields; the original message is not modified.
 */
export function cloneSpecWith(spec: ModelSpec, changes: Partial<ModelSpec>): ModelSpec {
  const copy = Object.create(Object.getPrototypeOf(spec) as object) as ModelSpec;
  for (const key of Object.getOwnPropertyNames(spec)) {
    Object.defineProperty(copy, key, Object.getOwnPropertyDescriptor(spec, key)!);
  }
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) delete copy[key];
    else copy[key] = value;
  }
  return copy;
}

/** Name of the set member of Model's `Type` oneof. */
export function modelTypeOf(spec: ModelSpec): string | undefined {
  const oneof = modelProtoType().oneofs['Type'];
  for (const name of oneof?.oneof ?? []) {
    if (Object.prototype.hasOwnProperty.call(spec, name) && spec[name] != null) return name;
  }
  return undefined;
}

function baseName(fileName: string): string {
  return fileName.split('/').pop() ?? '';
}

function formatFromExtension(p: string): ModelFileFormat | undefined {
  const ext = path.extname(p).toLowerCase();
  if (ext === '.mlpackage') return 'mlpackage';
  if (ext === '.mlmodel') return 'mlmodel';
  return undefined;
}

/** Load a `.mlpackage` directory or `.mlmodel` file. Bad input throws ModelFormatError naming the file. */
export function loadModelSync(modelPath: string): Model {
  return Model.fromFiles(readModelFiles(modelPath));
}

/** Async form of loadModelSync (the protobuf is small; weight files are not read). */
export async function loadModel(modelPath: string): Promise<Model> {
  return loadModelSync(modelPath);
}
