/**
 * `coreml-optimize/kernels` (advanced): the native kernels on plain tensors — exact 1-D / vector
 * k-means, palettize, quantize, prune and decompress one tensor, Hessians and SparseGPT / GPTQ on one
 * layer — and the executor's lowering.
 */
export { decompressOp, asKernelTensor } from './decompress.js';
export type {
  KernelDType, KernelTensor, CompressionOpType, DecompressRequest, DecompressedTensor, DecompressResult, KernelJobOptions,
} from './decompress.js';
export { quantizeTensor, toAffineDequantizeParams } from './quantize.js';
export type { QuantMode, QuantDType, QuantGranularity, QuantizeRequest, QuantizeResult, AffineDequantizeParams } from './quantize.js';
export { pruneTensor } from './prune.js';
export type { PruneKind, PruneRequest, PruneResult } from './prune.js';
export { kmeans1d, vectorKmeans, palettizeTensor, decompressLut } from './palettize.js';
export type {
  Kmeans1dResult,
  VectorKmeansResult,
  PalettizeMode,
  PalettizeGranularity,
  PalettizeTensorOptions,
  PalettizeTensorResult,
  DecompressLutInput,
} from './palettize.js';
export { lowerProgram, nativeSupportedOps } from '../runtime/executor.js';
export type { ExecutorModel, GraphDescription } from '../runtime/executor.js';
export { loadNativeAddon } from '../native.js';
export {
  createHessian, hessianAddRows, hessianAddConvInput, hessianFromRows, hessianFromConvInput, hessianInfo, hessianData, releaseHessian,
  sparseGptLayer, gptqLayer, relativeReconstructionError,
} from './sparsegpt.js';
export type {
  HessianHandle, ConvGeometry, ConvInputShape, QuantGridOptions, SparseGptOptions, SparseGptLayerResult, GptqOptions, GptqLayerResult, HessianInfo,
} from './sparsegpt.js';
