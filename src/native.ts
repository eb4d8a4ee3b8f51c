/**
 * Loads the native addon (prebuild from prebuilds/ or the local build/Release) and types the
 * process-wide part of its surface. Area-specific bindings (blob storage, kernels, executor) are
 * typed in their own modules next to the TS code that uses them, via `nativeAddon()`.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { AbortError, NativeLoadError } from './errors.js';

export interface BuildInfo {
  blas: 'accelerate' | 'openblas' | 'portable';
  threads: number;
  defaultThreads: number;
  /** SIMD level of the GEMM micro-kernels chosen at run time on this CPU: avx512, avx2+fma, neon or scalar. */
  simd: string;
  /** What the compiler could assume for the rest of the code (the build's baseline ISA). */
  simdBaseline: string;
  /** The BLAS backend with what it runs on this CPU (OpenBLAS core, portable micro-kernel). */
  blasDetail: string;
  /** What the executor's matrix products run on (the portable AVX-512 SGEMM where it beats the BLAS's core; COREML_OPTIMIZE_GEMM=blas|portable overrides). */
  executorGemm: string;
  coreml: boolean;
  buildSystem?: string;
  compiler: string;
  modules: string[];
}

/** Opaque cancel token created by the addon; passed to native jobs. */
export type CancelToken = { readonly __cancelToken: unique symbol };

export interface NativeCore {
  createCancelToken(): CancelToken;
  cancel(token: CancelToken): void;
  setThreads(n: number): number;
  getThreads(): number;
  buildInfo(): BuildInfo;
}

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let cached: (NativeCore & Record<string, unknown>) | undefined;

/**
 * Loads the addon from `root` (prebuilds/ or build/Release via node-gyp-build) or from an explicit
 * `.node` file. Throws NativeLoadError explaining what to run when it cannot be loaded.
 */
export function loadNativeAddon(root: string = packageRoot, override: string | undefined = process.env.COREML_OPTIMIZE_ADDON): NativeCore & Record<string, unknown> {
  const require = createRequire(import.meta.url);
  try {
    const load = require('node-gyp-build') as (dir: string) => unknown;
    // COREML_OPTIMIZE_ADDON points at a specific .node (sanitizer builds, side-by-side builds).
    return (override ? require(path.resolve(override)) : load(root)) as NativeCore & Record<string, unknown>;
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    throw new NativeLoadError(
      `The coreml-optimize native addon could not be loaded (${reason}). ` +
        `No prebuild matches ${process.platform}-${process.arch} (Node ${process.versions.node}, N-API ${process.versions.napi}) ` +
        `and no local build was found. Build it from source: \`npm rebuild coreml-optimize\` ` +
        `(needs a C++17 compiler and CMake; Debian/Ubuntu: apt-get install build-essential cmake libopenblas-dev; macOS: xcode-select --install).`,
      { cause },
    );
  }
}

/** The raw addon, loaded once. */
export function nativeAddon<T = Record<string, unknown>>(): NativeCore & T {
  if (!cached) cached = loadNativeAddon();
  return cached as NativeCore & T;
}

/** Size the native thread pool (0 = all cores). Returns the size in effect. */
export function setThreads(n: number): number {
  return nativeAddon().setThreads(n);
}

export function getThreads(): number {
  return nativeAddon().getThreads();
}

export function buildInfo(): BuildInfo {
  return nativeAddon().buildInfo();
}

/** Progress callback of long operations: `done` of `total` units (bytes, weights or steps). */
export type ProgressCallback = (done: number, total: number) => void;

/**
 * Runs a native job with a cancel token wired to `signal`. The job function receives the token to
 * pass to the addon. Native cancellation rejects with code ABORT_ERR; we rethrow our AbortError.
 */
export async function withCancel<T>(signal: AbortSignal | undefined, job: (token: CancelToken) => Promise<T>): Promise<T> {
  if (signal?.aborted) throw new AbortError();
  const addon = nativeAddon();
  const token = addon.createCancelToken();
  const onAbort = () => addon.cancel(token);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await job(token);
  } catch (err) {
    if ((err as { code?: string })?.code === 'ABORT_ERR') throw new AbortError();
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
