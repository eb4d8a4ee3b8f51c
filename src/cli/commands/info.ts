/** `coreml-optimize info MODEL [--json]`: what a model is, needs and contains. */
import type { Command } from 'commander';
import { loadModel } from '../../model.js';
import { describeLoadedModel, formatReport } from './info-report.js';

export function registerInfo(program: Command): void {
  program
    .command('info')
    .argument('<model>', '.mlpackage directory or .mlmodel file')
    .description('Show spec version and required OS, model type, opsets, inputs/outputs, metadata, op counts and every weight with its compression')
    .option('--json', 'print stable JSON instead of tables')
    .action(async (modelPath: string, opts: { json?: boolean }) => {
      const model = await loadModel(modelPath);
      const report = describeLoadedModel(model);
      console.log(opts.json ? JSON.stringify(report, null, 2) : formatReport(report));
    });
}
