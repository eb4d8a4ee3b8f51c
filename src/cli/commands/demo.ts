import type { Command } from 'commander';
import { runDemo } from '../../demo/run-demo.js';
import { cliSignal } from '../main.js';
import { formatBytes, formatSeconds, formatTable } from '../table.js';

export function registerDemo(program: Command): void {
  const cmd = program
    .command('demo')
    .description('Build a small diffusion-style model, compress it several ways and print the size / error table')
    .option('--out <dir>', 'keep the models in this directory (default: a temporary directory)')
    .option('--threads <n>', 'native threads (default: all cores)')
    .option('--json', 'print the table as JSON')
    .action(async (opts: { out?: string; threads?: string; json?: boolean }) => {
      const signal = cliSignal(cmd);
      const result = await runDemo({
        ...(opts.out ? { dir: opts.out } : {}),
        ...(opts.threads ? { threads: Number(opts.threads) } : {}),
        ...(signal ? { signal } : {}),
        log: opts.json ? () => {} : (l) => console.error(l),
      });
      if (opts.json) {
        console.log(JSON.stringify(result, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2));
        return;
      }
      const rows = [
        ['fp16 source', formatBytes(result.sourceBytes), '1.00x', '', '', '', '', ''],
        ...result.rows.map((r) => [
          r.variant, formatBytes(r.weightBinBytes), `${r.ratio.toFixed(2)}x`, r.compressedWeights,
          r.meanSqnrDb.toFixed(1), r.worstSqnrDb.toFixed(1), r.outputPsnrDb.toFixed(1), formatSeconds(r.seconds),
        ]),
      ];
      console.log(formatTable(['variant', 'weight.bin', 'smaller', 'weights', 'mean SQNR dB', 'worst SQNR dB', 'output PSNR dB', 'compress time'], rows,
        { align: ['left', 'right', 'right', 'right', 'right', 'right', 'right', 'right'] }));
      console.log('\nSQNR: per compressed weight vs its fp16 original. Output PSNR: worst model output vs the fp16 model on the CPU executor.');
      console.log(`\nmodels in ${result.dir}`);
    });
}
