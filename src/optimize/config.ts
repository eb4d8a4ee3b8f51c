/**
 * The configuration vocabulary of coremltools.optimize.coreml as data, separate from the passes that
 * apply it (spec §5, §6). Implementation lives in ./config/.
 */
export { configError, targetError, type ConfigKeyError, type CoremltoolsErrorType, type TargetError, type Granularity } from './config/common.js';
export {
  OpPalettizerConfig, PALETTIZATION_MODES, PALETTIZATION_NBITS, PALETTIZER_DICT_KEYS, lutDtypeQuantizerOptions,
  type LutDtype, type LutFunction, type LutFunctionInput, type LutFunctionResult, type OpPalettizerConfigOptions,
  type PalettizationGranularity, type PalettizationMode,
} from './config/palettizer.js';
export {
  OpLinearQuantizerConfig, QUANTIZATION_DTYPES, QUANTIZATION_MODES, QUANTIZER_DICT_KEYS, normalizeQuantizationDtype,
  type OpLinearQuantizerConfigOptions, type QuantizationDtype, type QuantizationGranularity, type QuantizationMode,
} from './config/quantizer.js';
export {
  OpMagnitudePrunerConfig, OpThresholdPrunerConfig, MAGNITUDE_PRUNER_DICT_KEYS, THRESHOLD_PRUNER_DICT_KEYS,
  STRUCTURAL_PRUNING_INPUTS, type OpMagnitudePrunerConfigOptions, type OpThresholdPrunerConfigOptions,
} from './config/pruners.js';
export {
  OptimizationConfig, OP_CONFIG_CLASSES, OP_CONFIG_TYPES, API_FUNCTION_NAMES, checkConfigForApi, isOpCompressorConfig,
  opConfigFromDict, sameConfig, type CompressionApi, type OpCompressorConfig, type OpConfigType, type OpRef,
  type OptimizationConfigOptions,
} from './config/optimization-config.js';
export {
  TARGET_MESSAGES, checkOpConfigTarget, checkTarget, isIos18OrLater, targetIosVersion, type ModelTarget,
  type OpConfigTargetOptions,
} from './config/target.js';
export {
  channelAxes, channelAxesForConsumers, clusterDimInvalidReason, defaultChannelAxis, eligibleWeightInputs, inferBlockSizes,
  passesWeightGate, type ChannelAxes, type ChannelAxisOptions, type ConstCandidate, type WeightConsumer,
} from './config/weights.js';
export { parseJsonText, parseYamlText, readDataFile } from './config/parse.js';
export { loadConfigFile } from './config/files.js';
export { configFromCliFlags, type CliFlags, type CliFlagValue } from './config/cli-flags.js';
