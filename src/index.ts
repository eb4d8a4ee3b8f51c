/** Public API of coreml-optimize. Everything a user imports comes from here. */
export * from './errors.js';
export { buildInfo, setThreads, getThreads } from './native.js';
export type { BuildInfo, ProgressCallback } from './native.js';
export { decompressOp, asKernelTensor } from './kernels/decompress.js';
export type {
  KernelDType, KernelTensor, CompressionOpType, DecompressRequest, DecompressedTensor, DecompressResult, KernelJobOptions,
} from './kernels/decompress.js';
export { quantizeTensor } from './kernels/quantize.js';
export type { QuantMode, QuantDType, QuantGranularity, QuantizeRequest, QuantizeResult } from './kernels/quantize.js';
export { pruneTensor } from './kernels/prune.js';
export type { PruneKind, PruneRequest, PruneResult } from './kernels/prune.js';
