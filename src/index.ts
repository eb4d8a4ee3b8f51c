/**
 * Public API of coreml-optimize: models, compression configs and functions, the CPU executor and
 * model comparison, errors. Lower layers are subpath exports for advanced use:
 * `coreml-optimize/format` (file format), `/mil` (ML Program graph and builder), `/kernels` (native
 * kernels on plain tensors), `/optimize` (pass machinery and config helpers).
 */
export { CoreMLOptimizeError, ModelFormatError, WeightFileError, ConfigError, UnsupportedError, NativeLoadError, AbortError } from './errors.js';
export { buildInfo, setThreads, getThreads } from './native.js';
export type { BuildInfo, ProgressCallback } from './native.js';
// Models
export { Model, loadModel, loadModelSync } from './model.js';
export type { SaveOptions, DeriveOptions, FromSpecOptions } from './model.js';
export { describeLoadedModel, describeModel, formatReport } from './cli/commands/info-report.js';
export type { ModelInfoReport } from './cli/commands/info-report.js';
// Compression configs (coremltools.optimize.coreml vocabulary) and multi-step plans
export {
  OpPalettizerConfig, OpLinearQuantizerConfig, OpMagnitudePrunerConfig, OpThresholdPrunerConfig, OptimizationConfig, loadConfigFile,
} from './optimize/config.js';
export type {
  Granularity, LutDtype, OpPalettizerConfigOptions, PalettizationGranularity, PalettizationMode, OpLinearQuantizerConfigOptions,
  QuantizationDtype, QuantizationGranularity, QuantizationMode, OpMagnitudePrunerConfigOptions, OpThresholdPrunerConfigOptions,
  CompressionApi, OpCompressorConfig, OpConfigType, OptimizationConfigOptions,
} from './optimize/config.js';
export { loadCompressPlan, type CompressPlan, type CompressStep, type LayerwiseApi, type LayerwiseStepOptions } from './optimize/steps.js';
// Compression
export { palettizeWeights } from './optimize/palettize.js';
export type { PalettizeOptions } from './optimize/palettize.js';
export { pruneWeights } from './optimize/prune.js';
export type { PruneOptions } from './optimize/prune.js';
export { linearQuantizeWeights } from './optimize/quantize.js';
export type { QuantizeOptions } from './optimize/quantize.js';
export { compressModel, decompressWeights } from './optimize/compress.js';
export type { CompressModelOptions, MultiStepModel, DecompressReport, DecompressedModel } from './optimize/compress.js';
export type { PassOptions, CompressedModel, CompressionReport, WeightReport } from './optimize/pass.js';
export { materializeWeights } from './optimize/materialize.js';
export type { MaterializedWeight } from './optimize/materialize.js';
// SparseGPT / GPTQ on calibration data (coremltools' LayerwiseCompressor, run on the graph)
export { sparseGPT, gptq } from './optimize/sparsegpt/index.js';
export type { LayerwiseModel, LayerwiseOptions, LayerwiseReport, LayerwiseLayerReport, LayerwiseMode } from './optimize/sparsegpt/index.js';
export { LayerwiseCompressorConfig, ModuleSparseGPTConfig, ModuleGPTQConfig } from './optimize/config/layerwise.js';
export type { LayerwiseCompressorConfigOptions, ModuleSparseGPTConfigOptions, ModuleGPTQConfigOptions, LayerwiseAlgorithm } from './optimize/config/layerwise.js';
// Running and comparing models
export { createExecutor, Executor, SUPPORTED_OPS } from './runtime/executor.js';
export type { PredictOptions, ExecutorOptions, ExecutorProfile, OpTypeProfile, ComputePrecision, TensorDType, TensorInput, TensorOutput } from './runtime/executor.js';
export { readNpy, writeNpy } from './runtime/npy.js';
export type { NpyArray, NpyDType, NpyReadOptions } from './runtime/npy.js';
export { compareModels, compareTensors } from './runtime/compare.js';
export type { TensorComparison, ModelComparison, CompareOptions } from './runtime/compare.js';
// The built-in example (what `coreml-optimize demo` runs)
export { buildExampleModel } from './demo/example-model.js';
export { runDemo } from './demo/run-demo.js';
// Stable Diffusion / SDXL: convert a diffusers folder, generate images (lower layers: coreml-optimize/pipeline)
export { StableDiffusionPipeline } from './pipeline/stable-diffusion.js';
export type {
  StableDiffusionConfig, LoadOptions as StableDiffusionLoadOptions, GenerateOptions, GenerateResult, GeneratedImage, GenerateTimings,
} from './pipeline/stable-diffusion.js';
export { CoreMLError } from './pipeline/backends/index.js';
export type { BackendKind, ComputeUnit } from './pipeline/backends/index.js';
export { convertDiffusers } from './convert/convert.js';
export type { ConvertDiffusersOptions, ConvertDiffusersResult, DiffusersComponent } from './convert/convert.js';
export { CLIPTokenizer } from './pipeline/tokenizer.js';
export type { CLIPTokenizerOptions } from './pipeline/tokenizer.js';
export { NumpyRandomState } from './pipeline/rng.js';
export { createScheduler } from './pipeline/schedulers/index.js';
export type { Scheduler, StepOptions, PredictionType, SchedulerConfig } from './pipeline/schedulers/index.js';
// The compression study: compress the UNet several ways, report size / image PSNR, SSIM / UNet PSNR (coreml-optimize study)
export { runStudy } from './study/run.js';
export type { RunStudyOptions, StudyResult, StudyProgress, StudyPhase } from './study/run.js';
export { parseStudyConfig, loadStudyConfig } from './study/config.js';
export type { StudyConfig, StudyVariant, ParseStudyOptions } from './study/config.js';
export type { StudyReport, VariantResult, ImageResult, SizeResult, MemoryResult, UnetResult } from './study/types.js';
