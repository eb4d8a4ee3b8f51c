/**
 * Built-in studies. `coremltools-sdxl` is the table of coremltools' "Optimizing StableDiffusion Model"
 * guide (SDXL UNet, "cat in a tuxedo, oil on canvas", seed 231): palettize 8 / 6 / 4 bit per tensor,
 * 4 bit per_grouped_channel with group 4 / 16 / 32, and SparseGPT 40 % / 50 % followed by 4-bit
 * group-4 / group-16 palettization of the pruned weights (joint), SparseGPT calibrated on the UNet
 * inputs of the guide's three prompts at every timestep (128 samples, layers down_blocks.N, mid_block,
 * up_blocks.N). The pipeline folder (and usually the step count) come from the command line.
 *
 * Differences from the guide, on purpose: the guide prunes the torch model (whose SparseGPT default
 * also snaps survivors to an 8-bit grid) and palettizes it before conversion; here SparseGPT runs on
 * the Core ML graph with float16 survivors (weight_dtype float16), and the 4-bit palettization that
 * follows replaces the survivors' values anyway, written as one sparse + palettized weight.
 */
import { ConfigError } from '../errors.js';

export const COREMLTOOLS_SDXL_CALIBRATION_PROMPTS = [
  'modern office building, 8 stories tall, glass and steel, 3D render style, wide angle view, very detailed, sharp photographic image, in an office park, bright sunny day, clear blue skies, trees and landscaping',
  'image of a transparent tall glass with ice, fruits and mint, photograph, commercial, food, warm background, beautiful image, detailed',
  'german castle on a mountain, blue sky, realistic, photograph, dramatic, wide angle view',
];

/** Apple's published sizes (GiB, though the guide says GB), by variant name. */
export const COREMLTOOLS_SDXL_PUBLISHED_GIB: Record<string, number> = {
  'palettize-8bit': 2.40, 'palettize-6bit': 1.80, 'palettize-4bit': 1.21,
  'palettize-4bit-gs4': 1.22, 'palettize-4bit-gs16': 1.21, 'palettize-4bit-gs32': 1.21,
  'sparsegpt40-4bit-gs4': 1.04, 'sparsegpt40-4bit-gs16': 1.03, 'sparsegpt50-4bit-gs4': 0.942, 'sparsegpt50-4bit-gs16': 0.933,
};

const palettize = (nbits: number, groupSize?: number, joint = false): Record<string, unknown> => ({
  api: 'palettize',
  ...(joint ? { joint_compression: true } : {}),
  config: {
    config_type: 'OpPalettizerConfig',
    global_config: groupSize ? { nbits, mode: 'kmeans', granularity: 'per_grouped_channel', group_size: groupSize } : { nbits, mode: 'kmeans', granularity: 'per_tensor' },
  },
});

const sparseGpt = (sparsity: number): Record<string, unknown> => ({
  api: 'sparsegpt',
  config: {
    global_config: { algorithm: 'sparse_gpt', target_sparsity: sparsity, weight_dtype: 'float16' },
    calibration_nsamples: 128,
    input_cacher: 'gpt',
    layers: ['down_blocks.\\d+', 'mid_block', 'up_blocks.\\d+'],
  },
});

function coremltoolsSdxl(): Record<string, unknown> {
  const variants: Record<string, unknown>[] = [
    { name: 'palettize-8bit', label: '8-bit (per tensor)', plan: { steps: [palettize(8)] } },
    { name: 'palettize-6bit', label: '6-bit (per tensor)', plan: { steps: [palettize(6)] } },
    { name: 'palettize-4bit', label: '4-bit (per tensor)', plan: { steps: [palettize(4)] } },
    ...[4, 16, 32].map((g) => ({ name: `palettize-4bit-gs${g}`, label: `4-bit (group_size=${g})`, plan: { steps: [palettize(4, g)] } })),
    ...[40, 50].flatMap((s) => [4, 16].map((g) => ({
      name: `sparsegpt${s}-4bit-gs${g}`,
      label: `${s}% sparsity, 4-bit (group_size=${g})`,
      plan: { steps: [sparseGpt(s / 100), palettize(4, g, true)] },
    }))),
  ];
  return {
    preset: 'coremltools-sdxl',
    prompt: 'cat in a tuxedo, oil on canvas',
    seed: 231,
    steps: 50,
    guidance: 7.5,
    computeUnit: 'CPU_ONLY',
    calibration: { prompts: COREMLTOOLS_SDXL_CALIBRATION_PROMPTS, nsamples: 128 },
    variants,
  };
}

export const PRESETS: Record<string, () => Record<string, unknown>> = {
  'coremltools-sdxl': coremltoolsSdxl,
};

/** The preset's config data (without `pipeline`: the caller adds it). */
export function presetData(name: string): Record<string, unknown> {
  const make = PRESETS[name];
  if (!make) throw new ConfigError(`unknown preset "${name}" (presets: ${Object.keys(PRESETS).join(', ')})`);
  return make();
}
