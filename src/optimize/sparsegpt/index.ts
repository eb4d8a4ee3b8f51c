/**
 * sparseGPT / gptq: calibrated compression on the ML Program graph (coremltools' LayerwiseCompressor
 * with ModuleSparseGPTConfig / ModuleGPTQConfig, without PyTorch). `config` is a
 * LayerwiseCompressorConfig or its dict as written in Python; `calibration` a folder of sample
 * folders (one .npy per model input each).
 */
import type { Model } from '../../model.js';
import { LayerwiseCompressorConfig, type LayerwiseAlgorithm } from '../config/layerwise.js';
import { runLayerwise, type LayerwiseModel, type LayerwiseOptions } from './layerwise.js';

export type { LayerwiseModel, LayerwiseOptions, LayerwiseReport, LayerwiseLayerReport, LayerwiseMode } from './layerwise.js';

function configOf(config: LayerwiseCompressorConfig | Record<string, unknown>, algorithm: LayerwiseAlgorithm): LayerwiseCompressorConfig {
  return config instanceof LayerwiseCompressorConfig ? config : LayerwiseCompressorConfig.fromDict(config, algorithm);
}

/** SparseGPT (pruning with Hessian-based error compensation), layer by layer in program order. */
export function sparseGPT(model: Model, config: LayerwiseCompressorConfig | Record<string, unknown>, calibration: string, options: LayerwiseOptions = {}): Promise<LayerwiseModel> {
  return runLayerwise(model, configOf(config, 'sparse_gpt'), calibration, 'sparsegpt', options);
}

/** GPTQ (n-bit quantization with Hessian-based error compensation), layer by layer in program order. */
export function gptq(model: Model, config: LayerwiseCompressorConfig | Record<string, unknown>, calibration: string, options: LayerwiseOptions = {}): Promise<LayerwiseModel> {
  return runLayerwise(model, configOf(config, 'gptq'), calibration, 'gptq', options);
}
