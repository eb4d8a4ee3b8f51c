import type { Command } from 'commander';
import { loadModel } from '../../model.js';
import { decompressWeights } from '../../optimize/compress.js';
import { cliSignal } from '../main.js';
import { createProgressBar } from '../progress.js';
import { formatBytes, formatSeconds, formatTable } from '../table.js';

export function registerDecompress(program: Command): void {
  const cmd = program
    .command('decompress <input> <output>')
    .description('Write a plain fp16/fp32 model back: every constexpr chain becomes a const (coremltools decompress_weights)')
    .option('--threads <n>', 'native threads (default: all cores)')
    .option('--json', 'print the report as JSON')
    .action(async (input: string, output: string, opts: { threads?: string; json?: boolean }) => {
      const model = await loadModel(input);
      const signal = cliSignal(cmd);
      const bar = createProgressBar('decompress');
      const result = await decompressWeights(model, {
        ...(opts.threads !== undefined ? { threads: Number(opts.threads) } : {}),
        ...(signal ? { signal } : {}),
        onProgress: bar.update,
      });
      bar.done();
      await result.save(output, { newIdentifiers: true, ...(signal ? { signal } : {}) });
      const r = result.decompression;
      if (opts.json) {
        console.log(JSON.stringify({ input, output, ...r }, null, 2));
        return;
      }
      if (r.weights.length > 0) {
        console.log(formatTable(['weight', 'shape', 'dtype', 'was'], r.weights.map((w) => [w.name, `[${w.shape.join(', ')}]`, w.dtype, w.ops.join(' -> ')])));
      }
      console.log(`decompress: ${r.weights.length} weights; weight.bin ${formatBytes(r.weightFileBytesBefore)} -> ${formatBytes(r.weightFileBytesAfter)} in ${formatSeconds(r.seconds)}`);
      console.log(`wrote ${output}`);
    });
}
