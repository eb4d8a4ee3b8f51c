import path from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../../errors.js';
import { readDataFile } from '../../optimize/config/parse.js';
import { parseStudyConfig } from '../../study/config.js';
import { formatDb, formatDuration, formatSize } from '../../study/report-md.js';
import { runStudy, type StudyProgress } from '../../study/run.js';
import { cliSignal } from '../main.js';
import { createProgressBar, type ProgressBar } from '../progress.js';
import { formatTable } from '../table.js';

interface StudyCliOptions {
  config?: string;
  preset?: string;
  pipeline?: string;
  steps?: string;
  output: string;
  resume?: boolean;
  parallel: string;
  keepModels?: boolean;
  inline?: boolean;
  threads?: string;
  json?: boolean;
}

function intFlag(value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${flag} must be an integer in [${min}, ${max}], got '${value}'`);
  return n;
}

/** `coreml-optimize study --config study.yaml | --preset NAME --pipeline DIR [-o OUTDIR] [--resume] [--parallel N] [--keep-models] [--json]`. */
export function registerStudy(program: Command): void {
  const cmd = program
    .command('study')
    .description('Compress the UNet of a Stable Diffusion pipeline several ways and report size, image PSNR / SSIM and UNet PSNR against the uncompressed pipeline (report.md, report.json, report.html, grid.png)')
    .option('--config <file>', 'study config (YAML / JSON): pipeline, prompts, seeds, steps, guidance, calibration, unetInputs, variants [{name, plan}]')
    .option('--preset <name>', 'a built-in study: coremltools-sdxl (the coremltools SDXL guide\'s table); a --config may override its keys')
    .option('--pipeline <dir>', 'the models folder (convert output or ml-stable-diffusion packages); overrides the config\'s')
    .option('--steps <n>', 'denoising steps (overrides the config / preset)')
    .option('-o, --output <dir>', 'output folder', 'study')
    .option('--resume', 'continue the study in the output folder: finished variants are not redone')
    .option('--parallel <n>', 'variants at a time', '1')
    .option('--keep-models', 'keep each variant\'s compressed Unet.mlpackage (default: deleted once measured)')
    .option('--inline', 'compress in this process instead of a child process (peak memory is then this process\'s high-water mark)')
    .option('--threads <n>', 'executor threads per model call (default: all cores; the same threads give the same images)')
    .option('--json', 'print report.json')
    .action(async (opts: StudyCliOptions) => {
      if (!opts.config && !opts.preset) throw new ConfigError('study needs --config FILE or --preset NAME');
      const steps = intFlag(opts.steps, '--steps', 1, 1000);
      const parallel = intFlag(opts.parallel, '--parallel', 1, 64)!;
      const threads = intFlag(opts.threads, '--threads', 0, 1024);
      const overrides: Record<string, unknown> = {
        ...(opts.pipeline ? { pipeline: path.resolve(opts.pipeline) } : {}),
        ...(steps !== undefined ? { steps } : {}),
        ...(threads !== undefined ? { threads } : {}),
      };
      const file = opts.config;
      const data = (file ? readDataFile(file) : {}) as Record<string, unknown>;
      // --preset NAME is the config's `preset: NAME` (a config file may name one and override its keys).
      const config = parseStudyConfig({ ...data, ...(opts.preset ? { preset: opts.preset } : {}), ...overrides }, file ? { file, baseDir: path.dirname(path.resolve(file)) } : {});
      const signal = cliSignal(cmd);
      let bar: ProgressBar | undefined;
      let label = '';
      const onProgress = (p: StudyProgress) => {
        const name = p.phase === 'variant' ? `${p.variant} (${(p.index ?? 0) + 1}/${p.count}) ${p.step}` : `${p.phase} ${p.step}`;
        if (p.step === 'skipped' || p.step === 'done') {
          bar?.done();
          bar = undefined;
          label = '';
          if (!opts.json) process.stderr.write(`${p.phase === 'variant' ? p.variant : p.phase}: ${p.step === 'skipped' ? `skipped (${p.message ?? 'finished before'})` : 'done'}\n`);
          return;
        }
        if (name !== label) {
          bar?.done();
          bar = createProgressBar(name);
          label = name;
        }
        if (p.done !== undefined && p.total !== undefined) bar!.update(p.done, p.total);
      };
      const result = await runStudy(config, {
        outDir: opts.output,
        parallel,
        ...(opts.resume ? { resume: true } : {}),
        ...(opts.keepModels ? { keepModels: true } : {}),
        ...(opts.inline ? { isolation: 'inline' as const } : {}),
        onProgress,
        ...(signal ? { signal } : {}),
      });
      bar?.done();
      if (opts.json) {
        console.log(JSON.stringify(result.report, null, 2));
        return;
      }
      const r = result.report;
      const rows = [r.baseline, ...r.variants].map((v) => [
        v === r.baseline ? 'baseline' : v.label, formatSize(v.size.weightFileBytes), formatDb(v.imagePsnr), v.imageSsim.toFixed(4), formatDb(v.unet.psnr),
        v === r.baseline ? '' : formatDuration(v.compressionSeconds),
      ]);
      console.log(formatTable(['config', 'UNet size', 'image PSNR', 'SSIM', 'UNet PSNR', 'time'], rows));
      console.log(`${result.ran.length} variant(s) run, ${result.skipped.length} finished before; wrote ${result.files.markdown}, ${result.files.html}, ${result.files.grid}`);
    });
}
