/** Public API of coreml-optimize. Everything a user imports comes from here. */
export * from './errors.js';
export { buildInfo, setThreads, getThreads } from './native.js';
export type { BuildInfo, ProgressCallback } from './native.js';
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
