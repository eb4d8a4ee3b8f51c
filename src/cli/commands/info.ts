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
    .option('--no-weights', 'leave out the per-weight list (totals stay)')
    .action(async (modelPath: string, opts: { json?: boolean; weights: boolean }) => {
      const model = await loadModel(modelPath);
      const report = describeLoadedModel(model);
      if (!opts.weights) {
        if (report.program) report.program.weights = [];
        if (report.neuralNetwork) report.neuralNetwork.weights = [];
      }
      console.log(opts.json ? JSON.stringify(report, null, 2) : formatReport(report));
    });
}
