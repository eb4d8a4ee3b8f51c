/** Public API of coreml-optimize. Everything a user imports comes from here. */
export * from './errors.js';
export { buildInfo, setThreads, getThreads } from './native.js';
export type { BuildInfo, ProgressCallback } from './native.js';
// Core ML file format layer (format helper)
export { Model, loadModel, loadModelSync, modelTypeOf, cloneSpecWith } from './model.js';
export type { SaveOptions, DeriveOptions, FromSpecOptions } from './model.js';
export { decodeModel, encodeModel, protoRoot, specType, milType } from './format/proto.js';
export {
  parseManifest,
  serializeManifest,
  validateManifest,
  createManifest,
  newItemIdentifier,
  findWeightsItem,
  withNewIdentifiers,
} from './format/manifest.js';
export type { Manifest, ManifestItem } from './format/manifest.js';
export { readModelFiles, writePackage, writeModelFile, resolveWeightFile } from './format/package.js';
export type { PackageContents, WeightFileSource, WritePackageOptions, ModelFileFormat } from './format/package.js';
export { listNeuralNetworkWeights } from './format/neural-network.js';
export type { NeuralNetworkWeightInfo } from './format/neural-network.js';
export { referencedBlobFileNames } from './format/blob-references.js';
export type * from './format/spec-types.js';
// Compression configs (coremltools.optimize.coreml vocabulary) and multi-step compress plans.
export {
  OpPalettizerConfig, OpLinearQuantizerConfig, OpMagnitudePrunerConfig, OpThresholdPrunerConfig, OptimizationConfig,
  PALETTIZATION_MODES, PALETTIZATION_NBITS, QUANTIZATION_DTYPES, QUANTIZATION_MODES, STRUCTURAL_PRUNING_INPUTS,
  TARGET_MESSAGES, API_FUNCTION_NAMES, checkConfigForApi, checkOpConfigTarget, checkTarget, isIos18OrLater,
  channelAxes, channelAxesForConsumers, defaultChannelAxis, eligibleWeightInputs, inferBlockSizes, passesWeightGate,
  loadConfigFile, configFromCliFlags, lutDtypeQuantizerOptions, isOpCompressorConfig, sameConfig,
} from './optimize/config.js';
export type {
  ConfigKeyError, CoremltoolsErrorType, TargetError, Granularity, LutDtype, LutFunction, LutFunctionInput,
  LutFunctionResult, OpPalettizerConfigOptions, PalettizationGranularity, PalettizationMode,
  OpLinearQuantizerConfigOptions, QuantizationDtype, QuantizationGranularity, QuantizationMode,
  OpMagnitudePrunerConfigOptions, OpThresholdPrunerConfigOptions, CompressionApi, OpCompressorConfig, OpConfigType,
  OpRef, OptimizationConfigOptions, ModelTarget, OpConfigTargetOptions, ChannelAxes, ChannelAxisOptions,
  ConstCandidate, WeightConsumer, CliFlags, CliFlagValue,
} from './optimize/config.js';
export {
  checkPlanTarget, compressPlanFromData, compressPlanToData, loadCompressPlan, normalizeApiName,
  type CompressPlan, type CompressStep, type PlanTargetError,
} from './optimize/steps.js';
// MIL blob storage files (blob helper)
export {
  BlobFile, BlobWriter, BLOB_DTYPES, isBlobDType, isSubByteDType, blobDTypeBits, blobDTypeCode, blobPackedSize,
  blobDTypeFromMilDataType, milDataTypeFromBlobDType, packSubByte, unpackSubByte, copyRecords,
} from './format/blob.js';
export type { BlobDType, SubByteDType, BlobRecord, BlobTypedArray, BlobValues, CopyRecordsOptions } from './format/blob.js';
export { decompressOp, asKernelTensor } from './kernels/decompress.js';
export type {
  KernelDType, KernelTensor, CompressionOpType, DecompressRequest, DecompressedTensor, DecompressResult, KernelJobOptions,
} from './kernels/decompress.js';
export { quantizeTensor, toAffineDequantizeParams } from './kernels/quantize.js';
export type { QuantMode, QuantDType, QuantGranularity, QuantizeRequest, QuantizeResult, AffineDequantizeParams } from './kernels/quantize.js';
export { pruneTensor } from './kernels/prune.js';
export type { PruneKind, PruneRequest, PruneResult } from './kernels/prune.js';
// ML Program model, weights inspection and builder (mil helper)
export { Program, MilFunction, Block, Operation, ConstValue, makeConstOp, makeOp, makeConstexprOp, isConstexprType } from './mil/program.js';
export type { ProgramMsg, FunctionMsg, BlockMsg, OperationMsg, ArgumentMsg, BindingMsg, NamedValueTypeMsg, Binding, Param, BlobSource, BlobResolver, ProgramOptions } from './mil/program.js';
export { decodeProgram, encodeProgram, scanModelBytes } from './mil/proto.js';
export {
  DataType, dtypeFromCode, dtypeCode, dtypeBits, blobDTypeOf, dtypeFromBlob, isSubByte, tensorType, tensorDType, tensorShape, tensorRank,
  elementCountOf, formatValueType, OPSET_OF_SPEC, iosOfOpset,
} from './mil/types.js';
export type { MilDType, Dim, ValueTypeMsg } from './mil/types.js';
export { encodeImmediateTensor, decodeImmediateTensor, packBits, unpackBits, floatToHalfBits, halfBitsToFloat, halfBitsToFloatArray, stringScalar } from './mil/values.js';
export type { TensorData, ValueMsg } from './mil/values.js';
export { walkProgram, sortedOpCounts, totalOps } from './mil/walk.js';
export { listWeights, constantBytes, popcount, weightValueStats } from './mil/weights.js';
export type { WeightInfo, WeightInputInfo, CompressionInfo, PalettizationInfo, QuantizationInfo, SparsityInfo, PerChannelScaleInfo, CastInfo, ListWeightsOptions } from './mil/weights.js';
export { ProgramBuilder, tensor, inferOutputs, weightsDirResolver } from './mil/builder.js';
export type { ProgramBuilderOptions, Var, TensorLiteral, OpInput, OpOptions, WeightSink, BuiltSpec } from './mil/builder.js';
export { openProgram } from './mil/from-model.js';
export type { OpenedProgram } from './mil/from-model.js';
export { describeModel, describeLoadedModel, formatReport } from './cli/commands/info-report.js';
export type { ModelInfoReport } from './cli/commands/info-report.js';
export { createExecutor, Executor, lowerProgram, SUPPORTED_OPS } from './runtime/executor.js';
export type {
  ExecutorModel,
  GraphDescription,
  PredictOptions,
  ExecutorProfile,
  OpTypeProfile,
  ComputePrecision,
  ExecutorOptions,
  TensorDType,
  TensorInput,
  TensorOutput,
} from './runtime/executor.js';
export { formatNpy, parseNpy, readNpy, writeNpy } from './runtime/npy.js';
export type { NpyArray, NpyDType, NpyReadOptions } from './runtime/npy.js';
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
// Pruning, linear quantization, joint compression, multi-step plans and decompression (passes helper)
export { pruneWeights, pruneHandler } from './optimize/prune.js';
export type { PruneOptions } from './optimize/prune.js';
export { linearQuantizeWeights, quantizeHandler } from './optimize/quantize.js';
export type { QuantizeOptions } from './optimize/quantize.js';
export { compressModel, decompressWeights } from './optimize/compress.js';
export type { CompressModelOptions, MultiStepModel, DecompressReport, DecompressedModel } from './optimize/compress.js';
// Palettization pass, shared pass types, weight materialization, comparison, demo model, synthetic weights.
export { palettizeWeights, palettizeHandler } from './optimize/palettize.js';
export type { PalettizeOptions } from './optimize/palettize.js';
export { runPass } from './optimize/pass.js';
export type { PassOptions, PassHandler, PassContext, CompressedModel, CompressionReport, WeightReport } from './optimize/pass.js';
export { selectWeights } from './optimize/select.js';
export type { WeightCandidate, Selection, SkippedWeight } from './optimize/select.js';
export { materializeWeights } from './optimize/materialize.js';
export type { MaterializedWeight } from './optimize/materialize.js';
export { compareModels, compareTensors, randomInputs, ErrorAccumulator } from './runtime/compare.js';
export type { TensorComparison, ModelComparison, CompareOptions } from './runtime/compare.js';
export { buildExampleModel } from './demo/example-model.js';
export { runDemo, DEMO_VARIANTS } from './demo/run-demo.js';
export { syntheticFp16, syntheticFp32 } from './util/synthetic.js';
export { loadNativeAddon } from './native.js';
