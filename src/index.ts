/** Public API of coreml-optimize. Everything a user imports comes from here. */
export * from './errors.js';
export { buildInfo, setThreads, getThreads } from './native.js';
export type { BuildInfo, ProgressCallback } from './native.js';
export { createExecutor, Executor, lowerProgram, SUPPORTED_OPS } from './runtime/executor.js';
export type {
  ExecutorModel,
  GraphDescription,
  MilProgram,
  PredictOptions,
  TensorDType,
  TensorInput,
  TensorOutput,
} from './runtime/executor.js';
export { formatNpy, parseNpy, readNpy, writeNpy } from './runtime/npy.js';
export type { NpyArray, NpyDType, NpyReadOptions } from './runtime/npy.js';
