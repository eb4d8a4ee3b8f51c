import type { Command } from 'commander';
import { loadModel } from '../../model.js';
import { compressModel } from '../../optimize/compress.js';
import { loadCompressPlan } from '../../optimize/steps.js';
import { formatReport } from '../compress-command.js';
import { cliSignal } from '../main.js';
import { createProgressBar } from '../progress.js';

export function registerCompress(program: Command): void {
  const cmd = program
    .command('compress <input> <output>')
    .description('Run a multi-step compression plan: {steps: [{api: prune|palettize|quantize, config, joint_compression} | {api: sparsegpt|gptq, config, calibration, mode}]} (YAML or JSON; a coremltools golden sidecar works as is)')
    .requiredOption('--config <file>', 'the plan file')
    .option('--threads <n>', 'native threads (default: all cores)')
    .option('--json', 'print the step reports as JSON')
    .option('--no-fuse', 'run every step as its own pass (by default prune + a joint step share one pass; same output)')
    .action(async (input: string, output: string, opts: { config: string; threads?: string; json?: boolean; fuse: boolean }) => {
      const plan = loadCompressPlan(opts.config);
      const model = await loadModel(input);
      const signal = cliSignal(cmd);
      let bar = createProgressBar(plan.steps[0]!.api);
      const result = await compressModel(model, plan, {
        ...(opts.threads !== undefined ? { threads: Number(opts.threads) } : {}),
        ...(signal ? { signal } : {}),
        fuse: opts.fuse,
        onStep: (i, _n, api) => {
          if (i > 0) {
            bar.done();
            bar = createProgressBar(api);
          }
        },
        onProgress: (d, t) => bar.update(d, t),
      });
      bar.done();
      await result.save(output, { newIdentifiers: true, ...(signal ? { signal } : {}) });
      if (opts.json) {
        console.log(JSON.stringify({ input, output, passes: result.passes, steps: result.steps }, (_k, v) => (v === Infinity ? null : v), 2));
      } else {
        result.steps.forEach((r, i) => {
          console.log(`step ${i + 1} of ${result.steps.length}${plan.steps[i]!.joint_compression ? ' (joint)' : ''}:`);
          console.log(formatReport(r));
          console.log('');
        });
        console.log(`${result.steps.length} step${result.steps.length === 1 ? '' : 's'} in ${result.passes} pass${result.passes === 1 ? '' : 'es'} over the weights`);
        console.log(`wrote ${output}`);
      }
    });
}
