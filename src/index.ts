/** Public API of coreml-optimize. Everything a user imports comes from here. */
export * from './errors.js';
export { buildInfo, setThreads, getThreads } from './native.js';
export type { BuildInfo, ProgressCallback } from './native.js';
export { kmeans1d, vectorKmeans, palettizeTensor, decompressLut } from './kernels/palettize.js';
export type {
  Kmeans1dResult,
  VectorKmeansResult,
  PalettizeMode,
  PalettizeGranularity,
  PalettizeTensorOptions,
  PalettizeTensorResult,
  DecompressLutInput,
} from './kernels/palettize.js';
