/**
 * safetensors weights by memory map (native/util/safetensors.cc): `SafetensorsFile` is one file,
 * `WeightStore` all weights of one diffusers component folder (single file or sharded with a
 * `*.safetensors.index.json`). Tensors are converted one at a time to fp32 or fp16 (sources F32,
 * F16, BF16); nothing else of the file ever enters the JS heap.
 */
import fs from 'node:fs';
import path from 'node:path';
import { nativeAddon } from '../native.js';
import { CoreMLOptimizeError, ModelFormatError, UnsupportedError } from '../errors.js';

export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'U64' | 'U32' | 'U16' | 'BOOL' | 'F8_E4M3' | 'F8_E5M2';
export type ReadDType = 'fp32' | 'fp16';

export interface SafetensorsTensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** [begin, end) in bytes, relative to the data section. */
  dataOffsets: [number, number];
}

/** fp32 → Float32Array, fp16 → Uint16Array of raw halves. */
export type ReadResult<D extends ReadDType> = D extends 'fp16' ? Uint16Array : Float32Array;

interface NativeSafetensors {
  readonly path: string;
  readonly size: number;
  tensors(): SafetensorsTensorInfo[];
  metadata(): Record<string, string>;
  read(name: string, dtype: ReadDType): Float32Array | Uint16Array;
  close(): void;
}
interface SafetensorsAddon {
  SafetensorsFile: new (path: string) => NativeSafetensors;
}

/** Native errors (code + message naming the file) → the package's typed errors. */
function typed(err: unknown, file: string): never {
  const e = err as { code?: string; message?: string };
  const msg = (e?.message ?? String(err)).replace(`${file}: `, '');
  if (e?.code === 'EMODELFORMAT') throw new ModelFormatError(msg, { file, cause: err });
  if (e?.code === 'EUNSUPPORTED') throw new UnsupportedError(msg, { file, cause: err });
  if (e?.code === 'ENOENT' || e?.code === 'EIO') throw new CoreMLOptimizeError(e.code, msg, { file, cause: err });
  throw err;
}

export class SafetensorsFile {
  private handle: NativeSafetensors | undefined;
  private readonly infos: SafetensorsTensorInfo[];
  private readonly byName: Map<string, SafetensorsTensorInfo>;

  private constructor(readonly path: string, handle: NativeSafetensors) {
    this.handle = handle;
    this.infos = handle.tensors();
    this.byName = new Map(this.infos.map(t => [t.name, t]));
  }

  /** Maps the file and validates its header (ModelFormatError naming the file on any inconsistency). */
  static open(file: string): SafetensorsFile {
    const abs = path.resolve(file);
    let handle: NativeSafetensors;
    try {
      handle = new (nativeAddon<SafetensorsAddon>().SafetensorsFile)(abs);
    } catch (err) {
      typed(err, abs);
    }
    return new SafetensorsFile(abs, handle);
  }

  /** Every tensor in header order. */
  tensors(): readonly SafetensorsTensorInfo[] { return this.infos; }
  has(name: string): boolean { return this.byName.has(name); }
  info(name: string): SafetensorsTensorInfo | undefined { return this.byName.get(name); }
  metadata(): Record<string, string> { return this.open().metadata(); }

  /** One tensor converted to fp32 (Float32Array) or fp16 (Uint16Array, round to nearest even). */
  read<D extends ReadDType>(name: string, dtype: D): ReadResult<D> {
    const h = this.open();
    if (!this.byName.has(name)) throw new ModelFormatError(`no tensor named '${name}'`, { file: this.path });
    try {
      return h.read(name, dtype) as ReadResult<D>;
    } catch (err) {
      typed(err, this.path);
    }
  }

  close(): void {
    this.handle?.close();
    this.handle = undefined;
  }

  private open(): NativeSafetensors {
    if (!this.handle) throw new ModelFormatError('the safetensors file is closed', { file: this.path });
    return this.handle;
  }
}

/** Which files of a component folder hold its weights. */
export interface WeightStoreOptions {
  /** diffusers `variant` (`fp16` → `*.fp16.safetensors`); default: the files without a variant. */
  variant?: string;
}

/**
 * All weights of one component folder. Converters `read` each weight once by its diffusers name
 * (`down_blocks.0.resnets.0.conv1.weight`) and finally check `unusedNames()` is empty, so a weight
 * the converter did not understand can never be silently dropped.
 */
export class WeightStore {
  private readonly files: SafetensorsFile[];
  private readonly where = new Map<string, SafetensorsFile>();
  private readonly consumed = new Set<string>();
  /** Called before each read (progress and cancellation of converters: throwing aborts the read). */
  onRead: ((name: string, elements: number) => void) | undefined;

  private constructor(readonly dir: string, files: SafetensorsFile[]) {
    this.files = files;
  }

  static openDir(dir: string, options: WeightStoreOptions = {}): WeightStore {
    const abs = path.resolve(dir);
    let entries: string[];
    try {
      entries = fs.readdirSync(abs);
    } catch (err) {
      throw new ModelFormatError(`cannot read the component folder: ${(err as Error).message}`, { file: abs, cause: err });
    }
    const variantOf = (f: string, suffix: string) => {
      const stem = f.slice(0, -suffix.length);
      const dot = stem.lastIndexOf('.');
      return dot < 0 ? undefined : stem.slice(dot + 1);
    };
    const pick = (suffix: string) =>
      entries.filter(f => f.endsWith(suffix) && variantOf(f, suffix) === options.variant).sort();
    // diffusers / transformers put the variant before the last extension: `x.safetensors.index.fp16.json`.
    const indexSuffix = options.variant ? `.safetensors.index.${options.variant}.json` : '.safetensors.index.json';
    const indexes = entries.filter(f => f.endsWith(indexSuffix)).sort();
    const opened: SafetensorsFile[] = [];
    const store = new WeightStore(abs, opened);
    try {
      if (indexes.length > 1) throw new ModelFormatError(`several safetensors index files: ${indexes.join(', ')}`, { file: abs });
      if (indexes.length === 1) {
        const indexFile = path.join(abs, indexes[0]!);
        const weightMap = readIndex(indexFile);
        const shards = [...new Set(Object.values(weightMap))].sort();
        const byShard = new Map<string, SafetensorsFile>();
        for (const shard of shards) {
          if (shard.includes('/') || shard.includes('\\')) throw new ModelFormatError(`weight_map names a file outside the folder: ${shard}`, { file: indexFile });
          const f = SafetensorsFile.open(path.join(abs, shard));
          opened.push(f);
          byShard.set(shard, f);
        }
        for (const [name, shard] of Object.entries(weightMap)) {
          const f = byShard.get(shard)!;
          if (!f.has(name)) throw new ModelFormatError(`weight_map puts '${name}' in ${shard}, which has no such tensor`, { file: indexFile });
          store.where.set(name, f);
        }
        for (const f of opened) {
          for (const t of f.tensors()) {
            if (!store.where.has(t.name)) throw new ModelFormatError(`tensor '${t.name}' of ${path.basename(f.path)} is not in weight_map`, { file: indexFile });
          }
        }
      } else {
        const files = pick('.safetensors');
        if (files.length === 0) {
          const what = options.variant ? `no *.${options.variant}.safetensors weights` : 'no *.safetensors weights (only safetensors are read; convert .bin checkpoints first)';
          throw new ModelFormatError(what, { file: abs });
        }
        for (const name of files) {
          const f = SafetensorsFile.open(path.join(abs, name));
          opened.push(f);
          for (const t of f.tensors()) {
            const prev = store.where.get(t.name);
            if (prev) throw new ModelFormatError(`tensor '${t.name}' is in both ${path.basename(prev.path)} and ${name}`, { file: abs });
            store.where.set(t.name, f);
          }
        }
      }
    } catch (err) {
      for (const f of opened) f.close();
      throw err;
    }
    return store;
  }

  /** Every weight name, sorted. */
  names(): string[] { return [...this.where.keys()].sort(); }
  has(name: string): boolean { return this.where.has(name); }

  shape(name: string): number[] {
    return [...this.info(name).shape];
  }
  dtype(name: string): SafetensorsDType { return this.info(name).dtype; }

  /** Reads one weight (and marks it consumed). Missing names are a ModelFormatError naming the folder. */
  read<D extends ReadDType>(name: string, dtype: D): ReadResult<D> {
    const f = this.file(name);
    this.onRead?.(name, f.info(name)!.shape.reduce((a, d) => a * d, 1));
    this.consumed.add(name);
    return f.read(name, dtype);
  }

  /** Marks a weight as intentionally not needed (e.g. CLIP's position_ids buffer). */
  skip(name: string): void {
    if (this.where.has(name)) this.consumed.add(name);
  }

  /** Weights never read nor skipped. */
  unusedNames(): string[] { return this.names().filter(n => !this.consumed.has(n)); }

  /** Total elements of all weights (for progress). */
  elementCount(): number {
    let n = 0;
    for (const [name, f] of this.where) n += f.info(name)!.shape.reduce((a, d) => a * d, 1);
    return n;
  }

  close(): void {
    for (const f of this.files) f.close();
  }

  private info(name: string): SafetensorsTensorInfo {
    return this.file(name).info(name)!;
  }
  private file(name: string): SafetensorsFile {
    const f = this.where.get(name);
    if (!f) throw new ModelFormatError(`missing weight '${name}'`, { file: this.dir });
    return f;
  }
}

function readIndex(file: string): Record<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ModelFormatError(`cannot read the index: ${(err as Error).message}`, { file, cause: err });
  }
  const map = (json as { weight_map?: unknown })?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new ModelFormatError('no weight_map object', { file });
  for (const [k, v] of Object.entries(map)) {
    if (typeof v !== 'string') throw new ModelFormatError(`weight_map['${k}'] is not a file name`, { file });
  }
  return map as Record<string, string>;
}
