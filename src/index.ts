/** Public API of coreml-optimize. Everything a user imports comes from here. */
export * from './errors.js';
export { buildInfo, setThreads, getThreads } from './native.js';
export type { BuildInfo, ProgressCallback } from './native.js';
export * from './optimize/config.js';
export {
  checkPlanTarget, compressPlanFromData, compressPlanToData, loadCompressPlan, normalizeApiName,
  type CompressPlan, type CompressStep,
} from './optimize/steps.js';
