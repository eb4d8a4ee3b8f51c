/**
 * `coreml-optimize/optimize` (advanced): the machinery behind the compression functions — the pass
 * driver and one handler per kind, weight selection, config helpers (channel axes, targets, the
 * weight gate), plan (de)serialisation. The main entry point has what a user calls.
 */
export {
  PALETTIZATION_MODES, PALETTIZATION_NBITS, QUANTIZATION_DTYPES, QUANTIZATION_MODES, STRUCTURAL_PRUNING_INPUTS,
  TARGET_MESSAGES, API_FUNCTION_NAMES, checkConfigForApi, checkOpConfigTarget, checkTarget, isIos18OrLater,
  channelAxes, channelAxesForConsumers, defaultChannelAxis, eligibleWeightInputs, inferBlockSizes, passesWeightGate,
  configFromCliFlags, lutDtypeQuantizerOptions, isOpCompressorConfig, sameConfig,
} from './config.js';
export type {
  ConfigKeyError, CoremltoolsErrorType, TargetError, LutFunction, LutFunctionInput, LutFunctionResult, OpRef,
  ModelTarget, OpConfigTargetOptions, ChannelAxes, ChannelAxisOptions, ConstCandidate, WeightConsumer, CliFlags, CliFlagValue,
} from './config.js';
export { checkPlanTarget, compressPlanFromData, compressPlanToData, normalizeApiName, type PlanTargetError } from './steps.js';
export { runPass } from './pass.js';
export type { PassHandler, PassContext } from './pass.js';
export { palettizeHandler } from './palettize.js';
export { pruneHandler } from './prune.js';
export { quantizeHandler } from './quantize.js';
export { selectWeights } from './select.js';
export type { WeightCandidate, Selection, SkippedWeight } from './select.js';
