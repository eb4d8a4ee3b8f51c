/**
 * `coreml-optimize/pipeline` (advanced): the parts of the Stable Diffusion pipeline — model backends,
 * models-folder resolution, PNG with text chunks, safetensors reading, pipeline.json, the numpy RNG and
 * every scheduler class. `StableDiffusionPipeline`, `convertDiffusers`, `CLIPTokenizer` and
 * `createScheduler` are in the main entry point.
 */
export { imageBaseName, inferConfig } from './stable-diffusion.js';
export type { StableDiffusionComponents, PromptTokenizer } from './stable-diffusion.js';
export { loadBackend, coremlAvailable, defaultBackendKind, COMPUTE_UNITS } from './backends/index.js';
export type { ModelBackend, BackendTensor, FeatureSpec } from './backends/index.js';
export { resolvePipelineFolder } from './pipeline-folder.js';
export type { PipelineFolder } from './pipeline-folder.js';
export { encodePng, readPngText } from './png.js';
export { basicClean as clipBasicClean } from './tokenizer.js';
export { initialLatents, randnFloat16, roundToFloat16 } from './rng.js';
export {
  readSchedulerConfig, schedulerClassNameOf, SCHEDULER_SHORT_NAMES, SCHEDULER_CLASS_NAMES,
  PNDMScheduler, DDIMScheduler, EulerDiscreteScheduler, EulerAncestralDiscreteScheduler, DPMSolverMultistepScheduler,
  LMSDiscreteScheduler,
} from './schedulers/index.js';
export { DIFFUSERS_COMPONENTS } from '../convert/convert.js';
export { SafetensorsFile, WeightStore } from '../convert/safetensors.js';
export type { SafetensorsDType, SafetensorsTensorInfo, ReadDType, WeightStoreOptions } from '../convert/safetensors.js';
export { readPipelineJson, writePipelineJson, stringifyPythonJson, PIPELINE_JSON } from '../convert/pipeline-json.js';
export type { PipelineJson, PipelineModelKind, PipelineModelName } from '../convert/pipeline-json.js';
export { parsePythonJson } from '../convert/diffusers-config.js';
