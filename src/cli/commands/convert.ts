import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { convertDiffusers, DIFFUSERS_COMPONENTS, type DiffusersComponent } from '../../convert/convert.js';
import { cliSignal } from '../main.js';
import { createProgressBar } from '../progress.js';
import { formatSeconds, formatTable } from '../table.js';

interface ConvertOpts {
  output: string;
  precision: string;
  attention: string;
  latentSize?: string[];
  components?: string;
  unetBatchSize: string;
  variant?: string;
  minimumDeploymentTarget: string;
  json?: boolean;
}

/** coremltools' deployment-target names → the specification version the packages are written with. */
const TARGETS: Record<string, 7 | 8 | 9> = { ios16: 7, macos13: 7, ios17: 8, macos14: 8, ios18: 9, macos15: 9 };

export function registerConvert(program: Command): void {
  const cmd = program
    .command('convert <diffusers-dir>')
    .description('Convert a diffusers Stable Diffusion / SDXL folder (safetensors) to Core ML packages + pipeline.json, without Python')
    .requiredOption('-o, --output <dir>', 'output folder (TextEncoder[2].mlpackage, Unet.mlpackage, VAEDecoder.mlpackage, vocab.json, merges.txt, pipeline.json)')
    .option('--precision <p>', 'fp16 | fp32 weights and compute', 'fp16')
    .option('--attention <a>', 'UNet attention: original | split_einsum', 'split_einsum')
    .option('--latent-size <h w...>', 'latent height and width (image = 8×); default the UNet sample_size')
    .option('--components <list>', `comma-separated subset of ${DIFFUSERS_COMPONENTS.join(',')}`)
    .option('--unet-batch-size <n>', '2 = classifier-free guidance in one call, 1 = one call per half', '2')
    .option('--variant <name>', 'read the *.<name>.safetensors weight variant (e.g. fp16)')
    .option('--minimum-deployment-target <t>', 'iOS16 | iOS17 | iOS18 (or macOS13–15); iOS18 for joint compression (SparseGPT + palettize)', 'iOS16')
    .option('--json', 'print the result as JSON')
    .action(async (dir: string, opts: ConvertOpts) => {
      if (opts.precision !== 'fp16' && opts.precision !== 'fp32') throw new ConfigError(`--precision must be fp16 or fp32, got ${opts.precision}`);
      if (opts.attention !== 'original' && opts.attention !== 'split_einsum') throw new ConfigError(`--attention must be original or split_einsum, got ${opts.attention}`);
      const batch = Number(opts.unetBatchSize);
      if (batch !== 1 && batch !== 2) throw new ConfigError(`--unet-batch-size must be 1 or 2, got ${opts.unetBatchSize}`);
      const specVersion = TARGETS[opts.minimumDeploymentTarget.toLowerCase()];
      if (!specVersion) throw new ConfigError(`--minimum-deployment-target must be iOS16, iOS17, iOS18, macOS13, macOS14 or macOS15, got ${opts.minimumDeploymentTarget}`);
      let latentSize: [number, number] | undefined;
      if (opts.latentSize) {
        const v = opts.latentSize.map(Number);
        if (v.length !== 2 || !v.every(x => Number.isInteger(x) && x > 0)) throw new ConfigError(`--latent-size takes two positive integers H W, got ${opts.latentSize.join(' ')}`);
        latentSize = [v[0]!, v[1]!];
      }
      let components: DiffusersComponent[] | undefined;
      if (opts.components) {
        components = opts.components.split(',').map(s => s.trim()).filter(Boolean) as DiffusersComponent[];
        const bad = components.filter(c => !DIFFUSERS_COMPONENTS.includes(c));
        if (bad.length) throw new ConfigError(`--components: unknown ${bad.join(', ')} (choose from ${DIFFUSERS_COMPONENTS.join(', ')})`);
      }
      const signal = cliSignal(cmd);
      const bar = createProgressBar('convert');
      const result = await convertDiffusers(dir, {
        outDir: opts.output,
        precision: opts.precision,
        attention: opts.attention,
        batchSize: batch,
        specVersion,
        ...(latentSize ? { latentSize } : {}),
        ...(components ? { components } : {}),
        ...(opts.variant ? { variant: opts.variant } : {}),
        ...(signal ? { signal } : {}),
        onProgress: bar.update,
      });
      bar.done();
      if (opts.json) {
        console.log(JSON.stringify({ outDir: result.outDir, pipelineJson: result.pipelineJson, modelKind: result.modelKind, packages: result.packages, seconds: result.seconds, pipeline: result.pipeline }, null, 2));
        return;
      }
      const rows = Object.entries(result.packages).map(([c, p]) => [c, p, formatSeconds(result.seconds[c as DiffusersComponent] ?? 0)]);
      console.log(formatTable(['component', 'package', 'time'], rows));
      console.log(`convert: ${result.modelKind} pipeline, latent ${result.pipeline.latentHeight}×${result.pipeline.latentWidth}, ${result.pipeline.precision}; wrote ${result.pipelineJson}`);
    });
}
