import type { Command } from 'commander';
import { loadModel } from '../../model.js';
import { createExecutor } from '../../runtime/executor.js';
import { compareModels } from '../../runtime/compare.js';
import { EXIT, cliSignal } from '../main.js';
import { formatTable } from '../table.js';
import { parseComputePrecision, readInputDir } from './predict.js';

export function registerCompare(program: Command): void {
  const cmd = program
    .command('compare <base> <other>')
    .description('Run two models on the same inputs and compare their outputs (PSNR, SNR, cosine, max abs error)')
    .option('--inputs <dir>', 'one <input name>.npy per model input (default: random inputs)')
    .option('--random <n>', 'number of random input sets', '1')
    .option('--seed <s>', 'seed of the random inputs', '0')
    .option('--min-psnr <db>', 'exit with code 3 when an output\'s PSNR is below this')
    .option('--function <name>', 'function of a multi-function model')
    .option('--threads <n>', 'native threads (default: all cores)')
    .option('--compute-precision <p>', 'run OTHER in fp32 or fp16 (every op output rounded to fp16, as Core ML on a Mac)', 'fp32')
    .option('--json', 'print {"outputs": [...]} as JSON')
    .action(async (basePath: string, otherPath: string, opts: { inputs?: string; random: string; seed: string; minPsnr?: string; function?: string; threads?: string; computePrecision: string; json?: boolean }) => {
      const precision = parseComputePrecision(opts.computePrecision);
      const base = await loadModel(basePath);
      const other = await loadModel(otherPath);
      const fnOpts = opts.function ? { function: opts.function } : {};
      const inputs = opts.inputs ? [readInputDir(opts.inputs, createExecutor(base, fnOpts).inputs.map((i) => i.name))] : undefined;
      const signal = cliSignal(cmd);
      const result = await compareModels(base, other, {
        ...fnOpts,
        ...(inputs ? { inputs } : { random: Number(opts.random), seed: Number(opts.seed) }),
        ...(opts.threads ? { threads: Number(opts.threads) } : {}),
        ...(signal ? { signal } : {}),
        computePrecision: precision,
      });
      if (opts.json) {
        console.log(JSON.stringify({ samples: result.samples, outputs: result.outputs }, null, 2));
      } else {
        console.log(formatTable(['output', 'PSNR dB', 'SNR dB', 'cosine', 'max abs error'], result.outputs.map((o) => [
          o.name, o.identical ? 'identical' : o.psnr!.toFixed(2), o.identical ? '∞' : o.snr!.toFixed(2), o.cosine.toFixed(6), o.maxAbsError.toPrecision(4),
        ]), { align: ['left', 'right', 'right', 'right', 'right'] }));
      }
      if (opts.minPsnr !== undefined) {
        const min = Number(opts.minPsnr);
        const failing = result.outputs.filter((o) => !o.identical && !(o.psnr! >= min));
        if (failing.length > 0) {
          console.error(`coreml-optimize: PSNR below ${min} dB for ${failing.map((o) => `${o.name} (${o.psnr!.toFixed(2)} dB)`).join(', ')}`);
          process.exitCode = EXIT.checkFailed;
        }
      }
    });
}
