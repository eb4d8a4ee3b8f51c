/**
 * Core ML as a pipeline backend (macOS only), through the Objective-C++ bridge in native/coreml/.
 * An .mlpackage is compiled once ([MLModel compileModelAtURL:]) into a cache directory keyed by the
 * package's path, file sizes and mtimes; an .mlmodelc (ml-stable-diffusion's Resources/) loads as is.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CoreMLOptimizeError, UnsupportedError } from '../../errors.js';
import { nativeAddon, withCancel, type CancelToken } from '../../native.js';
import type { BackendPredictOptions, BackendTensor, ComputeUnit, FeatureSpec, ModelBackend } from './types.js';
import { toInputType } from './types.js';

/** An error reported by Core ML (NSError domain and code in the message). */
export class CoreMLError extends CoreMLOptimizeError {
  constructor(message: string, options: { file?: string; cause?: unknown } = {}) {
    super('ECOREML', message, options);
  }
}

interface NativeCoreMLModel {
  inputs(): FeatureSpec[];
  outputs(): FeatureSpec[];
  predict(inputs: Record<string, { data: Float32Array | Int32Array; shape: number[] }>, cancel?: CancelToken): Promise<Record<string, { data: Float32Array; shape: number[] }>>;
}
interface CoreMLAddon {
  coremlAvailable(): boolean;
  /** Compiles an .mlpackage; resolves to the temporary .mlmodelc Core ML wrote. */
  coremlCompile?(source: string): Promise<string>;
  /** Loads an .mlmodelc with MLModelConfiguration.computeUnits. */
  coremlLoad?(compiled: string, computeUnits: ComputeUnit): Promise<NativeCoreMLModel>;
}

/** True when the addon was built with the Core ML bridge (macOS builds). */
export function coremlAvailable(): boolean {
  try {
    const addon = nativeAddon<Partial<CoreMLAddon>>();
    return typeof addon.coremlAvailable === 'function' && addon.coremlAvailable();
  } catch {
    return false;
  }
}

export function defaultCoreMLCacheDir(): string {
  if (process.env.COREML_OPTIMIZE_CACHE) return process.env.COREML_OPTIMIZE_CACHE;
  const home = os.homedir();
  return process.platform === 'darwin'
    ? path.join(home, 'Library', 'Caches', 'coreml-optimize', 'compiled')
    : path.join(process.env.XDG_CACHE_HOME ?? path.join(home, '.cache'), 'coreml-optimize', 'compiled');
}

/**
 * Where the compiled form of `pkg` is cached: `<cacheDir>/<name>-<key>.mlmodelc`, the key hashing the
 * package's absolute path and every file's relative path, size and mtime — so an edited or replaced
 * package compiles again, and two packages of the same name do not collide.
 */
export function compiledCachePath(pkg: string, cacheDir: string = defaultCoreMLCacheDir()): string {
  const abs = path.resolve(pkg);
  const hash = createHash('sha256').update(abs);
  const walk = (dir: string, rel: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const p = path.join(dir, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(p, r);
      else {
        const st = fs.statSync(p);
        hash.update(`\0${r}\0${st.size}\0${Math.round(st.mtimeMs)}`);
      }
    }
  };
  if (fs.statSync(abs).isDirectory()) walk(abs, '');
  else {
    const st = fs.statSync(abs);
    hash.update(`\0${st.size}\0${Math.round(st.mtimeMs)}`);
  }
  const name = path.basename(abs).replace(/\.(mlpackage|mlmodel)$/i, '');
  return path.join(cacheDir, `${name}-${hash.digest('hex').slice(0, 16)}.mlmodelc`);
}

function wrapCoreMLError(err: unknown, file: string): never {
  const e = err as { code?: string; message?: string; name?: string };
  if (e?.code === 'ABORT_ERR' || e?.name === 'AbortError') throw err;
  if (e?.code === 'ECOREML') throw new CoreMLError(e.message ?? 'Core ML error', { file, cause: err });
  throw err;
}

async function compileCached(addon: CoreMLAddon, pkg: string, cacheDir: string): Promise<string> {
  const target = compiledCachePath(pkg, cacheDir);
  if (fs.existsSync(target)) return target;
  let compiled: string;
  try {
    compiled = await addon.coremlCompile!(path.resolve(pkg));
  } catch (err) {
    wrapCoreMLError(err, pkg);
  }
  fs.mkdirSync(cacheDir, { recursive: true });
  // Core ML compiles into a temporary directory that may be on another volume: copy next to the
  // target, then rename into place so a reader never sees a half-written .mlmodelc.
  const staging = `${target}.partial-${process.pid}-${Date.now()}`;
  fs.cpSync(compiled, staging, { recursive: true });
  fs.rmSync(compiled, { recursive: true, force: true });
  try {
    fs.renameSync(staging, target);
  } catch (err) {
    fs.rmSync(staging, { recursive: true, force: true });
    if (!fs.existsSync(target)) throw err; // another process won the race otherwise
  }
  return target;
}

export async function loadCoreMLBackend(file: string, options: { computeUnit?: ComputeUnit; cacheDir?: string } = {}): Promise<ModelBackend> {
  if (!coremlAvailable()) {
    throw new UnsupportedError(`the Core ML backend is only available on macOS (this is ${process.platform}); use --backend executor`, { file });
  }
  const addon = nativeAddon<CoreMLAddon>();
  const compiled = /\.mlmodelc\/?$/i.test(file) ? file : await compileCached(addon, file, options.cacheDir ?? defaultCoreMLCacheDir());
  let model: NativeCoreMLModel;
  try {
    model = await addon.coremlLoad!(path.resolve(compiled), options.computeUnit ?? 'ALL');
  } catch (err) {
    wrapCoreMLError(err, file);
  }
  const inputs = model.inputs();
  const outputs = model.outputs();
  return {
    kind: 'coreml',
    path: file,
    inputs,
    outputs,
    async predict(values: Record<string, BackendTensor>, predictOptions: BackendPredictOptions = {}) {
      const feed: Record<string, { data: Float32Array | Int32Array; shape: number[] }> = {};
      for (const spec of inputs) {
        const v = values[spec.name];
        if (!v) throw new UnsupportedError(`missing input '${spec.name}'`, { file });
        feed[spec.name] = toInputType(v, spec.dtype);
      }
      try {
        return await withCancel(predictOptions.signal, (token) => model.predict(feed, token));
      } catch (err) {
        wrapCoreMLError(err, file);
      }
    },
  };
}
