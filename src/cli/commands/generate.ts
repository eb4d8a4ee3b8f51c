import path from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { COMPUTE_UNITS, type BackendKind, type ComputeUnit } from '../../pipeline/backends/types.js';
import { schedulerClassNameOf } from '../../pipeline/schedulers/index.js';
import { StableDiffusionPipeline } from '../../pipeline/stable-diffusion.js';
import { cliSignal } from '../main.js';
import { createProgressBar } from '../progress.js';
import { formatSeconds } from '../table.js';

interface GenerateCliOptions {
  prompt: string;
  input: string;
  output: string;
  seed: string;
  negativePrompt?: string;
  numInferenceSteps: string;
  guidanceScale: string;
  scheduler?: string;
  height?: string;
  width?: string;
  backend?: string;
  computeUnit?: string;
  saveLatents?: boolean;
  recordUnetInputs?: string;
  threads?: string;
  json?: boolean;
}

const SCHEDULERS = ['pndm', 'ddim', 'euler', 'euler_ancestral', 'dpmpp', 'lms'];

function intOption(value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${flag} must be an integer in [${min}, ${max}], got '${value}'`);
  return n;
}

/** `coreml-optimize generate --prompt TEXT -i MODELS -o OUTDIR ...`: text to image with SD 1.x / SDXL Core ML models. */
export function registerGenerate(program: Command): void {
  const cmd = program
    .command('generate')
    .description('Draw an image with Stable Diffusion / SDXL models (coreml-optimize convert output or an apple/ml-stable-diffusion folder)')
    .requiredOption('--prompt <text>', 'the text prompt')
    .requiredOption('-i, --input <dir>', 'models folder: convert output (pipeline.json) or ml-stable-diffusion packages / Resources')
    .requiredOption('-o, --output <dir>', 'folder for <prompt>.<seed>.final.png')
    .option('--seed <n>', 'numpy seed of the initial latents', '93')
    .option('--negative-prompt <text>', 'negative prompt (SDXL without one: zero embeddings, as diffusers)')
    .option('--num-inference-steps <n>', 'denoising steps', '50')
    .option('--guidance-scale <g>', 'classifier-free guidance scale (≤ 1 turns guidance off)', '7.5')
    .option('--scheduler <name>', `${SCHEDULERS.join('|')} (default: the pipeline's own)`)
    .option('--height <px>', 'image height (default and only choice: the size the UNet was converted for)')
    .option('--width <px>', 'image width')
    .option('--backend <name>', `executor|coreml (default: ${process.platform === 'darwin' ? 'coreml' : 'executor'} here)`)
    .option('--compute-unit <unit>', `Core ML compute units: ${COMPUTE_UNITS.join('|')}`, 'ALL')
    .option('--save-latents', 'also write the final latents as <name>.latents.npy')
    .option('--record-unet-inputs <dir>', 'write every UNet call\'s inputs as <dir>/<NNNN>/<input>.npy (calibration data; `predict --inputs` reads them)')
    .option('--threads <n>', 'executor threads (default: all cores); the same seed and threads give the same bytes')
    .option('--json', 'print {"images": [paths], "seed", "timings", ...} as JSON')
    .action(async (opts: GenerateCliOptions) => {
      // Checked before the (slow) model load; ml-stable-diffusion's names (EulerDiscrete) and class names work too.
      if (opts.scheduler !== undefined && schedulerClassNameOf(opts.scheduler) === undefined) {
        throw new ConfigError(`--scheduler must be one of ${SCHEDULERS.join(', ')} (or a diffusers class name), got '${opts.scheduler}'`);
      }
      if (opts.backend !== undefined && opts.backend !== 'executor' && opts.backend !== 'coreml') {
        throw new ConfigError(`--backend must be executor or coreml, got '${opts.backend}'`);
      }
      const computeUnit = opts.computeUnit?.toUpperCase();
      if (computeUnit !== undefined && !COMPUTE_UNITS.includes(computeUnit as ComputeUnit)) {
        throw new ConfigError(`--compute-unit must be one of ${COMPUTE_UNITS.join(', ')}, got '${opts.computeUnit}'`);
      }
      const guidanceScale = Number(opts.guidanceScale);
      if (!Number.isFinite(guidanceScale)) throw new ConfigError(`--guidance-scale must be a number, got '${opts.guidanceScale}'`);
      const seed = intOption(opts.seed, '--seed', 0, 0xffffffff)!;
      const steps = intOption(opts.numInferenceSteps, '--num-inference-steps', 1, 1000)!;
      const height = intOption(opts.height, '--height', 8, 16384);
      const width = intOption(opts.width, '--width', 8, 16384);
      const threads = intOption(opts.threads, '--threads', 0, 1024);
      const signal = cliSignal(cmd);

      const pipeline = await StableDiffusionPipeline.load(opts.input, {
        ...(opts.backend ? { backend: opts.backend as BackendKind } : {}),
        ...(computeUnit ? { computeUnit: computeUnit as ComputeUnit } : {}),
        ...(threads !== undefined ? { threads } : {}),
      });
      const bar = createProgressBar(`generate ${steps} steps`);
      let result;
      try {
        result = await pipeline.generate({
          prompt: opts.prompt,
          ...(opts.negativePrompt !== undefined ? { negativePrompt: opts.negativePrompt } : {}),
          seed,
          numInferenceSteps: steps,
          guidanceScale,
          ...(opts.scheduler ? { scheduler: opts.scheduler } : {}),
          ...(height !== undefined ? { height } : {}),
          ...(width !== undefined ? { width } : {}),
          outputDir: opts.output,
          ...(opts.saveLatents ? { saveLatents: true } : {}),
          ...(opts.recordUnetInputs ? { recordUnetInputs: opts.recordUnetInputs } : {}),
          onProgress: bar.update,
          ...(signal ? { signal } : {}),
        });
      } finally {
        bar.done();
      }
      const image = result.images[0]!;
      const timings = { loadSeconds: pipeline.loadSeconds, ...result.timings };
      if (opts.json) {
        console.log(JSON.stringify({
          images: result.images.map((i) => i.path),
          latents: result.images.map((i) => i.latentsPath ?? null).filter((p) => p !== null),
          unetSamples: result.unetSampleDirs.length > 0 ? { dir: opts.recordUnetInputs, count: result.unetSampleDirs.length } : null,
          seed: result.seed,
          prompt: opts.prompt,
          negativePrompt: opts.negativePrompt ?? null,
          numInferenceSteps: steps,
          guidanceScale,
          scheduler: result.scheduler,
          width: image.width,
          height: image.height,
          model: pipeline.config.modelName,
          modelKind: pipeline.config.modelKind,
          backend: pipeline.components.unet.kind,
          timings,
        }, null, 2));
        return;
      }
      const rel = path.relative(process.cwd(), image.path!);
      console.log(`wrote ${rel.startsWith('..') || path.isAbsolute(rel) ? image.path : rel} (${image.width}x${image.height}, ${pipeline.config.modelKind}, ${result.scheduler}, seed ${result.seed})`);
      if (image.latentsPath) console.log(`latents: ${image.latentsPath}`);
      if (result.unetSampleDirs.length > 0) console.log(`UNet inputs: ${result.unetSampleDirs.length} sample folders in ${opts.recordUnetInputs}`);
      const perStep = result.timings.stepSeconds.length > 0 ? result.timings.unetSeconds / result.timings.stepSeconds.length : 0;
      console.log(
        `load ${formatSeconds(timings.loadSeconds)}, text ${formatSeconds(timings.textEncoderSeconds)}, UNet ${formatSeconds(timings.unetSeconds)} ` +
          `(${formatSeconds(perStep)}/step), VAE ${formatSeconds(timings.vaeSeconds)}, total ${formatSeconds(timings.totalSeconds)}`,
      );
    });
}
