/** What a study records per variant (variants/<name>/result.json) and reports (report.json). */

export interface ImageResult {
  prompt: string;
  seed: number;
  /** Relative to the study folder. */
  path: string;
  width: number;
  height: number;
  /** vs the baseline image of the same prompt and seed; null when identical (∞). */
  psnr: number | null;
  ssim: number;
}

export interface SizeResult {
  /** Bytes of the UNet's weight file (Unet.mlpackage/Data/com.apple.CoreML/weights/weight.bin). */
  weightFileBytes: number;
  gb: number;
  gib: number;
  /** Every file of the package. */
  packageBytes: number;
}

export interface MemoryResult {
  /** Peak resident set size, bytes. */
  peakRssBytes: number;
  /**
   * process: the `compress` child process's own peak (getrusage maxrss at its exit);
   * inline: this process's high-water mark after the compression (an upper bound: it includes
   * everything this process did before).
   */
  method: 'process' | 'inline';
}

export interface UnetResult {
  /** PSNR of the UNet output on the fixed recorded inputs, pooled over samples; null when identical. */
  psnr: number | null;
  snr: number | null;
  cosine: number;
  maxAbsError: number;
  samples: number;
}

export interface VariantResult {
  name: string;
  label: string;
  plan: { steps: Record<string, unknown>[] };
  size: SizeResult;
  /** Wall seconds of the compression (process mode: the child's whole run, load and save included). */
  compressionSeconds: number;
  memory: MemoryResult | null;
  images: ImageResult[];
  /** Mean over images of PSNR (null when every image is identical) and SSIM. */
  imagePsnr: number | null;
  imageSsim: number;
  unet: UnetResult;
  /** Relative to the study folder when kept (keepModels), else null. */
  unetPath: string | null;
  generateSeconds: number;
}

export interface StudyReport {
  format: 'coreml-optimize-study';
  version: 1;
  preset: string | null;
  pipeline: string;
  modelKind: string;
  prompts: string[];
  seeds: number[];
  steps: number;
  guidance: number;
  scheduler: string;
  backend: string;
  unetInputs: { dir: string; samples: number };
  calibration: { dir: string; samples: number } | null;
  /**
   * Set when the pipeline's UNet targets iOS16/17 and a plan needs iOS18 (joint compression,
   * per_grouped_channel): those variants compressed this iOS18 copy (the same ops and weights, spec 9).
   */
  ios18Unet: string | null;
  baseline: VariantResult;
  variants: VariantResult[];
  /** Apple's published sizes by variant name (preset coremltools-sdxl), GiB. */
  publishedGib?: Record<string, number>;
}
